package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mimecast-ure/actions"
	"mimecast-ure/api"
	"mimecast-ure/detect"
	"mimecast-ure/internal/mimecasttest"
	"mimecast-ure/mimecast"
	"mimecast-ure/okta"
	"mimecast-ure/plugin"
	"mimecast-ure/store"
)

// Secrets of the emulated tenant: distinct from the emulator's defaults
// so the leak checks look for values only this test knows.
const (
	testAppID     = "0e1d2c3b-4a59-4867-9a8b-7c6d5e4f3a2b"
	testAppKey    = "appkey-7f3e9b21-leakcheck-0001"
	testAccessKey = "accesskey-c0ffee-leakcheck-0002"
	testSecretKey = "bGVha2NoZWNrIHNlY3JldCBrZXkgZm9yIHRoZSBhcGkgdGVzdHM=" // base64
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one API server over the real service, store and Mimecast client,
// pointed at the emulator.
type env struct {
	t       testing.TB
	srv     *api.Server
	svc     *plugin.Service
	store   *store.Store
	mc      *mimecasttest.Server
	mcURL   string
	metrics *api.Metrics
	logs    *syncBuffer
	clock   *clock
	ready   bool

	// token values by identity
	tokens map[string]string
	// revokedID is the id of the revoked token.
	revokedID string
}

// envOptions tunes newEnv.
type envOptions struct {
	maxBody        int64
	authLimit      int
	trustedProxies []string
}

func newEnv(t testing.TB, eo envOptions) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, logs: &syncBuffer{}, clock: &clock{t: time.Now().UTC().Truncate(time.Second)}, ready: true, tokens: map[string]string{}}
	logger := zerolog.New(e.logs).Level(zerolog.DebugLevel)

	e.mc = mimecasttest.New(mimecasttest.Options{
		Users: 20, Seed: 7, Domain: "acme.com",
		AppID: testAppID, AppKey: testAppKey, AccessKey: testAccessKey, SecretKey: testSecretKey,
	})
	hs := httptest.NewServer(e.mc)
	t.Cleanup(hs.Close)
	e.mcURL = hs.URL

	key := bytes.Repeat([]byte{7}, store.KeySize)
	st, err := store.Open(filepath.Join(t.TempDir(), "ure.db"), store.Options{MasterKey: key, Logger: logger})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e.store = st

	e.metrics = api.NewMetrics()
	noSleep := func(ctx context.Context, d time.Duration) error { return ctx.Err() }
	e.svc = plugin.NewService(plugin.ServiceOptions{
		Store:    st,
		Mimecast: mimecast.Factory(mimecast.Options{Sleep: noSleep, MaxAttempts: 2, Observer: e.metrics}),
		Actions:  actions.New(actions.Options{Logger: logger}),
		Detector: detect.New,
		Okta:     okta.Factory(okta.Options{}),
		Metrics:  e.metrics,
		Logger:   logger,
		Now:      e.clock.Now,
	})
	t.Cleanup(func() { e.svc.Close() })

	e.srv, err = api.New(api.Options{
		Service:          e.svc,
		Logger:           logger,
		Metrics:          e.metrics,
		Manifest:         []byte(`{"id":"mimecast_ure"}`),
		Ready:            func() bool { return e.ready },
		MaxBodyBytes:     eo.maxBody,
		Now:              e.clock.Now,
		AuthFailureLimit: eo.authLimit,
		TrustedProxies:   eo.trustedProxies,
	})
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}

	mk := func(id, name string, role plugin.Role, cfgs []string, expires time.Duration) string {
		t.Helper()
		tok, v, err := e.svc.CreateToken(ctx, "test", plugin.TokenRequest{Name: name, Owner: "tests", Role: role, Configurations: cfgs, ExpiresIn: plugin.Duration(expires)})
		if err != nil {
			t.Fatalf("CreateToken %s: %v", name, err)
		}
		e.tokens[id] = v
		if id == "revoked" {
			e.revokedID = tok.ID
		}
		return v
	}
	mk("admin", "admin", plugin.RoleAdmin, nil, 0)
	mk("operator", "operator", plugin.RoleOperator, nil, 0)
	mk("viewer", "viewer", plugin.RoleViewer, nil, 0)
	mk("restricted", "restricted-admin", plugin.RoleAdmin, []string{"other"}, 0)
	mk("expired", "expired", plugin.RoleAdmin, nil, time.Hour)
	mk("revoked", "revoked", plugin.RoleAdmin, nil, 0)
	if err := e.svc.RevokeToken(ctx, "test", e.revokedID); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	e.clock.Add(2 * time.Hour) // the "expired" token is now past its end
	return e
}

// config is a valid legacy configuration pointing at the emulator.
func (e *env) config(name string) map[string]any {
	return map[string]any{
		"name": name, "sync_interval": "15m",
		"mimecast": map[string]any{
			"base_url": e.mcURL, "auth": "legacy", "app_id": testAppID,
			"app_key": testAppKey, "access_key": testAccessKey, "secret_key": testSecretKey,
		},
		"score":  map[string]any{"mapping": map[string]int{"A": 800, "B": 600, "C": 400, "D": 200, "F": 1}},
		"events": map[string]any{"enabled": true, "scoring": true},
	}
}

// mustCreate creates a configuration through the API as admin.
func (e *env) mustCreate(name string) {
	e.t.Helper()
	r := e.do("admin", http.MethodPost, "/api/v1/configurations", e.config(name), nil)
	if r.Code != http.StatusCreated {
		e.t.Fatalf("create configuration %s: got %d %s", name, r.Code, r.Body)
	}
}

// do sends one request as identity ("" for no Authorization header, or
// "raw:<header>" for a literal header value). body may be nil, a string
// (sent as is), []byte or any value (JSON-encoded).
func (e *env) do(identity, method, path string, body any, header http.Header) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.doT(e.t, identity, method, path, body, header)
}

// doT is do reporting to t (fuzz functions must not use the *testing.F).
func (e *env) doT(t testing.TB, identity, method, path string, body any, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	switch {
	case identity == "":
	case strings.HasPrefix(identity, "raw:"):
		req.Header.Set("Authorization", strings.TrimPrefix(identity, "raw:"))
	default:
		v, ok := e.tokens[identity]
		if !ok {
			t.Fatalf("unknown identity %q", identity)
		}
		req.Header.Set("Authorization", "Bearer "+v)
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	return w
}

// errorOf decodes the one error shape.
func errorOf(t testing.TB, w *httptest.ResponseRecorder) (code, message, field string) {
	t.Helper()
	var b struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error.Code == "" {
		t.Fatalf("not the error shape (status %d): %q", w.Code, w.Body.String())
	}
	return b.Error.Code, b.Error.Message, b.Error.Field
}

// secrets lists every secret value the env knows: tenant keys and token values.
func (e *env) secrets() []string {
	out := []string{testAppKey, testAccessKey, testSecretKey}
	for _, v := range e.tokens {
		out = append(out, v)
	}
	return out
}

// assertNoSecrets fails if any secret appears in s.
func (e *env) assertNoSecrets(where, s string) {
	e.t.Helper()
	for _, sec := range e.secrets() {
		if strings.Contains(s, sec) {
			e.t.Errorf("%s contains a secret (%d chars starting %q)", where, len(sec), sec[:4])
		}
	}
}
