// Package mimecast is the Mimecast API client: API 1.0 HMAC signing and API
// 2.0 OAuth2, the {"meta","data","fail"} envelopes, pagination, typed errors,
// rate limits and retries. *Client implements plugin.Mimecast. The client
// never logs; an Observer sees every attempt and rate-limit wait.
//
// One attempt is classified (done, permanent, retryable, rate limited until
// T) and one loop (Client.retry) owns every retry and wait:
//
//   - 429: wait max(X-RateLimit-Reset ms, Retry-After s, 1 s) plus jitter
//     (at most a quarter of the wait, at most 1 s). The time is remembered:
//     no call of the client, from any goroutine, goes out before it. A
//     response with X-RateLimit-Remaining: 0 makes the next call wait
//     X-RateLimit-Reset (1 s if absent). A wait longer than MaxWait is not
//     waited: the call fails at once with KindRateLimited and the wait.
//   - 5xx, timeouts, cut connections and broken JSON: exponential backoff
//     (Backoff, doubling, capped by MaxWait) with jitter, MaxAttempts in all.
//     create-group is retried only when it surely did not run (429, refused
//     connection, 502/503/504), never after a 500 or a timeout.
//   - API 2.0 401: the token is dropped, re-minted once and the call retried
//     once. Other 4xx never retry.
//
// Every attempt has a new x-mc-date, x-mc-req-id and signature (API 1.0)
// and its own Timeout. Error text never contains a key or secret (of
// MinRedactLen bytes or more: the configuration refuses shorter ones), a
// token or a signature; every error is an *APIError that also unwraps to a
// *plugin.Error whose message is safe to show a caller (no resolver
// address, no Go network error text).
package mimecast

import (
	"context"
	"encoding/base64"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-resty/resty/v2"

	"mimecast-ure/plugin"
)

// Defaults and limits of Options.
const (
	DefaultPageSize    = 100
	MaxPageSize        = 500
	DefaultBatchSize   = 10
	MaxBatchSize       = 500
	DefaultTimeout     = 30 * time.Second
	DefaultMaxAttempts = 5
	DefaultMaxWait     = 5 * time.Minute
	DefaultBackoff     = time.Second
	// DefaultRemoveBodyLimit is the byte size remove-group-member bodies
	// are kept under (plugin contract §6).
	DefaultRemoveBodyLimit = 2048
	// DefaultMaxPages bounds the pages one list call follows.
	DefaultMaxPages = 1 << 20
	// MinRateLimitWait is the floor of a 429's wait (spec §4 recommends
	// max(X-RateLimit-Reset, 1 s)).
	MinRateLimitWait = time.Second
)

// Observer is told about every HTTP attempt and every rate-limit wait, so
// main can count them (Prometheus) without the client logging. Its methods
// are called from every goroutine using the client, so they must be safe
// for concurrent use and quick.
type Observer interface {
	// Call reports one attempt: the endpoint path, the HTTP status (0 for a
	// transport error or timeout) and how long it took.
	Call(endpoint string, status int, d time.Duration)
	// RateLimitWait reports a wait imposed by Mimecast's rate limit before
	// calling endpoint.
	RateLimitWait(endpoint string, d time.Duration)
}

// Options configure a Client. Zero values take the defaults.
type Options struct {
	// BaseURL is the API host, e.g. https://us-api.mimecast.com (1.0) or
	// https://api.services.mimecast.com (2.0). Required.
	BaseURL string
	// Auth is plugin.AuthLegacy ("legacy", API 1.0, the default) or
	// plugin.AuthOAuth2 ("oauth2", API 2.0).
	Auth string
	// API 1.0 credentials.
	AppID, AppKey, AccessKey, SecretKey string
	// API 2.0 credentials.
	ClientID, ClientSecret string

	// PageSize is the records per list page (default 100, clamped to 1..500).
	PageSize int
	// BatchSize is the members per add/remove call (default 10, clamped to 1..500).
	BatchSize int
	// Timeout bounds every HTTP attempt, body included (default 30 s).
	Timeout time.Duration
	// RemoveBodyLimit also splits remove-group-member calls so no body
	// exceeds that many bytes (default 2048, DefaultRemoveBodyLimit: the
	// plugin contract's limit, from a live API error reported by another
	// client; a negative value turns the limit off). A single member
	// always goes out, whatever its size.
	RemoveBodyLimit int
	// MaxPages bounds the pages one list call follows (default
	// DefaultMaxPages); reaching it is an error, not a short success.
	MaxPages int
	// MaxAttempts bounds the attempts of one call (default 5).
	MaxAttempts int
	// MaxWait caps a single wait. A backoff longer than it is cut to it; a
	// rate-limit wait longer than it is not waited: the call fails at once
	// with KindRateLimited and the wait (default 5 m).
	MaxWait time.Duration
	// Backoff is the first retry's wait after a 5xx or transport error; it
	// doubles per attempt up to MaxWait (default 1 s).
	Backoff time.Duration

	// Now is the clock (default time.Now).
	Now func() time.Time
	// Sleep waits d or until ctx is done (default a timer). Every wait of
	// the client goes through it, so tests never sleep.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a random duration in [0, max) (default math/rand/v2).
	// Tests pass a deterministic one.
	Jitter func(max time.Duration) time.Duration
	// NewRequestID returns a fresh x-mc-req-id (default a random UUID).
	NewRequestID func() string

	// HTTPClient, if set, is used underneath resty (its Timeout is left
	// alone; Options.Timeout applies per attempt anyway).
	HTTPClient *http.Client
	// Transport, if set (and HTTPClient is not), is the round tripper.
	Transport http.RoundTripper
	// Observer, if set, sees every attempt and rate-limit wait.
	Observer Observer
}

// Client calls one Mimecast tenant. It is safe for concurrent use; all
// goroutines share its rate-limit state and OAuth token.
type Client struct {
	opts     Options
	base     string // no trailing slash
	basePath string // the base URL's path, signed before the endpoint
	host     string // the base URL's host[:port], named in caller-safe errors
	http     *resty.Client
	secrets  []string // configured secret values of MinRedactLen or more, for redaction

	gateMu    sync.Mutex
	notBefore time.Time // no call goes out before it

	tokenLock chan struct{} // one token fetch at a time
	tokenMu   sync.Mutex
	token     string
	tokenGen  uint64    // bumped on every new token
	tokenExp  time.Time // refresh at or after it
}

var _ plugin.Mimecast = (*Client)(nil)

// New validates opts, applies the defaults and returns a Client. A
// configuration error is a *plugin.Error with code EINVALID naming the
// field; its text never quotes a secret.
func New(opts Options) (*Client, error) {
	o := opts
	o.BaseURL = strings.TrimRight(strings.TrimSpace(o.BaseURL), "/")
	u, err := url.Parse(o.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, plugin.FieldError("base_url", "must be an http(s) URL such as https://us-api.mimecast.com")
	}
	o.Auth = strings.TrimSpace(o.Auth)
	if o.Auth == "" {
		o.Auth = plugin.AuthLegacy
	}
	for _, p := range []*string{&o.AppID, &o.AppKey, &o.AccessKey, &o.SecretKey, &o.ClientID, &o.ClientSecret} {
		*p = strings.TrimSpace(*p)
	}
	switch o.Auth {
	case plugin.AuthLegacy:
		for _, f := range []struct{ name, v string }{
			{"app_id", o.AppID}, {"app_key", o.AppKey}, {"access_key", o.AccessKey}, {"secret_key", o.SecretKey},
		} {
			if f.v == "" {
				return nil, plugin.FieldError(f.name, "is required when auth is legacy")
			}
		}
		if k, err := base64.StdEncoding.DecodeString(o.SecretKey); err != nil || len(k) == 0 {
			return nil, plugin.FieldError("secret_key", "must be standard base64 as Mimecast issues it")
		}
	case plugin.AuthOAuth2:
		if o.ClientID == "" {
			return nil, plugin.FieldError("client_id", "is required when auth is oauth2")
		}
		if o.ClientSecret == "" {
			return nil, plugin.FieldError("client_secret", "is required when auth is oauth2")
		}
	default:
		return nil, plugin.FieldError("auth", "must be legacy or oauth2")
	}
	o.PageSize = clamp(o.PageSize, DefaultPageSize, MaxPageSize)
	o.BatchSize = clamp(o.BatchSize, DefaultBatchSize, MaxBatchSize)
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.RemoveBodyLimit == 0 {
		o.RemoveBodyLimit = DefaultRemoveBodyLimit
	}
	if o.MaxPages <= 0 {
		o.MaxPages = DefaultMaxPages
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Jitter == nil {
		o.Jitter = jitter
	}
	if o.NewRequestID == nil {
		o.NewRequestID = newRequestID
	}

	var rc *resty.Client
	if o.HTTPClient != nil {
		rc = resty.NewWithClient(o.HTTPClient)
	} else {
		rc = resty.New()
		if o.Transport != nil {
			rc.SetTransport(o.Transport)
		}
	}
	// Resty never retries, never logs: Client.call owns both concerns.
	rc.SetRetryCount(0).SetLogger(nopLogger{}).SetDisableWarn(true).SetDebug(false).
		SetHeader("User-Agent", "mimecast-ure")

	c := &Client{opts: o, base: o.BaseURL, basePath: u.Path, host: u.Host, http: rc, tokenLock: make(chan struct{}, 1)}
	for _, s := range []string{o.AppKey, o.AccessKey, o.SecretKey, o.ClientSecret} {
		if len(s) >= MinRedactLen {
			c.secrets = append(c.secrets, s)
		}
	}
	return c, nil
}

// NewFromSettings builds a Client from a configuration's settings (secrets
// in clear). extra supplies what settings do not carry (clock, sleep,
// jitter, HTTP client, observer, attempts, waits); the settings win for
// every field they set.
func NewFromSettings(s plugin.MimecastSettings, extra Options) (*Client, error) {
	o := extra
	o.BaseURL, o.Auth = s.BaseURL, s.Auth
	o.AppID, o.AppKey, o.AccessKey, o.SecretKey = s.AppID, s.AppKey, s.AccessKey, s.SecretKey
	o.ClientID, o.ClientSecret = s.ClientID, s.ClientSecret
	if s.PageSize > 0 {
		o.PageSize = s.PageSize
	}
	if s.BatchSize > 0 {
		o.BatchSize = s.BatchSize
	}
	if s.Timeout > 0 {
		o.Timeout = time.Duration(s.Timeout)
	}
	return New(o)
}

// Factory returns a plugin.MimecastFactory building clients with extra.
func Factory(extra Options) plugin.MimecastFactory {
	return func(s plugin.MimecastSettings) (plugin.Mimecast, error) {
		c, err := NewFromSettings(s, extra)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// PageSize returns the effective default page size.
func (c *Client) PageSize() int { return c.opts.PageSize }

// BatchSize returns the effective members per add/remove call.
func (c *Client) BatchSize() int { return c.opts.BatchSize }

func clamp(v, def, max int) int {
	switch {
	case v <= 0:
		return def
	case v > max:
		return max
	}
	return v
}

func sleep(ctx context.Context, d time.Duration) error {
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

func jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(max)))
}

type nopLogger struct{}

func (nopLogger) Errorf(string, ...any) {}
func (nopLogger) Warnf(string, ...any)  {}
func (nopLogger) Debugf(string, ...any) {}

// MinRedactLen is the shortest configured secret redact removes from
// error text. Replacing every occurrence of a shorter value garbles
// ordinary words ("c" in "directory") and, by where the marks fall,
// reveals the value; the configuration refuses secrets that short.
const MinRedactLen = 8

// redact removes every configured secret of at least MinRedactLen bytes
// and the given per-request credentials (token, signature, whatever their
// length) from s.
func (c *Client) redact(s string, extra ...string) string {
	for _, v := range c.secrets { // only values of MinRedactLen or more (New)
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	for _, v := range extra {
		if v != "" && strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}
