package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"mimecast-ure/api"
	"mimecast-ure/plugin"
)

// TestAuthThrottle: after the limit of failures from one address its
// failing requests get 429 for a while, while a valid token from the same
// address is still served; each failure up to the trip is audited, every
// failure is counted, and an alert is logged when the limit trips.
func TestAuthThrottle(t *testing.T) {
	e := newEnv(t, envOptions{authLimit: 3})
	for i := 0; i < 3; i++ {
		if w := e.do("raw:Bearer mcu_wrong", "GET", "/api/v1/configurations", nil, nil); w.Code != 401 {
			t.Fatalf("failure %d: got %d", i+1, w.Code)
		}
	}
	w := e.do("raw:Bearer mcu_wrong", "GET", "/api/v1/configurations", nil, nil)
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("after the limit, a bad token: got %d, want 429", w.Code)
	}
	if code, _, _ := errorOf(t, w); code != "rate_limited" {
		t.Errorf("code %q", code)
	}
	if w.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if w := e.do("", "GET", "/api/v1/configurations", nil, nil); w.Code != http.StatusTooManyRequests {
		t.Errorf("after the limit, no token: got %d, want 429", w.Code)
	}
	if w := e.do("admin", "GET", "/api/v1/configurations", nil, nil); w.Code != 200 {
		t.Fatalf("after the limit, a valid token from the same address: got %d %s, want 200", w.Code, w.Body)
	}

	// Another address is not affected.
	req := httptest.NewRequest("GET", "/api/v1/configurations", nil)
	req.RemoteAddr = "198.51.100.20:5555"
	req.Header.Set("Authorization", "Bearer "+e.tokens["viewer"])
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("other address: got %d", rec.Code)
	}

	entries, err := e.svc.Audit(context.Background(), plugin.AuditFilter{Action: plugin.AuditAuthFailure})
	if err != nil || len(entries) != 3 {
		t.Fatalf("audited failures: %d %v, want 3 (the ones up to the trip)", len(entries), err)
	}
	for _, en := range entries {
		if en.Actor != "192.0.2.1" {
			t.Errorf("actor %q, want the client address", en.Actor)
		}
		for k, v := range en.Detail {
			if strings.Contains(v, "mcu_") || strings.Contains(k, "token") {
				t.Errorf("audit detail holds token material: %s=%s", k, v)
			}
		}
	}
	if en := entries[len(entries)-1]; en.Detail["throttled"] != "true" {
		t.Errorf("the tripping failure's audit detail %v lacks throttled=true", en.Detail)
	}
	m := e.do("", "GET", "/metrics", nil, nil).Body.String()
	for _, want := range []string{`ure_auth_failures_total{reason="invalid"} 4`, `ure_auth_failures_total{reason="missing"} 1`, "ure_auth_throttled_total 2"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(m, "ure_auth"))
		}
	}
	if !strings.Contains(e.logs.String(), `"alert":true`) {
		t.Error("no alert line when the throttle tripped")
	}

	// Failures during the block are recorded together: one entry per
	// window with their count, then the rest with the next failure.
	e.clock.Add(api.DefaultAuthFailureWindow)
	for i := 0; i < 3; i++ {
		e.do("raw:Bearer mcu_wrong", "GET", "/api/v1/configurations", nil, nil)
	}
	entries, _ = e.svc.Audit(context.Background(), plugin.AuditFilter{Action: plugin.AuditAuthFailure})
	if len(entries) != 4 || entries[3].Detail["count"] != "3" {
		t.Fatalf("failures during the block: %d entries, last %v; want a 4th with count 3 (2 in the trip's window, then the first of the next)", len(entries), entries[len(entries)-1].Detail)
	}
	e.do("raw:Bearer mcu_wrong", "GET", "/api/v1/configurations", nil, nil) // still blocked, same window: 3 not audited yet
	e.clock.Add(api.DefaultAuthBlockFor)
	if w := e.do("raw:Bearer mcu_wrong", "GET", "/api/v1/configurations", nil, nil); w.Code != 401 {
		t.Fatalf("after the block, a bad token: got %d, want 401", w.Code)
	}
	entries, _ = e.svc.Audit(context.Background(), plugin.AuditFilter{Action: plugin.AuditAuthFailure})
	if last := entries[len(entries)-1]; len(entries) != 5 || last.Detail["earlier_throttled"] != "3" {
		t.Errorf("the first failure after the block: %d entries, last %v; want earlier_throttled=3", len(entries), last.Detail)
	}
	if w := e.do("admin", "GET", "/api/v1/configurations", nil, nil); w.Code != 200 {
		t.Fatalf("after the block: got %d", w.Code)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestBadInput: the caller's mistakes are 4xx naming the field, never 5xx.
func TestBadInput(t *testing.T) {
	e := newEnv(t, envOptions{maxBody: 4096})
	e.mustCreate("acme")
	big := `{"name":"` + strings.Repeat("x", 5000) + `"}`
	tests := []struct {
		name, method, path string
		body               any
		header             http.Header
		status             int
		field              string
	}{
		{"malformed JSON", "POST", "/api/v1/configurations", `{"name":`, nil, 400, ""},
		{"not an object", "POST", "/api/v1/configurations", `[1,2]`, nil, 400, ""},
		{"wrong type", "POST", "/api/v1/configurations", `{"name": 5}`, nil, 400, "name"},
		{"nested wrong type", "POST", "/api/v1/configurations", `{"name":"x","mimecast":{"page_size":"many"}}`, nil, 400, "mimecast.page_size"},
		{"unknown field", "POST", "/api/v1/configurations", `{"name":"x","nmae":"y"}`, nil, 400, "nmae"},
		{"two values", "POST", "/api/v1/configurations", `{} {}`, nil, 400, ""},
		{"empty body", "POST", "/api/v1/configurations", ``, nil, 400, ""},
		{"bad duration", "POST", "/api/v1/configurations", `{"name":"x","sync_interval":"soon"}`, nil, 400, ""},
		{"bad base url", "POST", "/api/v1/configurations", withCfg(e, "b1", func(c map[string]any) { c["mimecast"].(map[string]any)["base_url"] = "ftp://x" }), nil, 400, "mimecast.base_url"},
		{"bad secret key", "POST", "/api/v1/configurations", withCfg(e, "b2", func(c map[string]any) { c["mimecast"].(map[string]any)["secret_key"] = "not base64!!" }), nil, 400, "mimecast.secret_key"},
		{"short interval", "POST", "/api/v1/configurations", withCfg(e, "b3", func(c map[string]any) { c["sync_interval"] = "10s" }), nil, 400, "sync_interval"},
		{"duplicate", "POST", "/api/v1/configurations", e.config("acme"), nil, 409, ""},
		{"rename by PUT", "PUT", "/api/v1/configurations/acme", e.config("other"), nil, 400, "name"},
		{"oversize", "POST", "/api/v1/configurations", big, nil, 413, ""},
		{"unknown configuration", "GET", "/api/v1/configurations/nope", nil, nil, 404, ""},
		{"unknown configuration fetch", "POST", "/api/v1/configurations/nope/fetch-records", nil, nil, 404, ""},
		{"unknown configuration actions", "GET", "/api/v1/configurations/nope/actions", nil, nil, 404, ""},
		{"unknown configuration execute", "POST", "/api/v1/configurations/nope/execute-action", map[string]any{"records": []map[string]string{{"uid": "a@acme.com"}}, "action": map[string]string{"value": "generate"}}, nil, 404, ""},
		{"unknown configuration delete", "DELETE", "/api/v1/configurations/nope", nil, nil, 404, ""},
		{"unknown action execute", "POST", "/api/v1/configurations/acme/execute-action", map[string]any{"records": []map[string]string{{"uid": "a@acme.com"}}, "action": map[string]string{"value": "explode"}}, nil, 400, "action.value"},
		{"unknown action fields", "GET", "/api/v1/configurations/acme/actions/explode/fields", nil, nil, 400, "action.value"},
		{"unknown action validate", "POST", "/api/v1/configurations/acme/validate-action", `{"action":{"value":"explode"}}`, nil, 400, "action.value"},
		{"missing action", "POST", "/api/v1/configurations/acme/execute-action", `{"records":[{"uid":"a@acme.com"}]}`, nil, 400, "action"},
		{"no records", "POST", "/api/v1/configurations/acme/execute-action", `{"records":[],"action":{"value":"generate"}}`, nil, 400, "records"},
		{"records wrong type", "POST", "/api/v1/configurations/acme/fetch-scores", `{"records":"all"}`, nil, 400, "records"},
		{"uid wrong type", "POST", "/api/v1/configurations/acme/fetch-scores", `{"records":[{"uid":7}]}`, nil, 400, "records.uid"},
		{"parameters wrong type", "POST", "/api/v1/configurations/acme/execute-action", `{"records":[{"uid":"a@acme.com"}],"action":{"value":"add","parameters":{"group":1}}}`, nil, 400, "action.parameters.group"},
		{"idempotency key too long", "POST", "/api/v1/configurations/acme/execute-action", `{"records":[{"uid":"a@acme.com"}],"action":{"value":"generate"}}`, http.Header{"Idempotency-Key": {strings.Repeat("k", 256)}}, 400, "Idempotency-Key"},
		{"events since", "GET", "/api/v1/configurations/acme/events?since=yesterday", nil, nil, 400, "since"},
		{"events limit", "GET", "/api/v1/configurations/acme/events?limit=0", nil, nil, 400, "limit"},
		{"targets rule", "GET", "/api/v1/configurations/acme/targets", nil, nil, 400, "rule"},
		{"targets since", "GET", "/api/v1/configurations/acme/targets?rule=x&since=-3d", nil, nil, 400, "since"},
		{"targets format", "GET", "/api/v1/configurations/acme/targets?rule=x&format=xml", nil, nil, 400, "format"},
		{"audit since", "GET", "/api/v1/audit?since=2025-13-01", nil, nil, 400, "since"},
		{"audit cursor", "GET", "/api/v1/audit?cursor=abc", nil, nil, 400, "cursor"},
		{"audit limit", "GET", "/api/v1/audit?limit=5000", nil, nil, 400, "limit"},
		{"token role", "POST", "/api/v1/tokens", `{"name":"x","owner":"o","role":"root"}`, nil, 400, "role"},
		{"token expires type", "POST", "/api/v1/tokens", `{"name":"x","owner":"o","role":"viewer","expires_in":true}`, nil, 400, ""},
		{"token unknown field", "POST", "/api/v1/tokens", `{"name":"x","owner":"o","role":"viewer","scope":"all"}`, nil, 400, "scope"},
		{"unknown token", "DELETE", "/api/v1/tokens/tok_nope", nil, nil, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do("admin", tt.method, tt.path, tt.body, tt.header)
			if w.Code != tt.status {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.status)
			}
			_, _, field := errorOf(t, w)
			if tt.field != "" && field != tt.field {
				t.Errorf("field %q, want %q", field, tt.field)
			}
		})
	}

	t.Run("oversize without Content-Length", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/api/v1/configurations", strings.NewReader(big))
		req.ContentLength = -1
		req.Header.Set("Authorization", "Bearer "+e.tokens["admin"])
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, req)
		if w.Code != 413 {
			t.Fatalf("got %d %s, want 413", w.Code, w.Body)
		}
	})
}

func withCfg(e *env, name string, edit func(map[string]any)) map[string]any {
	c := e.config(name)
	edit(c)
	return c
}

// TestInvalidEmailIsPerUser: a bad address is a failed result, not a 400.
func TestInvalidEmailIsPerUser(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.mustCreate("acme")
	users := e.mc.Users()
	body := map[string]any{
		"records": []map[string]string{{"uid": "not-an-email"}, {"uid": users[0].Email}},
		"action":  map[string]any{"value": "add", "parameters": map[string]string{"group": "create", "name": "Risky users"}},
	}
	w := e.do("operator", "POST", "/api/v1/configurations/acme/execute-action", body, http.Header{"Idempotency-Key": {"k-1"}})
	if w.Code != 200 {
		t.Fatalf("got %d %s", w.Code, w.Body)
	}
	var res struct {
		Results []plugin.ActionResult `json:"results"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || len(res.Results) != 2 {
		t.Fatalf("results: %s", w.Body)
	}
	if res.Results[0].Status != plugin.Failed || res.Results[1].Status != plugin.Done {
		t.Errorf("statuses %v, want failed then done", res.Results)
	}
	// A repeat with the same key acts on nobody again and answers the same.
	w2 := e.do("operator", "POST", "/api/v1/configurations/acme/execute-action", body, http.Header{"Idempotency-Key": {"k-1"}})
	if w2.Code != 200 || w2.Body.String() != w.Body.String() {
		t.Errorf("repeat: %d %s, want the first answer", w2.Code, w2.Body)
	}
}

func TestTargetsCSV(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.mustCreate("acme")
	w := e.do("viewer", "GET", "/api/v1/configurations/acme/targets?rule=clicked_phishing&since=30d&format=csv", nil, nil)
	if w.Code != 200 {
		t.Fatalf("got %d %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("Content-Type %q", ct)
	}
	if first := strings.SplitN(w.Body.String(), "\n", 2)[0]; first != "uid,count,last_at" {
		t.Errorf("header %q", first)
	}
}

func TestAuditPaging(t *testing.T) {
	e := newEnv(t, envOptions{})
	// newEnv made 6 tokens and revoked one: 7 entries.
	w := e.do("admin", "GET", "/api/v1/audit?limit=4", nil, nil)
	var page struct {
		Entries []plugin.AuditEntry `json:"entries"`
		Next    string              `json:"next"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || len(page.Entries) != 4 || page.Next == "" {
		t.Fatalf("first page: %d %s", w.Code, w.Body)
	}
	w = e.do("admin", "GET", "/api/v1/audit?limit=4&cursor="+page.Next, nil, nil)
	var page2 struct {
		Entries []plugin.AuditEntry `json:"entries"`
		Next    string              `json:"next"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &page2); err != nil || len(page2.Entries) != 3 || page2.Next != "" {
		t.Fatalf("second page: %d %s", w.Code, w.Body)
	}
	if page2.Entries[0].Seq <= page.Entries[3].Seq {
		t.Errorf("pages overlap")
	}
	w = e.do("admin", "GET", "/api/v1/audit?action=token.revoke&since="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), nil, nil)
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || len(page.Entries) != 1 {
		t.Fatalf("filtered: %s", w.Body)
	}
}

// TestSecretsNeverLeak drives the configuration and token routes and scans
// every response and the whole log for the tenant's secrets and token values.
func TestSecretsNeverLeak(t *testing.T) {
	e := newEnv(t, envOptions{})
	var responses strings.Builder
	record := func(w *httptest.ResponseRecorder) *httptest.ResponseRecorder {
		responses.WriteString(w.Body.String())
		for k, v := range w.Header() {
			responses.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
		return w
	}
	w := record(e.do("admin", "POST", "/api/v1/configurations", e.config("acme"), nil))
	if w.Code != 201 || !strings.Contains(w.Body.String(), plugin.Masked) {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	w = record(e.do("admin", "GET", "/api/v1/configurations/acme", nil, nil))
	var got plugin.Configuration
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	// PUT the masked answer back: secrets are kept, so validate still works.
	record(e.do("admin", "PUT", "/api/v1/configurations/acme", got, nil))
	w = record(e.do("operator", "POST", "/api/v1/configurations/acme/validate", nil, nil))
	if !strings.Contains(w.Body.String(), `"success":true`) {
		t.Errorf("validate after a masked PUT: %s", w.Body)
	}
	record(e.do("viewer", "GET", "/api/v1/configurations", nil, nil))
	record(e.do("viewer", "POST", "/api/v1/configurations/acme/fetch-scores", `{}`, nil))
	record(e.do("admin", "GET", "/api/v1/audit", nil, nil))
	record(e.do("admin", "GET", "/api/v1/tokens", nil, nil))
	// Bad credentials, including a real secret sent as a token.
	record(e.do("raw:Bearer "+testSecretKey, "GET", "/api/v1/configurations", nil, nil))
	record(e.do("raw:"+e.tokens["admin"], "GET", "/api/v1/configurations", nil, nil))
	// A wrong secret makes Mimecast refuse: the error must not echo it.
	bad := e.config("acme")
	bad["mimecast"].(map[string]any)["access_key"] = "accesskey-wrong-leakcheck-0003"
	record(e.do("admin", "PUT", "/api/v1/configurations/acme", bad, nil))
	record(e.do("operator", "POST", "/api/v1/configurations/acme/validate", nil, nil))
	record(e.do("viewer", "POST", "/api/v1/configurations/acme/fetch-records", nil, nil))

	e.assertNoSecrets("responses", responses.String())
	if strings.Contains(responses.String(), "accesskey-wrong-leakcheck-0003") {
		t.Error("responses contain the wrong access key")
	}
	logs := e.logs.String()
	e.assertNoSecrets("logs", logs)
	if strings.Contains(logs, "accesskey-wrong-leakcheck-0003") {
		t.Error("logs contain the wrong access key")
	}

	// A token created through the API is shown once, then never again.
	w = e.do("admin", "POST", "/api/v1/tokens", map[string]any{"name": "ci", "owner": "o", "role": "viewer", "expires_in": "720h"}, nil)
	var created struct {
		Token, ID string
		ExpiresAt *time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &created); err != nil || w.Code != 201 || !strings.HasPrefix(created.Token, plugin.TokenPrefix) || created.ExpiresAt == nil {
		t.Fatalf("create token: %d %s", w.Code, w.Body)
	}
	list := e.do("admin", "GET", "/api/v1/tokens", nil, nil).Body.String()
	if strings.Contains(list, created.Token) || strings.Contains(list, plugin.HashToken(created.Token)) {
		t.Error("token list shows a value or hash")
	}
	if strings.Contains(e.logs.String(), created.Token) {
		t.Error("logs contain the new token value")
	}
	if w := e.do("admin", "DELETE", "/api/v1/tokens/"+created.ID, nil, nil); w.Code != 204 {
		t.Fatalf("revoke: %d", w.Code)
	}
	e.tokens["ci"] = created.Token
	if w := e.do("ci", "GET", "/api/v1/configurations", nil, nil); w.Code != 401 {
		t.Fatalf("revoked token: %d", w.Code)
	}
}
