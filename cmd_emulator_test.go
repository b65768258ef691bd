package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mimecast-ure/internal/mimecasttest"
)

// emuOut is a bytes.Buffer safe for the command writing and the test reading.
type emuOut struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *emuOut) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *emuOut) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

func TestEmulatorCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := map[string]string{"URE_USERS": "7", "URE_SEED": "3", "URE_APP_KEY": "env-app-key", "URE_ADDR": "127.0.0.1:1"}
	var out emuOut
	done := make(chan error, 1)
	go func() {
		done <- runEmulator(ctx, []string{"--addr", "127.0.0.1:0", "--logs", "10"}, func(k string) string { return env[k] }, &out)
	}()
	re := regexp.MustCompile(`listening on (http://\S+)`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("emulator exited early: %v\n%s", err, out.String())
		default:
		}
	}
	if base == "" {
		t.Fatalf("no address printed:\n%s", out.String())
	}
	for _, want := range []string{mimecasttest.DefaultAccessKey, mimecasttest.DefaultSecretKey, "env-app-key", mimecasttest.DefaultClientID} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("start banner lacks %q:\n%s", want, out.String())
		}
	}

	path := mimecasttest.PathSafeScoreDetails
	date := time.Now().UTC().Format(mimecasttest.DateLayout)
	auth, err := mimecasttest.Sign(mimecasttest.DefaultAccessKey, mimecasttest.DefaultSecretKey, "env-app-key", date, "req-1", path)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(`{"data":[]}`))
	req.Header.Set("Authorization", auth)
	req.Header.Set("x-mc-app-id", mimecasttest.DefaultAppID)
	req.Header.Set("x-mc-date", date)
	req.Header.Set("x-mc-req-id", "req-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var env200 struct {
		Meta struct {
			Pagination struct {
				TotalCount int `json:"totalCount"`
			} `json:"pagination"`
		} `json:"meta"`
	}
	err = json.NewDecoder(resp.Body).Decode(&env200)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || env200.Meta.Pagination.TotalCount != 7 {
		t.Errorf("safe score: status %d total %d err %v, want 200 and 7 users (URE_USERS)", resp.StatusCode, env200.Meta.Pagination.TotalCount, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runEmulator = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("emulator did not stop")
	}
}

func TestEmulatorCommandBadFlags(t *testing.T) {
	none := func(string) string { return "" }
	for _, args := range [][]string{{"--users", "0"}, {"--secret-key", "not base64!"}, {"--nope"}} {
		if err := runEmulator(context.Background(), args, none, &bytes.Buffer{}); err == nil {
			t.Errorf("runEmulator(%v) = nil, want an error", args)
		}
	}
	if err := runEmulator(context.Background(), nil, func(k string) string {
		if k == "URE_LATENCY" {
			return "soon"
		}
		return ""
	}, &bytes.Buffer{}); err == nil {
		t.Error("bad URE_LATENCY accepted")
	}
}
