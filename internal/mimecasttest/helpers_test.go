package mimecasttest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 6, 9, 5, 3, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// localSign is a signer written from the spec (§1.3–1.4), independent of
// the emulator's own code.
func localSign(secretB64, appKey, date, reqID, path string) string {
	key, err := base64.StdEncoding.DecodeString(secretB64)
	if err != nil {
		panic(err)
	}
	m := hmac.New(sha1.New, key)
	m.Write([]byte(date + ":" + reqID + ":" + path + ":" + appKey))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

type testEnv struct {
	t      *testing.T
	s      *Server
	clk    *fakeClock
	client *http.Client
	seq    atomic.Int64
	sleeps atomic.Int64 // total injected sleep requested, in ns
}

// newEnv starts an emulator with a fake clock and a sleep that returns at
// once (recording the duration asked), unless opts.Sleep is set.
func newEnv(t *testing.T, opts Options) *testEnv {
	t.Helper()
	e := &testEnv{t: t, clk: newClock(), client: &http.Client{Timeout: 10 * time.Second}}
	if opts.Now == nil {
		opts.Now = e.clk.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = func(ctx context.Context, d time.Duration) error {
			e.sleeps.Add(int64(d))
			return ctx.Err()
		}
	}
	e.s = NewTestServer(t, opts)
	return e
}

type reqOpt func(*http.Request)

// withHeader overrides (or with v == "" removes) a header after signing.
func withHeader(k, v string) reqOpt {
	return func(r *http.Request) {
		if v == "" {
			r.Header.Del(k)
			return
		}
		r.Header.Set(k, v)
	}
}

func bearer(tok string) reqOpt {
	return func(r *http.Request) {
		for _, h := range []string{"x-mc-app-id", "x-mc-date", "x-mc-req-id"} {
			r.Header.Del(h)
		}
		r.Header.Set("Authorization", "Bearer "+tok)
	}
}

type signParams struct {
	appID, appKey, accessKey, secret, date, reqID string
}

func (e *testEnv) defaultSign() signParams {
	return signParams{
		appID: DefaultAppID, appKey: DefaultAppKey, accessKey: DefaultAccessKey, secret: DefaultSecretKey,
		date:  e.clk.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05") + " UTC",
		reqID: fmt.Sprintf("%08x-0000-4000-8000-%012x", e.seq.Add(1), time.Now().UnixNano()&0xffffffffffff),
	}
}

func (e *testEnv) request(method, path string, body any, sp signParams, opts ...reqOpt) *http.Request {
	e.t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			raw, err := json.Marshal(b)
			if err != nil {
				e.t.Fatal(err)
			}
			rd = bytes.NewReader(raw)
		}
	}
	req, err := http.NewRequest(method, e.s.URL()+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("x-mc-app-id", sp.appID)
	req.Header.Set("x-mc-date", sp.date)
	req.Header.Set("x-mc-req-id", sp.reqID)
	req.Header.Set("Authorization", "MC "+sp.accessKey+":"+localSign(sp.secret, sp.appKey, sp.date, sp.reqID, path))
	for _, o := range opts {
		o(req)
	}
	return req
}

type reply struct {
	status int
	header http.Header
	raw    []byte
	env    struct {
		Meta struct {
			Status     int `json:"status"`
			Pagination *struct {
				PageSize   int     `json:"pageSize"`
				TotalCount int     `json:"totalCount"`
				Next       *string `json:"next"`
			} `json:"pagination"`
		} `json:"meta"`
		Data []json.RawMessage `json:"data"`
		Fail []struct {
			Key    map[string]any `json:"key"`
			Errors []struct {
				Code      string `json:"code"`
				Message   string `json:"message"`
				Retryable bool   `json:"retryable"`
				Field     string `json:"field"`
			} `json:"errors"`
		} `json:"fail"`
	}
}

func (r *reply) failCodes() []string {
	var out []string
	for _, f := range r.env.Fail {
		for _, e := range f.Errors {
			out = append(out, e.Code)
		}
	}
	return out
}

func (e *testEnv) send(req *http.Request) *reply {
	e.t.Helper()
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("reading %s: %v", req.URL.Path, err)
	}
	r := &reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	if err := json.Unmarshal(raw, &r.env); err != nil && strings.HasPrefix(req.URL.Path, "/api/") {
		e.t.Fatalf("%s: body is not an envelope: %v\n%s", req.URL.Path, err, raw)
	}
	return r
}

// post makes a correctly signed API 1.0 call.
func (e *testEnv) post(path string, body any, opts ...reqOpt) *reply {
	e.t.Helper()
	return e.send(e.request(http.MethodPost, path, body, e.defaultSign(), opts...))
}

// mustOK posts and fails the test unless HTTP 200 with an empty fail[].
func (e *testEnv) mustOK(path string, body any, opts ...reqOpt) *reply {
	e.t.Helper()
	r := e.post(path, body, opts...)
	if r.status != http.StatusOK || len(r.env.Fail) != 0 {
		e.t.Fatalf("%s: got status %d fail %v, want 200 and no failures\n%s", path, r.status, r.failCodes(), r.raw)
	}
	return r
}

func (e *testEnv) token(id, secret string) (int, map[string]any) {
	e.t.Helper()
	form := url.Values{"client_id": {id}, "client_secret": {secret}, "grant_type": {"client_credentials"}}
	resp, err := e.client.Post(e.s.URL()+PathOAuthToken, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		e.t.Fatalf("token reply: %v", err)
	}
	return resp.StatusCode, m
}

func page(size int, token string) map[string]any {
	p := map[string]any{"pageSize": size}
	if token != "" {
		p["pageToken"] = token
	}
	return map[string]any{"pagination": p}
}

func body(size int, token string, items ...map[string]any) map[string]any {
	if items == nil {
		items = []map[string]any{}
	}
	return map[string]any{"meta": page(size, token), "data": items}
}

func decode[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}
