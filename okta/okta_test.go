package okta_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"mimecast-ure/internal/oktatest"
	"mimecast-ure/okta"
	"mimecast-ure/plugin"
)

const clientID = "0oatestclient0000001"

// fakeClock is shared by the emulator and the client.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sleeper records waits and advances the clock instead of sleeping.
type sleeper struct {
	mu    sync.Mutex
	clock *fakeClock
	waits []time.Duration
}

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	s.clock.Advance(d)
	return ctx.Err()
}

func (s *sleeper) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// recorder keeps every secret the client sends (assertions, proofs,
// tokens) so tests can check none shows up in an error.
type recorder struct {
	mu      sync.Mutex
	secrets []string
	next    http.RoundTripper
	replay  bool // send every token request twice, returning the replay's answer
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.mu.Lock()
	if v := req.Header.Get("Authorization"); v != "" {
		_, tok, _ := strings.Cut(v, " ")
		r.secrets = append(r.secrets, tok)
	}
	if v := req.Header.Get("DPoP"); v != "" {
		r.secrets = append(r.secrets, v)
	}
	if form, err := url.ParseQuery(string(body)); err == nil && form.Get("client_assertion") != "" {
		r.secrets = append(r.secrets, form.Get("client_assertion"))
	}
	r.mu.Unlock()
	if r.replay && strings.HasSuffix(req.URL.Path, "/oauth2/v1/token") {
		first, err := r.next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		first.Body.Close()
		req2 := req.Clone(req.Context())
		req2.Body = io.NopCloser(bytes.NewReader(body))
		return r.next.RoundTrip(req2)
	}
	return r.next.RoundTrip(req)
}

func (r *recorder) Secrets() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.secrets...)
}

type fixture struct {
	em    *oktatest.Emulator
	c     *okta.Client
	clock *fakeClock
	sleep *sleeper
	rec   *recorder
	key   string
}

// setup starts an emulator with a registered RSA client (PKCS#1) and a
// client with a shared fake clock; mutate adjusts the client options.
func setup(t *testing.T, emOpts oktatest.Options, mutate func(*okta.Options)) *fixture {
	t.Helper()
	f := &fixture{clock: newClock()}
	f.sleep = &sleeper{clock: f.clock}
	if emOpts.Now == nil {
		emOpts.Now = f.clock.Now
	}
	f.em = oktatest.Start(t, emOpts)
	k := oktatest.NewRSAKey(t)
	f.em.RegisterClient(clientID, k.Public())
	f.key = oktatest.PKCS1PEM(k)
	f.rec = &recorder{next: http.DefaultTransport}
	opts := okta.Options{
		BaseURL: f.em.URL, ClientID: clientID, PrivateKey: f.key,
		HTTPClient: &http.Client{Transport: f.rec},
		Now:        f.clock.Now, Sleep: f.sleep.Sleep,
	}
	if mutate != nil {
		mutate(&opts)
	}
	c, err := okta.New(opts)
	if err != nil {
		t.Fatalf("okta.New: %v", err)
	}
	f.c = c
	return f
}

// checkNoSecrets fails when err's text holds any secret sent so far or
// the private key.
func (f *fixture) checkNoSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	text := err.Error() + " " + plugin.ErrorMessage(err)
	for _, s := range append(f.rec.Secrets(), f.key, keyBody(f.key)) {
		if len(s) > 8 && strings.Contains(text, s) {
			t.Errorf("error text %q contains a secret", text)
		}
	}
}

func keyBody(pem string) string {
	lines := strings.Split(strings.TrimSpace(pem), "\n")
	if len(lines) < 3 {
		return pem
	}
	return lines[1]
}

func wantCode(t *testing.T, err error, code string) *plugin.Error {
	t.Helper()
	var pe *plugin.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *plugin.Error", err)
	}
	if pe.Code != code {
		t.Fatalf("code = %q (%v), want %q", pe.Code, err, code)
	}
	return pe
}

func TestTokenWithEachKeyFormat(t *testing.T) {
	rsaKey := oktatest.NewRSAKey(t)
	ecKey := oktatest.NewECKey(t)
	tests := []struct {
		name    string
		pub     crypto.PublicKey
		key     string
		keyID   string
		wantAlg string
		wantKid string
	}{
		{"rsa pkcs1", rsaKey.Public(), oktatest.PKCS1PEM(rsaKey), "", "RS256", ""},
		{"rsa pkcs8", rsaKey.Public(), oktatest.PKCS8PEM(t, rsaKey), "", "RS256", ""},
		{"rsa pkcs1 escaped newlines", rsaKey.Public(), strings.ReplaceAll(oktatest.PKCS1PEM(rsaKey), "\n", `\n`), "", "RS256", ""},
		{"rsa jwk", rsaKey.Public(), oktatest.PrivateJWK(t, rsaKey, "rsa-2026"), "", "RS256", "rsa-2026"},
		{"rsa pem with key id", rsaKey.Public(), oktatest.PKCS1PEM(rsaKey), "kid-1", "RS256", "kid-1"},
		{"ec pkcs8", ecKey.Public(), oktatest.PKCS8PEM(t, ecKey), "", "ES256", ""},
		{"ec sec1", ecKey.Public(), oktatest.SEC1PEM(t, ecKey), "", "ES256", ""},
		{"ec jwk", ecKey.Public(), oktatest.PrivateJWK(t, ecKey, "ec-2026"), "", "ES256", "ec-2026"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			em := oktatest.Start(t, oktatest.Options{})
			em.RegisterClient(clientID, tt.pub)
			if err := okta.ParsePrivateKey(tt.key); err != nil {
				t.Fatalf("ParsePrivateKey: %v", err)
			}
			c, err := okta.New(okta.Options{BaseURL: em.URL, ClientID: clientID, PrivateKey: tt.key, KeyID: tt.keyID})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if err := c.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			alg, kid := em.LastAssertion()
			if alg != tt.wantAlg || kid != tt.wantKid {
				t.Errorf("assertion alg, kid = %q, %q; want %q, %q", alg, kid, tt.wantAlg, tt.wantKid)
			}
			// The token is cached: a second Ping asks for nothing.
			if err := c.Ping(context.Background()); err != nil {
				t.Fatalf("second Ping: %v", err)
			}
			if got := em.Calls(oktatest.EndpointToken); got != 1 {
				t.Errorf("token calls = %d, want 1", got)
			}
		})
	}
}

func TestParsePrivateKeyRefusesBadKeys(t *testing.T) {
	rsaKey := oktatest.NewRSAKey(t)
	good := oktatest.PKCS1PEM(rsaKey)
	tests := []struct{ name, key string }{
		{"empty", ""},
		{"garbage", "not a key at all"},
		{"truncated pem", good[:200]},
		{"public key pem", "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"},
		{"public jwk", `{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}`},
		{"bad json", `{"kty":`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := okta.ParsePrivateKey(tt.key)
			pe := wantCode(t, err, plugin.EINVALID)
			if pe.Field != "controls.okta.private_key" {
				t.Errorf("field = %q, want controls.okta.private_key", pe.Field)
			}
			if tt.key != "" && len(tt.key) > 20 && strings.Contains(err.Error(), tt.key[20:40]) {
				t.Errorf("error %q quotes the key", err)
			}
		})
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	key := oktatest.PKCS1PEM(oktatest.NewRSAKey(t))
	tests := []struct {
		name  string
		opts  okta.Options
		field string
	}{
		{"no url", okta.Options{ClientID: "x", PrivateKey: key}, "controls.okta.base_url"},
		{"ftp url", okta.Options{BaseURL: "ftp://acme", ClientID: "x", PrivateKey: key}, "controls.okta.base_url"},
		{"no client id", okta.Options{BaseURL: "https://acme.okta.com", PrivateKey: key}, "controls.okta.client_id"},
		{"bad key", okta.Options{BaseURL: "https://acme.okta.com", ClientID: "x", PrivateKey: "nope"}, "controls.okta.private_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := okta.New(tt.opts)
			if pe := wantCode(t, err, plugin.EINVALID); pe.Field != tt.field {
				t.Errorf("field = %q, want %q", pe.Field, tt.field)
			}
		})
	}
}

func TestDPoP(t *testing.T) {
	tests := []struct {
		name       string
		configured bool
		wantTokens int // token requests: [plain ->] proof -> proof with nonce
	}{
		{"switches when the server demands it", false, 3},
		{"configured from the start", true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t, oktatest.Options{RequireDPoP: true}, func(o *okta.Options) { o.DPoP = tt.configured })
			g := f.em.AddGroup(oktatest.Group{Name: "Risky"})
			u := f.em.AddUser(oktatest.User{Login: "alice@acme.com"})
			ctx := context.Background()
			got, err := f.c.FindGroup(ctx, "risky")
			if err != nil {
				t.Fatalf("FindGroup: %v", err)
			}
			if got.ID != g.ID {
				t.Errorf("group id = %q, want %q", got.ID, g.ID)
			}
			// The login has an '@': htu must be built from the decoded path.
			uid, err := f.c.FindUser(ctx, "alice@acme.com")
			if err != nil || uid != u.ID {
				t.Fatalf("FindUser = %q, %v; want %q", uid, err, u.ID)
			}
			if err := f.c.AddUserToGroup(ctx, g.ID, uid); err != nil {
				t.Fatalf("AddUserToGroup: %v", err)
			}
			if n := f.em.Calls(oktatest.EndpointToken); n != tt.wantTokens {
				t.Errorf("token calls = %d, want %d", n, tt.wantTokens)
			}
			if n := f.em.DPoPTokens(); n != 1 {
				t.Errorf("DPoP-bound tokens = %d, want 1", n)
			}
			if m := f.em.Members(g.ID); len(m) != 1 || m[0] != "alice@acme.com" {
				t.Errorf("members = %v, want [alice@acme.com]", m)
			}
		})
	}
}

func TestBearerWhenDPoPNotRequired(t *testing.T) {
	f := setup(t, oktatest.Options{}, nil)
	if err := f.c.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if n := f.em.DPoPTokens(); n != 0 {
		t.Errorf("DPoP tokens = %d, want 0", n)
	}
}

func TestFindUser(t *testing.T) {
	f := setup(t, oktatest.Options{}, nil)
	alice := f.em.AddUser(oktatest.User{Login: "alice@acme.com"})
	bob := f.em.AddUser(oktatest.User{Login: "bob.smith", Email: "Bob@Acme.com"})
	f.em.AddUser(oktatest.User{Login: "gone@acme.com", Status: "DEPROVISIONED"})
	f.em.AddUser(oktatest.User{Login: "twin1", Email: "twin@acme.com"})
	f.em.AddUser(oktatest.User{Login: "twin2", Email: "twin@acme.com"})
	tests := []struct {
		name, in, want, code, msg string
	}{
		{"by login", "alice@acme.com", alice.ID, "", ""},
		{"by login other case", "ALICE@acme.com", alice.ID, "", ""},
		{"by email", "bob@acme.com", bob.ID, "", ""},
		{"unknown", "nobody@acme.com", "", plugin.ENOTFOUND, "Okta user not found"},
		{"deprovisioned", "gone@acme.com", "", plugin.ENOTFOUND, "Okta user not found (deprovisioned)"},
		{"ambiguous email", "twin@acme.com", "", plugin.ECONFLICT, ""},
		{"quote", `a"b@acme.com`, "", plugin.EINVALID, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.c.FindUser(context.Background(), tt.in)
			if tt.code != "" {
				pe := wantCode(t, err, tt.code)
				if tt.msg != "" && pe.Message != tt.msg {
					t.Errorf("message = %q, want %q", pe.Message, tt.msg)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("FindUser(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFindGroup(t *testing.T) {
	f := setup(t, oktatest.Options{MaxPageSize: 2}, nil)
	for i := range 5 {
		f.em.AddGroup(oktatest.Group{Name: fmt.Sprintf("Risky Senders %d", i)})
	}
	g := f.em.AddGroup(oktatest.Group{Name: "Risky Senders"})
	f.em.AddGroup(oktatest.Group{Name: "Twin"})
	f.em.AddGroup(oktatest.Group{Name: "twin"})
	tests := []struct {
		name, in, want, code, msg string
	}{
		{"by name", "Risky Senders", g.ID, "", ""},
		{"by name any case", "risky SENDERS", g.ID, "", ""},
		{"by id", g.ID, g.ID, "", ""},
		{"unknown name", "Nope", "", plugin.ENOTFOUND, "Okta group not found"},
		{"unknown id", "00gAAAAAAAAAAAAAAAAA", "", plugin.ENOTFOUND, "Okta group not found"},
		{"ambiguous", "TWIN", "", plugin.ECONFLICT, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.c.FindGroup(context.Background(), tt.in)
			if tt.code != "" {
				pe := wantCode(t, err, tt.code)
				if tt.msg != "" && pe.Message != tt.msg {
					t.Errorf("message = %q, want %q", pe.Message, tt.msg)
				}
				return
			}
			if err != nil || got.ID != tt.want || got.Name != "Risky Senders" || got.Source != "OKTA_GROUP" {
				t.Fatalf("FindGroup(%q) = %+v, %v; want id %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestMembership(t *testing.T) {
	f := setup(t, oktatest.Options{}, nil)
	ctx := context.Background()
	g := f.em.AddGroup(oktatest.Group{Name: "Risky"})
	u := f.em.AddUser(oktatest.User{Login: "alice@acme.com"})
	for range 2 { // adding twice is fine
		if err := f.c.AddUserToGroup(ctx, g.ID, u.ID); err != nil {
			t.Fatalf("AddUserToGroup: %v", err)
		}
	}
	if m := f.em.Members(g.ID); len(m) != 1 {
		t.Errorf("members = %v, want one", m)
	}
	if got := f.em.Calls(oktatest.EndpointAddMember); got != 2 {
		t.Errorf("PUT calls = %d, want 2", got)
	}
	err := f.c.AddUserToGroup(ctx, g.ID, "00uMISSING")
	if pe := wantCode(t, err, plugin.ENOTFOUND); pe.Message != "Okta user not found" {
		t.Errorf("unknown user message = %q", pe.Message)
	}
	var ae *okta.APIError
	if !errors.As(err, &ae) || ae.Code != "E0000007" || ae.Status != 404 || ae.ErrorID == "" {
		t.Errorf("APIError = %+v, want E0000007 with an errorId", ae)
	}
	err = f.c.AddUserToGroup(ctx, "00gMISSINGMISSING000", u.ID)
	if pe := wantCode(t, err, plugin.ENOTFOUND); pe.Message != "Okta group not found" {
		t.Errorf("unknown group message = %q", pe.Message)
	}
	if err := f.c.RemoveUserFromGroup(ctx, g.ID, u.ID); err != nil {
		t.Fatalf("RemoveUserFromGroup: %v", err)
	}
	if m := f.em.Members(g.ID); len(m) != 0 {
		t.Errorf("members after remove = %v", m)
	}
}

func TestGroupMembersFollowsLinks(t *testing.T) {
	f := setup(t, oktatest.Options{}, nil)
	g := f.em.AddGroup(oktatest.Group{Name: "Big"})
	var want []string
	for i := range 450 {
		u := f.em.AddUser(oktatest.User{Login: fmt.Sprintf("u%03d@acme.com", i)})
		f.em.AddMember(g.ID, u.ID)
		want = append(want, u.Login)
	}
	got, err := f.c.GroupMembers(context.Background(), g.ID)
	if err != nil {
		t.Fatalf("GroupMembers: %v", err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %d members, want %d in order", len(got), len(want))
	}
	if n := f.em.Calls(oktatest.EndpointMembers); n != 3 {
		t.Errorf("member pages = %d, want 3", n)
	}
	_, err = f.c.GroupMembers(context.Background(), "00gMISSINGMISSING000")
	if pe := wantCode(t, err, plugin.ENOTFOUND); pe.Message != "Okta group not found" {
		t.Errorf("message = %q", pe.Message)
	}
}

func TestRateLimitHonoured(t *testing.T) {
	f := setup(t, oktatest.Options{}, nil)
	ctx := context.Background()
	g := f.em.AddGroup(oktatest.Group{Name: "Risky"})
	u := f.em.AddUser(oktatest.User{Login: "alice@acme.com"})
	if err := f.c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	f.em.Fail(oktatest.EndpointAddMember, oktatest.Fault{Status: 429, Reset: f.clock.Now().Add(30 * time.Second)})
	if err := f.c.AddUserToGroup(ctx, g.ID, u.ID); err != nil {
		t.Fatalf("AddUserToGroup: %v", err)
	}
	// reset - Date + 1s, as Okta advises.
	if got, want := f.sleep.Waits(), []time.Duration{31 * time.Second}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	if n := f.em.Calls(oktatest.EndpointAddMember); n != 2 {
		t.Errorf("PUT calls = %d, want 2", n)
	}

	// A reset beyond MaxRateLimitWait fails fast with ERATELIMITED.
	f.em.Fail(oktatest.EndpointAddMember, oktatest.Fault{Status: 429, Reset: f.clock.Now().Add(time.Hour)})
	err := f.c.AddUserToGroup(ctx, g.ID, u.ID)
	wantCode(t, err, plugin.ERATELIMITED)
	if got := len(f.sleep.Waits()); got != 1 {
		t.Errorf("slept %d times in all, want 1 (no wait for a far reset)", got)
	}
}

func TestRateLimitBucketExhausted(t *testing.T) {
	f := setup(t, oktatest.Options{RateLimit: 2}, nil)
	ctx := context.Background()
	g := f.em.AddGroup(oktatest.Group{Name: "Risky"})
	u := f.em.AddUser(oktatest.User{Login: "alice@acme.com"})
	for i := range 3 {
		if err := f.c.AddUserToGroup(ctx, g.ID, u.ID); err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
	}
	// The third call hit the per-minute bucket and waited for its reset.
	if w := f.sleep.Waits(); len(w) != 1 || w[0] < 30*time.Second || w[0] > 61*time.Second {
		t.Errorf("waits = %v, want one wait until the window resets", w)
	}
}

func TestServerErrorsRetried(t *testing.T) {
	f := setup(t, oktatest.Options{}, func(o *okta.Options) { o.MaxAttempts = 3 })
	ctx := context.Background()
	g := f.em.AddGroup(oktatest.Group{Name: "Risky"})
	f.em.Fail(oktatest.EndpointGroup, oktatest.Fault{Status: 503, Times: 2})
	if _, err := f.c.FindGroup(ctx, g.ID); err != nil {
		t.Fatalf("FindGroup after two 503s: %v", err)
	}
	w := f.sleep.Waits()
	if len(w) != 2 || w[0] <= 0 || w[0] > 500*time.Millisecond || w[1] > time.Second {
		t.Errorf("backoff waits = %v, want two growing waits within 500ms and 1s", w)
	}
	f.em.Fail(oktatest.EndpointGroup, oktatest.Fault{Status: 500, Times: 5})
	_, err := f.c.FindGroup(ctx, g.ID)
	wantCode(t, err, plugin.EUNAVAILABLE)
	if !strings.Contains(err.Error(), "after 3 attempts") {
		t.Errorf("error %q does not name the attempts", err)
	}
	f.checkNoSecrets(t, err)
	if n := f.em.Calls(oktatest.EndpointGroup); n != 6 {
		t.Errorf("group calls = %d, want 6", n)
	}
}

func TestRequestTimeout(t *testing.T) {
	f := setup(t, oktatest.Options{}, func(o *okta.Options) { o.Timeout = 50 * time.Millisecond; o.MaxAttempts = 2 })
	f.em.Fail(oktatest.EndpointToken, oktatest.Fault{Delay: 300 * time.Millisecond, Times: 2})
	err := f.c.Ping(context.Background())
	wantCode(t, err, plugin.EUNAVAILABLE)
	f.checkNoSecrets(t, err)
}

func TestRefusedTokenRenewedOnce(t *testing.T) {
	server := newClock()
	f := setup(t, oktatest.Options{TokenTTL: 2 * time.Minute, Now: server.Now}, nil)
	ctx := context.Background()
	g := f.em.AddGroup(oktatest.Group{Name: "Risky"})
	if _, err := f.c.FindGroup(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	// Okta's clock runs ahead: the token the client still trusts is
	// expired there, so the call gets a 401, then a new token.
	server.Advance(3 * time.Minute)
	if _, err := f.c.FindGroup(ctx, g.ID); err != nil {
		t.Fatalf("FindGroup after a 401: %v", err)
	}
	if n := f.em.Calls(oktatest.EndpointToken); n != 2 {
		t.Errorf("token calls = %d, want 2", n)
	}
	if n := f.em.Calls(oktatest.EndpointGroup); n != 3 {
		t.Errorf("group calls = %d, want 3", n)
	}
	// When the renewal is refused too (the assertion looks expired to
	// Okta), the call fails with EUPSTREAMAUTH instead of looping.
	server.Advance(time.Hour)
	_, err := f.c.FindGroup(ctx, g.ID)
	wantCode(t, err, plugin.EUPSTREAMAUTH)
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	f := setup(t, oktatest.Options{TokenTTL: 10 * time.Minute}, nil)
	ctx := context.Background()
	g := f.em.AddGroup(oktatest.Group{Name: "Risky"})
	if _, err := f.c.FindGroup(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	// Within the 60 s margin the client asks for a new token first.
	f.clock.Advance(9*time.Minute + 30*time.Second)
	if _, err := f.c.FindGroup(ctx, g.ID); err != nil {
		t.Fatalf("FindGroup near expiry: %v", err)
	}
	if n := f.em.Calls(oktatest.EndpointToken); n != 2 {
		t.Errorf("token calls = %d, want 2 (renewed before expiry)", n)
	}
}

func TestAuthFailures(t *testing.T) {
	t.Run("unknown client", func(t *testing.T) {
		f := setup(t, oktatest.Options{}, func(o *okta.Options) { o.ClientID = "0oaunknown" })
		err := f.c.Ping(context.Background())
		wantCode(t, err, plugin.EUPSTREAMAUTH)
		var ae *okta.APIError
		if !errors.As(err, &ae) || ae.OAuth != "invalid_client" {
			t.Errorf("APIError = %+v, want invalid_client", ae)
		}
		f.checkNoSecrets(t, err)
	})
	t.Run("wrong key", func(t *testing.T) {
		f := setup(t, oktatest.Options{}, nil)
		f.em.RegisterClient(clientID, oktatest.NewECKey(t).Public())
		err := f.c.Ping(context.Background())
		wantCode(t, err, plugin.EUPSTREAMAUTH)
		f.checkNoSecrets(t, err)
	})
	t.Run("scope not granted", func(t *testing.T) {
		f := setup(t, oktatest.Options{}, nil)
		k := oktatest.NewECKey(t)
		f.em.RegisterClient("0oareadonly", k.Public(), "okta.groups.manage", "okta.groups.read", "okta.users.read")
		err := f.c.Ping(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c, err := okta.New(okta.Options{BaseURL: f.em.URL, ClientID: "0oareadonly", PrivateKey: oktatest.SEC1PEM(t, k), Scopes: []string{"okta.apps.read"}})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Ping(context.Background())
		wantCode(t, err, plugin.EUPSTREAMAUTH)
	})
	t.Run("forbidden call", func(t *testing.T) {
		f := setup(t, oktatest.Options{}, nil)
		k := oktatest.NewECKey(t)
		f.em.RegisterClient("0oareadonly", k.Public(), "okta.groups.read")
		c, err := okta.New(okta.Options{BaseURL: f.em.URL, ClientID: "0oareadonly", PrivateKey: oktatest.SEC1PEM(t, k), Scopes: []string{"okta.groups.read"}})
		if err != nil {
			t.Fatal(err)
		}
		g := f.em.AddGroup(oktatest.Group{Name: "Risky"})
		u := f.em.AddUser(oktatest.User{Login: "alice@acme.com"})
		err = c.AddUserToGroup(context.Background(), g.ID, u.ID)
		wantCode(t, err, plugin.EUPSTREAMAUTH)
	})
}

func TestReplayedAssertionRefused(t *testing.T) {
	f := setup(t, oktatest.Options{}, nil)
	f.rec.replay = true
	err := f.c.Ping(context.Background())
	wantCode(t, err, plugin.EUPSTREAMAUTH)
	var ae *okta.APIError
	if !errors.As(err, &ae) || ae.OAuth != "invalid_client" || !strings.Contains(ae.OAuthDesc, "already been used") {
		t.Errorf("APIError = %+v, want invalid_client for a replayed jti", ae)
	}
	if n := f.em.Calls(oktatest.EndpointToken); n != 2 {
		t.Errorf("token calls = %d, want 2 (the original and its replay)", n)
	}
	f.checkNoSecrets(t, err)
}

func TestSecretsStayOutOfErrors(t *testing.T) {
	f := setup(t, oktatest.Options{RequireDPoP: true}, nil)
	ctx := context.Background()
	g := f.em.AddGroup(oktatest.Group{Name: "Risky"})
	var errs []error
	_, err := f.c.FindUser(ctx, "nobody@acme.com")
	errs = append(errs, err)
	errs = append(errs, f.c.AddUserToGroup(ctx, g.ID, "00uMISSING"))
	f.em.Fail(oktatest.EndpointMembers, oktatest.Fault{Status: 502, Times: 10})
	_, err = f.c.GroupMembers(ctx, g.ID)
	errs = append(errs, err)
	if len(f.rec.Secrets()) < 4 {
		t.Fatalf("recorded %d secrets, want tokens, assertions and proofs", len(f.rec.Secrets()))
	}
	for _, err := range errs {
		if err == nil {
			t.Fatal("want an error")
		}
		f.checkNoSecrets(t, err)
	}
	if s := fmt.Sprint(f.c); strings.Contains(s, keyBody(f.key)) {
		t.Errorf("client String %q shows the key", s)
	}
}

func TestFactory(t *testing.T) {
	f := setup(t, oktatest.Options{}, nil)
	factory := okta.Factory(okta.Options{Timeout: 5 * time.Second, Now: f.clock.Now})
	c, err := factory(plugin.OktaSettings{BaseURL: f.em.URL, ClientID: clientID, PrivateKey: f.key})
	if err != nil {
		t.Fatalf("factory: %v", err)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	c, err = factory(plugin.OktaSettings{BaseURL: f.em.URL, ClientID: clientID, PrivateKey: "bad"})
	if c != nil {
		t.Errorf("client = %v, want a nil interface for a bad key", c)
	}
	wantCode(t, err, plugin.EINVALID)
}
