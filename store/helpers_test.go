package store

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mimecast-ure/plugin"
)

// testKey returns a deterministic 32-byte key derived from b.
func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// mustOpen opens a store at path with key and closes it at cleanup.
func mustOpen(tb testing.TB, path string, key []byte, now func() time.Time) *Store {
	tb.Helper()
	s, err := Open(path, Options{MasterKey: key, Now: now, Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// newStore opens a fresh store in a temp dir with a test clock.
func newStore(tb testing.TB) (*Store, *clock, string) {
	tb.Helper()
	c := newClock()
	path := filepath.Join(tb.TempDir(), "ure.db")
	return mustOpen(tb, path, testKey(1), c.Now), c, path
}

// testConfig is a configuration with every secret field set.
func testConfig(name string) plugin.Configuration {
	return plugin.Configuration{
		Name: name,
		Mimecast: plugin.MimecastSettings{
			BaseURL: "https://us-api.mimecast.com", Auth: plugin.AuthLegacy,
			AppID: "app-id-" + name, AppKey: "APPKEY-" + name + "-9f8e7d", AccessKey: "ACCESSKEY-" + name + "-c0ffee",
			SecretKey: "U0VDUkVUS0VZLWRvLW5vdC1sZWFr", ClientSecret: "CLIENTSECRET-" + name + "-1234",
		},
		Events: &plugin.EventSettings{Enabled: true, NudgeWebhook: &plugin.Webhook{URL: "https://hooks.example/n", Secret: "NUDGESECRET-" + name}},
		Controls: &plugin.ControlSettings{
			Enabled: true, InternalDomains: []string{"acme.com"},
			Okta:          &plugin.OktaSettings{BaseURL: "https://acme.okta.com", ClientID: "okta-client", PrivateKey: "-----BEGIN PRIVATE KEY-----\nOKTAPRIVATEKEY-" + name + "\n-----END PRIVATE KEY-----"},
			NotifyWebhook: &plugin.Webhook{URL: "https://hooks.example/c", Secret: "NOTIFYSECRET-" + name},
		},
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// mustCreate stores testConfig(name).
func mustCreate(tb testing.TB, s *Store, name string) plugin.Configuration {
	tb.Helper()
	c := testConfig(name)
	if err := s.CreateConfiguration(context.Background(), c); err != nil {
		tb.Fatalf("CreateConfiguration(%q): %v", name, err)
	}
	return c
}

// wantCode fails unless err carries the plugin error code.
func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := plugin.ErrorCode(err); got != code {
		tb.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
	var pe *plugin.Error
	if !errors.As(err, &pe) {
		tb.Fatalf("error %v is not a *plugin.Error", err)
	}
}
