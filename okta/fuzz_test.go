package okta

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"mimecast-ure/plugin"
)

// FuzzOktaError feeds arbitrary bytes to the two parsers of Okta's
// answers: the error body (both the management API and the OAuth shape)
// and the Link header. No panic; the error unwraps to a *plugin.Error with
// the code asked for; text stays bounded (every Okta string is clipped); a
// next link, when found, came from inside the header.
func FuzzOktaError(f *testing.F) {
	for _, s := range []struct {
		status     uint16
		body, link string
	}{
		{404, `{"errorCode":"E0000007","errorSummary":"Not found: Resource not found: x (User)","errorLink":"E0000007","errorId":"oae1","errorCauses":[]}`,
			`<https://o.example.com/api/v1/users?after=1&limit=2>; rel="next"`},
		{400, `{"errorCode":"E0000001","errorSummary":"Api validation failed","errorCauses":[{"errorSummary":"login: required"},{"errorSummary":null}]}`,
			`<https://o.example.com/api/v1/groups?limit=2>; rel="self", <https://o.example.com/api/v1/groups?after=x>; rel="next"`},
		{401, `{"error":"invalid_client","error_description":"The client_assertion signature is invalid."}`, `<>; rel=next`},
		{400, `{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof."}`, `<a>;rel="prev next"`},
		{429, `{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."}`, `<a`},
		{500, `<html>oops</html>`, `;;;,,,<>`},
		{403, `{"errorCode":7,"errorCauses":"x"}`, `<https://evil.example/next>; REL = "NEXT"`},
		{200, ``, ``}, {400, `null`, `>` + `<`}, {400, `{"error":{"a":1}}`, `<x>; rel`},
		{400, `{"errorSummary":"` + strings.Repeat("é", 400) + `"}`, strings.Repeat("<a>;rel=next,", 50)},
	} {
		f.Add(s.status, []byte(s.body), s.link)
	}
	codes := []string{plugin.EINVALID, plugin.ENOTFOUND, plugin.EUPSTREAMAUTH, plugin.ERATELIMITED, plugin.EUNAVAILABLE}
	f.Fuzz(func(t *testing.T, status uint16, body []byte, link string) {
		code := codes[int(status)%len(codes)]
		e := apiError(&response{status: int(status), header: http.Header{"Link": {link}}, body: body}, code, "Okta refused the call")
		var pe *plugin.Error
		if !errors.As(e, &pe) || pe.Code != code {
			t.Fatalf("apiError(%q) = %v, want a *plugin.Error with code %s", body, e, code)
		}
		if !strings.HasPrefix(pe.Message, "Okta refused the call") {
			t.Fatalf("message %q lost the caller's text", pe.Message)
		}
		// Every Okta string is clipped to 300 bytes (+ "…"); the code and
		// error id are not, so bound by the input (an invalid UTF-8 byte
		// decodes to a 3-byte U+FFFD).
		if got, limit := len(e.Error()), 3*len(body)+2000; got > limit {
			t.Fatalf("error text is %d bytes for a %d-byte body", got, len(body))
		}
		for _, s := range []string{e.Summary, e.OAuth, e.OAuthDesc} {
			if len(s) > 300+len("…") {
				t.Fatalf("field of %d bytes not clipped", len(s))
			}
		}
		next := nextLink([]string{link})
		if next != "" && !strings.Contains(link, "<"+next+">") {
			t.Fatalf("nextLink(%q) = %q, not a bracketed URL of the header", link, next)
		}
	})
}
