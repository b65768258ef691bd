package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"mimecast-ure/api"
)

// TestRecordsNeedAUID: a record without a uid string (an empty object,
// null, a null uid) is a 400 naming records[i].uid on fetch-scores and
// execute-action, never a silently shorter list; a record with one passes.
func TestRecordsNeedAUID(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.mustCreate("acme")
	const (
		scores = "/api/v1/configurations/acme/fetch-scores"
		exec   = "/api/v1/configurations/acme/execute-action"
	)
	tests := []struct {
		name, identity, path, body string
		status                     int
		field                      string
	}{
		{"scores empty record", "viewer", scores, `{"records":[{}]}`, 400, "records[0].uid"},
		{"scores null record", "viewer", scores, `{"records":[null]}`, 400, "records[0].uid"},
		{"scores null uid", "viewer", scores, `{"records":[{"uid":null}]}`, 400, "records[0].uid"},
		{"scores second record", "viewer", scores, `{"records":[{"uid":"user0001@acme.com"},{"type":"user"}]}`, 400, "records[1].uid"},
		{"execute empty record", "operator", exec, `{"records":[{}],"action":{"value":"generate"}}`, 400, "records[0].uid"},
		{"execute null record", "operator", exec, `{"records":[null],"action":{"value":"generate"}}`, 400, "records[0].uid"},
		{"execute third record", "operator", exec, `{"records":[{"uid":"a@acme.com"},{"uid":"b@acme.com"},{}],"action":{"value":"generate"}}`, 400, "records[2].uid"},
		{"scores with uid", "viewer", scores, `{"records":[{"uid":"user0001@acme.com"}]}`, 200, ""},
		{"scores all", "viewer", scores, `{"records":[]}`, 200, ""},
		{"execute with uid", "operator", exec, `{"records":[{"uid":"a@acme.com"}],"action":{"value":"generate"}}`, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(tt.identity, "POST", tt.path, tt.body, nil)
			if w.Code != tt.status {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.status)
			}
			if tt.status != 400 {
				return
			}
			code, msg, field := errorOf(t, w)
			if code != "invalid" || field != tt.field {
				t.Errorf("got code %q field %q, want invalid %q", code, field, tt.field)
			}
			if !strings.Contains(msg, tt.field) || !strings.Contains(msg, "uid") {
				t.Errorf("message %q does not name %s", msg, tt.field)
			}
		})
	}
}

// TestBodilessPostsRefuseNonJSON: the POST routes that read no body accept
// none, an empty one or any JSON value, and refuse one that is not JSON
// with the usual 400.
func TestBodilessPostsRefuseNonJSON(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.mustCreate("acme")
	const cfg = "/api/v1/configurations/acme"
	routes := []struct {
		path string
		ok   int
	}{
		{cfg + "/validate", 200},
		{cfg + "/fetch-records", 200},
		{cfg + "/sync", 202},
		{cfg + "/events/pull", 202},
		{cfg + "/controls/validate", 200},
	}
	for _, r := range routes {
		t.Run(strings.TrimPrefix(r.path, cfg+"/"), func(t *testing.T) {
			for _, bad := range []string{"not json", "{", `{"a":1} x`, "\x00"} {
				w := e.do("operator", "POST", r.path, bad, nil)
				if w.Code != 400 {
					t.Fatalf("body %q: got %d %s, want 400", bad, w.Code, w.Body)
				}
				if code, msg, _ := errorOf(t, w); code != "invalid" || !strings.Contains(msg, "JSON") {
					t.Errorf("body %q: got %q %q, want invalid naming JSON", bad, code, msg)
				}
			}
			for _, good := range []any{nil, "", "  \n", "{}", `{"anything":[1,2]}`, "null"} {
				if w := e.do("operator", "POST", r.path, good, nil); w.Code != r.ok {
					t.Errorf("body %q: got %d %s, want %d", good, w.Code, w.Body, r.ok)
				}
			}
		})
	}
}

// TestUnknownV1RoutesNeedAuth: under /api/v1, an unknown path or method is
// answered 404/405 only to an authenticated caller; without a valid token
// it is the one 401 (no Allow header), counted, audited and throttled like
// any failed authentication. Outside /api/v1 nothing changes.
func TestUnknownV1RoutesNeedAuth(t *testing.T) {
	l := newLayer(t, api.Options{AuthFailureLimit: 4})
	const want401 = `{"error":{"code":"unauthorized","message":"invalid credentials"}}`
	anon := []struct{ method, path, auth string }{
		{"GET", "/api/v1/nope", ""},
		{"PATCH", "/api/v1/tokens", ""},
		{"GET", "/api/v1", ""},
		{"PUT", "/api/v1/configurations/acme/sync", "Bearer mcu_wrong-token-value"},
	}
	for _, r := range anon {
		w := l.do(t, r.method, r.path, r.auth, "", nil)
		if w.Code != 401 || w.Body.String() != want401 {
			t.Errorf("%s %s without a valid token: got %d %s, want 401 %s", r.method, r.path, w.Code, w.Body, want401)
		}
		if a := w.Header().Get("Allow"); a != "" {
			t.Errorf("%s %s without a valid token: Allow %q shows the route", r.method, r.path, a)
		}
		if w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s: no WWW-Authenticate", r.method, r.path)
		}
	}
	if got := len(l.host.failures); got != len(anon) {
		t.Errorf("audited failures: got %d, want %d", got, len(anon))
	}
	if w := l.do(t, "GET", "/api/v1/also-nope", "", "", nil); w.Code != 429 {
		t.Errorf("over the failure limit: got %d, want 429", w.Code)
	}
	m := l.do(t, "GET", "/metrics", "", "", nil).Body.String()
	for _, s := range []string{`ure_auth_failures_total{reason="missing"} 4`, `ure_auth_failures_total{reason="invalid"} 1`} {
		if !strings.Contains(m, s) {
			t.Errorf("metrics lack %s:\n%s", s, grepLines(m, "ure_auth_failures"))
		}
	}

	authed := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/api/v1/nope", 404, ""},
		{"GET", "/api/v1", 404, ""},
		{"PATCH", "/api/v1/tokens", 405, "GET, POST"},
	}
	for _, r := range authed {
		w := l.do(t, r.method, r.path, "Bearer "+fakeAdmin, "", nil)
		if w.Code != r.status {
			t.Errorf("%s %s with a valid token: got %d %s, want %d", r.method, r.path, w.Code, w.Body, r.status)
			continue
		}
		errorOf(t, w)
		if got := w.Header().Get("Allow"); r.allow != "" && !sameMethods(got, r.allow) {
			t.Errorf("%s %s: Allow %q, want %q", r.method, r.path, got, r.allow)
		}
	}

	// Outside /api/v1: as before, no authentication asked.
	if w := l.do(t, "GET", "/nope", "", "", nil); w.Code != 404 {
		t.Errorf("GET /nope: got %d, want 404", w.Code)
	}
	if w := l.do(t, "DELETE", "/healthz", "", "", nil); w.Code != 405 || w.Header().Get("Allow") != "GET" {
		t.Errorf("DELETE /healthz: got %d Allow %q, want 405 Allow GET", w.Code, w.Header().Get("Allow"))
	}
	if w := l.do(t, "GET", "/api/v10/x", "", "", nil); w.Code != 404 {
		t.Errorf("GET /api/v10/x: got %d, want 404", w.Code)
	}
}

func sameMethods(a, b string) bool {
	split := func(s string) map[string]bool {
		out := map[string]bool{}
		for _, m := range strings.Split(s, ",") {
			out[strings.TrimSpace(m)] = true
		}
		return out
	}
	x, y := split(a), split(b)
	if len(x) != len(y) {
		return false
	}
	for m := range x {
		if !y[m] {
			return false
		}
	}
	return true
}

// TestOpenAPIUpstreamStatuses: every route whose handler passes on
// Mimecast's or Okta's failures documents 502, 503 and 429 (saving a
// configuration resolves the controls' groups).
func TestOpenAPIUpstreamStatuses(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	responses := func(method, path string) (map[string]json.RawMessage, bool) {
		raw, ok := doc.Paths[path][method]
		if !ok {
			return nil, false
		}
		var op struct {
			Responses map[string]json.RawMessage `json:"responses"`
		}
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return op.Responses, true
	}
	const cfg = "/api/v1/configurations/{name}"
	upstream := []struct{ method, path string }{
		{"post", "/api/v1/configurations"},
		{"put", cfg},
		{"post", cfg + "/validate"},
		{"post", cfg + "/fetch-records"},
		{"post", cfg + "/fetch-scores"},
		{"get", cfg + "/actions/{value}/fields"},
		{"post", cfg + "/validate-action"},
		{"post", cfg + "/execute-action"},
		{"get", cfg + "/users/{uid}"},
		{"post", cfg + "/controls/validate"},
	}
	for _, r := range upstream {
		resp, ok := responses(r.method, r.path)
		if !ok {
			t.Errorf("%s %s: not documented", r.method, r.path)
			continue
		}
		for _, code := range []string{"429", "502", "503"} {
			if _, ok := resp[code]; !ok {
				t.Errorf("%s %s: no %s response", strings.ToUpper(r.method), r.path, code)
			}
		}
	}
	for _, p := range []string{cfg + "/sync", cfg + "/events/pull"} {
		if resp, _ := responses("post", p); resp["503"] == nil {
			t.Errorf("POST %s: no 503 response (shutting down)", p)
		}
	}
}
