package oktatest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"mimecast-ure/internal/oktatest"
)

const cid = "0oaemulatortest00001"

// assertion signs a client assertion by hand (the emulator must not trust
// the client package to be right).
func assertion(t *testing.T, key crypto.Signer, alg jose.SignatureAlgorithm, aud, jti string, exp time.Duration) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s, err := josejwt.Signed(sig).Claims(josejwt.Claims{
		Issuer: cid, Subject: cid, Audience: josejwt.Audience{aud}, ID: jti,
		IssuedAt: josejwt.NewNumericDate(now), Expiry: josejwt.NewNumericDate(now.Add(exp)),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func proof(t *testing.T, key *ecdsa.PrivateKey, method, htu, nonce, token, jti string) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]any{"htm": method, "htu": htu, "iat": time.Now().Unix(), "jti": jti}
	if nonce != "" {
		c["nonce"] = nonce
	}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		c["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	s, err := josejwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func do(t *testing.T, method, u string, form url.Values, header map[string]string) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func tokenForm(a string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "scope": {"okta.groups.read okta.users.read"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
}

func TestTokenEndpointChecksTheAssertion(t *testing.T) {
	em := oktatest.Start(t, oktatest.Options{})
	k := oktatest.NewECKey(t)
	em.RegisterClient(cid, k.Public())
	aud := em.URL + "/oauth2/v1/token"
	other := oktatest.NewECKey(t)

	good := assertion(t, k, jose.ES256, aud, "jti-1", 5*time.Minute)
	if a := do(t, "POST", aud, tokenForm(good), nil); a.status != 200 || a.body["token_type"] != "Bearer" || a.body["access_token"] == "" {
		t.Fatalf("good assertion: %d %s", a.status, a.raw)
	}
	tests := []struct {
		name, assertion, want string
		form                  func(url.Values)
	}{
		{"replayed jti", good, "already been used", nil},
		{"wrong audience", assertion(t, k, jose.ES256, em.URL+"/oauth2/default/v1/token", "jti-2", 5*time.Minute), "audience", nil},
		{"expired", assertion(t, k, jose.ES256, aud, "jti-3", -time.Minute), "expired", nil},
		{"exp too far", assertion(t, k, jose.ES256, aud, "jti-4", 2*time.Hour), "too far", nil},
		{"no jti", assertion(t, k, jose.ES256, aud, "", 5*time.Minute), "no jti", nil},
		{"wrong key", assertion(t, other, jose.ES256, aud, "jti-5", 5*time.Minute), "signature", nil},
		{"garbage", "a.b.c", "malformed", nil},
		{"wrong grant", assertion(t, k, jose.ES256, aud, "jti-6", 5*time.Minute), "unsupported_grant_type", func(f url.Values) { f.Set("grant_type", "password") }},
		{"scope not granted", assertion(t, k, jose.ES256, aud, "jti-7", 5*time.Minute), "invalid_scope", func(f url.Values) { f.Set("scope", "okta.apps.manage") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tokenForm(tt.assertion)
			if tt.form != nil {
				tt.form(f)
			}
			a := do(t, "POST", aud, f, nil)
			if a.status == 200 || !strings.Contains(string(a.raw), tt.want) {
				t.Errorf("answer %d %s, want a refusal mentioning %q", a.status, a.raw, tt.want)
			}
			if _, ok := a.body["error"]; !ok {
				t.Errorf("answer %s is not an OAuth error body", a.raw)
			}
		})
	}
	if a := do(t, "POST", aud, tokenForm(good), nil); a.body["error"] != "invalid_client" {
		t.Errorf("replay answer = %s, want invalid_client", a.raw)
	}
}

func TestDPoPNonceAndBinding(t *testing.T) {
	em := oktatest.Start(t, oktatest.Options{RequireDPoP: true})
	k := oktatest.NewRSAKey(t)
	em.RegisterClient(cid, k.Public())
	g := em.AddGroup(oktatest.Group{Name: "G"})
	aud := em.URL + "/oauth2/v1/token"
	dk := oktatest.NewECKey(t)

	a := do(t, "POST", aud, tokenForm(assertion(t, k, jose.RS256, aud, "a1", time.Minute)), nil)
	if a.status != 400 || a.body["error"] != "invalid_dpop_proof" {
		t.Fatalf("no proof: %d %s", a.status, a.raw)
	}
	a = do(t, "POST", aud, tokenForm(assertion(t, k, jose.RS256, aud, "a2", time.Minute)), map[string]string{"DPoP": proof(t, dk, "POST", aud, "", "", "p1")})
	nonce := a.header.Get("DPoP-Nonce")
	if a.status != 400 || a.body["error"] != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("proof without nonce: %d %s nonce %q", a.status, a.raw, nonce)
	}
	a = do(t, "POST", aud, tokenForm(assertion(t, k, jose.RS256, aud, "a3", time.Minute)), map[string]string{"DPoP": proof(t, dk, "POST", aud+"x", nonce, "", "p2")})
	if a.body["error"] != "invalid_dpop_proof" || !strings.Contains(string(a.raw), "htu") {
		t.Fatalf("wrong htu: %d %s", a.status, a.raw)
	}
	a = do(t, "POST", aud, tokenForm(assertion(t, k, jose.RS256, aud, "a4", time.Minute)), map[string]string{"DPoP": proof(t, dk, "POST", aud, nonce, "", "p3")})
	tok, _ := a.body["access_token"].(string)
	if a.status != 200 || a.body["token_type"] != "DPoP" || tok == "" {
		t.Fatalf("good proof: %d %s", a.status, a.raw)
	}

	target := em.URL + "/api/v1/groups/" + g.ID
	tests := []struct {
		name   string
		header map[string]string
		status int
	}{
		{"bound token as bearer", map[string]string{"Authorization": "Bearer " + tok}, 401},
		{"no proof", map[string]string{"Authorization": "DPoP " + tok}, 400},
		{"proof without ath", map[string]string{"Authorization": "DPoP " + tok, "DPoP": proof(t, dk, "GET", target, "", "", "r1")}, 400},
		{"proof for another method", map[string]string{"Authorization": "DPoP " + tok, "DPoP": proof(t, dk, "PUT", target, "", tok, "r2")}, 400},
		{"proof from another key", map[string]string{"Authorization": "DPoP " + tok, "DPoP": proof(t, oktatest.NewECKey(t), "GET", target, "", tok, "r3")}, 400},
		{"good", map[string]string{"Authorization": "DPoP " + tok, "DPoP": proof(t, dk, "GET", target, "", tok, "r4")}, 200},
		{"replayed proof", map[string]string{"Authorization": "DPoP " + tok, "DPoP": proof(t, dk, "GET", target, "", tok, "r4")}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, "GET", target, nil, tt.header)
			if a.status != tt.status {
				t.Errorf("status = %d (%s), want %d", a.status, a.raw, tt.status)
			}
			if tt.status != 200 && a.body["errorCode"] == nil {
				t.Errorf("answer %s is not an Okta error body", a.raw)
			}
		})
	}
	if em.DPoPTokens() != 1 {
		t.Errorf("DPoP tokens = %d, want 1", em.DPoPTokens())
	}
}

// bearer returns an access token for a registered EC client.
func bearer(t *testing.T, em *oktatest.Emulator, scopes ...string) string {
	t.Helper()
	k := oktatest.NewECKey(t)
	em.RegisterClient(cid, k.Public(), scopes...)
	aud := em.URL + "/oauth2/v1/token"
	f := tokenForm(assertion(t, k, jose.ES256, aud, fmt.Sprint(time.Now().UnixNano()), time.Minute))
	f.Set("scope", strings.Join(scopes, " "))
	a := do(t, "POST", aud, f, nil)
	tok, _ := a.body["access_token"].(string)
	if tok == "" {
		t.Fatalf("token: %d %s", a.status, a.raw)
	}
	return tok
}

func TestListsPageWithLinks(t *testing.T) {
	em := oktatest.Start(t, oktatest.Options{})
	tok := bearer(t, em, "okta.groups.read", "okta.users.read")
	g := em.AddGroup(oktatest.Group{Name: "Big"})
	for i := range 5 {
		u := em.AddUser(oktatest.User{Login: fmt.Sprintf("u%d@acme.com", i)})
		em.AddMember(g.ID, u.ID)
	}
	next := em.URL + "/api/v1/groups/" + g.ID + "/users?limit=2"
	var logins []string
	pages := 0
	for next != "" {
		a := do(t, "GET", next, nil, map[string]string{"Authorization": "Bearer " + tok})
		if a.status != 200 {
			t.Fatalf("page: %d %s", a.status, a.raw)
		}
		var users []struct {
			Profile struct{ Login string } `json:"profile"`
		}
		if err := json.Unmarshal(a.raw, &users); err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			logins = append(logins, u.Profile.Login)
		}
		pages++
		next = ""
		for _, l := range a.header.Values("Link") {
			if strings.HasSuffix(l, `rel="next"`) {
				next = l[1:strings.Index(l, ">")]
			}
		}
		for _, h := range []string{"X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset"} {
			if _, err := strconv.ParseInt(a.header.Get(h), 10, 64); err != nil {
				t.Errorf("header %s = %q", h, a.header.Get(h))
			}
		}
	}
	if pages != 3 || len(logins) != 5 || logins[4] != "u4@acme.com" {
		t.Errorf("pages %d, logins %v; want 3 pages of u0..u4", pages, logins)
	}
	if em.Calls(oktatest.EndpointMembers) != 3 {
		t.Errorf("calls = %d, want 3", em.Calls(oktatest.EndpointMembers))
	}
}

func TestSearchScopesFaultsAndErrors(t *testing.T) {
	em := oktatest.Start(t, oktatest.Options{RateLimit: 3})
	tok := bearer(t, em, "okta.groups.read", "okta.users.read")
	auth := map[string]string{"Authorization": "Bearer " + tok}
	em.AddGroup(oktatest.Group{Name: "Risky Senders"})
	em.AddGroup(oktatest.Group{Name: "Risky Senders 2"})
	q := url.Values{"search": {`profile.name eq "risky senders"`}}
	a := do(t, "GET", em.URL+"/api/v1/groups?"+q.Encode(), nil, auth)
	var gs []map[string]any
	_ = json.Unmarshal(a.raw, &gs)
	if a.status != 200 || len(gs) != 1 {
		t.Errorf("search eq: %d %s", a.status, a.raw)
	}
	// Writing needs okta.groups.manage.
	a = do(t, "PUT", em.URL+"/api/v1/groups/00gx/users/00ux", nil, auth)
	if a.status != 403 || a.body["errorCode"] != "E0000006" {
		t.Errorf("PUT without manage scope: %d %s", a.status, a.raw)
	}
	a = do(t, "GET", em.URL+"/api/v1/users/nobody@acme.com", nil, auth)
	if a.status != 404 || a.body["errorCode"] != "E0000007" || !strings.Contains(a.body["errorSummary"].(string), "(User)") || a.body["errorId"] == "" {
		t.Errorf("unknown user: %d %s", a.status, a.raw)
	}
	// The per-minute bucket (3) is spent: 429 with E0000047.
	a = do(t, "GET", em.URL+"/api/v1/users/nobody@acme.com", nil, auth)
	a = do(t, "GET", em.URL+"/api/v1/users/nobody@acme.com", nil, auth)
	a = do(t, "GET", em.URL+"/api/v1/users/nobody@acme.com", nil, auth)
	if a.status != 429 || a.body["errorCode"] != "E0000047" || a.header.Get("X-Rate-Limit-Remaining") != "0" {
		t.Errorf("over the limit: %d %s", a.status, a.raw)
	}
	em.Fail(oktatest.EndpointGroup, oktatest.Fault{Status: 503, Times: 2})
	for i, want := range []int{503, 503, 404} {
		if a := do(t, "GET", em.URL+"/api/v1/groups/00gmissing", nil, auth); a.status != want {
			t.Errorf("call %d: status %d, want %d", i, a.status, want)
		}
	}
	if a := do(t, "GET", em.URL+"/api/v1/groups/00gmissing/users", nil, nil); a.status != 401 || a.body["errorCode"] != "E0000011" {
		t.Errorf("no token: %d %s", a.status, a.raw)
	}
}
