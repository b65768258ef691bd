package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"mimecast-ure/api"
	"mimecast-ure/plugin"
)

// Every fuzz target sends arbitrary bytes where the API reads JSON, to the
// real service, and checks the answer: never a panic, never a 5xx, and
// every error in the one shape.

func fuzzRoute(f *testing.F, identity, method, path string, seeds ...string) {
	e := newEnv(f, envOptions{authLimit: 1 << 30})
	e.mustCreate("acme")
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		w := e.doT(t, identity, method, path, body, nil)
		if w.Code >= 500 {
			t.Fatalf("status %d %s for input %q", w.Code, w.Body, body)
		}
		if w.Code >= 400 {
			var eb struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Fatalf("status %d without the error shape: %q", w.Code, w.Body)
			}
		}
	})
}

func configSeeds() []string {
	return []string{
		`{"name":"f1","mimecast":{"base_url":"https://us-api.mimecast.com","auth":"legacy","app_id":"a","app_key":"b","access_key":"c","secret_key":"ZGVm"}}`,
		`{"name":"f2","sync_interval":"15m","mimecast":{"base_url":"https://api.services.mimecast.com","auth":"oauth2","client_id":"x","client_secret":"y"},"score":{"mapping":{"A":800,"F":1}}}`,
		`{"name":"f3","mimecast":{"base_url":"http://h","auth":"oauth2","client_id":"x","client_secret":"y"},"events":{"enabled":true,"rules":{"clicked_phishing":{"weight":-1}},"custom_rules":[{"id":"r","log":"url","conditions":[{"field":"f","values":["v"]}],"user_field":"u"}]}}`,
		`{"name":"f4","mimecast":{"base_url":"http://h","auth":"oauth2","client_id":"x","client_secret":"y"},"controls":{"enabled":true,"internal_domains":["acme.com"],"targets":{"malicious_url_sent":{"okta_group":"g"}},"okta":{"base_url":"https://o","client_id":"c","private_key":"k"}}}`,
		`{"name":"f5","score":{"band":"weird","mapping":{"Z":5000}},"mimecast":{"base_url":"http://h","auth":"oauth2","client_id":"x","client_secret":"y"}}`,
		`{"name":"acme","sync_interval":12}`, `{"name":null}`, `[]`, `"x"`, `{"mimecast":[]}`, ``, `{`, `{"name":"\u0000"}`,
	}
}

func FuzzConfigurationCreate(f *testing.F) {
	fuzzRoute(f, "admin", "POST", "/api/v1/configurations", configSeeds()...)
}

func FuzzConfigurationUpdate(f *testing.F) {
	fuzzRoute(f, "admin", "PUT", "/api/v1/configurations/acme", append(configSeeds(),
		`{"mimecast":{"base_url":"http://127.0.0.1:1","auth":"legacy","app_id":"a","app_key":"********","access_key":"********","secret_key":"********"}}`)...)
}

func FuzzFetchScores(f *testing.F) {
	fuzzRoute(f, "viewer", "POST", "/api/v1/configurations/acme/fetch-scores",
		`{"records":[{"uid":"user0001@acme.com"}]}`, `{"records":[]}`, `{}`, ``, `{"records":[{"uid":"A@ACME.COM","type":"user","score":null}]}`,
		`{"records":[{"uid":""},{"uid":"<x@y>"}]}`, `{"records":null}`, `{"records":[1]}`, `null`,
		`{"records":[{}]}`, `{"records":[null]}`, `{"records":[{"uid":null}]}`)
}

func FuzzValidateAction(f *testing.F) {
	fuzzRoute(f, "operator", "POST", "/api/v1/configurations/acme/validate-action",
		`{"action":{"label":"Add to Group","value":"add","parameters":{"group":"create","name":"Risky users"}}}`,
		`{"action":{"value":"remove","parameters":{"group":"nope"}}}`, `{"action":{"value":"generate"}}`,
		`{"action":{"value":"add","parameters":{"group":"create","name":""}}}`, `{"action":null}`, `{"action":{"value":7}}`, `{}`)
}

func FuzzExecuteAction(f *testing.F) {
	e := newEnv(f, envOptions{authLimit: 1 << 30})
	e.mustCreate("acme")
	seeds := []string{
		`{"records":[{"uid":"user0001@acme.com"}],"action":{"label":"Add to Group","value":"add","parameters":{"group":"create","name":"Risky users"}}}`,
		`{"records":[{"uid":"user0001@acme.com"},{"uid":"bad"}],"action":{"value":"remove","parameters":{"group":"create","name":"Risky users"}}}`,
		`{"records":[{"uid":"x@acme.com"}],"action":{"value":"generate"}}`,
		`{"records":[{"uid":"x@acme.com"}],"action":{"value":"add","parameters":{"group":"no-such-id"}}}`,
		`{"records":[],"action":{}}`, `{"records":"x"}`, `{`,
		`{"records":[{}],"action":{"value":"generate"}}`, `{"records":[null],"action":{"value":"generate"}}`,
	}
	for i, s := range seeds {
		f.Add([]byte(s), []string{"", "k1", strings.Repeat("k", 300), "k\x00"}[i%4])
	}
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		h := http.Header{}
		if key != "" && !strings.ContainsAny(key, "\r\n") {
			h.Set("Idempotency-Key", key)
		}
		w := e.doT(t, "operator", "POST", "/api/v1/configurations/acme/execute-action", body, h)
		if w.Code >= 500 {
			t.Fatalf("status %d %s for %q (key %q)", w.Code, w.Body, body, key)
		}
	})
}

func FuzzTokenCreate(f *testing.F) {
	fuzzRoute(f, "admin", "POST", "/api/v1/tokens",
		`{"name":"ci","owner":"ops","role":"operator","expires_in":"720h","configurations":["acme"]}`,
		`{"name":"x","role":"viewer","expires_in":3600}`, `{"name":"x","role":"admin","expires_in":"-1h"}`,
		`{"name":"","role":""}`, `{"name":"x","role":"viewer","configurations":["a b"]}`, `{"role":["admin"]}`, `{}`)
}

// FuzzQueryParameters drives the parsed query parameters (since, limit,
// rule, format, cursor) of the event, target and audit routes.
func FuzzQueryParameters(f *testing.F) {
	e := newEnv(f, envOptions{authLimit: 1 << 30})
	e.mustCreate("acme")
	for _, s := range []string{"30d", "72h", "2025-01-01T00:00:00Z", "0d", "-1h", "99999999999d", "1e9h", "", "abc"} {
		f.Add(s, "10", "clicked_phishing")
	}
	f.Fuzz(func(t *testing.T, since, limit, rule string) {
		q := url.Values{"since": {since}, "limit": {limit}, "rule": {rule}, "cursor": {limit}, "user": {rule}}
		for _, p := range []string{"/api/v1/configurations/acme/events", "/api/v1/configurations/acme/targets", "/api/v1/audit"} {
			w := e.doT(t, "admin", "GET", p+"?"+q.Encode(), nil, nil)
			if w.Code >= 500 {
				t.Fatalf("%s: status %d %s for since=%q limit=%q rule=%q", p, w.Code, w.Body, since, limit, rule)
			}
		}
	})
}

// fuzzRecords and fuzzBody mirror the API's bodies: an embedded struct
// whose Go name must never reach an error's field.
type fuzzRecords struct {
	Records []struct {
		UID string `json:"uid"`
	} `json:"records"`
}

type fuzzBody struct {
	fuzzRecords
	Action *plugin.Action `json:"action"`
}

// FuzzDecode drives the body decoder alone, strict and lenient.
func FuzzDecode(f *testing.F) {
	for _, s := range configSeeds() {
		f.Add([]byte(s))
	}
	for _, s := range []string{`{"records":[{"uid":7}]}`, `{"records":"x"}`, `{"action":{"parameters":{"g":1}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, strict := range []bool{true, false} {
			var c plugin.Configuration
			if err := api.DecodeForTest(raw, &c, strict); err != nil {
				if code := plugin.ErrorCode(err); code != plugin.EINVALID {
					t.Fatalf("decode error code %q for %q", code, raw)
				}
			}
			var b fuzzBody
			if err := api.DecodeForTest(raw, &b, strict); err != nil {
				if code := plugin.ErrorCode(err); code != plugin.EINVALID {
					t.Fatalf("decode error code %q for %q", code, raw)
				}
				if pe, ok := err.(*plugin.Error); ok && strings.Contains(pe.Field, "fuzzRecords") && !strings.Contains(string(raw), "fuzzRecords") {
					t.Fatalf("field %q names a Go type for %q", pe.Field, raw)
				}
			}
		}
	})
}
