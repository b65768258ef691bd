package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"mimecast-ure/okta"
)

func TestOktaEmulatorCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	keyPath := filepath.Join(t.TempDir(), "okta.pem")
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- runOktaEmulator(ctx, []string{"--addr", "127.0.0.1:0", "--key-out", keyPath, "--dpop"}, func(string) string { return "" }, &out)
	}()
	re := regexp.MustCompile(`listening on (http://\S+)`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if base == "" {
		cancel()
		t.Fatalf("no listening line in %q (%v)", out.String(), <-done)
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatalf("key file: %v", err)
	}
	c, err := okta.New(okta.Options{BaseURL: base, ClientID: oktaDemoClientID, PrivateKey: string(key)})
	if err != nil {
		t.Fatalf("okta.New: %v", err)
	}
	g, err := c.FindGroup(ctx, "mimecast risky senders - malware")
	if err != nil {
		t.Fatalf("FindGroup: %v", err)
	}
	uid, err := c.FindUser(ctx, "alice@example.com")
	if err != nil {
		t.Fatalf("FindUser (auto-created): %v", err)
	}
	if err := c.AddUserToGroup(ctx, g.ID, uid); err != nil {
		t.Fatalf("AddUserToGroup: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runOktaEmulator: %v", err)
	}
}
