package mimecasttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func rateHeaders(t *testing.T, h http.Header) (limit, remaining, reset int) {
	t.Helper()
	get := func(k string) int {
		v := h.Get(k)
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("header %s = %q, want an integer", k, v)
		}
		return n
	}
	return get("X-RateLimit-Limit"), get("X-RateLimit-Remaining"), get("X-RateLimit-Reset")
}

func TestRateLimitBucket(t *testing.T) {
	e := newEnv(t, Options{Users: 5, RateLimit: RateLimit{Capacity: 3, Refill: 2 * time.Second}})
	for i := 0; i < 3; i++ {
		r := e.post(PathGetAccount, nil)
		if r.status != 200 {
			t.Fatalf("call %d: status %d", i, r.status)
		}
		limit, rem, reset := rateHeaders(t, r.header)
		if limit != 3 || rem != 2-i || reset != 2000 {
			t.Errorf("call %d: limit %d remaining %d reset %d, want 3 %d 2000", i, limit, rem, reset, 2-i)
		}
	}
	e.clk.Advance(500 * time.Millisecond)
	r := e.post(PathGetAccount, nil)
	if r.status != 429 || r.env.Meta.Status != 429 {
		t.Fatalf("4th call: status %d, want 429", r.status)
	}
	if _, rem, reset := rateHeaders(t, r.header); rem != 0 || reset != 1500 {
		t.Errorf("429: remaining %d reset %d, want 0 and 1500 ms", rem, reset)
	}
	t.Run("other endpoints have their own bucket", func(t *testing.T) {
		if r := e.post(PathFindGroups, nil); r.status != 200 {
			t.Errorf("find-groups: status %d", r.status)
		}
	})
	t.Run("refused calls show the bucket without spending", func(t *testing.T) {
		r := e.post(PathGetAccount, nil, withHeader("x-mc-app-id", "nope"))
		if r.status != 401 {
			t.Fatalf("status %d", r.status)
		}
		if limit, rem, _ := rateHeaders(t, r.header); limit != 3 || rem != 0 {
			t.Errorf("limit %d remaining %d", limit, rem)
		}
	})
	t.Run("refills one call per interval", func(t *testing.T) {
		e.clk.Advance(1500 * time.Millisecond)
		r := e.post(PathGetAccount, nil)
		if r.status != 200 {
			t.Fatalf("after refill: status %d", r.status)
		}
		if _, rem, reset := rateHeaders(t, r.header); rem != 0 || reset != 2000 {
			t.Errorf("after refill: remaining %d reset %d, want 0 2000", rem, reset)
		}
	})
	t.Run("headers on every reply when off", func(t *testing.T) {
		e2 := newEnv(t, Options{Users: 5})
		for _, r := range []*reply{e2.post(PathGetAccount, nil), e2.post("/api/nope", nil), e2.post(PathGetAccount, nil, withHeader("x-mc-date", ""))} {
			rateHeaders(t, r.header)
		}
	})
}

func membersOf(e *testEnv, name string) []string {
	g, _ := e.s.FindGroupByName(name)
	return e.s.GroupMembers(g.ID)
}

func TestFaultsNeverApplyWrites(t *testing.T) {
	e := newEnv(t, Options{Users: 20})
	g, _ := e.s.FindGroupByName("Risky Users - Remediation")
	add := func(email string) map[string]any {
		return map[string]any{"data": []any{map[string]any{"id": g.ID, "emailAddress": email}}}
	}
	users := e.s.Users()
	tests := []struct {
		name       string
		faults     Faults
		wantStatus int
		wantCode   string
	}{
		{"503", Faults{FailNext: 1}, 503, "err_server_unavailable"},
		{"500", Faults{FailNext: 1, ErrorStatus: 500}, 500, "err_server_unavailable"},
		{"429 burst", Faults{RateLimitNext: 1, RateLimitResetMS: 1500}, 429, "err_rate_limit_exceeded"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.faults.Endpoint = PathAddGroupMember
			e.s.SetFaults(tc.faults)
			r := e.post(PathAddGroupMember, add(users[i].Email))
			if r.status != tc.wantStatus || r.env.Meta.Status != tc.wantStatus || r.failCodes()[0] != tc.wantCode {
				t.Fatalf("status %d codes %v, want %d %s", r.status, r.failCodes(), tc.wantStatus, tc.wantCode)
			}
			if !r.env.Fail[0].Errors[0].Retryable {
				t.Error("retryable = false, want true")
			}
			if tc.wantStatus == 429 {
				if _, rem, reset := rateHeaders(t, r.header); rem != 0 || reset != 1500 {
					t.Errorf("remaining %d reset %d, want 0 1500", rem, reset)
				}
			}
			if got := membersOf(e, g.Name); len(got) != 0 {
				t.Fatalf("refused call changed membership: %v", got)
			}
			// The fault is spent: the retry goes through.
			e.mustOK(PathAddGroupMember, add(users[i].Email))
			if got := membersOf(e, g.Name); len(got) != 1 {
				t.Fatalf("members after retry = %v", got)
			}
			e.s.RemoveGroupMember(g.ID, users[i].Email)
		})
	}
	t.Run("endpoint scoping", func(t *testing.T) {
		e.s.SetFaults(Faults{Endpoint: PathFindGroups, FailNext: 5})
		if r := e.post(PathGetAccount, nil); r.status != 200 {
			t.Errorf("get-account: status %d, want 200", r.status)
		}
		if r := e.post(PathFindGroups, nil); r.status != 503 {
			t.Errorf("find-groups: status %d, want 503", r.status)
		}
		if f := e.s.Faults(); f.FailNext != 4 {
			t.Errorf("FailNext left = %d, want 4", f.FailNext)
		}
		e.s.ClearFaults()
	})
}

func rawPost(t *testing.T, e *testEnv, path string, body any) (*http.Response, []byte, error) {
	t.Helper()
	resp, err := e.client.Do(e.request(http.MethodPost, path, body, e.defaultSign()))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp, raw, err
}

func TestTruncatedAndAbortedReplies(t *testing.T) {
	e := newEnv(t, Options{Users: 20})
	g, _ := e.s.FindGroupByName("Risky Users - Remediation")
	u := e.s.Users()[4].Email
	e.s.SetFaults(Faults{TruncateNext: 1})
	resp, raw, err := rawPost(t, e, PathAddGroupMember, map[string]any{"data": []any{map[string]any{"id": g.ID, "emailAddress": u}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || json.Valid(raw) || len(raw) == 0 {
		t.Fatalf("truncated: status %d valid %v body %q", resp.StatusCode, json.Valid(raw), raw)
	}
	// Documented: a cut reply comes AFTER the endpoint ran.
	if got := e.s.GroupMembers(g.ID); len(got) != 1 {
		t.Errorf("after a truncated add, members = %v, want the write applied", got)
	}
	if r := e.post(PathAddGroupMember, map[string]any{"data": []any{map[string]any{"id": g.ID, "emailAddress": u}}}); r.failCodes()[0] != "err_folder_group_member_already_exists" {
		t.Errorf("retry after truncation: codes %v", r.failCodes())
	}

	e.s.SetFaults(Faults{AbortNext: 1})
	if _, _, err := rawPost(t, e, PathGetAccount, nil); err == nil {
		t.Error("aborted reply: no client error")
	}
	e.mustOK(PathGetAccount, nil)
}

func TestBindingExpired(t *testing.T) {
	e := newEnv(t, Options{Users: 5})
	e.s.SetFaults(Faults{BindingExpireAfter: 2})
	for i := 0; i < 2; i++ {
		e.mustOK(PathGetAccount, nil)
	}
	for i := 0; i < 2; i++ {
		r := e.post(PathGetAccount, nil)
		if r.status != 418 || r.env.Meta.Status != 418 || r.failCodes()[0] != "err_xdk_binding_expired" {
			t.Fatalf("call %d: status %d codes %v, want 418 err_xdk_binding_expired", i+3, r.status, r.failCodes())
		}
	}
	_, m := e.token(DefaultClientID, DefaultClientSecret)
	if r := e.post(PathGetAccount, nil, bearer(m["access_token"].(string))); r.status != 200 {
		t.Errorf("bearer call under an expired binding: status %d, want 200", r.status)
	}
	e.s.ClearFaults()
	e.mustOK(PathGetAccount, nil)
}

func TestErrorRateDeterministic(t *testing.T) {
	pattern := func() string {
		e := newEnv(t, Options{Users: 5, Seed: 42})
		e.s.SetFaults(Faults{ErrorRate: 0.3})
		var b strings.Builder
		for i := 0; i < 60; i++ {
			if e.post(PathGetAccount, nil).status == 503 {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	p1, p2 := pattern(), pattern()
	if p1 != p2 {
		t.Errorf("patterns differ:\n%s\n%s", p1, p2)
	}
	if n := strings.Count(p1, "x"); n < 6 || n > 36 {
		t.Errorf("%d of 60 failed at rate 0.3: %s", n, p1)
	}
}

func TestLatencyAndSlowReplies(t *testing.T) {
	t.Run("latency is slept through the injected sleep", func(t *testing.T) {
		e := newEnv(t, Options{Users: 5, Latency: 20 * time.Millisecond})
		e.s.SetFaults(Faults{Latency: 5 * time.Millisecond, SlowNext: 1, SlowBy: time.Hour})
		e.mustOK(PathGetAccount, nil)
		e.mustOK(PathGetAccount, nil)
		if got, want := time.Duration(e.sleeps.Load()), 2*25*time.Millisecond+time.Hour; got != want {
			t.Errorf("slept %v, want %v", got, want)
		}
	})
	t.Run("a reply slower than the client's timeout stops when the client leaves", func(t *testing.T) {
		e := newEnv(t, Options{Users: 5, Sleep: sleepCtx})
		e.s.SetFaults(Faults{SlowNext: 1, SlowBy: time.Minute})
		e.client.Timeout = 100 * time.Millisecond
		start := time.Now()
		if _, _, err := rawPost(t, e, PathGetAccount, nil); err == nil {
			t.Fatal("no timeout error")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v", d)
		}
		e.client.Timeout = 10 * time.Second
		e.mustOK(PathGetAccount, nil)
		deadline := time.Now().Add(5 * time.Second)
		for e.s.Stats()["status 499"] != 1 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := e.s.Stats()["status 499"]; got != 1 {
			t.Errorf("status 499 count = %d, want 1", got)
		}
	})
}

func TestStats(t *testing.T) {
	e := newEnv(t, Options{Users: 5})
	e.mustOK(PathGetAccount, nil)
	e.mustOK(PathGetAccount, nil)
	e.post(PathFindGroups, nil, withHeader("x-mc-app-id", "nope"))
	e.post("/api/unknown", nil)
	e.token(DefaultClientID, DefaultClientSecret)
	want := map[string]int{
		"total": 5, PathGetAccount: 2, PathGetAccount + " 200": 2, PathFindGroups + " 401": 1,
		"other 404": 1, PathOAuthToken + " 200": 1, "status 200": 3,
	}
	got := e.s.Stats()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Stats()[%q] = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	if e.s.Calls(PathGetAccount) != 2 {
		t.Errorf("Calls = %d", e.s.Calls(PathGetAccount))
	}
	resp, err := e.client.Get(e.s.URL() + PathStats)
	if err != nil {
		t.Fatal(err)
	}
	var over map[string]int
	if err := json.NewDecoder(resp.Body).Decode(&over); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if over["total"] != 5 || over[PathGetAccount] != 2 {
		t.Errorf("GET stats = %v", over)
	}
	resp, err = e.client.Post(e.s.URL()+PathStatsReset, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := e.s.Stats(); len(got) != 0 {
		t.Errorf("after reset: %v", got)
	}
	e.s.ResetStats()
}

func TestConcurrentUse(t *testing.T) {
	e := newEnv(t, Options{Users: 100, RateLimit: RateLimit{Capacity: 1000, Refill: time.Millisecond}, LogVolume: map[string]int{KindDLP: 200}})
	g, _ := e.s.FindGroupByName("Risky Users - Remediation")
	users := e.s.Users()
	start, end := e.s.LogWindow()
	errs := make(chan error, 6*15)
	post := func(path string, b any) {
		// rawPost only returns errors, so it is safe off the test goroutine.
		resp, raw, err := rawPost(t, e, path, b)
		if err == nil && resp.StatusCode == 200 && !json.Valid(raw) {
			err = fmt.Errorf("%s: invalid JSON", path)
		}
		if err != nil {
			errs <- err
		}
	}
	done := make(chan struct{})
	for w := 0; w < 6; w++ {
		go func(w int) {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 15; i++ {
				u := users[(w*15+i)%len(users)].Email
				switch i % 5 {
				case 0:
					post(PathAddGroupMember, map[string]any{"data": []any{map[string]any{"id": g.ID, "emailAddress": u}}})
				case 1:
					post(PathRemoveGroupMember, map[string]any{"data": []any{map[string]any{"id": g.ID, "emailAddress": u}}})
				case 2:
					post(PathDLPLogs, body(50, "", map[string]any{"from": start.Format(time.RFC3339), "to": end.Format(time.RFC3339), "routes": []any{"outbound"}}))
				case 3:
					e.s.SetGrade(u, "C")
					e.s.AddLogRecords(KindDLP, map[string]any{"senderAddress": u, "action": "block", "route": "outbound"})
				case 4:
					e.s.SetFaults(Faults{ErrorRate: 0.1})
					post(PathSafeScoreDetails, body(20, ""))
					e.s.Stats()
				}
			}
		}(w)
	}
	for w := 0; w < 6; w++ {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := e.s.Stats()["total"]; got != 6*12 {
		t.Errorf("total = %d, want %d", got, 6*12)
	}
}

func TestEndpointRateLimits(t *testing.T) {
	e := newEnv(t, Options{Users: 5, EndpointRateLimits: map[string]RateLimit{PathAddGroupMember: {Capacity: 1, Refill: time.Minute}}})
	g, _ := e.s.FindGroupByName("Risky Users - Remediation")
	u := e.s.Users()
	add := func(email string) *reply {
		return e.post(PathAddGroupMember, map[string]any{"data": []any{map[string]any{"id": g.ID, "emailAddress": email}}})
	}
	if r := add(u[0].Email); r.status != 200 {
		t.Fatalf("first add: %d", r.status)
	}
	r := add(u[1].Email)
	if r.status != 429 {
		t.Fatalf("second add: status %d, want 429", r.status)
	}
	if limit, rem, reset := rateHeaders(t, r.header); limit != 1 || rem != 0 || reset != 60000 {
		t.Errorf("headers %d %d %d, want 1 0 60000", limit, rem, reset)
	}
	if got := e.s.GroupMembers(g.ID); len(got) != 1 {
		t.Errorf("members %v: the refused add was applied", got)
	}
	for i := 0; i < 3; i++ {
		if r := e.post(PathGetAccount, nil); r.status != 200 {
			t.Errorf("get-account is not limited: status %d", r.status)
		}
	}
}
