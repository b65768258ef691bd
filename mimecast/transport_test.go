package mimecast_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
)

// nxdomainServer answers every DNS query on a local UDP port with
// NXDOMAIN, so a lookup fails the way it does for a mistyped host, without
// the network. It returns the server's address.
func nxdomainServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			if len(q) < 12 {
				continue
			}
			// Header and question only: QR, RD, RA set, RCODE 3.
			end := 12
			for end < len(q) && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5 // the root label, QTYPE, QCLASS
			if end > len(q) {
				continue
			}
			resp := append([]byte(nil), q[:end]...)
			resp[2], resp[3] = 0x81, 0x83
			resp[4], resp[5] = 0, 1 // QDCOUNT
			for i := 6; i < 12; i++ {
				resp[i] = 0 // ANCOUNT, NSCOUNT, ARCOUNT
			}
			_, _ = pc.WriteTo(resp, addr)
		}
	}()
	return pc.LocalAddr().String()
}

// ipPort finds an IPv4 or bracketed IPv6 address with a port.
var ipPort = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+|\[[0-9a-fA-F:]+\]:\d+`)

// TestTransportErrorsAreCallerSafe: a failure to reach Mimecast is shown
// to the caller as the host and a generic reason, never with a resolver's
// address, a dial error or Go's error text; the log text keeps the cause.
func TestTransportErrorsAreCallerSafe(t *testing.T) {
	dnsAddr := nxdomainServer(t)
	// The resolver is told to ask whatever /etc/resolv.conf names, but
	// every query goes to the local NXDOMAIN server: the error text then
	// names the configured resolver's address, as it would in production.
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dnsAddr)
	}}
	dnsTransport := &http.Transport{DialContext: (&net.Dialer{Resolver: resolver, Timeout: 5 * time.Second}).DialContext}

	closed := newServer(t, http.NotFoundHandler())
	refusedURL := closed.URL
	closed.Close()
	plain := newServer(t, http.NotFoundHandler()) // https:// to a plain HTTP server
	untrusted := httptest.NewUnstartedServer(http.NotFoundHandler())
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	untrusted.StartTLS()
	t.Cleanup(untrusted.Close)

	tests := []struct {
		name       string
		base       string
		transport  http.RoundTripper
		auth       string
		wantPublic string
		wantLog    string
	}{
		{"DNS legacy", "https://no-such-tenant.mimecast-ure-test.invalid", dnsTransport, "legacy",
			"could not reach Mimecast at no-such-tenant.mimecast-ure-test.invalid (DNS lookup failed, 2 attempts)", "lookup no-such-tenant.mimecast-ure-test.invalid on "},
		{"DNS oauth2", "https://no-such-tenant.mimecast-ure-test.invalid", dnsTransport, "oauth2",
			"could not reach Mimecast at no-such-tenant.mimecast-ure-test.invalid (DNS lookup failed, 2 attempts)", "lookup no-such-tenant.mimecast-ure-test.invalid on "},
		{"refused", refusedURL, nil, "legacy",
			"could not reach Mimecast at " + strings.TrimPrefix(refusedURL, "http://") + " (connection refused, 2 attempts)", "connection refused"},
		{"TLS to plain HTTP", strings.Replace(plain.URL, "http://", "https://", 1), nil, "legacy",
			"could not reach Mimecast at " + strings.TrimPrefix(plain.URL, "http://") + " (TLS failed, 2 attempts)", "https"},
		{"TLS untrusted certificate", untrusted.URL, nil, "legacy",
			"could not reach Mimecast at " + strings.TrimPrefix(untrusted.URL, "https://") + " (TLS failed, 2 attempts)", "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newClient(t, tt.base, func(o *mimecast.Options) {
				o.MaxAttempts = 2
				o.Transport = tt.transport
				if tt.auth == "oauth2" {
					oauthOpts(o)
				}
			})
			_, err := c.Account(context.Background())
			var ae *mimecast.APIError
			if !errors.As(err, &ae) || ae.Kind != mimecast.KindUnavailable {
				t.Fatalf("got %v, want an unavailable *APIError", err)
			}
			if got := plugin.ErrorCode(err); got != plugin.EUNAVAILABLE {
				t.Errorf("code %q, want %q", got, plugin.EUNAVAILABLE)
			}
			msg := plugin.ErrorMessage(err)
			if pe := ae.PluginError(); pe.Message != msg {
				t.Errorf("PluginError %q, errors.As finds %q", pe.Message, msg)
			}
			if !strings.HasPrefix(msg, tt.wantPublic) {
				t.Errorf("message %q, want it to start %q", msg, tt.wantPublic)
			}
			host := strings.TrimPrefix(strings.TrimPrefix(tt.base, "https://"), "http://")
			if m := ipPort.FindString(strings.ReplaceAll(msg, host, "")); m != "" {
				t.Errorf("message %q shows the address %s", msg, m)
			}
			for _, bad := range []string{"dial tcp", "dial udp", "lookup no-such", " on ", "Post ", "x509", "tls:", "connect:", dnsAddr, "no such host", "i/o timeout"} {
				if strings.Contains(msg, bad) {
					t.Errorf("message %q contains %q", msg, bad)
				}
			}
			if !strings.Contains(strings.ToLower(err.Error()), tt.wantLog) {
				t.Errorf("Error() %q lacks the cause %q for the log", err, tt.wantLog)
			}
			for _, s := range testSecrets {
				if strings.Contains(err.Error(), s) || strings.Contains(msg, s) {
					t.Errorf("error text contains a secret")
				}
			}
		})
	}
}

// TestShortSecretsAreNotRedacted: a configured secret shorter than
// MinRedactLen is left alone in Mimecast's text (replacing it would garble
// words and show where it occurs), longer ones and the per-request
// signature are still replaced.
func TestShortSecretsAreNotRedacted(t *testing.T) {
	var lastSig string
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, lastSig, _ = strings.Cut(r.Header.Get("Authorization"), ":")
		writeJSON(w, 400, failBody(400, "err_directory_sync", "directory sync is off for "+testAppKey+" ("+lastSig+")"))
	}))
	c, _ := newClient(t, srv.URL, func(o *mimecast.Options) { o.AccessKey = "c" })
	_, err := c.Account(context.Background())
	if err == nil {
		t.Fatal("got nil error")
	}
	for name, text := range map[string]string{"Error": err.Error(), "message": plugin.ErrorMessage(err)} {
		if !strings.Contains(text, "directory sync is off") {
			t.Errorf("%s %q: Mimecast's words were garbled", name, text)
		}
		if strings.Contains(text, testAppKey) || lastSig == "" || strings.Contains(text, lastSig) {
			t.Errorf("%s %q: a long secret or the signature was not redacted", name, text)
		}
		if got, want := strings.Count(text, "[redacted]"), 2; got < want {
			t.Errorf("%s %q: %d redactions, want at least %d", name, text, got, want)
		}
	}
	if mimecast.MinRedactLen != 8 {
		t.Errorf("MinRedactLen = %d, want 8", mimecast.MinRedactLen)
	}
}
