// Package okta is mimecast-ure's Okta client: an OAuth 2.0 service app
// authenticating with private_key_jwt (and DPoP when the org asks for it),
// and the few user and group endpoints the evidence-based controls need.
// Every call makes classified attempts and one loop (retry) owns retries;
// the client never logs and never puts a key, token, assertion or proof in
// an error.
package okta

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"mimecast-ure/plugin"
)

// DefaultScopes are the Okta API scopes the client requests.
var DefaultScopes = []string{"okta.groups.manage", "okta.groups.read", "okta.users.read"}

// Defaults for Options' zero values.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxAttempts      = 4
	DefaultMaxRateLimitWait = 2 * time.Minute
	DefaultPageSize         = 200
	// assertionLifetime is the client assertion's exp - iat; Okta allows
	// at most an hour.
	assertionLifetime = 5 * time.Minute
	// tokenMargin renews a cached access token this long before it expires.
	tokenMargin = 60 * time.Second
)

// Options configure a Client. BaseURL, ClientID and PrivateKey are
// required; every other field has a default.
type Options struct {
	// BaseURL is the org URL, e.g. https://acme.okta.com (no path).
	BaseURL string
	// ClientID is the service app's client id (iss and sub of assertions).
	ClientID string
	// PrivateKey is PEM (PKCS#1, PKCS#8, SEC1) or a private JWK.
	PrivateKey string
	// KeyID, when set, is the assertion's JWT "kid" header (overriding a
	// JWK's own kid).
	KeyID string
	// DPoP sends DPoP proofs from the first token request. Without it the
	// client switches to DPoP when the token endpoint demands it.
	DPoP bool
	// Scopes requested; nil means DefaultScopes.
	Scopes []string
	// HTTPClient sends requests; nil means a plain client. Its own
	// timeout, if any, adds to Timeout.
	HTTPClient *http.Client
	// Timeout bounds every single request (default 30s).
	Timeout time.Duration
	// MaxAttempts bounds tries of one call, the first included (default 4).
	MaxAttempts int
	// MaxRateLimitWait is the longest the client waits for a rate-limit
	// window to reset; a longer wait fails with ERATELIMITED (default 2m).
	MaxRateLimitWait time.Duration
	// BackoffBase and BackoffMax shape the retry waits (defaults 500ms, 10s).
	BackoffBase, BackoffMax time.Duration
	// PageSize is the limit= of list calls (default 200).
	PageSize int
	// Now and Sleep are the clock and the wait; tests inject them.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client is an Okta API client for one service app. It is safe for
// concurrent use.
type Client struct {
	base     *url.URL
	tokenURL string
	clientID string
	key      *signingKey
	scope    string
	hc       *http.Client
	timeout  time.Duration
	attempts int
	maxWait  time.Duration
	backoff  [2]time.Duration
	pageSize int
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error

	fetchMu sync.Mutex // one token request at a time

	mu           sync.Mutex // guards the fields below
	tok          accessToken
	dpop         bool
	dpopKey      *ecdsa.PrivateKey
	dpopSigner   jose.Signer
	tokenNonce   string
	apiNonce     string
	limitedUntil time.Time
}

var _ plugin.Okta = (*Client)(nil)

// New checks opts and returns a client. A bad key or URL is an EINVALID
// *plugin.Error naming the controls.okta field.
func New(opts Options) (*Client, error) {
	base, err := url.Parse(strings.TrimRight(strings.TrimSpace(opts.BaseURL), "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, plugin.FieldError("controls.okta.base_url", "must be an http(s) URL such as https://acme.okta.com")
	}
	base.Path, base.RawQuery, base.Fragment = strings.TrimRight(base.Path, "/"), "", ""
	if strings.TrimSpace(opts.ClientID) == "" {
		return nil, plugin.FieldError("controls.okta.client_id", "is required")
	}
	key, err := parseKey(opts.PrivateKey)
	if err != nil {
		return nil, err
	}
	if opts.KeyID != "" {
		key.kid = opts.KeyID
	}
	c := &Client{
		base:     base,
		tokenURL: base.String() + "/oauth2/v1/token",
		clientID: strings.TrimSpace(opts.ClientID),
		key:      key,
		scope:    strings.Join(opts.Scopes, " "),
		hc:       opts.HTTPClient,
		timeout:  opts.Timeout,
		attempts: opts.MaxAttempts,
		maxWait:  opts.MaxRateLimitWait,
		backoff:  [2]time.Duration{opts.BackoffBase, opts.BackoffMax},
		pageSize: opts.PageSize,
		now:      opts.Now,
		sleep:    opts.Sleep,
		dpop:     opts.DPoP,
	}
	if len(opts.Scopes) == 0 {
		c.scope = strings.Join(DefaultScopes, " ")
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.attempts <= 0 {
		c.attempts = DefaultMaxAttempts
	}
	if c.maxWait <= 0 {
		c.maxWait = DefaultMaxRateLimitWait
	}
	if c.backoff[0] <= 0 {
		c.backoff[0] = 500 * time.Millisecond
	}
	if c.backoff[1] <= 0 {
		c.backoff[1] = 10 * time.Second
	}
	if c.pageSize <= 0 || c.pageSize > 200 {
		c.pageSize = DefaultPageSize
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	return c, nil
}

// FromSettings builds a client from a configuration's Okta settings, with
// base supplying everything the settings do not say (HTTP client,
// timeouts, clock).
func FromSettings(s plugin.OktaSettings, base Options) (*Client, error) {
	base.BaseURL, base.ClientID, base.PrivateKey, base.KeyID, base.DPoP = s.BaseURL, s.ClientID, s.PrivateKey, s.KeyID, s.DPoP
	return New(base)
}

// Factory returns the plugin.OktaFactory main hands the service: each call
// builds a client for one configuration's settings on top of base.
func Factory(base Options) plugin.OktaFactory {
	return func(s plugin.OktaSettings) (plugin.Okta, error) {
		c, err := FromSettings(s, base)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// url returns base + path (path already escaped) + optional query.
func (c *Client) url(path string, q url.Values) string {
	s := c.base.String() + path
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// String never shows the key.
func (c *Client) String() string {
	return fmt.Sprintf("okta.Client{%s, client %s}", c.base.Host, c.clientID)
}
