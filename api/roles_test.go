package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// route is one /api/v1 route with the least role it needs.
type route struct {
	method, path string
	body         any
	min          string // viewer, operator, admin
	// global routes need an admin token not restricted to configurations.
	global bool
	// ok is the status of a permitted call.
	ok int
}

func v1Routes(e *env) []route {
	exec := map[string]any{
		"records": []map[string]string{{"uid": "nobody@acme.com"}},
		"action":  map[string]any{"label": "No Action", "value": "generate"},
	}
	return []route{
		{method: "GET", path: "/api/v1/manifest", min: "viewer", ok: 200},
		{method: "POST", path: "/api/v1/tokens", body: map[string]any{"name": "n", "owner": "o", "role": "viewer"}, min: "admin", global: true, ok: 201},
		{method: "GET", path: "/api/v1/tokens", min: "admin", global: true, ok: 200},
		{method: "DELETE", path: "/api/v1/tokens/" + e.revokedID, min: "admin", global: true, ok: 204},
		{method: "GET", path: "/api/v1/audit", min: "admin", global: true, ok: 200},
		{method: "POST", path: "/api/v1/configurations", body: e.config("acme2"), min: "admin", ok: 201},
		{method: "GET", path: "/api/v1/configurations", min: "viewer", ok: 200},
		{method: "GET", path: "/api/v1/configurations/acme", min: "viewer", ok: 200},
		{method: "PUT", path: "/api/v1/configurations/acme", body: e.config("acme"), min: "admin", ok: 200},
		{method: "DELETE", path: "/api/v1/configurations/acme", min: "admin", ok: 204},
		{method: "POST", path: "/api/v1/configurations/acme/validate", min: "operator", ok: 200},
		{method: "POST", path: "/api/v1/configurations/acme/fetch-records", min: "viewer", ok: 200},
		{method: "POST", path: "/api/v1/configurations/acme/fetch-scores", body: map[string]any{"records": []any{}}, min: "viewer", ok: 200},
		{method: "GET", path: "/api/v1/configurations/acme/actions", min: "viewer", ok: 200},
		{method: "GET", path: "/api/v1/configurations/acme/actions/add/fields", min: "viewer", ok: 200},
		{method: "POST", path: "/api/v1/configurations/acme/validate-action", body: map[string]any{"action": map[string]any{"value": "generate"}}, min: "operator", ok: 200},
		{method: "POST", path: "/api/v1/configurations/acme/execute-action", body: exec, min: "operator", ok: 200},
		{method: "POST", path: "/api/v1/configurations/acme/sync", min: "operator", ok: 202},
		{method: "GET", path: "/api/v1/configurations/acme/sync", min: "viewer", ok: 200},
		{method: "POST", path: "/api/v1/configurations/acme/events/pull", min: "operator", ok: 202},
		{method: "GET", path: "/api/v1/configurations/acme/events/pull", min: "viewer", ok: 200},
		{method: "GET", path: "/api/v1/configurations/acme/events?since=30d", min: "viewer", ok: 200},
		{method: "GET", path: "/api/v1/configurations/acme/users/nobody@acme.com", min: "viewer", ok: 404},
		{method: "GET", path: "/api/v1/configurations/acme/targets?rule=clicked_phishing", min: "viewer", ok: 200},
		{method: "POST", path: "/api/v1/configurations/acme/controls/validate", min: "operator", ok: 200},
		{method: "GET", path: "/api/v1/configurations/acme/controls/status", min: "viewer", ok: 200},
	}
}

var rank = map[string]int{"viewer": 1, "operator": 2, "admin": 3}

// TestRouteRoleMatrix proves the least-privilege matrix on every /api/v1
// route: every bad credential gets the same 401, a role too low or a
// token restricted to another configuration gets 403, and the least
// sufficient role gets through.
func TestRouteRoleMatrix(t *testing.T) {
	probe := newEnv(t, envOptions{})
	routes := v1Routes(probe)
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			e := newEnv(t, envOptions{authLimit: 1000})
			e.mustCreate("acme")
			e.mustCreate("other")
			// Routes are rebuilt so ids (revoked token) match this env.
			for _, r := range v1Routes(e) {
				if r.method == rt.method && samePath(r.path, rt.path) {
					rt = r
				}
			}
			bad := []struct{ name, identity string }{
				{"no token", ""},
				{"malformed", "raw:Basic dXNlcjpwYXNz"},
				{"empty bearer", "raw:Bearer "},
				{"unknown", "raw:Bearer mcu_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
				{"expired", "expired"},
				{"revoked", "revoked"},
			}
			for _, b := range bad {
				w := e.do(b.identity, rt.method, rt.path, rt.body, nil)
				if w.Code != http.StatusUnauthorized {
					t.Fatalf("%s: got %d %s, want 401", b.name, w.Code, w.Body)
				}
				if got, want := w.Body.String(), `{"error":{"code":"unauthorized","message":"invalid credentials"}}`; got != want {
					t.Errorf("%s: body %s, want %s", b.name, got, want)
				}
			}
			// A token restricted to "other" is refused on acme and on the
			// global routes, even as admin.
			w := e.do("restricted", rt.method, rt.path, rt.body, nil)
			switch {
			case rt.global || isAcme(rt.path) || isCreateOf(rt, "acme2"):
				if w.Code != http.StatusForbidden {
					t.Errorf("restricted: got %d %s, want 403", w.Code, w.Body)
				}
			case rt.path == "/api/v1/configurations" && rt.method == "GET":
				var list []struct{ Name string }
				if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list) != 1 || list[0].Name != "other" {
					t.Errorf("restricted list: got %d %s, want only other", w.Code, w.Body)
				}
			}
			for _, id := range []string{"viewer", "operator", "admin"} {
				w := e.do(id, rt.method, rt.path, rt.body, nil)
				if rank[id] < rank[rt.min] {
					if w.Code != http.StatusForbidden {
						t.Errorf("%s: got %d %s, want 403", id, w.Code, w.Body)
					} else if code, _, _ := errorOf(t, w); code != "forbidden" {
						t.Errorf("%s: code %q, want forbidden", id, code)
					}
					continue
				}
				if w.Code != rt.ok {
					t.Errorf("%s: got %d %s, want %d", id, w.Code, w.Body, rt.ok)
				}
				// Destructive routes succeed once; the next role would see
				// a 404 or 409 that says nothing about permissions.
				if rt.method == "DELETE" || (rt.method == "POST" && rt.ok == http.StatusCreated && !rt.global) {
					break
				}
			}
		})
	}
}

func samePath(a, b string) bool {
	const tok = "/api/v1/tokens/"
	if len(a) > len(tok) && len(b) > len(tok) && a[:len(tok)] == tok && b[:len(tok)] == tok {
		return true
	}
	return a == b
}

func isAcme(p string) bool {
	const pre = "/api/v1/configurations/acme"
	return len(p) >= len(pre) && p[:len(pre)] == pre && (len(p) == len(pre) || p[len(pre)] == '/' || p[len(pre)] == '?')
}

func isCreateOf(rt route, name string) bool {
	b, ok := rt.body.(map[string]any)
	return ok && rt.method == "POST" && rt.path == "/api/v1/configurations" && b["name"] == name
}
