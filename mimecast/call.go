package mimecast

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// request is one logical API call: a path and a JSON body.
type request struct {
	endpoint string
	body     []byte
	// idempotent calls may be retried after a failure that leaves open
	// whether Mimecast executed them (5xx, timeout, cut connection, broken
	// reply). A create is not: it is retried only when the call surely did
	// not run (429, connection refused).
	idempotent bool
	// perItem calls (membership writes) report fail[] entries that carry a
	// key to the caller; any other fail[] entry is an error of the call.
	perItem bool
	// capHint pre-sizes data[] (the page size) so decoding never regrows it.
	capHint int
}

// meta is the envelope's meta object.
type meta struct {
	Status     int `json:"status"`
	Pagination struct {
		PageSize   int    `json:"pageSize"`
		TotalCount int    `json:"totalCount"`
		Next       string `json:"next"`
	} `json:"pagination"`
}

// apiErr is one entry of fail[].errors[].
type apiErr struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field"`
	Retryable bool   `json:"retryable"`
}

// failure is one fail[] entry. Key is kept raw: its shape is the request
// item's. Code and Message cover the flat shape some 2.0 errors use.
type failure struct {
	Key     json.RawMessage `json:"key"`
	Errors  []apiErr        `json:"errors"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
}

func (f failure) first() apiErr {
	if len(f.Errors) > 0 {
		return f.Errors[0]
	}
	return apiErr{Code: f.Code, Message: f.Message}
}

func (f failure) hasKey() bool {
	k := bytes.TrimSpace(f.Key)
	return len(k) > 0 && !bytes.Equal(k, []byte("null"))
}

// envelope is every /api response: {"meta":{...},"data":[...],"fail":[...]}.
type envelope[T any] struct {
	Meta meta      `json:"meta"`
	Data []T       `json:"data"`
	Fail []failure `json:"fail"`
}

// errorBody reads what a non-2xx response may carry.
type errorBody struct {
	Meta  meta            `json:"meta"`
	Fail  []failure       `json:"fail"`
	Error json.RawMessage `json:"error"`
}

// MaxResponseBytes bounds a response body the client reads.
const MaxResponseBytes = 64 << 20

const (
	endpointToken = "/oauth/token"
	errNotJSON    = "the Mimecast response was not valid JSON"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// call makes r with retries and decodes a 2xx body into an envelope[T].
func call[T any](ctx context.Context, c *Client, r request) (*envelope[T], error) {
	var env *envelope[T]
	err := c.retry(ctx, r, func(body []byte) *APIError {
		env = new(envelope[T])
		if r.capHint > 0 {
			env.Data = make([]T, 0, r.capHint)
		}
		if err := json.Unmarshal(body, env); err != nil {
			return &APIError{Kind: KindUnavailable, cause: errNotJSON, Err: err, retryable: r.idempotent}
		}
		return checkEnvelope(r, &env.Meta, env.Fail)
	})
	if err != nil {
		return nil, err
	}
	return env, nil
}

// checkEnvelope finds a call-level failure in a decoded 2xx envelope.
func checkEnvelope(r request, m *meta, fail []failure) *APIError {
	if m.Status >= 400 {
		e := apiErr{}
		if len(fail) > 0 {
			e = fail[0].first()
		}
		return fromMimecast(r, m.Status, e)
	}
	for _, f := range fail {
		if r.perItem && f.hasKey() {
			continue
		}
		return fromMimecast(r, 0, f.first())
	}
	return nil
}

// fromMimecast builds the error for a function-level status inside a 2xx
// reply (0 when there is none) and a Mimecast error entry. As for HTTP
// statuses, only a call that is safe to repeat is retried: the function
// may have run (create-group could make a second group).
func fromMimecast(r request, status int, e apiErr) *APIError {
	kind, ok := kindFor(status, e.Code)
	if !ok {
		kind = KindRejected
	}
	out := &APIError{Kind: kind, Code: e.Code, Message: e.Message, Field: e.Field}
	switch {
	case kind == KindUnavailable:
		out.retryable = r.idempotent
	case kind == KindRejected && e.Retryable:
		out.Kind, out.retryable = KindUnavailable, r.idempotent
	}
	return out
}

// retry is the one loop that owns retries and waits for a call: the
// context is checked and the rate-limit gate passed before every attempt;
// a retryable failure backs off exponentially with jitter; a rate-limited
// one waits for the reset through the gate; anything else is final.
func (c *Client) retry(ctx context.Context, r request, decode func([]byte) *APIError) error {
	maxAttempts := c.opts.MaxAttempts
	refreshed, resigned := false, false
	backoff := c.opts.Backoff
	var last *APIError
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return c.stopped(r, attempt-1, last, err)
		}
		if e := c.waitGate(ctx, r.endpoint); e != nil {
			e.Attempts = attempt - 1
			if e.Err != nil && last != nil { // cancelled while waiting
				return c.stopped(r, attempt-1, last, e.Err)
			}
			return e
		}
		e := c.attempt(ctx, r, decode)
		if e == nil {
			return nil
		}
		e.Endpoint, e.Attempts = r.endpoint, attempt
		last = e
		switch {
		case e.Kind == KindInvalidCredentials && e.Status == http.StatusUnauthorized &&
			c.opts.Auth != "legacy" && !e.tokenErr && !refreshed:
			// A 2.0 token may be revoked before it expires: mint a new
			// one and try once more.
			refreshed = true
			maxAttempts++
			c.dropToken(e.tokenGen)
			continue
		case e.skew && !resigned:
			// "Date Header Too Skewed": the next attempt is signed with a
			// fresh date anyway; try once more (a clock that is really off
			// fails again, with the message saying so).
			resigned = true
			maxAttempts++
			continue
		case e.Kind == KindRateLimited:
			if e.Wait == 0 { // no hint from Mimecast
				e.Wait = max(MinRateLimitWait, backoff)
				backoff *= 2
			}
			c.pushNotBefore(c.opts.Now().Add(e.Wait))
			if attempt >= maxAttempts || e.Wait > c.opts.MaxWait {
				return e
			}
			continue // the gate waits
		case e.retryable:
			if attempt >= maxAttempts {
				return e
			}
			d := min(backoff, c.opts.MaxWait)
			if e.Wait > d { // Retry-After on a 503
				d = min(e.Wait, c.opts.MaxWait)
			}
			backoff *= 2
			d += c.opts.Jitter(d / 2)
			if err := c.opts.Sleep(ctx, d); err != nil {
				return c.stopped(r, attempt, last, err)
			}
			continue
		}
		return e
	}
}

// stopped is the error when ctx ends the call: the last failure (if any)
// with the context's error as its cause.
func (c *Client) stopped(r request, attempts int, last *APIError, err error) *APIError {
	if last == nil {
		return &APIError{Kind: KindUnavailable, Endpoint: r.endpoint, Attempts: attempts, Err: err, cause: "gave up: " + err.Error()}
	}
	e := *last
	e.Attempts, e.Err = attempts, err
	e.cause = strings.TrimPrefix(e.cause+"; gave up: "+err.Error(), "; ")
	return &e
}

// waitGate blocks until the remembered "not before" time has passed, so no
// call of this client goes out before a rate limit resets. A wait longer
// than MaxWait is not waited: it is returned as KindRateLimited.
func (c *Client) waitGate(ctx context.Context, endpoint string) *APIError {
	var waited time.Time // the not-before time already slept for
	for {
		c.gateMu.Lock()
		nb := c.notBefore
		c.gateMu.Unlock()
		wait := nb.Sub(c.opts.Now())
		// Once slept for nb, go on even if an injected clock did not move;
		// sleep again only when another call pushed the gate further.
		if wait <= 0 || !nb.After(waited) {
			return nil
		}
		if wait > c.opts.MaxWait {
			return &APIError{Kind: KindRateLimited, Endpoint: endpoint, Wait: wait,
				cause: "not calling before Mimecast's rate limit resets"}
		}
		d := wait + c.opts.Jitter(min(wait/4, time.Second))
		if o := c.opts.Observer; o != nil {
			o.RateLimitWait(endpoint, d)
		}
		if err := c.opts.Sleep(ctx, d); err != nil {
			return &APIError{Kind: KindRateLimited, Endpoint: endpoint, Wait: wait, Err: err,
				cause: "gave up waiting for the rate limit: " + err.Error()}
		}
		waited = nb
	}
}

func (c *Client) pushNotBefore(t time.Time) {
	c.gateMu.Lock()
	if t.After(c.notBefore) {
		c.notBefore = t
	}
	c.gateMu.Unlock()
}

// noteRateHeaders remembers X-RateLimit-Remaining: 0 as "wait the reset
// before the next call".
func (c *Client) noteRateHeaders(h http.Header) {
	if strings.TrimSpace(h.Get("X-RateLimit-Remaining")) != "0" {
		return
	}
	now := c.opts.Now()
	wait, ok := resetWait(h, now)
	if !ok {
		wait = MinRateLimitWait
	}
	c.pushNotBefore(now.Add(wait))
}

// resetWait reads X-RateLimit-Reset (milliseconds, a duration) and
// Retry-After (seconds or an HTTP date), returning the larger.
func resetWait(h http.Header, now time.Time) (time.Duration, bool) {
	var wait time.Duration
	found := false
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 {
			wait, found = capWait(ms*float64(time.Millisecond)), true
		}
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
			wait, found = max(wait, capWait(s*float64(time.Second))), true
		} else if t, err := http.ParseTime(v); err == nil {
			wait, found = max(wait, t.Sub(now)), true
		}
	}
	return wait, found
}

// maxHeaderWait bounds a wait read from a header, so an absurd value (or
// +Inf) cannot overflow time.Duration into a negative wait; MaxWait then
// turns it into a fast rate-limited failure.
const maxHeaderWait = 24 * time.Hour

func capWait(ns float64) time.Duration {
	if ns != ns || ns >= float64(maxHeaderWait) { // NaN or too long
		return maxHeaderWait
	}
	return time.Duration(ns)
}

// attempt makes one HTTP attempt and classifies it: nil (done) or an
// *APIError that is retryable, rate limited (with Wait) or final.
func (c *Client) attempt(ctx context.Context, r request, decode func([]byte) *APIError) *APIError {
	actx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()

	req := c.http.R().SetContext(actx).SetDoNotParseResponse(true).SetBody(r.body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	cred, gen, e := c.authorize(ctx, actx, req, r.endpoint)
	if e != nil {
		if e.Err != nil && ctx.Err() != nil {
			e.retryable = false
		}
		return e
	}

	start := time.Now()
	resp, err := req.Post(c.base + r.endpoint)
	if err != nil {
		c.observe(r.endpoint, 0, time.Since(start))
		return c.transportError(ctx, actx, r, err, cred)
	}
	raw := resp.RawResponse
	defer raw.Body.Close()
	c.noteRateHeaders(raw.Header)

	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	n, rerr := buf.ReadFrom(io.LimitReader(raw.Body, MaxResponseBytes+1))
	c.observe(r.endpoint, raw.StatusCode, time.Since(start))
	if rerr == nil && n > MaxResponseBytes {
		return &APIError{Kind: KindUnavailable, Status: raw.StatusCode,
			cause: fmt.Sprintf("the Mimecast response was larger than %d MiB", MaxResponseBytes>>20)}
	}
	if rerr != nil {
		e := c.transportError(ctx, actx, r, rerr, cred)
		e.Status = raw.StatusCode
		return e
	}

	if raw.StatusCode >= 200 && raw.StatusCode < 300 {
		if e := decode(buf.Bytes()); e != nil {
			e.Status, e.tokenGen = raw.StatusCode, gen
			c.scrub(e, cred)
			return e
		}
		return nil
	}
	e = c.statusError(r, raw.StatusCode, raw.Header, buf.Bytes())
	e.tokenGen = gen
	c.scrub(e, cred)
	return e
}

// statusError classifies a non-2xx response from its status, its fail[]
// or error body and its rate-limit headers.
func (c *Client) statusError(r request, status int, h http.Header, body []byte) *APIError {
	var eb errorBody
	first := apiErr{}
	if json.Unmarshal(body, &eb) == nil {
		if len(eb.Fail) > 0 {
			first = eb.Fail[0].first()
		} else if len(eb.Error) > 0 {
			first = oauthError(eb.Error)
		}
	}
	kind, _ := kindFor(status, first.Code)
	e := &APIError{Kind: kind, Status: status, Code: first.Code, Message: first.Message, Field: first.Field,
		oauth: c.opts.Auth != "legacy"}
	if kind == KindInvalidCredentials && bytes.Contains(body, []byte("Date Header Too Skewed")) {
		e.skew = true
	}
	switch {
	case status == http.StatusTooManyRequests:
		e.Kind = KindRateLimited
		if w, ok := resetWait(h, c.opts.Now()); ok {
			e.Wait = max(w, MinRateLimitWait)
		}
	case kind == KindUnavailable:
		// A 5xx may have run the function; only idempotent calls retry.
		// 502/503/504 come from gateways before the function runs.
		e.retryable = r.idempotent || status == 502 || status == 503 || status == 504
		if w, ok := resetWait(h, c.opts.Now()); ok {
			e.Wait = w
		}
	}
	return e
}

// oauthError reads {"error":"invalid_client","error_description":"..."}
// or {"error":{"code":..,"message":..}}.
func oauthError(raw json.RawMessage) apiErr {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return apiErr{Code: s}
	}
	var o struct{ Code, Message string }
	if json.Unmarshal(raw, &o) == nil {
		return apiErr{Code: o.Code, Message: o.Message}
	}
	return apiErr{}
}

// transportError classifies a failure without a (complete) response. The
// cause (Error, for logs) keeps Go's text with secrets removed; the
// caller-safe message (PluginError) names only the host and a generic
// reason, never a resolver's address or a dial error.
func (c *Client) transportError(ctx, actx context.Context, r request, err error, cred string) *APIError {
	e := &APIError{Kind: KindUnavailable, Err: err}
	switch {
	case ctx.Err() != nil: // the caller gave up: final
		e.Err = ctx.Err()
		e.cause = "the call was cancelled: " + ctx.Err().Error()
	case errors.Is(actx.Err(), context.DeadlineExceeded) || isTimeout(err):
		e.cause = "Mimecast did not answer within " + c.opts.Timeout.String()
		e.retryable = r.idempotent
		if isDial(err) {
			e.public, e.reason = "could not reach Mimecast at "+c.host, transportReason(err)
		}
	case isDial(err):
		e.cause = "could not connect to Mimecast: " + c.redact(err.Error(), cred)
		e.public, e.reason = "could not reach Mimecast at "+c.host, transportReason(err)
		e.retryable = true // nothing was sent
	default:
		e.cause = "the connection to Mimecast failed: " + c.redact(err.Error(), cred)
		e.public, e.reason = "the connection to Mimecast at "+c.host+" failed", transportReason(err)
		if e.reason == "TLS failed" {
			e.public = "could not reach Mimecast at " + c.host
		}
		e.retryable = r.idempotent
	}
	return e
}

// transportReason names what went wrong below HTTP in words that carry no
// address, port or Go error text.
func transportReason(err error) string {
	var (
		dns  *net.DNSError
		cert *tls.CertificateVerificationError
		rec  tls.RecordHeaderError
		alt  tls.AlertError
	)
	switch {
	case errors.As(err, &dns):
		if dns.IsTimeout {
			return "DNS lookup timed out"
		}
		return "DNS lookup failed"
	case errors.As(err, &cert), errors.As(err, &rec), errors.As(err, &alt),
		strings.Contains(err.Error(), "tls: "), strings.Contains(err.Error(), "x509: "),
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "TLS failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case isTimeout(err):
		return "timed out"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "network unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed early"
	}
	return "connection failed"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isDial(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// scrub removes secrets and this attempt's credential from the text
// Mimecast sent back.
func (c *Client) scrub(e *APIError, cred string) {
	e.Message = c.redact(e.Message, cred)
	e.Field = c.redact(e.Field, cred)
	e.Code = c.redact(e.Code, cred)
	e.cause = c.redact(e.cause, cred)
}

func (c *Client) observe(endpoint string, status int, d time.Duration) {
	if o := c.opts.Observer; o != nil {
		o.Call(endpoint, status, d)
	}
}

func newRequestID() string { return uuid.NewString() }
