package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"mimecast-ure/api"
	"mimecast-ure/plugin"
)

// TestMetricsLabelsAreBounded: neither an invented method nor a random
// path adds series to /metrics, and matched routes are labelled by their
// template.
func TestMetricsLabelsAreBounded(t *testing.T) {
	l := newLayer(t, api.Options{})
	for i := 0; i < 5; i++ {
		l.do(t, fmt.Sprintf("ZZ%d", 1000+i), "/healthz", "", "", nil)
		l.do(t, "GET", fmt.Sprintf("/no/such/path-%d", 1000+i), "", "", nil)
	}
	l.do(t, "DELETE", "/healthz", "", "", nil)
	l.do(t, "GET", "/api/v1/configurations/acme-secret-name", "Bearer "+fakeAdmin, "", nil)
	body := l.do(t, "GET", "/metrics", "", "", nil).Body.String()
	for _, bad := range []string{"ZZ10", "path-10", "acme-secret-name"} {
		if strings.Contains(body, bad) {
			t.Errorf("metrics contain the client-chosen %q:\n%s", bad, grepLines(body, "ure_http_request_duration_seconds_count"))
		}
	}
	for _, want := range []string{
		`ure_http_request_duration_seconds_count{method="OTHER",route="unmatched",status="405"} 5`,
		`ure_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"} 5`,
		`ure_http_request_duration_seconds_count{method="DELETE",route="unmatched",status="405"} 1`,
		`ure_http_request_duration_seconds_count{method="GET",route="/api/v1/configurations/:name",status="200"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(body, "ure_http_request_duration_seconds_count"))
		}
	}
}

// TestValidTokenFromThrottledAddress: a valid token is served from an
// address that is over the failure threshold, valid requests do not count
// as failures, and the token is looked up on every request, refused or not.
func TestValidTokenFromThrottledAddress(t *testing.T) {
	l := newLayer(t, api.Options{AuthFailureLimit: 3, Manifest: []byte(`{"id":"x"}`)})
	get := func(auth string) int {
		t.Helper()
		return l.do(t, "GET", "/api/v1/manifest", auth, "", nil).Code
	}
	// Valid requests never count towards the threshold.
	for i := 0; i < 20; i++ {
		if got := get("Bearer " + fakeAdmin); got != 200 {
			t.Fatalf("valid request %d: got %d", i+1, got)
		}
	}
	for i := 0; i < 3; i++ {
		if got := get("Bearer wrong"); got != 401 {
			t.Fatalf("failure %d: got %d, want 401", i+1, got)
		}
	}
	for i := 0; i < 10; i++ {
		if got := get("Bearer wrong"); got != 429 {
			t.Fatalf("failure over the threshold: got %d, want 429", got)
		}
		if got := get("Bearer " + fakeAdmin); got != 200 {
			t.Fatalf("valid token from the throttled address: got %d, want 200", got)
		}
	}
	if got, want := l.host.authCalls, 20+3+20; got != want {
		t.Errorf("token lookups: got %d, want %d (one per request, 429s included)", got, want)
	}
	if got := len(l.host.failures); got != 3 {
		t.Errorf("audited failures: got %d, want 3", got)
	}
	if n := strings.Count(l.logs.String(), `"alert":true`); n != 1 {
		t.Errorf("alert lines: got %d, want 1", n)
	}
}

// TestDecodeFieldPaths: errors name the field by its JSON path, never by
// a Go name, and say in plain words what the value must be.
func TestDecodeFieldPaths(t *testing.T) {
	l := newLayer(t, api.Options{})
	const cfgs = "/api/v1/configurations"
	tests := []struct {
		name, method, path, body string
		field                    string
		msgHas                   string
		msgLacks                 string
	}{
		{"execute records type", "POST", cfgs + "/acme/execute-action", `{"records":"x","action":{"value":"generate"}}`, "records", "must be an array, not a string", ""},
		{"execute uid type", "POST", cfgs + "/acme/execute-action", `{"records":[{"uid":7}],"action":{"value":"generate"}}`, "records.uid", "must be a string, not a number", ""},
		{"validate uid type", "POST", cfgs + "/acme/validate-action", `{"records":[{"uid":true}],"action":{"value":"generate"}}`, "records.uid", "must be a string, not a boolean", ""},
		{"page size too big", "POST", cfgs, `{"name":"x","mimecast":{"page_size":1e20}}`, "mimecast.page_size", "must be an integer in range", "not number"},
		{"page size fraction", "POST", cfgs, `{"name":"x","mimecast":{"page_size":1.5}}`, "mimecast.page_size", "must be an integer in range", ""},
		{"page size string", "POST", cfgs, `{"name":"x","mimecast":{"page_size":"many"}}`, "mimecast.page_size", "must be an integer, not a string", ""},
		{"name number", "POST", cfgs, `{"name":5}`, "name", "must be a string, not a number", ""},
		{"map value", "POST", cfgs, `{"name":"x","events":{"rules":{"clicked_phishing":{"weight":"heavy"}}}}`, "events.rules.clicked_phishing.weight", "must be a number, not a string", ""},
		{"half life", "POST", cfgs, `{"name":"x","events":{"enabled":true,"half_life":"9999999h"}}`, "events.half_life", "9999999h", ""},
		{"sync interval", "POST", cfgs, `{"name":"x","sync_interval":"soon"}`, "sync_interval", "soon", ""},
		{"duration case-insensitive key", "POST", cfgs, `{"name":"x","Sync_Interval":"soon"}`, "sync_interval", "soon", ""},
		{"first bad duration in order", "POST", cfgs, `{"name":"x","mimecast":{"timeout":"never"},"events":{"half_life":"bad"}}`, "mimecast.timeout", "never", ""},
		{"duration type", "POST", cfgs, `{"name":"x","events":{"interval":true}}`, "events.interval", "", ""},
		{"token expiry", "POST", "/api/v1/tokens", `{"name":"x","owner":"o","role":"viewer","expires_in":"forever"}`, "expires_in", "forever", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := l.do(t, tt.method, tt.path, "Bearer "+fakeAdmin, tt.body, nil)
			if w.Code != 400 {
				t.Fatalf("got %d %s, want 400", w.Code, w.Body)
			}
			_, msg, field := errorOf(t, w)
			if field != tt.field {
				t.Errorf("field %q, want %q (message %q)", field, tt.field, msg)
			}
			if !strings.Contains(msg, tt.msgHas) {
				t.Errorf("message %q, want it to contain %q", msg, tt.msgHas)
			}
			if tt.msgLacks != "" && strings.Contains(msg, tt.msgLacks) {
				t.Errorf("message %q contains %q", msg, tt.msgLacks)
			}
			if strings.Contains(msg+field, "Body") || strings.Contains(msg+field, "Go struct") {
				t.Errorf("Go names leak: field %q message %q", field, msg)
			}
		})
	}
}

// TestDecodeTopLevelType: a body of the wrong kind names no field.
func TestDecodeTopLevelType(t *testing.T) {
	var c plugin.Configuration
	err := api.DecodeForTest([]byte(`[1]`), &c, true)
	var pe *plugin.Error
	if !asPluginError(err, &pe) || pe.Field != "" || !strings.Contains(pe.Message, "must be an object, not an array") {
		t.Fatalf("got %#v", err)
	}
}

func asPluginError(err error, pe **plugin.Error) bool {
	p, ok := err.(*plugin.Error)
	*pe = p
	return ok
}

// TestErrorLog: net/http's internal errors become warn-level zerolog lines,
// through the helper and through Server.HTTPServer.
func TestErrorLog(t *testing.T) {
	var buf bytes.Buffer
	api.ErrorLog(zerolog.New(&buf)).Printf("http: TLS handshake error from %s: EOF\n", "192.0.2.7:5555")
	got := buf.String()
	for _, want := range []string{`"level":"warn"`, `"source":"net/http"`, `"message":"http: TLS handshake error from 192.0.2.7:5555: EOF"`} {
		if !strings.Contains(got, want) {
			t.Errorf("ErrorLog line %q lacks %s", got, want)
		}
	}
	if strings.Count(got, "\n") != 1 {
		t.Errorf("ErrorLog wrote %d lines, want 1: %q", strings.Count(got, "\n"), got)
	}

	l := newLayer(t, api.Options{})
	hs := l.srv.HTTPServer("127.0.0.1:0")
	if hs.ErrorLog == nil {
		t.Fatal("HTTPServer: ErrorLog is nil")
	}
	hs.ErrorLog.Print("http: TLS handshake error from 192.0.2.8:1: bad certificate")
	if logs := l.logs.String(); !strings.Contains(logs, `"level":"warn"`) || !strings.Contains(logs, "192.0.2.8:1: bad certificate") {
		t.Errorf("HTTPServer's ErrorLog did not reach the server's logger: %q", logs)
	}
	// Through a real TLS handshake failure: a plain HTTP request to a TLS server.
	var tlsBuf syncBuffer
	ts := httptest.NewUnstartedServer(http.NotFoundHandler())
	ts.Config.ErrorLog = api.ErrorLog(zerolog.New(&tlsBuf))
	ts.StartTLS()
	defer ts.Close()
	resp, err := http.Get("http://" + ts.Listener.Addr().String())
	if err == nil {
		resp.Body.Close()
	}
	ts.Close()
	if logs := tlsBuf.String(); !strings.Contains(logs, "TLS handshake error") || !strings.Contains(logs, `"level":"warn"`) {
		t.Errorf("a failed TLS handshake was not logged at warn: %q", logs)
	}
}
