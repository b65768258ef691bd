package mimecast_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
)

const testToken = "tok-VERY-SECRET-abc123"

// echoAll is what a hostile or buggy server might say back: every header
// and the body it received.
func echoAll(r *http.Request) string {
	raw, _ := io.ReadAll(r.Body)
	var b strings.Builder
	for k, v := range r.Header {
		fmt.Fprintf(&b, "%s=%s ", k, strings.Join(v, ","))
	}
	b.Write(raw)
	return strings.NewReplacer(`"`, `'`, `\`, `/`).Replace(b.String())
}

func failBody(status int, code, msg string) []byte {
	return fmt.Appendf(nil, `{"meta":{"status":%d},"data":[],"fail":[{"key":{"query":%q},"errors":[{"code":%q,"message":%q,"field":%q}]}]}`,
		status, msg, code, msg, msg)
}

// leakReply answers one scenario, echoing the request into the answer.
func leakReply(scenario string, creds *syncList) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			_, cred, _ := strings.Cut(a, ":")
			if strings.HasPrefix(a, "Bearer ") {
				cred = strings.TrimPrefix(a, "Bearer ")
			}
			creds.add(cred)
		}
		echo := echoAll(r)
		if r.URL.Path == "/oauth/token" {
			if scenario == "token rejected" {
				writeJSON(w, 401, fmt.Appendf(nil, `{"error":{"code":"invalid_client","message":%q}}`, echo))
				return
			}
			writeJSON(w, 200, fmt.Appendf(nil, `{"access_token":%q,"token_type":"Bearer","expires_in":1799}`, testToken))
			return
		}
		switch scenario {
		case "invalid credentials":
			writeJSON(w, 401, failBody(401, "err_xdk_invalid_signature", echo))
		case "forbidden":
			writeJSON(w, 403, failBody(403, "err_xdk_forbidden", echo))
		case "binding expired":
			writeJSON(w, 418, failBody(418, "err_xdk_binding_expired", echo))
		case "rate limited":
			writeJSON(w, 429, failBody(429, "err_rate", echo), "X-RateLimit-Reset", "3600000")
		case "not found":
			writeJSON(w, 404, failBody(404, "err_not_found", echo))
		case "validation":
			writeJSON(w, 200, failBody(200, "err_validation_blank", echo))
		case "rejected":
			writeJSON(w, 400, failBody(400, echo, echo))
		case "unavailable":
			writeJSON(w, 500, failBody(500, "err_server", echo))
		case "broken JSON":
			writeJSON(w, 200, []byte(`{"data":[`+echo))
		case "timeout":
			time.Sleep(200 * time.Millisecond)
		case "token rejected", "connection refused":
			writeJSON(w, 200, accountOK)
		}
	}
}

func TestErrorsNeverContainSecrets(t *testing.T) {
	wantKind := map[string]mimecast.Kind{
		"invalid credentials": mimecast.KindInvalidCredentials, "forbidden": mimecast.KindForbidden,
		"binding expired": mimecast.KindBindingExpired, "rate limited": mimecast.KindRateLimited,
		"not found": mimecast.KindNotFound, "validation": mimecast.KindValidation, "rejected": mimecast.KindRejected,
		"unavailable": mimecast.KindUnavailable, "broken JSON": mimecast.KindUnavailable, "timeout": mimecast.KindUnavailable,
		"connection refused": mimecast.KindUnavailable, "token rejected": mimecast.KindInvalidCredentials,
	}
	for _, auth := range []string{"legacy", "oauth2"} {
		for scenario, kind := range wantKind {
			if scenario == "token rejected" && auth == "legacy" {
				continue
			}
			t.Run(auth+"/"+scenario, func(t *testing.T) {
				creds := &syncList{}
				srv := newServer(t, leakReply(scenario, creds))
				base := srv.URL
				if scenario == "connection refused" {
					srv.Close()
				}
				c, _ := newClient(t, base, func(o *mimecast.Options) {
					if auth == "oauth2" {
						oauthOpts(o)
					}
					o.MaxAttempts = 2
					if scenario == "timeout" { // only here: a loaded machine must not time out the others
						o.Timeout = 50 * time.Millisecond
					}
				})
				_, err := c.FindGroups(context.Background(), "x")
				var ae *mimecast.APIError
				if !errors.As(err, &ae) || ae.Kind != kind {
					t.Fatalf("got %v, want kind %s", err, kind)
				}
				texts := []string{err.Error(), fmt.Sprintf("%v|%+v|%#v", err, err, ae), plugin.ErrorMessage(err), ae.Message, ae.Code, ae.Field}
				secrets := append(append([]string{testToken}, testSecrets...), creds.all()...)
				for _, text := range texts {
					for _, s := range secrets {
						if strings.Contains(text, s) {
							t.Errorf("error text contains a secret: %q", text)
						}
					}
				}
				if scenario != "connection refused" && scenario != "token rejected" && len(creds.all()) == 0 {
					t.Errorf("no credential seen by the server")
				}
				if strings.Contains(err.Error(), "MC "+testAccessKey) || strings.Contains(err.Error(), "Bearer tok") {
					t.Errorf("error text carries an Authorization header: %q", err)
				}
			})
		}
	}
}

type syncList struct {
	mu sync.Mutex
	v  []string
}

func (l *syncList) add(s string) { l.mu.Lock(); l.v = append(l.v, s); l.mu.Unlock() }
func (l *syncList) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.v...)
}

func TestErrorsNeverContainTheSignature(t *testing.T) {
	// The server echoes the Authorization header's signature alone.
	var lastSig string
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, sig, _ := strings.Cut(r.Header.Get("Authorization"), ":")
		lastSig = sig
		writeJSON(w, 401, failBody(401, "err_xdk_invalid_signature", "signature "+sig+" is wrong"))
	}))
	c, _ := newClient(t, srv.URL, nil)
	_, err := c.Account(context.Background())
	if err == nil || lastSig == "" {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), lastSig) || strings.Contains(plugin.ErrorMessage(err), lastSig) {
		t.Errorf("error text contains the signature: %q", err)
	}
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("got %q, want the signature replaced by [redacted]", err)
	}
}
