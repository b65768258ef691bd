// Package oktatest is an Okta org emulator for tests and demos: the org
// authorization server's token endpoint (client credentials with
// private_key_jwt, optional DPoP with nonces) and the users, groups and
// membership endpoints, with Okta's error bodies, Link pagination, rate
// limit headers and faults on demand. It uses the standard library and
// go-jose only and never imports the client it emulates.
package oktatest

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// Endpoints, as keys of Calls and Fail.
const (
	EndpointToken        = "POST /oauth2/v1/token"
	EndpointUser         = "GET /api/v1/users/{id}"
	EndpointUsers        = "GET /api/v1/users"
	EndpointGroups       = "GET /api/v1/groups"
	EndpointGroup        = "GET /api/v1/groups/{gid}"
	EndpointMembers      = "GET /api/v1/groups/{gid}/users"
	EndpointAddMember    = "PUT /api/v1/groups/{gid}/users/{uid}"
	EndpointRemoveMember = "DELETE /api/v1/groups/{gid}/users/{uid}"
)

// Scopes an emulated client is granted unless RegisterClient names others.
var Scopes = []string{"okta.groups.manage", "okta.groups.read", "okta.users.read"}

// Options shape an Emulator; zero values are defaults.
type Options struct {
	// Now is the emulator's clock (default time.Now).
	Now func() time.Time
	// TokenTTL is the access tokens' lifetime (default 1h).
	TokenTTL time.Duration
	// RequireDPoP refuses token requests without a DPoP proof.
	RequireDPoP bool
	// RateLimit is requests per minute per endpoint (default 600).
	RateLimit int
	// MaxPageSize caps limit= on lists (default 200).
	MaxPageSize int
	// AutoUsers creates an ACTIVE user on a lookup by an unknown login
	// that looks like an email (demo convenience).
	AutoUsers bool
}

// User is an Okta user.
type User struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Login  string `json:"login"`
	Email  string `json:"email"`
}

// Group is an Okta group.
type Group struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// Fault makes the next Times requests to an endpoint fail: answer Status
// (a 429 carries X-Rate-Limit-Reset = Reset) after Delay. Status 0 with a
// Delay only slows the request down.
type Fault struct {
	Status int
	Times  int
	Delay  time.Duration
	Reset  time.Time
}

type client struct {
	pub    crypto.PublicKey
	scopes map[string]bool
}

type issued struct {
	client string
	scopes map[string]bool
	exp    time.Time
	jkt    string // DPoP key thumbprint; "" for Bearer tokens
}

type window struct {
	start time.Time
	count int
}

// Emulator is an in-memory Okta org. It is an http.Handler; Start serves
// it for a test. All methods are safe for concurrent use.
type Emulator struct {
	// URL is the base URL once started (Start sets it).
	URL string

	opts Options
	mux  *http.ServeMux

	mu          sync.Mutex
	clients     map[string]*client
	users       []*User
	groups      []*Group
	members     map[string][]string // group id -> user ids in order
	tokens      map[string]*issued
	jtis        map[string]bool
	proofJTIs   map[string]bool
	nonces      map[string]time.Time
	calls       map[string]int
	faults      map[string][]Fault
	windows     map[string]*window
	lastAlg     string
	lastKid     string
	lastDPoPKey string
}

// New returns an emulator that is not yet serving.
func New(opts Options) *Emulator {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.RateLimit <= 0 {
		opts.RateLimit = 600
	}
	if opts.MaxPageSize <= 0 {
		opts.MaxPageSize = 200
	}
	e := &Emulator{
		opts: opts, mux: http.NewServeMux(),
		clients: map[string]*client{}, members: map[string][]string{}, tokens: map[string]*issued{},
		jtis: map[string]bool{}, proofJTIs: map[string]bool{}, nonces: map[string]time.Time{},
		calls: map[string]int{}, faults: map[string][]Fault{}, windows: map[string]*window{},
	}
	e.handle(EndpointToken, "", e.token)
	e.handle(EndpointUser, "okta.users.read", e.getUser)
	e.handle(EndpointUsers, "okta.users.read", e.listUsers)
	e.handle(EndpointGroups, "okta.groups.read", e.listGroups)
	e.handle(EndpointGroup, "okta.groups.read", e.getGroup)
	e.handle(EndpointMembers, "okta.groups.read", e.listMembers)
	e.handle(EndpointAddMember, "okta.groups.manage", e.putMember)
	e.handle(EndpointRemoveMember, "okta.groups.manage", e.deleteMember)
	return e
}

// Start serves a new emulator on a local port for the test's lifetime.
func Start(tb testing.TB, opts Options) *Emulator {
	tb.Helper()
	e := New(opts)
	srv := httptest.NewServer(e)
	tb.Cleanup(srv.Close)
	e.URL = srv.URL
	return e
}

// ServeHTTP serves the Okta API.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.mux.ServeHTTP(w, r) }

// RegisterClient registers a service app with its public key and the
// scopes granted to it (Scopes when none are given).
func (e *Emulator) RegisterClient(clientID string, pub crypto.PublicKey, scopes ...string) {
	if len(scopes) == 0 {
		scopes = Scopes
	}
	c := &client{pub: pub, scopes: map[string]bool{}}
	for _, s := range scopes {
		c.scopes[s] = true
	}
	e.mu.Lock()
	e.clients[clientID] = c
	e.mu.Unlock()
}

// AddUser adds a user; an empty ID is generated, an empty Status is
// ACTIVE, an empty Email is the Login. It returns the stored user.
func (e *Emulator) AddUser(u User) User {
	e.mu.Lock()
	defer e.mu.Unlock()
	return *e.addUserLocked(u)
}

func (e *Emulator) addUserLocked(u User) *User {
	if u.ID == "" {
		u.ID = newID("00u")
	}
	if u.Status == "" {
		u.Status = "ACTIVE"
	}
	if u.Email == "" {
		u.Email = u.Login
	}
	p := &u
	e.users = append(e.users, p)
	return p
}

// AddGroup adds a group; an empty ID is generated, an empty Type is
// OKTA_GROUP. It returns the stored group.
func (e *Emulator) AddGroup(g Group) Group {
	if g.ID == "" {
		g.ID = newID("00g")
	}
	if g.Type == "" {
		g.Type = "OKTA_GROUP"
	}
	e.mu.Lock()
	e.groups = append(e.groups, &g)
	e.mu.Unlock()
	return g
}

// AddMember puts a user in a group directly (no API call counted).
func (e *Emulator) AddMember(groupID, userID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addMemberLocked(groupID, userID)
}

func (e *Emulator) addMemberLocked(gid, uid string) {
	for _, m := range e.members[gid] {
		if m == uid {
			return
		}
	}
	e.members[gid] = append(e.members[gid], uid)
}

// Members returns the logins of a group's members in insertion order.
func (e *Emulator) Members(groupID string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, uid := range e.members[groupID] {
		if u := e.userByID(uid); u != nil {
			out = append(out, u.Login)
		}
	}
	return out
}

// Calls returns how many requests reached an endpoint (an Endpoint* key).
func (e *Emulator) Calls(endpoint string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[endpoint]
}

// TotalCalls returns the number of requests to every endpoint.
func (e *Emulator) TotalCalls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.calls {
		n += c
	}
	return n
}

// Fail queues a fault for an endpoint.
func (e *Emulator) Fail(endpoint string, f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	e.mu.Lock()
	e.faults[endpoint] = append(e.faults[endpoint], f)
	e.mu.Unlock()
}

// ClearFaults drops every queued fault.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	e.faults = map[string][]Fault{}
	e.mu.Unlock()
}

// LastAssertion returns the alg and kid headers of the last accepted
// client assertion.
func (e *Emulator) LastAssertion() (alg, kid string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastAlg, e.lastKid
}

// DPoPTokens reports how many live tokens are DPoP-bound.
func (e *Emulator) DPoPTokens() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, t := range e.tokens {
		if t.jkt != "" {
			n++
		}
	}
	return n
}

// handle registers an endpoint with counting, the Date and rate-limit
// headers, faults, and (when scope is set) access-token checks.
func (e *Emulator) handle(pattern, scope string, h func(http.ResponseWriter, *http.Request)) {
	e.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		now := e.opts.Now()
		w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
		e.mu.Lock()
		e.calls[pattern]++
		var fault *Fault
		if fs := e.faults[pattern]; len(fs) > 0 {
			f := fs[0]
			fault = &f
			if fs[0].Times--; fs[0].Times <= 0 {
				e.faults[pattern] = fs[1:]
			}
		}
		win := e.windows[pattern]
		if win == nil || now.Sub(win.start) >= time.Minute {
			win = &window{start: now.Truncate(time.Second)}
			e.windows[pattern] = win
		}
		win.count++
		count := win.count
		reset := win.start.Add(time.Minute)
		e.mu.Unlock()

		remaining := max(e.opts.RateLimit-count, 0)
		w.Header().Set("X-Rate-Limit-Limit", strconv.Itoa(e.opts.RateLimit))
		w.Header().Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))
		w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(reset.Unix(), 10))
		if fault != nil {
			if fault.Delay > 0 {
				select {
				case <-time.After(fault.Delay):
				case <-r.Context().Done():
					return
				}
			}
			if fault.Status == http.StatusTooManyRequests {
				if !fault.Reset.IsZero() {
					w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(fault.Reset.Unix(), 10))
				}
				w.Header().Set("X-Rate-Limit-Remaining", "0")
				oktaError(w, 429, "E0000047", "API call exceeded rate limit due to too many requests.")
				return
			}
			if fault.Status != 0 {
				oktaError(w, fault.Status, "E0000009", "Internal Server Error")
				return
			}
		}
		if count > e.opts.RateLimit {
			oktaError(w, 429, "E0000047", "API call exceeded rate limit due to too many requests.")
			return
		}
		if scope != "" && !e.authorize(w, r, scope) {
			return
		}
		h(w, r)
	})
}

// authorize checks the access token (and its DPoP proof when bound).
func (e *Emulator) authorize(w http.ResponseWriter, r *http.Request, scope string) bool {
	scheme, value, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	e.mu.Lock()
	t := e.tokens[value]
	e.mu.Unlock()
	now := e.opts.Now()
	if value == "" || t == nil || !now.Before(t.exp) {
		oktaError(w, 401, "E0000011", "Invalid token provided")
		return false
	}
	switch {
	case t.jkt == "" && !strings.EqualFold(scheme, "Bearer"):
		oktaError(w, 401, "E0000011", "Invalid token provided")
		return false
	case t.jkt != "":
		if !strings.EqualFold(scheme, "DPoP") {
			w.Header().Set("WWW-Authenticate", `DPoP error="invalid_token", error_description="DPoP-bound token sent as Bearer"`)
			oktaError(w, 401, "E0000011", "Invalid token provided")
			return false
		}
		sum := sha256.Sum256([]byte(value))
		jkt, desc := e.checkProof(r, base64.RawURLEncoding.EncodeToString(sum[:]), false)
		if desc == "" && jkt != t.jkt {
			desc = "The DPoP proof key does not match the token binding."
		}
		if desc != "" {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`DPoP algs="RS256 RS384 RS512 ES256 ES384 ES512", error="invalid_dpop_proof", error_description=%q`, desc))
			oktaError(w, 400, "E0000001", "Invalid DPoP proof: "+desc)
			return false
		}
	}
	if !t.scopes[scope] && !(scope == "okta.groups.read" && t.scopes["okta.groups.manage"]) {
		oktaError(w, 403, "E0000006", "You do not have permission to perform the requested action")
		return false
	}
	return true
}

var assertionAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512, jose.PS256}

func (e *Emulator) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request", "The request body is malformed.")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		oauthError(w, 400, "unsupported_grant_type", "The authorization grant type is not supported.")
		return
	}
	if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		oauthError(w, 401, "invalid_client", "Client authentication failed: client_assertion_type must be jwt-bearer.")
		return
	}
	tok, err := josejwt.ParseSigned(r.PostForm.Get("client_assertion"), assertionAlgs)
	if err != nil {
		oauthError(w, 401, "invalid_client", "The client_assertion is malformed.")
		return
	}
	var unsafe josejwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unsafe); err != nil {
		oauthError(w, 401, "invalid_client", "The client_assertion claims are malformed.")
		return
	}
	e.mu.Lock()
	c := e.clients[unsafe.Issuer]
	e.mu.Unlock()
	if c == nil {
		oauthError(w, 401, "invalid_client", "Invalid value for 'client_id' parameter.")
		return
	}
	var claims josejwt.Claims
	if err := tok.Claims(c.pub, &claims); err != nil {
		oauthError(w, 401, "invalid_client", "The client_assertion signature is invalid.")
		return
	}
	now := e.opts.Now()
	tokenURL := baseURL(r) + "/oauth2/v1/token"
	switch {
	case claims.Subject != claims.Issuer:
		oauthError(w, 401, "invalid_client", "The client_assertion sub must equal iss.")
		return
	case !claims.Audience.Contains(tokenURL):
		oauthError(w, 401, "invalid_client", "The audience of the client_assertion is invalid.")
		return
	case claims.Expiry == nil || !now.Before(claims.Expiry.Time()):
		oauthError(w, 401, "invalid_client", "The client_assertion token is expired.")
		return
	case claims.Expiry.Time().After(now.Add(time.Hour + time.Minute)):
		oauthError(w, 401, "invalid_client", "The client_assertion token has an expiration too far in the future.")
		return
	case claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(time.Minute)):
		oauthError(w, 401, "invalid_client", "The client_assertion was issued in the future.")
		return
	case claims.ID == "":
		oauthError(w, 401, "invalid_client", "The client_assertion has no jti.")
		return
	}
	e.mu.Lock()
	replay := e.jtis[claims.ID]
	e.jtis[claims.ID] = true
	e.lastAlg, e.lastKid = tok.Headers[0].Algorithm, tok.Headers[0].KeyID
	e.mu.Unlock()
	if replay {
		oauthError(w, 401, "invalid_client", "The client_assertion token has already been used.")
		return
	}
	scopes := map[string]bool{}
	for _, s := range strings.Fields(r.PostForm.Get("scope")) {
		if !c.scopes[s] {
			oauthError(w, 400, "invalid_scope", "The following scopes are not allowed: "+s)
			return
		}
		scopes[s] = true
	}
	if len(scopes) == 0 {
		oauthError(w, 400, "invalid_scope", "The authorization server resource does not have any configured default scopes, 'scope' must be provided.")
		return
	}
	jkt := ""
	if e.opts.RequireDPoP || r.Header.Get("DPoP") != "" {
		if r.Header.Get("DPoP") == "" {
			oauthError(w, 400, "invalid_dpop_proof", "The DPoP proof JWT header is missing.")
			return
		}
		var desc string
		if jkt, desc = e.checkProof(r, "", true); desc != "" {
			if desc == needNonce {
				w.Header().Set("DPoP-Nonce", e.newNonce())
				oauthError(w, 400, "use_dpop_nonce", "Authorization server requires nonce in DPoP proof.")
				return
			}
			oauthError(w, 400, "invalid_dpop_proof", desc)
			return
		}
	}
	value := randomString(32)
	e.mu.Lock()
	e.tokens[value] = &issued{client: unsafe.Issuer, scopes: scopes, exp: now.Add(e.opts.TokenTTL), jkt: jkt}
	e.mu.Unlock()
	typ := "Bearer"
	if jkt != "" {
		typ = "DPoP"
	}
	names := make([]string, 0, len(scopes))
	for s := range scopes {
		names = append(names, s)
	}
	sort.Strings(names)
	writeJSON(w, 200, map[string]any{"token_type": typ, "expires_in": int(e.opts.TokenTTL.Seconds()), "access_token": value, "scope": strings.Join(names, " ")})
}

const needNonce = "nonce"

// checkProof verifies r's DPoP header and returns the key's thumbprint or
// a description of what is wrong (needNonce when the nonce is missing or
// stale on the token endpoint).
func (e *Emulator) checkProof(r *http.Request, ath string, tokenEndpoint bool) (jkt, problem string) {
	proof := r.Header.Get("DPoP")
	if proof == "" {
		return "", "The DPoP proof JWT header is missing."
	}
	tok, err := josejwt.ParseSigned(proof, assertionAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return "", "The DPoP proof JWT is malformed."
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return "", "The DPoP proof JWT 'typ' header must be dpop+jwt."
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		return "", "The DPoP proof JWT header has no public 'jwk'."
	}
	var c struct {
		HTM   string `json:"htm"`
		HTU   string `json:"htu"`
		IAT   int64  `json:"iat"`
		JTI   string `json:"jti"`
		Nonce string `json:"nonce"`
		ATH   string `json:"ath"`
	}
	if err := tok.Claims(h.JSONWebKey.Key, &c); err != nil {
		return "", "The DPoP proof JWT signature is invalid."
	}
	now := e.opts.Now()
	// Okta compares htu with the decoded path (no query).
	wantHTU := baseURL(r) + r.URL.Path
	switch {
	case c.HTM != r.Method:
		return "", "'htm' claim in the DPoP proof JWT is invalid."
	case c.HTU != wantHTU:
		return "", "'htu' claim in the DPoP proof JWT is invalid."
	case c.IAT == 0 || time.Unix(c.IAT, 0).Before(now.Add(-5*time.Minute)) || time.Unix(c.IAT, 0).After(now.Add(time.Minute)):
		return "", "'iat' claim in the DPoP proof JWT is invalid."
	case c.JTI == "":
		return "", "'jti' claim in the DPoP proof JWT is missing."
	case ath != "" && c.ATH != ath:
		return "", "'ath' claim in the DPoP proof JWT is invalid."
	}
	if tokenEndpoint {
		e.mu.Lock()
		exp, ok := e.nonces[c.Nonce]
		e.mu.Unlock()
		if c.Nonce == "" || !ok || !now.Before(exp) {
			return "", needNonce
		}
	}
	e.mu.Lock()
	replay := e.proofJTIs[c.JTI]
	e.proofJTIs[c.JTI] = true
	e.mu.Unlock()
	if replay {
		return "", "'jti' claim in the DPoP proof JWT was already used."
	}
	tp, err := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", "The DPoP proof JWT 'jwk' is invalid."
	}
	return base64.RawURLEncoding.EncodeToString(tp), ""
}

func (e *Emulator) newNonce() string {
	n := randomString(16)
	e.mu.Lock()
	e.nonces[n] = e.opts.Now().Add(5 * time.Minute)
	e.mu.Unlock()
	return n
}

var searchRE = regexp.MustCompile(`^(profile\.[A-Za-z]+|id|status)\s+(eq|sw|co)\s+"((?:[^"\\]|\\.)*)"$`)

// match applies one Okta search/filter expression to a value.
func match(op, want, got string, caseSensitive bool) bool {
	if !caseSensitive {
		want, got = strings.ToLower(want), strings.ToLower(got)
	}
	switch op {
	case "eq":
		return got == want
	case "sw":
		return strings.HasPrefix(got, want)
	case "co":
		return strings.Contains(got, want)
	}
	return false
}

func (e *Emulator) getUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	e.mu.Lock()
	u := e.userByID(id)
	if u == nil {
		for _, x := range e.users {
			if strings.EqualFold(x.Login, id) {
				u = x
				break
			}
		}
	}
	if u == nil && e.opts.AutoUsers && strings.Contains(id, "@") {
		u = e.addUserLocked(User{Login: strings.ToLower(id)})
	}
	var out map[string]any
	if u != nil {
		out = userJSON(u)
	}
	e.mu.Unlock()
	if out == nil {
		oktaError(w, 404, "E0000007", fmt.Sprintf("Not found: Resource not found: %s (User)", id))
		return
	}
	writeJSON(w, 200, out)
}

func (e *Emulator) listUsers(w http.ResponseWriter, r *http.Request) {
	expr, caseSensitive := r.URL.Query().Get("search"), false
	if expr == "" {
		expr, caseSensitive = r.URL.Query().Get("filter"), true
	}
	var field, op, value string
	if expr != "" {
		m := searchRE.FindStringSubmatch(strings.TrimSpace(expr))
		if m == nil {
			oktaError(w, 400, "E0000031", "Invalid search criteria.")
			return
		}
		field, op, value = m[1], m[2], strings.ReplaceAll(m[3], `\"`, `"`)
	}
	e.mu.Lock()
	var items []pageItem
	for _, u := range e.users {
		var got string
		switch field {
		case "profile.login":
			got = u.Login
		case "profile.email":
			got = u.Email
		case "id":
			got = u.ID
		case "status":
			got = u.Status
		}
		if field == "" || match(op, value, got, caseSensitive) {
			items = append(items, pageItem{u.ID, userJSON(u)})
		}
	}
	e.mu.Unlock()
	e.writePage(w, r, items)
}

func (e *Emulator) listGroups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var op, value string
	if s := q.Get("search"); s != "" {
		m := searchRE.FindStringSubmatch(strings.TrimSpace(s))
		if m == nil || m[1] != "profile.name" {
			oktaError(w, 400, "E0000031", "Invalid search criteria.")
			return
		}
		op, value = m[2], strings.ReplaceAll(m[3], `\"`, `"`)
	}
	prefix := q.Get("q")
	e.mu.Lock()
	var items []pageItem
	for _, g := range e.groups {
		if (op == "" || match(op, value, g.Name, false)) && (prefix == "" || match("sw", prefix, g.Name, false)) {
			items = append(items, pageItem{g.ID, groupJSON(g)})
		}
	}
	e.mu.Unlock()
	if prefix != "" && len(items) > 300 { // q= is not pageable
		items = items[:300]
	}
	e.writePage(w, r, items)
}

func (e *Emulator) getGroup(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	g := e.groupByID(r.PathValue("gid"))
	var out map[string]any
	if g != nil {
		out = groupJSON(g)
	}
	e.mu.Unlock()
	if out == nil {
		oktaError(w, 404, "E0000007", fmt.Sprintf("Not found: Resource not found: %s (UserGroup)", r.PathValue("gid")))
		return
	}
	writeJSON(w, 200, out)
}

func (e *Emulator) listMembers(w http.ResponseWriter, r *http.Request) {
	gid := r.PathValue("gid")
	e.mu.Lock()
	if e.groupByID(gid) == nil {
		e.mu.Unlock()
		oktaError(w, 404, "E0000007", fmt.Sprintf("Not found: Resource not found: %s (UserGroup)", gid))
		return
	}
	var items []pageItem
	for _, uid := range e.members[gid] {
		if u := e.userByID(uid); u != nil {
			items = append(items, pageItem{u.ID, userJSON(u)})
		}
	}
	e.mu.Unlock()
	e.writePage(w, r, items)
}

func (e *Emulator) putMember(w http.ResponseWriter, r *http.Request)    { e.membership(w, r, true) }
func (e *Emulator) deleteMember(w http.ResponseWriter, r *http.Request) { e.membership(w, r, false) }

func (e *Emulator) membership(w http.ResponseWriter, r *http.Request, add bool) {
	gid, uid := r.PathValue("gid"), r.PathValue("uid")
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.groupByID(gid) == nil {
		oktaError(w, 404, "E0000007", fmt.Sprintf("Not found: Resource not found: %s (UserGroup)", gid))
		return
	}
	if e.userByID(uid) == nil {
		oktaError(w, 404, "E0000007", fmt.Sprintf("Not found: Resource not found: %s (User)", uid))
		return
	}
	if add {
		e.addMemberLocked(gid, uid)
	} else {
		ms := e.members[gid]
		for i, m := range ms {
			if m == uid {
				e.members[gid] = append(ms[:i:i], ms[i+1:]...)
				break
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

type pageItem struct {
	id  string
	obj map[string]any
}

// writePage answers one page of items after the `after` cursor (an id)
// with Link self and, when more remain, next.
func (e *Emulator) writePage(w http.ResponseWriter, r *http.Request, items []pageItem) {
	q := r.URL.Query()
	limit := e.opts.MaxPageSize
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			oktaError(w, 400, "E0000001", "Api validation failed: limit")
			return
		}
		limit = min(n, e.opts.MaxPageSize)
	}
	start := 0
	if after := q.Get("after"); after != "" {
		start = len(items)
		for i, it := range items {
			if it.id == after {
				start = i + 1
				break
			}
		}
	}
	end := min(start+limit, len(items))
	page := make([]map[string]any, 0, end-start)
	for _, it := range items[start:end] {
		page = append(page, it.obj)
	}
	self := baseURL(r) + r.URL.RequestURI()
	w.Header().Add("Link", fmt.Sprintf(`<%s>; rel="self"`, self))
	if end < len(items) && q.Get("q") == "" {
		q.Set("after", items[end-1].id)
		q.Set("limit", strconv.Itoa(limit))
		next := baseURL(r) + r.URL.Path + "?" + q.Encode()
		w.Header().Add("Link", fmt.Sprintf(`<%s>; rel="next"`, next))
	}
	writeJSON(w, 200, page)
}

func (e *Emulator) userByID(id string) *User {
	for _, u := range e.users {
		if u.ID == id {
			return u
		}
	}
	return nil
}

func (e *Emulator) groupByID(id string) *Group {
	for _, g := range e.groups {
		if g.ID == id {
			return g
		}
	}
	return nil
}

func userJSON(u *User) map[string]any {
	return map[string]any{"id": u.ID, "status": u.Status, "profile": map[string]any{"login": u.Login, "email": u.Email}}
}

func groupJSON(g *Group) map[string]any {
	return map[string]any{"id": g.ID, "type": g.Type, "profile": map[string]any{"name": g.Name}}
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func oktaError(w http.ResponseWriter, status int, code, summary string) {
	writeJSON(w, status, map[string]any{"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": "oae" + randomString(8), "errorCauses": []any{}})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]any{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newID returns an Okta-shaped id: prefix + 17 alphanumerics.
func newID(prefix string) string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	s := hex.EncodeToString(b)[:17]
	return prefix + s
}
