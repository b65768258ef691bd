package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mimecast-ure/api"
	"mimecast-ure/plugin"
)

// fakeHost is a Host for the HTTP layer alone: a fixed token table, and
// configuration operations answering whatever err says. Methods it does
// not override panic (the embedded nil interface), which the tests use to
// prove panics become the generic 500.
type fakeHost struct {
	api.Host
	mu        sync.Mutex
	failures  []map[string]string
	err       error // returned by GetConfiguration / SyncStatus
	panicMsg  string
	authCalls int
}

const fakeAdmin = "mcu_fake-admin-token-value-0123456789"

func (f *fakeHost) Authenticate(ctx context.Context, v string) (plugin.Token, error) {
	f.mu.Lock()
	f.authCalls++
	f.mu.Unlock()
	if v == fakeAdmin {
		return plugin.Token{ID: "tok_1", Name: "admin", Role: plugin.RoleAdmin}, nil
	}
	return plugin.Token{}, plugin.Errorf(plugin.EUNAUTHORIZED, "invalid credentials")
}

func (f *fakeHost) RecordAuthFailure(ctx context.Context, addr string, d map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d["addr"] = addr
	f.failures = append(f.failures, d)
	return nil
}

func (f *fakeHost) GetConfiguration(ctx context.Context, name string) (plugin.Configuration, error) {
	if f.panicMsg != "" {
		panic(f.panicMsg)
	}
	return plugin.Configuration{Name: name}, f.err
}

func (f *fakeHost) Actions() []plugin.ActionOption {
	return []plugin.ActionOption{{Label: "Add to Group", Value: "add"}, {Label: "Remove from Group", Value: "remove"}, {Label: "No Action", Value: "generate"}}
}

type layer struct {
	host *fakeHost
	srv  *api.Server
	logs *syncBuffer
	now  *clock
}

func newLayer(t *testing.T, opts api.Options) *layer {
	t.Helper()
	l := &layer{host: &fakeHost{}, logs: &syncBuffer{}, now: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	opts.Service = l.host
	opts.Logger = zerolog.New(l.logs)
	opts.Now = l.now.Now
	srv, err := api.New(opts)
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	l.srv = srv
	return l
}

func (l *layer) do(t *testing.T, method, path, auth string, body string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var req *http.Request
	if body != "" {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	l.srv.ServeHTTP(w, req)
	return w
}

func TestNewNeedsService(t *testing.T) {
	if _, err := api.New(api.Options{}); err == nil {
		t.Fatal("New without Service: got nil error")
	}
	if _, err := api.New(api.Options{Service: &fakeHost{}, TrustedProxies: []string{"not an address"}}); err == nil {
		t.Fatal("New with a bad trusted proxy: got nil error")
	}
}

func TestProbes(t *testing.T) {
	ready := false
	l := newLayer(t, api.Options{Ready: func() bool { return ready }})
	tests := []struct {
		path     string
		want     int
		contains string
	}{
		{"/healthz", 200, `"ok"`},
		{"/readyz", 503, `not ready`},
		{"/metrics", 200, "ure_auth_failures_total"},
		{"/openapi.json", 200, `"openapi"`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := l.do(t, "GET", tt.path, "", "", nil)
			if w.Code != tt.want || !strings.Contains(w.Body.String(), tt.contains) {
				t.Fatalf("got %d %.200s, want %d containing %q", w.Code, w.Body, tt.want, tt.contains)
			}
		})
	}
	ready = true
	if w := l.do(t, "GET", "/readyz", "", "", nil); w.Code != 200 {
		t.Fatalf("readyz when ready: got %d", w.Code)
	}
}

// TestOpenAPICoversEveryRoute checks that the document parses and names
// every registered route and method, and nothing else.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	l := newLayer(t, api.Options{})
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q, want 3.x", doc.OpenAPI)
	}
	var documented []string
	for p, ops := range doc.Paths {
		for m, raw := range ops {
			if m == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(m)+" "+p)
			var op struct {
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil || len(op.Responses) == 0 {
				t.Errorf("%s %s: no responses", m, p)
			}
		}
	}
	got := l.srv.RoutesForTest()
	sort.Strings(got)
	sort.Strings(documented)
	if strings.Join(got, "\n") != strings.Join(documented, "\n") {
		t.Errorf("routes and document differ:\nregistered:\n%s\n\ndocumented:\n%s", strings.Join(got, "\n"), strings.Join(documented, "\n"))
	}
}

// TestErrorTable checks the one mapping from plugin codes to statuses and
// that internal details never reach the caller.
func TestErrorTable(t *testing.T) {
	tests := []struct {
		err      error
		status   int
		code     string
		message  string
		field    string
		leakFree string
	}{
		{plugin.FieldError("mimecast.base_url", "must be a URL"), 400, "invalid", "mimecast.base_url: must be a URL", "mimecast.base_url", ""},
		{plugin.Errorf(plugin.ENOTFOUND, "no configuration acme"), 404, "not_found", "no configuration acme", "", ""},
		{plugin.Errorf(plugin.ECONFLICT, "exists"), 409, "conflict", "exists", "", ""},
		{plugin.Errorf(plugin.EUNAUTHORIZED, "bad"), 401, "unauthorized", "bad", "", ""},
		{plugin.Errorf(plugin.EFORBIDDEN, "no"), 403, "forbidden", "no", "", ""},
		{plugin.Errorf(plugin.ERATELIMITED, "slow"), 429, "rate_limited", "slow", "", ""},
		{plugin.Errorf(plugin.ETOOLARGE, "big"), 413, "too_large", "big", "", ""},
		{fmt.Errorf("sync acme: %w", plugin.Errorf(plugin.EUPSTREAMAUTH, "Mimecast refused the credentials")), 502, "upstream_auth", "Mimecast refused the credentials", "", ""},
		{plugin.Errorf(plugin.EUNAVAILABLE, "Mimecast timed out"), 503, "unavailable", "Mimecast timed out", "", ""},
		{plugin.Errorf(plugin.EINTERNAL, "bolt: page 42 corrupt"), 500, "internal", "internal error", "", "page 42"},
		{errors.New("open /data/ure.db: secret-detail"), 500, "internal", "internal error", "", "secret-detail"},
		{&plugin.Error{Code: "weird", Message: "x"}, 500, "internal", "internal error", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.code+"/"+tt.message, func(t *testing.T) {
			l := newLayer(t, api.Options{})
			l.host.err = tt.err
			if got := api.StatusOf(tt.err); got != tt.status && tt.code != "internal" {
				t.Errorf("StatusOf: got %d, want %d", got, tt.status)
			}
			w := l.do(t, "GET", "/api/v1/configurations/acme", "Bearer "+fakeAdmin, "", nil)
			if w.Code != tt.status {
				t.Fatalf("status: got %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
			code, msg, field := errorOf(t, w)
			if code != tt.code || msg != tt.message || field != tt.field {
				t.Errorf("got (%q, %q, %q), want (%q, %q, %q)", code, msg, field, tt.code, tt.message, tt.field)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.leakFree != "" {
				if strings.Contains(w.Body.String(), tt.leakFree) {
					t.Errorf("response shows internal details: %s", w.Body)
				}
				if !strings.Contains(l.logs.String(), tt.leakFree) {
					t.Errorf("internal details not logged")
				}
			}
		})
	}
}

func TestPanicBecomesGeneric500(t *testing.T) {
	l := newLayer(t, api.Options{})
	l.host.panicMsg = "boom: invariant broken"
	w := l.do(t, "GET", "/api/v1/configurations/acme", "Bearer "+fakeAdmin, "", nil)
	if w.Code != 500 {
		t.Fatalf("got %d, want 500", w.Code)
	}
	if got, want := w.Body.String(), `{"error":{"code":"internal","message":"internal error"}}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	if !strings.Contains(l.logs.String(), "invariant broken") {
		t.Errorf("panic not logged")
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	l := newLayer(t, api.Options{})
	if w := l.do(t, "GET", "/nope", "", "", nil); w.Code != 404 {
		t.Errorf("unknown route: got %d", w.Code)
	} else if code, _, _ := errorOf(t, w); code != "not_found" {
		t.Errorf("code %q", code)
	}
	if w := l.do(t, "PATCH", "/api/v1/configurations/acme", "Bearer "+fakeAdmin, "", nil); w.Code != 405 {
		t.Errorf("wrong method: got %d", w.Code)
	}
}

func TestRequestIDAndAccessLog(t *testing.T) {
	l := newLayer(t, api.Options{})
	w := l.do(t, "GET", "/healthz", "", "", map[string]string{"X-Request-ID": "abc-123"})
	if got := w.Header().Get("X-Request-ID"); got != "abc-123" {
		t.Errorf("request id echo: got %q", got)
	}
	w = l.do(t, "GET", "/healthz", "", "", map[string]string{"X-Request-ID": "bad id\nwith newline"})
	if got := w.Header().Get("X-Request-ID"); got == "" || strings.ContainsAny(got, " \n") {
		t.Errorf("unsafe request id kept: %q", got)
	}
	l.do(t, "GET", "/api/v1/configurations/acme", "Bearer "+fakeAdmin, "", nil)
	l.do(t, "GET", "/api/v1/configurations/acme", "Bearer mcu_guess-token-value", "", nil)
	l.host.err = errors.New("disk gone")
	l.do(t, "GET", "/api/v1/configurations/acme", "Bearer "+fakeAdmin, "", nil)

	levels := map[int]string{}
	for _, line := range strings.Split(strings.TrimSpace(l.logs.String()), "\n") {
		var e struct {
			Level, Message, Path, RequestID string
			Status                          int
			ClientIP                        string `json:"client_ip"`
			RID                             string `json:"request_id"`
			Latency                         *float64
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if e.Message != "request" {
			continue
		}
		if e.RID == "" || e.ClientIP == "" || e.Latency == nil || e.Path == "" {
			t.Errorf("access line lacks fields: %s", line)
		}
		levels[e.Status] = e.Level
	}
	want := map[int]string{200: "info", 401: "warn", 500: "error"}
	for st, lv := range want {
		if levels[st] != lv {
			t.Errorf("status %d logged at %q, want %q", st, levels[st], lv)
		}
	}
	for _, secret := range []string{fakeAdmin, "mcu_guess-token-value", "Bearer"} {
		if strings.Contains(l.logs.String(), secret) {
			t.Errorf("log contains %q", secret[:6])
		}
	}
}

func TestTokenInPathIsMasked(t *testing.T) {
	l := newLayer(t, api.Options{})
	l.do(t, "DELETE", "/api/v1/tokens/"+fakeAdmin, "", "", nil)
	if strings.Contains(l.logs.String(), fakeAdmin) {
		t.Fatal("a token value in the path reached the log")
	}
}

func TestTrustedProxies(t *testing.T) {
	for _, tt := range []struct {
		name    string
		proxies []string
		want    string
	}{
		{"none: remote address", nil, "192.0.2.1"},
		{"trusted: forwarded", []string{"192.0.2.0/24"}, "203.0.113.9"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLayer(t, api.Options{TrustedProxies: tt.proxies})
			l.do(t, "GET", "/api/v1/manifest", "Bearer nope", "", map[string]string{"X-Forwarded-For": "203.0.113.9"})
			if len(l.host.failures) != 1 || l.host.failures[0]["addr"] != tt.want {
				t.Fatalf("audited failures %v, want one from %s", l.host.failures, tt.want)
			}
		})
	}
}

// TestManifestFile checks the repository's manifest.json parses.
func TestManifestFile(t *testing.T) {
	b, err := os.ReadFile("../manifest.json")
	if err != nil {
		t.Fatalf("read manifest: %v", err)
	}
	m, err := plugin.ParseManifest(b)
	if err != nil {
		t.Fatalf("ParseManifest: %v", err)
	}
	if m.ID != "mimecast_ure" || m.Module != "URE" {
		t.Errorf("id %q module %q", m.ID, m.Module)
	}
	keys := map[string]string{}
	for _, f := range m.Configuration {
		keys[f.Key] = f.Type
	}
	for k, typ := range map[string]string{"base_url": "text", "auth": "choice", "app_id": "text", "app_key": "password", "access_key": "password", "secret_key": "password", "client_id": "text", "client_secret": "password", "sync_interval": "text"} {
		if keys[k] != typ {
			t.Errorf("manifest field %s: type %q, want %q", k, keys[k], typ)
		}
	}
	l := newLayer(t, api.Options{Manifest: b})
	w := l.do(t, "GET", "/api/v1/manifest", "Bearer "+fakeAdmin, "", nil)
	if w.Code != 200 || w.Body.String() != string(b) {
		t.Errorf("GET manifest: %d", w.Code)
	}
}

// TestThrottleIPv6Prefix: rotating addresses inside one IPv6 /64 does not
// escape the throttle, while a different /64 is unaffected.
func TestThrottleIPv6Prefix(t *testing.T) {
	l := newLayer(t, api.Options{AuthFailureLimit: 3})
	send := func(addr, auth string) int {
		req := httptest.NewRequest("GET", "/api/v1/manifest", nil)
		req.RemoteAddr = "[" + addr + "]:443"
		req.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		l.srv.ServeHTTP(w, req)
		return w.Code
	}
	for i := 1; i <= 3; i++ {
		if got := send(fmt.Sprintf("2001:db8:1:2::%x", i), "Bearer wrong"); got != 401 {
			t.Fatalf("failure %d: got %d", i, got)
		}
	}
	if got := send("2001:db8:1:2::ffff", "Bearer wrong"); got != 429 {
		t.Errorf("same /64, a bad token: got %d, want 429", got)
	}
	if got := send("2001:db8:1:2::ffff", "Bearer "+fakeAdmin); got == 429 || got == 401 {
		t.Errorf("same /64, a valid token: got %d, want it served", got)
	}
	if got := send("2001:db8:1:3::1", "Bearer "+fakeAdmin); got != 404 && got != 200 {
		t.Errorf("other /64: got %d", got)
	}
	if l.host.failures[0]["addr"] != "2001:db8:1:2::1" {
		t.Errorf("audit actor %q, want the full address", l.host.failures[0]["addr"])
	}
}

// TestMetricsSeries checks every series the service and the Mimecast
// client feed, through the exposition.
func TestMetricsSeries(t *testing.T) {
	m := api.NewMetrics()
	var _ plugin.Metrics = m
	var _ interface {
		Call(endpoint string, status int, d time.Duration)
		RateLimitWait(endpoint string, d time.Duration)
	} = m
	m.SyncFinished("acme", true, 2*time.Second)
	m.SyncFinished("acme", false, time.Second)
	m.ActionOutcomes("add", plugin.Done, 3)
	m.EventsStored("acme", plugin.LogURL, 5)
	m.Call("/api/account/get-account", 200, 30*time.Millisecond)
	m.RateLimitWait("/api/account/get-account", 1500*time.Millisecond)
	l := newLayer(t, api.Options{Metrics: m})
	l.do(t, "GET", "/healthz", "", "", nil)
	body := l.do(t, "GET", "/metrics", "", "", nil).Body.String()
	for _, want := range []string{
		`ure_syncs_total{configuration="acme",outcome="ok"} 1`,
		`ure_syncs_total{configuration="acme",outcome="failed"} 1`,
		`ure_sync_duration_seconds_count{configuration="acme"} 2`,
		`ure_action_results_total{action="add",outcome="done"} 3`,
		`ure_events_stored_total{configuration="acme",log="url"} 5`,
		`ure_mimecast_requests_total{endpoint="/api/account/get-account",status="200"} 1`,
		`ure_mimecast_rate_limit_waits_total{endpoint="/api/account/get-account"} 1`,
		`ure_mimecast_rate_limit_wait_seconds_total{endpoint="/api/account/get-account"} 1.5`,
		`ure_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
