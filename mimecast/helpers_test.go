package mimecast_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mimecast-ure/mimecast"
)

// Test credentials (API 1.0 example B of spec §1.7 plus 2.0 values). They
// are the "secrets" the leak tests look for.
const (
	testAppID        = "test-app-id"
	testAppKey       = "7ce8ebb6-dae1-45b2-8b6c-ddd384341eb2"
	testAccessKey    = "EXAMPLE-ACCESS-KEY-123"
	testSecretKey    = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	testClientID     = "client-id-1"
	testClientSecret = "client-secret-XYZ-987"
)

var testSecrets = []string{testAppKey, testAccessKey, testSecretKey, testClientSecret}

// fakeClock is an injected clock whose Sleep advances time at once and
// records every wait.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 6, 9, 5, 3, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.sleeps = append(f.sleeps, d)
	return nil
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// noJitter makes waits exact.
func noJitter(time.Duration) time.Duration { return 0 }

// newServer starts an httptest server closed at the end of the test.
func newServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// newClient returns a legacy client on srv with a fake clock and no jitter;
// mutate adjusts the options first.
func newClient(t testing.TB, srvURL string, mutate func(*mimecast.Options)) (*mimecast.Client, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	o := mimecast.Options{
		BaseURL: srvURL, Auth: "legacy",
		AppID: testAppID, AppKey: testAppKey, AccessKey: testAccessKey, SecretKey: testSecretKey,
		Now: clk.Now, Sleep: clk.Sleep, Jitter: noJitter,
	}
	if mutate != nil {
		mutate(&o)
	}
	c, err := mimecast.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, clk
}

// oauthOpts switches options to API 2.0.
func oauthOpts(o *mimecast.Options) {
	o.Auth = "oauth2"
	o.AppID, o.AppKey, o.AccessKey, o.SecretKey = "", "", "", ""
	o.ClientID, o.ClientSecret = testClientID, testClientSecret
}

// mustSample reads a fixture from testdata.
func mustSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read sample: %v", err)
	}
	return b
}

// sentRequest is what a handler saw.
type sentRequest struct {
	Path    string
	Header  http.Header
	Body    map[string]any
	At      time.Time // the fake clock's time at arrival
	SigOK   bool
	RawBody string
}

// recorder is a handler that verifies the legacy signature of every
// request, records it, and answers with reply(n, req) where n counts from 0.
type recorder struct {
	mu    sync.Mutex
	reqs  []sentRequest
	clock *fakeClock
	reply func(n int, w http.ResponseWriter, r *sentRequest)
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	sr := sentRequest{Path: r.URL.Path, Header: r.Header.Clone(), RawBody: string(raw)}
	_ = json.Unmarshal(raw, &sr.Body)
	if rc.clock != nil {
		sr.At = rc.clock.Now()
	}
	sr.SigOK = verifyLegacy(r)
	rc.mu.Lock()
	n := len(rc.reqs)
	rc.reqs = append(rc.reqs, sr)
	rc.mu.Unlock()
	rc.reply(n, w, &sr)
}

func (rc *recorder) Requests() []sentRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]sentRequest(nil), rc.reqs...)
}

// verifyLegacy checks an API 1.0 request exactly as spec §1 says.
func verifyLegacy(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	access, sig, ok := strings.Cut(strings.TrimPrefix(auth, "MC "), ":")
	if !ok || !strings.HasPrefix(auth, "MC ") || access != testAccessKey || r.Header.Get("x-mc-app-id") != testAppID {
		return false
	}
	date, id := r.Header.Get("x-mc-date"), r.Header.Get("x-mc-req-id")
	if _, err := time.Parse(mimecast.DateLayout, date); err != nil || !strings.HasSuffix(date, " UTC") || id == "" {
		return false
	}
	want, err := mimecast.Sign(testSecretKey, testAppKey, date, id, r.URL.Path)
	return err == nil && want == sig
}

// writeJSON answers with status, headers and body.
func writeJSON(w http.ResponseWriter, status int, body []byte, headers ...string) {
	for i := 0; i+1 < len(headers); i += 2 {
		w.Header().Set(headers[i], headers[i+1])
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// pageToken returns the request's meta.pagination.pageToken.
func pageToken(r *sentRequest) string {
	m, _ := r.Body["meta"].(map[string]any)
	p, _ := m["pagination"].(map[string]any)
	s, _ := p["pageToken"].(string)
	return s
}

// pageSizeOf returns the request's meta.pagination.pageSize.
func pageSizeOf(r *sentRequest) int {
	m, _ := r.Body["meta"].(map[string]any)
	p, _ := m["pagination"].(map[string]any)
	f, _ := p["pageSize"].(float64)
	return int(f)
}

// dataItems returns the request's data array.
func dataItems(r *sentRequest) []map[string]any {
	d, _ := r.Body["data"].([]any)
	out := make([]map[string]any, 0, len(d))
	for _, x := range d {
		m, _ := x.(map[string]any)
		out = append(out, m)
	}
	return out
}
