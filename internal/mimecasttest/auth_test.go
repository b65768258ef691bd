package mimecasttest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSignVectors(t *testing.T) {
	// Spec §1.7.
	tests := []struct {
		name, secret, appKey, accessKey, date, reqID, path, want string
	}{
		{"A", "U2VjcmV0S2V5", "ApplicationKey", "AccessKey", "Sun, 21 Aug 2022 13:49:40 UTC", "3d796b76-4180-40e5-8f7c-6e0fd643b1a9", "/api/test/some-url", "MC AccessKey:WOywLsnZlsE+D6bp/ug6uch5kxc="},
		{"B account", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "7ce8ebb6-dae1-45b2-8b6c-ddd384341eb2", "EXAMPLE-ACCESS-KEY-123", "Tue, 24 Nov 2015 12:50:11 UTC", "8578fcfc-a305-4d9a-99cb-f4d5ecefe297", "/api/account/get-account", "MC EXAMPLE-ACCESS-KEY-123:U7X3DNVzJwiKw9F8wS182rWXyr0="},
		{"B groups", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "7ce8ebb6-dae1-45b2-8b6c-ddd384341eb2", "EXAMPLE-ACCESS-KEY-123", "Tue, 24 Nov 2015 12:50:11 UTC", "8578fcfc-a305-4d9a-99cb-f4d5ecefe297", "/api/directory/find-groups", "MC EXAMPLE-ACCESS-KEY-123:0V8ha8g2uMNXNqTydRhONqLbIB0="},
		{"B safe score", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "7ce8ebb6-dae1-45b2-8b6c-ddd384341eb2", "EXAMPLE-ACCESS-KEY-123", "Tue, 24 Nov 2015 12:50:11 UTC", "8578fcfc-a305-4d9a-99cb-f4d5ecefe297", "/api/awareness-training/company/get-safe-score-details", "MC EXAMPLE-ACCESS-KEY-123:6FYc+dfcd/9FUkdU/FozEInFFfM="},
		{"C", "bXktbWltZWNhc3Qtc2VjcmV0", "test-app-key", "k", "Mon, 06 Jan 2025 09:05:03 UTC", "00000000-0000-4000-8000-000000000001", "/api/ttp/url/get-logs", "MC k:mQzDM9OAKWOZ002ftHJvx6zLg2A="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Sign(tc.accessKey, tc.secret, tc.appKey, tc.date, tc.reqID, tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Sign = %q, want %q", got, tc.want)
			}
			if local := "MC " + tc.accessKey + ":" + localSign(tc.secret, tc.appKey, tc.date, tc.reqID, tc.path); local != tc.want {
				t.Errorf("local signer = %q, want %q", local, tc.want)
			}
		})
	}
}

func TestAuthRefusals(t *testing.T) {
	e := newEnv(t, Options{Users: 5})
	now := e.clk.Now().UTC()
	tests := []struct {
		name       string
		mod        func(*signParams)
		opts       []reqOpt
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{name: "valid", wantStatus: 200},
		{name: "wrong signature (secret)", mod: func(p *signParams) { p.secret = "U2VjcmV0S2V5" }, wantStatus: 401, wantCode: "err_xdk_invalid_signature", wantMsg: "0004 Invalid Signature"},
		{name: "wrong signature (app key)", mod: func(p *signParams) { p.appKey = "other" }, wantStatus: 401, wantCode: "err_xdk_invalid_signature", wantMsg: "0004 Invalid Signature"},
		{name: "signed other path", opts: []reqOpt{withHeader("Authorization", "MC "+DefaultAccessKey+":"+localSign(DefaultSecretKey, DefaultAppKey, now.Format(DateLayout), "x", "/api/other"))}, wantStatus: 401, wantCode: "err_xdk_invalid_signature"},
		{name: "malformed authorization", opts: []reqOpt{withHeader("Authorization", "MC nocolon")}, wantStatus: 401, wantCode: "err_xdk_invalid_signature"},
		{name: "unknown auth scheme", opts: []reqOpt{withHeader("Authorization", "Basic Zm9vOmJhcg==")}, wantStatus: 401, wantMsg: "0001"},
		{name: "unknown app id", mod: func(p *signParams) { p.appID = "nope" }, wantStatus: 401, wantCode: "err_developer_key"},
		{name: "unknown access key", mod: func(p *signParams) { p.accessKey = "nope" }, wantStatus: 401, wantCode: "err_xdk_invalid_access_key"},
		{name: "date in RFC 3339", mod: func(p *signParams) { p.date = now.Format(time.RFC3339) }, wantStatus: 401, wantCode: "err_xdk_invalid_date"},
		{name: "date with GMT", mod: func(p *signParams) { p.date = now.Format(http.TimeFormat) }, wantStatus: 401, wantCode: "err_xdk_invalid_date"},
		{name: "date with +0000", mod: func(p *signParams) { p.date = now.Format("Mon, 02 Jan 2006 15:04:05 -0700") }, wantStatus: 401, wantCode: "err_xdk_invalid_date"},
		{name: "date wrong weekday", mod: func(p *signParams) { p.date = "Tue, 06 Jan 2025 09:05:03 UTC" }, wantStatus: 401, wantCode: "err_xdk_invalid_date"},
		{name: "date 16m old", mod: func(p *signParams) { p.date = now.Add(-16 * time.Minute).Format(DateLayout) }, wantStatus: 401, wantMsg: "Date Header Too Skewed"},
		{name: "date 16m ahead", mod: func(p *signParams) { p.date = now.Add(16 * time.Minute).Format(DateLayout) }, wantStatus: 401, wantMsg: "Date Header Too Skewed"},
		{name: "date 14m old is fine", mod: func(p *signParams) { p.date = now.Add(-14 * time.Minute).Format(DateLayout) }, wantStatus: 200},
		{name: "missing authorization", opts: []reqOpt{withHeader("Authorization", "")}, wantStatus: 400, wantMsg: "0001"},
		{name: "missing app id", opts: []reqOpt{withHeader("x-mc-app-id", "")}, wantStatus: 400, wantMsg: "0001"},
		{name: "missing date", opts: []reqOpt{withHeader("x-mc-date", "")}, wantStatus: 400, wantMsg: "0001"},
		{name: "missing request id", opts: []reqOpt{withHeader("x-mc-req-id", "")}, wantStatus: 400, wantMsg: "0001"},
		{name: "unknown bearer", opts: []reqOpt{bearer("not-a-token")}, wantStatus: 401, wantCode: "err_xdk_invalid_token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := e.defaultSign()
			if tc.mod != nil {
				tc.mod(&sp)
			}
			r := e.send(e.request(http.MethodPost, PathGetAccount, nil, sp, tc.opts...))
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d\n%s", r.status, tc.wantStatus, r.raw)
			}
			if tc.wantStatus == 200 {
				return
			}
			if r.env.Meta.Status != tc.wantStatus {
				t.Errorf("meta.status = %d, want %d", r.env.Meta.Status, tc.wantStatus)
			}
			if len(r.env.Fail) != 1 || len(r.env.Fail[0].Errors) != 1 {
				t.Fatalf("fail = %s, want one error", r.raw)
			}
			got := r.env.Fail[0].Errors[0]
			if tc.wantCode != "" && got.Code != tc.wantCode {
				t.Errorf("code = %q, want %q", got.Code, tc.wantCode)
			}
			if !strings.Contains(got.Message, tc.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", got.Message, tc.wantMsg)
			}
			if got.Retryable {
				t.Errorf("retryable = true, want false")
			}
			for _, secret := range []string{DefaultSecretKey, DefaultAppKey} {
				if strings.Contains(string(r.raw), secret) {
					t.Errorf("reply leaks a secret: %s", r.raw)
				}
			}
		})
	}
}

func TestReplayedRequestID(t *testing.T) {
	e := newEnv(t, Options{Users: 5})
	sp := e.defaultSign()
	sp.reqID = "8578FCFC-A305-4D9A-99CB-F4D5ECEFE297"
	if r := e.send(e.request(http.MethodPost, PathGetAccount, nil, sp)); r.status != 200 {
		t.Fatalf("first call: status %d, want 200", r.status)
	}
	t.Run("same id again", func(t *testing.T) {
		r := e.send(e.request(http.MethodPost, PathGetAccount, nil, sp))
		if r.status != 401 || r.failCodes()[0] != "err_xdk_request_id_reused" {
			t.Fatalf("replay: status %d codes %v, want 401 err_xdk_request_id_reused", r.status, r.failCodes())
		}
	})
	t.Run("same id other case, other path", func(t *testing.T) {
		sp2 := sp
		sp2.reqID = strings.ToLower(sp.reqID)
		r := e.send(e.request(http.MethodPost, PathFindGroups, nil, sp2))
		if r.status != 401 {
			t.Fatalf("replay: status %d, want 401", r.status)
		}
	})
	t.Run("refused request does not burn its id", func(t *testing.T) {
		sp3 := e.defaultSign()
		bad := sp3
		bad.secret = "U2VjcmV0S2V5"
		if r := e.send(e.request(http.MethodPost, PathGetAccount, nil, bad)); r.status != 401 {
			t.Fatalf("bad signature: status %d, want 401", r.status)
		}
		if r := e.send(e.request(http.MethodPost, PathGetAccount, nil, sp3)); r.status != 200 {
			t.Fatalf("same id, good signature: status %d, want 200", r.status)
		}
	})
	t.Run("after the window the old date is refused as skewed", func(t *testing.T) {
		e.clk.Advance(20 * time.Minute)
		r := e.send(e.request(http.MethodPost, PathGetAccount, nil, sp))
		if r.status != 401 || !strings.Contains(string(r.raw), "Date Header Too Skewed") {
			t.Fatalf("status %d body %s, want 401 skewed", r.status, r.raw)
		}
	})
}

func TestReplayMemoryBounded(t *testing.T) {
	clk := newClock()
	s := New(Options{Users: 5, Now: clk.Now, ReplayIDs: 10})
	exp := clk.Now().Add(time.Hour)
	for i := 0; i < 100; i++ {
		if !s.rememberRequestID(string(rune('a'+i%26))+strings.Repeat("x", i), exp, clk.Now()) {
			t.Fatalf("id %d refused", i)
		}
	}
	if got := len(s.replay); got > 10 {
		t.Errorf("remembered %d ids, want at most 10", got)
	}
	if got := len(s.replayQ); got > 11 {
		t.Errorf("queue holds %d entries, want at most 11", got)
	}
	// Expired ids are dropped first.
	clk.Advance(2 * time.Hour)
	s.rememberRequestID("fresh", clk.Now().Add(time.Hour), clk.Now())
	if got := len(s.replay); got != 1 {
		t.Errorf("after expiry remembered %d ids, want 1", got)
	}
}

func TestOAuth(t *testing.T) {
	e := newEnv(t, Options{Users: 5, TokenTTL: 10 * time.Minute})
	t.Run("bad client secret", func(t *testing.T) {
		st, m := e.token(DefaultClientID, "wrong")
		if st != 401 || m["error"] != "invalid_client" {
			t.Fatalf("got %d %v, want 401 invalid_client", st, m)
		}
	})
	t.Run("unknown client id", func(t *testing.T) {
		st, m := e.token("who", DefaultClientSecret)
		if st != 401 || m["error"] != "invalid_client" {
			t.Fatalf("got %d %v, want 401 invalid_client", st, m)
		}
	})
	st, m := e.token(DefaultClientID, DefaultClientSecret)
	if st != 200 {
		t.Fatalf("token: status %d %v", st, m)
	}
	if m["token_type"] != "Bearer" || m["expires_in"] != float64(600) || m["scope"] != "" {
		t.Errorf("token reply = %v, want Bearer, 600, empty scope", m)
	}
	tok, _ := m["access_token"].(string)
	if tok == "" {
		t.Fatal("no access_token")
	}
	if r := e.post(PathGetAccount, nil, bearer(tok)); r.status != 200 {
		t.Fatalf("bearer call: status %d %s", r.status, r.raw)
	}
	t.Run("wrong method on token endpoint", func(t *testing.T) {
		resp, err := e.client.Get(e.s.URL() + PathOAuthToken)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 {
			t.Errorf("GET token: status %d, want 405", resp.StatusCode)
		}
	})
	t.Run("expired bearer", func(t *testing.T) {
		e.clk.Advance(10 * time.Minute)
		r := e.post(PathGetAccount, nil, bearer(tok))
		if r.status != 401 || r.failCodes()[0] != "err_xdk_token_expired" {
			t.Fatalf("expired: status %d codes %v, want 401 err_xdk_token_expired", r.status, r.failCodes())
		}
		if r := e.post(PathGetAccount, nil, bearer(tok)); r.status != 401 {
			t.Fatalf("expired again: status %d, want 401", r.status)
		}
	})
}
