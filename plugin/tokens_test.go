package plugin_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mimecast-ure/plugin"
	"mimecast-ure/store"
)

// tokClock is a settable clock for token tests.
type tokClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *tokClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *tokClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type tokEnv struct {
	st    *store.Store
	svc   *plugin.Service
	clock *tokClock
	logs  *bytes.Buffer
}

func newTokEnv(tb testing.TB) *tokEnv {
	tb.Helper()
	c := &tokClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	st, err := store.Open(filepath.Join(tb.TempDir(), "t.db"), store.Options{MasterKey: bytes.Repeat([]byte{1}, 32), Now: c.now, Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatalf("store.Open: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	logs := &bytes.Buffer{}
	svc := plugin.NewService(plugin.ServiceOptions{Store: st, Logger: zerolog.New(logs), Now: c.now})
	return &tokEnv{st: st, svc: svc, clock: c, logs: logs}
}

func tokCode(tb testing.TB, err error, want string) {
	tb.Helper()
	if got := plugin.ErrorCode(err); got != want {
		tb.Fatalf("error %v: code %q, want %q", err, got, want)
	}
}

func TestCreateTokenValidation(t *testing.T) {
	e := newTokEnv(t)
	tests := []struct {
		name  string
		req   plugin.TokenRequest
		field string
	}{
		{"no name", plugin.TokenRequest{Owner: "ops", Role: plugin.RoleViewer}, "name"},
		{"no owner", plugin.TokenRequest{Name: "x", Role: plugin.RoleViewer}, "owner"},
		{"long name", plugin.TokenRequest{Owner: "ops", Name: strings.Repeat("n", 129), Role: plugin.RoleViewer}, "name"},
		{"no role", plugin.TokenRequest{Owner: "ops", Name: "x"}, "role"},
		{"bad role", plugin.TokenRequest{Owner: "ops", Name: "x", Role: "root"}, "role"},
		{"negative expiry", plugin.TokenRequest{Owner: "ops", Name: "x", Role: plugin.RoleAdmin, ExpiresIn: plugin.Duration(-time.Hour)}, "expires_in"},
		{"tiny expiry", plugin.TokenRequest{Owner: "ops", Name: "x", Role: plugin.RoleAdmin, ExpiresIn: plugin.Duration(time.Second)}, "expires_in"},
		{"over a year", plugin.TokenRequest{Owner: "ops", Name: "x", Role: plugin.RoleAdmin, ExpiresIn: plugin.Duration(366 * 24 * time.Hour)}, "expires_in"},
		{"bad configuration", plugin.TokenRequest{Owner: "ops", Name: "x", Role: plugin.RoleAdmin, Configurations: []string{"a b"}}, "configurations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := e.svc.CreateToken(context.Background(), "tester", tt.req)
			tokCode(t, err, plugin.EINVALID)
			var pe *plugin.Error
			if !errors.As(err, &pe) || pe.Field != tt.field {
				t.Errorf("field: got %v, want %q", err, tt.field)
			}
		})
	}
}

func TestCreateTokenStoresOnlyTheHash(t *testing.T) {
	e := newTokEnv(t)
	ctx := context.Background()
	tok, value, err := e.svc.CreateToken(ctx, "alice", plugin.TokenRequest{Name: "ci", Owner: "ops", Role: plugin.RoleOperator, ExpiresIn: plugin.Duration(720 * time.Hour), Configurations: []string{"acme", "acme"}})
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	if !strings.HasPrefix(value, plugin.TokenPrefix) || len(value) != len(plugin.TokenPrefix)+43 {
		t.Errorf("value shape: prefix %q, %d chars", value[:4], len(value))
	}
	if tok.Hash != "" {
		t.Error("CreateToken returned the hash")
	}
	if got, want := tok.ExpiresAt, e.clock.now().Add(720*time.Hour); !got.Equal(want) {
		t.Errorf("expires_at: got %v, want %v", got, want)
	}
	if len(tok.Configurations) != 1 {
		t.Errorf("configurations not de-duplicated: %v", tok.Configurations)
	}
	stored, err := e.st.Tokens(ctx)
	if err != nil || len(stored) != 1 {
		t.Fatalf("store tokens: %v %v", stored, err)
	}
	if stored[0].Hash != plugin.HashToken(value) {
		t.Errorf("stored hash is not SHA-256 of the value")
	}
	list, err := e.svc.ListTokens(ctx)
	if err != nil || len(list) != 1 || list[0].Hash != "" {
		t.Fatalf("ListTokens: %+v %v", list, err)
	}
	entries, err := e.svc.Audit(ctx, plugin.AuditFilter{Action: plugin.AuditTokenCreate})
	if err != nil || len(entries) != 1 || entries[0].Actor != "alice" || entries[0].Target != tok.ID {
		t.Fatalf("audit: %+v %v", entries, err)
	}
	for _, where := range []string{e.logs.String(), fmtEntries(entries)} {
		if strings.Contains(where, value) || strings.Contains(where, plugin.HashToken(value)) {
			t.Error("token value or hash in logs or audit")
		}
	}
}

func fmtEntries(es []plugin.AuditEntry) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString(e.Actor + e.Action + e.Target + e.Outcome)
		for k, v := range e.Detail {
			b.WriteString(k + "=" + v)
		}
	}
	return b.String()
}

func TestAuthenticate(t *testing.T) {
	e := newTokEnv(t)
	ctx := context.Background()
	_, good, err := e.svc.CreateToken(ctx, "a", plugin.TokenRequest{Owner: "ops", Name: "good", Role: plugin.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	_, soon, _ := e.svc.CreateToken(ctx, "a", plugin.TokenRequest{Owner: "ops", Name: "soon", Role: plugin.RoleViewer, ExpiresIn: plugin.Duration(time.Hour)})
	rt, revoked, _ := e.svc.CreateToken(ctx, "a", plugin.TokenRequest{Owner: "ops", Name: "gone", Role: plugin.RoleAdmin})
	if err := e.svc.RevokeToken(ctx, "a", rt.ID); err != nil {
		t.Fatal(err)
	}

	tok, err := e.svc.Authenticate(ctx, good)
	if err != nil || tok.Name != "good" || tok.Role != plugin.RoleViewer || tok.Hash != "" {
		t.Fatalf("Authenticate(good): %+v %v", tok, err)
	}
	if _, err := e.svc.Authenticate(ctx, soon); err != nil {
		t.Fatalf("Authenticate before expiry: %v", err)
	}
	e.clock.add(time.Hour)
	bad := map[string]string{
		"empty":     "",
		"malformed": "not a token at all \x00",
		"unknown":   plugin.TokenPrefix + strings.Repeat("A", 43),
		"truncated": good[:len(good)-1],
		"expired":   soon,
		"revoked":   revoked,
	}
	for name, v := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := e.svc.Authenticate(ctx, v)
			tokCode(t, err, plugin.EUNAUTHORIZED)
			if got := plugin.ErrorMessage(err); got != "invalid credentials" {
				t.Errorf("message %q, want the one text", got)
			}
		})
	}
}

func TestAuthenticateTouchesAtMostOncePerMinute(t *testing.T) {
	e := newTokEnv(t)
	ctx := context.Background()
	tok, v, _ := e.svc.CreateToken(ctx, "a", plugin.TokenRequest{Owner: "ops", Name: "t", Role: plugin.RoleViewer})
	lastUsed := func() time.Time {
		ts, _ := e.svc.ListTokens(ctx)
		for _, x := range ts {
			if x.ID == tok.ID {
				return x.LastUsedAt
			}
		}
		t.Fatal("token gone")
		return time.Time{}
	}
	if _, err := e.svc.Authenticate(ctx, v); err != nil {
		t.Fatal(err)
	}
	first := lastUsed()
	if first.IsZero() {
		t.Fatal("first use not recorded")
	}
	e.clock.add(10 * time.Second)
	e.svc.Authenticate(ctx, v)
	if got := lastUsed(); !got.Equal(first) {
		t.Errorf("touched again within a minute: %v -> %v", first, got)
	}
	e.clock.add(time.Minute)
	e.svc.Authenticate(ctx, v)
	if got := lastUsed(); !got.After(first) {
		t.Errorf("not touched after a minute: %v", got)
	}
}

func TestRevokeToken(t *testing.T) {
	e := newTokEnv(t)
	ctx := context.Background()
	tokCode(t, e.svc.RevokeToken(ctx, "a", "tok_missing"), plugin.ENOTFOUND)
	tok, _, _ := e.svc.CreateToken(ctx, "a", plugin.TokenRequest{Owner: "ops", Name: "t", Role: plugin.RoleViewer})
	if err := e.svc.RevokeToken(ctx, "bob", tok.ID); err != nil {
		t.Fatal(err)
	}
	entries, _ := e.svc.Audit(ctx, plugin.AuditFilter{Action: plugin.AuditTokenRevoke})
	if len(entries) != 1 || entries[0].Actor != "bob" || entries[0].Target != tok.ID {
		t.Fatalf("revoke audit: %+v", entries)
	}
}

func TestEnsureAdminToken(t *testing.T) {
	ctx := context.Background()
	t.Run("generated once", func(t *testing.T) {
		e := newTokEnv(t)
		v, created, err := e.svc.EnsureAdminToken(ctx, "")
		if err != nil || !created || !strings.HasPrefix(v, plugin.TokenPrefix) {
			t.Fatalf("first: %v %v", created, err)
		}
		tok, err := e.svc.Authenticate(ctx, v)
		if err != nil || tok.Role != plugin.RoleAdmin || tok.Name != plugin.BootstrapAdminName {
			t.Fatalf("bootstrap token: %+v %v", tok, err)
		}
		v2, created, err := e.svc.EnsureAdminToken(ctx, "")
		if err != nil || created || v2 != "" {
			t.Fatalf("second: %q %v %v", v2, created, err)
		}
	})
	t.Run("given value", func(t *testing.T) {
		e := newTokEnv(t)
		const want = "automation-admin-token-0123456789"
		v, created, err := e.svc.EnsureAdminToken(ctx, want)
		if err != nil || !created || v != want {
			t.Fatalf("got %q %v %v", v, created, err)
		}
		if _, err := e.svc.Authenticate(ctx, want); err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
	})
	t.Run("short value", func(t *testing.T) {
		e := newTokEnv(t)
		_, _, err := e.svc.EnsureAdminToken(ctx, "short")
		tokCode(t, err, plugin.EINVALID)
	})
	t.Run("restricted admin does not count", func(t *testing.T) {
		e := newTokEnv(t)
		e.svc.CreateToken(ctx, "a", plugin.TokenRequest{Owner: "ops", Name: "r", Role: plugin.RoleAdmin, Configurations: []string{"acme"}})
		if _, created, err := e.svc.EnsureAdminToken(ctx, ""); err != nil || !created {
			t.Fatalf("got %v %v, want a new admin", created, err)
		}
	})
	t.Run("revoked value is never revived", func(t *testing.T) {
		e := newTokEnv(t)
		const val = "automation-admin-token-0123456789"
		e.svc.EnsureAdminToken(ctx, val)
		ts, _ := e.svc.ListTokens(ctx)
		e.svc.RevokeToken(ctx, "a", ts[0].ID)
		_, _, err := e.svc.EnsureAdminToken(ctx, val)
		tokCode(t, err, plugin.ECONFLICT)
		if _, err := e.svc.Authenticate(ctx, val); plugin.ErrorCode(err) != plugin.EUNAUTHORIZED {
			t.Fatalf("revoked value authenticates: %v", err)
		}
	})
}

func TestRecordAuthFailure(t *testing.T) {
	e := newTokEnv(t)
	ctx := context.Background()
	if err := e.svc.RecordAuthFailure(ctx, "198.51.100.7", map[string]string{"reason": "invalid"}); err != nil {
		t.Fatal(err)
	}
	es, _ := e.svc.Audit(ctx, plugin.AuditFilter{Action: plugin.AuditAuthFailure})
	if len(es) != 1 || es[0].Actor != "198.51.100.7" || es[0].Detail["reason"] != "invalid" {
		t.Fatalf("audit: %+v", es)
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	e := newTokEnv(b)
	ctx := context.Background()
	_, v, err := e.svc.CreateToken(ctx, "a", plugin.TokenRequest{Owner: "ops", Name: "t", Role: plugin.RoleViewer})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("valid", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.svc.Authenticate(ctx, v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unknown", func(b *testing.B) {
		for b.Loop() {
			e.svc.Authenticate(ctx, "mcu_unknown")
		}
	})
}
