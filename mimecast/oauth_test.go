package mimecast_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
)

// oauthServer mints tok-1, tok-2, ... and answers the API with accountOK
// when the bearer token is accepted by valid.
type oauthServer struct {
	t         testing.TB
	fetches   atomic.Int32
	calls     atomic.Int32
	tokenWait time.Duration
	tokenErr  func(w http.ResponseWriter) bool // answer the token endpoint differently
	valid     func(tok string) bool
	mu        sync.Mutex
	seen      []string // bearer tokens the API saw
}

func (s *oauthServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/oauth/token" {
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" ||
			form.Get("client_id") != testClientID || form.Get("client_secret") != testClientSecret || form.Get("grant_type") != "client_credentials" {
			s.t.Errorf("bad token request: %s %s", r.Method, r.Header.Get("Content-Type"))
		}
		n := s.fetches.Add(1)
		if s.tokenErr != nil && s.tokenErr(w) {
			return
		}
		time.Sleep(s.tokenWait)
		writeJSON(w, 200, fmt.Appendf(nil, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":1799,"scope":""}`, n))
		return
	}
	s.calls.Add(1)
	for _, h := range []string{"x-mc-app-id", "x-mc-date", "x-mc-req-id"} {
		if r.Header.Get(h) != "" {
			s.t.Errorf("API 2.0 request carries %s", h)
		}
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	s.seen = append(s.seen, tok)
	s.mu.Unlock()
	if !ok || (s.valid != nil && !s.valid(tok)) {
		writeJSON(w, 401, []byte(`{"meta":{"status":401},"data":[],"fail":[{"code":"unauthorized","message":"token invalid"}]}`))
		return
	}
	writeJSON(w, 200, accountOK)
}

func newOAuth(t *testing.T, s *oauthServer) (*mimecast.Client, *fakeClock) {
	t.Helper()
	s.t = t
	srv := newServer(t, s)
	return newClient(t, srv.URL, oauthOpts)
}

func TestOAuthTokenCachedAndRefreshedBeforeExpiry(t *testing.T) {
	s := &oauthServer{}
	c, clk := newOAuth(t, s)
	ctx := context.Background()
	for range 3 {
		if _, err := c.Account(ctx); err != nil {
			t.Fatalf("Account: %v", err)
		}
	}
	if n := s.fetches.Load(); n != 1 {
		t.Errorf("got %d token fetches for 3 calls, want 1", n)
	}
	clk.Advance(1799*time.Second - 61*time.Second) // 61 s before expiry: still good
	if _, err := c.Account(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.fetches.Load(); n != 1 {
		t.Errorf("got %d fetches 61s before expiry, want 1", n)
	}
	clk.Advance(2 * time.Second) // 59 s before expiry: refresh
	if _, err := c.Account(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.fetches.Load(); n != 2 {
		t.Errorf("got %d fetches 59s before expiry, want 2", n)
	}
	if last := s.seen[len(s.seen)-1]; last != "tok-2" {
		t.Errorf("last call used %q, want tok-2", last)
	}
}

func TestOAuth401ReMintsOnce(t *testing.T) {
	s := &oauthServer{valid: func(tok string) bool { return tok != "tok-1" }}
	c, _ := newOAuth(t, s)
	if _, err := c.Account(context.Background()); err != nil {
		t.Fatalf("got %v, want success after a re-mint", err)
	}
	if f, n := s.fetches.Load(), s.calls.Load(); f != 2 || n != 2 {
		t.Errorf("got %d fetches %d calls, want 2 and 2", f, n)
	}
}

func TestOAuth401TwiceFails(t *testing.T) {
	s := &oauthServer{valid: func(string) bool { return false }}
	c, clk := newOAuth(t, s)
	_, err := c.Account(context.Background())
	var ae *mimecast.APIError
	if !errors.As(err, &ae) || ae.Kind != mimecast.KindInvalidCredentials || plugin.ErrorCode(err) != plugin.EUPSTREAMAUTH {
		t.Fatalf("got %v, want invalid credentials", err)
	}
	if !strings.Contains(plugin.ErrorMessage(err), "client id and client secret") {
		t.Errorf("message %q", plugin.ErrorMessage(err))
	}
	if f, n := s.fetches.Load(), s.calls.Load(); f != 2 || n != 2 {
		t.Errorf("got %d fetches %d calls, want 2 and 2 (re-mint once, retry once)", f, n)
	}
	if len(clk.Sleeps()) != 0 {
		t.Errorf("slept %v", clk.Sleeps())
	}
}

func TestOAuthOneFetchAtATime(t *testing.T) {
	s := &oauthServer{tokenWait: 20 * time.Millisecond}
	c, _ := newOAuth(t, s)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Account(context.Background()); err != nil {
				t.Errorf("Account: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := s.fetches.Load(); n != 1 {
		t.Errorf("got %d token fetches for 20 concurrent calls, want 1", n)
	}
}

func TestOAuthTokenEndpointErrors(t *testing.T) {
	tests := []struct {
		name        string
		reply       func(w http.ResponseWriter) bool
		wantCode    string
		wantFetches int32
	}{
		{"invalid client 401", func(w http.ResponseWriter) bool {
			writeJSON(w, 401, []byte(`{"error":"invalid_client","error_description":"bad"}`))
			return true
		}, plugin.EUPSTREAMAUTH, 1},
		{"invalid client 400", func(w http.ResponseWriter) bool {
			writeJSON(w, 400, []byte(`{"error":"invalid_client"}`))
			return true
		}, plugin.EUPSTREAMAUTH, 1},
		{"500 retried", func(w http.ResponseWriter) bool { writeJSON(w, 500, []byte(`{}`)); return true }, plugin.EUNAVAILABLE, 5},
		{"broken JSON retried", func(w http.ResponseWriter) bool { writeJSON(w, 200, []byte(`{"access_tok`)); return true }, plugin.EUNAVAILABLE, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &oauthServer{tokenErr: tt.reply}
			c, _ := newOAuth(t, s)
			_, err := c.Account(context.Background())
			if plugin.ErrorCode(err) != tt.wantCode {
				t.Fatalf("got %v, want %s", err, tt.wantCode)
			}
			if f, n := s.fetches.Load(), s.calls.Load(); f != tt.wantFetches || n != 0 {
				t.Errorf("got %d fetches %d API calls, want %d and 0", f, n, tt.wantFetches)
			}
		})
	}
}

func TestOAuthTokenRecoversAfter500(t *testing.T) {
	var failed atomic.Bool
	s := &oauthServer{tokenErr: func(w http.ResponseWriter) bool {
		if failed.CompareAndSwap(false, true) {
			writeJSON(w, 503, []byte(`{}`))
			return true
		}
		return false
	}}
	c, clk := newOAuth(t, s)
	if _, err := c.Account(context.Background()); err != nil {
		t.Fatalf("Account: %v", err)
	}
	if len(clk.Sleeps()) != 1 || s.fetches.Load() != 2 {
		t.Errorf("sleeps %v fetches %d", clk.Sleeps(), s.fetches.Load())
	}
}

func TestOAuthTokenTimeoutRetried(t *testing.T) {
	var slow atomic.Bool
	s := &oauthServer{tokenErr: func(w http.ResponseWriter) bool {
		if slow.CompareAndSwap(false, true) {
			time.Sleep(300 * time.Millisecond)
		}
		return false
	}}
	s.t = t
	srv := newServer(t, s)
	c, _ := newClient(t, srv.URL, func(o *mimecast.Options) { oauthOpts(o); o.Timeout = 100 * time.Millisecond })
	if _, err := c.Account(context.Background()); err != nil {
		t.Fatalf("got %v, want success after a slow token fetch", err)
	}
	if n := s.fetches.Load(); n != 2 {
		t.Errorf("got %d fetches, want 2", n)
	}
}
