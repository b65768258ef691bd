package mimecast_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
)

// fuzzReply is what the fuzz server answers: the input under test for the
// first calls of an iteration, then an empty last page so that a fuzzed
// "next" token cannot make one iteration follow pages for long.
type fuzzReply struct {
	mu     sync.Mutex
	status int
	reset  string
	body   []byte
	oauth  bool // the token endpoint gets the fuzzed reply
	calls  int
}

func (f *fuzzReply) set(status int, reset string, body []byte, oauth bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.reset, f.body, f.oauth, f.calls = status, reset, body, oauth, 0
}

func (f *fuzzReply) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	status, reset, body, oauth := f.status, f.reset, f.body, f.oauth
	f.calls++
	n := f.calls
	f.mu.Unlock()
	if r.URL.Path == "/oauth/token" && !oauth {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"fuzz-token-abc","token_type":"Bearer","expires_in":1799}`))
		return
	}
	if n > 2 || (oauth && r.URL.Path != "/oauth/token") {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"meta":{"status":200},"data":[],"fail":[]}`))
		return
	}
	if reset != "" {
		w.Header().Set("X-RateLimit-Reset", reset)
		w.Header().Set("Retry-After", reset)
		w.Header().Set("X-RateLimit-Remaining", "0")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// errStopFuzz ends a page walk after a few pages.
var errStopFuzz = errors.New("fuzz: enough pages")

var knownCodes = map[string]bool{
	plugin.EINVALID: true, plugin.ENOTFOUND: true, plugin.ECONFLICT: true, plugin.EUNAUTHORIZED: true,
	plugin.EFORBIDDEN: true, plugin.ERATELIMITED: true, plugin.ETOOLARGE: true, plugin.EUNAVAILABLE: true,
	plugin.EUPSTREAMAUTH: true, plugin.EINTERNAL: true,
}

// FuzzEnvelope sends arbitrary bytes, with an arbitrary status and
// rate-limit header, as the reply to every kind of call the client makes
// (and, for API 2.0, as the token endpoint's reply), through the client's
// real decoding path. It checks: no panic; an error is a *plugin.Error with
// a known code; no error or per-item reason ever quotes a secret.
func FuzzEnvelope(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for i, p := range seeds {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		status := uint16(0) // 200
		switch {
		case strings.Contains(p, "error-401"):
			status = 201 // 401
		case strings.Contains(p, "error-418"):
			status = 218
		}
		f.Add(status, uint8(i), "", raw)
	}
	leaky := `{"meta":{"status":401},"data":[],"fail":[{"errors":[{"code":"` + testAccessKey + `","message":"key ` + testSecretKey + ` app ` + testAppKey + `","field":"` + testClientSecret + `"}]}]}`
	for _, s := range []struct {
		status uint16
		op     uint8
		reset  string
		body   string
	}{
		{229, 0, "1500", `{"meta":{"status":429},"fail":[{"errors":[{"code":"err_rate","message":"slow"}]}]}`},
		{229, 1, "99999999999", ``},
		{300, 2, "", `<html>bad gateway</html>`},
		{0, 3, "", `{"meta":{"status":200},"data":[{"key":{"emailAddress":"a@b.c"}}],"fail":[{"key":{"emailAddress":"x@y.z"},"errors":[{"code":"err_folder_group_member_already_exists","message":"` + testSecretKey + `"}]}]}`},
		{0, 4, "", `{"meta":{"status":200,"pagination":{"next":"n"}},"data":[{"clickLogs":[{"url":1}]},{"clickLogs":null}]}`},
		{0, 9, "", `{"access_token":"","expires_in":-5}`},
		{201, 9, "", `{"error":"invalid_client","error_description":"` + testClientSecret + `"}`},
		{201, 10, "", `{"error":{"code":"err_xdk_invalid_token","message":"expired"}}`},
		{0, 0, "", leaky}, {201, 6, "", leaky}, {0, 8, "", `{"data":[{}]}`}, {0, 7, "", `{"data":[{"groupMembers":[{"emailAddress":null}]}]}`},
		{0, 1, "", `{"meta":{"status":200},"data":[{"email":"a@b.c","risk":"Z"},null,7]}`}, {0, 0, "", `{"data":[]}`}, {0, 5, "", `{`},
	} {
		f.Add(s.status, s.op, s.reset, []byte(s.body))
	}

	reply := &fuzzReply{}
	srv := httptest.NewServer(reply)
	f.Cleanup(srv.Close)
	hc := srv.Client()

	f.Fuzz(func(t *testing.T, status uint16, op uint8, reset string, body []byte) {
		code := 200 + int(status)%400
		const ops = 12
		which := int(op) % ops
		tokenFuzzed := which == 9
		reply.set(code, reset, body, tokenFuzzed)
		// A fake clock: a rate-limit wait advances it instead of spinning.
		clock := newFakeClock()

		auth := plugin.AuthLegacy
		if which >= 9 || op >= 128 {
			auth = plugin.AuthOAuth2
		}
		c, err := mimecast.New(mimecast.Options{
			BaseURL: srv.URL, Auth: auth,
			AppID: testAppID, AppKey: testAppKey, AccessKey: testAccessKey, SecretKey: testSecretKey,
			ClientID: testClientID, ClientSecret: testClientSecret,
			MaxAttempts: 1, Now: clock.Now, Sleep: clock.Sleep, Jitter: noJitter, HTTPClient: hc,
			Timeout: 5 * time.Second, BatchSize: 2,
		})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		ctx := context.Background()
		var results []plugin.MemberResult
		pages := 0
		stopAfter := func() error {
			pages++
			if pages >= 3 {
				return errStopFuzz
			}
			return nil
		}
		emails := []string{"a@example.com", "b@example.com", "c@example.com"}
		switch which {
		case 0, 9, 10:
			_, err = c.Account(ctx)
		case 1:
			err = c.EachGradePage(ctx, 0, func([]plugin.UserGrade) error { return stopAfter() })
		case 2:
			results, err = c.AddMembers(ctx, "group-1", emails)
		case 3:
			results, err = c.RemoveMembers(ctx, "group-1", emails)
		case 4, 5:
			kind := plugin.LogKinds[(int(op)/ops)%len(plugin.LogKinds)]
			err = c.EachLogPage(ctx, kind, plugin.LogQuery{From: time.Unix(0, 0), Route: "inbound", OldestFirst: true},
				func(plugin.LogPage) error { return stopAfter() })
		case 6:
			_, err = c.FindGroups(ctx, "Risky")
		case 7:
			_, err = c.GroupMembers(ctx, "group-1")
		case 8:
			_, err = c.CreateGroup(ctx, "Risky users")
		case 11:
			err = c.EachGradePage(ctx, 500, func([]plugin.UserGrade) error { return nil })
		}
		for _, r := range results {
			for _, s := range testSecrets {
				if strings.Contains(r.Reason, s) || strings.Contains(r.Code, s) {
					t.Fatalf("result %+v quotes a secret", r)
				}
			}
		}
		if err == nil || errors.Is(err, errStopFuzz) {
			return
		}
		var pe *plugin.Error
		if !errors.As(err, &pe) {
			t.Fatalf("error %T %v is not a *plugin.Error", err, err)
		}
		if !knownCodes[pe.Code] {
			t.Fatalf("error code %q is not a plugin code (%v)", pe.Code, err)
		}
		for _, s := range append(testSecrets, "fuzz-token-abc") {
			if strings.Contains(err.Error(), s) || strings.Contains(pe.Error(), s) {
				t.Fatalf("error quotes a secret: %v", err)
			}
		}
	})
}
