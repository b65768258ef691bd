package okta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"mimecast-ure/plugin"
)

// APIError is an error answer from Okta: the management API's error body
// (errorCode, errorSummary, errorId, errorCauses) or the OAuth endpoint's
// (error, error_description). It unwraps to the caller-safe *plugin.Error,
// so errors.As works for both types.
type APIError struct {
	Status    int
	Code      string // errorCode, e.g. E0000007
	Summary   string // errorSummary
	ErrorID   string // errorId, for Okta support
	Causes    []string
	OAuth     string // error, on the token endpoint
	OAuthDesc string // error_description
	err       *plugin.Error
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "okta: HTTP %d", e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Summary != "" {
		fmt.Fprintf(&b, ": %s", e.Summary)
	}
	if e.OAuth != "" {
		fmt.Fprintf(&b, " %s", e.OAuth)
		if e.OAuthDesc != "" {
			fmt.Fprintf(&b, ": %s", e.OAuthDesc)
		}
	}
	if len(e.Causes) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(e.Causes, "; "))
	}
	if e.ErrorID != "" {
		fmt.Fprintf(&b, " [errorId %s]", e.ErrorID)
	}
	return b.String()
}

// Unwrap returns the *plugin.Error the API error maps to.
func (e *APIError) Unwrap() error { return e.err }

// response is one HTTP answer, body read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// verdict classifies one attempt.
type verdict int

const (
	done      verdict = iota // success: stop
	permanent                // failure that another try cannot fix
	retryable                // transient: back off and try again
	limited                  // rate-limited until outcome.until
	again                    // protocol step (DPoP nonce, new token): retry now, not counted
)

// outcome is what one attempt says.
type outcome struct {
	kind  verdict
	res   *response
	err   error
	until time.Time
}

// maxAgain bounds the uncounted protocol retries of one call.
const maxAgain = 3

// retry is the one retry loop: it runs attempt until it is done or fails
// permanently, backing off exponentially with jitter on transient
// failures, waiting out rate limits up to maxWait, checking ctx before
// every try, and naming the attempt count in the final error.
func (c *Client) retry(ctx context.Context, what string, attempt func(context.Context) outcome) (*response, error) {
	tries, agains := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("okta: %s: %w", what, plugin.Errorf(plugin.EUNAVAILABLE, "Okta call cancelled"))
		}
		if wait := c.limitedFor(); wait > 0 {
			if wait > c.maxWait {
				return nil, fmt.Errorf("okta: %s: %w", what, plugin.Errorf(plugin.ERATELIMITED, "Okta rate limit resets in %s", wait.Round(time.Second)))
			}
			if err := c.sleep(ctx, wait); err != nil {
				return nil, fmt.Errorf("okta: %s: waiting for rate limit: %w", what, plugin.Errorf(plugin.EUNAVAILABLE, "Okta call cancelled"))
			}
		}
		o := attempt(ctx)
		switch o.kind {
		case done:
			return o.res, nil
		case permanent:
			return nil, fmt.Errorf("okta: %s: %w", what, o.err)
		case again:
			if agains++; agains <= maxAgain {
				continue
			}
			return nil, fmt.Errorf("okta: %s: %w", what, o.err)
		}
		tries++
		if tries >= c.attempts {
			if o.kind == limited {
				return nil, fmt.Errorf("okta: %s: gave up after %d attempts: %w", what, tries, asCode(o.err, plugin.ERATELIMITED, "Okta rate limit exceeded"))
			}
			return nil, fmt.Errorf("okta: %s: gave up after %d attempts: %w", what, tries, asCode(o.err, plugin.EUNAVAILABLE, "Okta is unavailable"))
		}
		var wait time.Duration
		if o.kind == limited {
			c.mu.Lock()
			if o.until.After(c.limitedUntil) {
				c.limitedUntil = o.until
			}
			c.mu.Unlock()
			continue // the top of the loop waits (or gives up)
		}
		wait = c.backoffFor(tries)
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("okta: %s: after %d attempts: %w", what, tries, plugin.Errorf(plugin.EUNAVAILABLE, "Okta call cancelled"))
		}
	}
}

// asCode keeps err's *plugin.Error when it has one, else wraps it in a new
// one with code and msg.
func asCode(err error, code, msg string) error {
	var pe *plugin.Error
	if errors.As(err, &pe) {
		return err
	}
	if err == nil {
		return plugin.Errorf(code, "%s", msg)
	}
	return fmt.Errorf("%w: %w", plugin.Errorf(code, "%s", msg), err)
}

func (c *Client) limitedFor() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limitedUntil.Sub(c.now())
}

// backoffFor is full jitter over an exponential ceiling.
func (c *Client) backoffFor(try int) time.Duration {
	d := c.backoff[0] << (try - 1)
	if d <= 0 || d > c.backoff[1] {
		d = c.backoff[1]
	}
	return d/2 + rand.N(d/2+1)
}

// send makes one HTTP request bounded by the client's timeout and reads the
// body (at most 8 MiB).
func (c *Client) send(ctx context.Context, req *http.Request) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.hc.Do(req.WithContext(ctx))
	if err != nil {
		return nil, transportError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, transportError(err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// transportError keeps the cause (its text names at most the URL, which
// carries no secret) under a caller-safe EUNAVAILABLE.
func transportError(err error) error {
	msg := "Okta did not answer"
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "Okta did not answer in time"
	}
	return fmt.Errorf("%w: %w", plugin.Errorf(plugin.EUNAVAILABLE, "%s", msg), err)
}

// rateLimitUntil reads X-Rate-Limit-Reset (epoch seconds) against the
// server's Date header, as Okta advises, and returns when to call again.
func (c *Client) rateLimitUntil(h http.Header) time.Time {
	now := c.now()
	reset, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-Rate-Limit-Reset")), 10, 64)
	if err != nil || reset <= 0 {
		return now.Add(c.backoff[1])
	}
	serverNow := now
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		serverNow = d
	}
	wait := time.Unix(reset, 0).Sub(serverNow) + time.Second
	if wait < time.Second {
		wait = time.Second
	}
	return now.Add(wait)
}

// apiError parses Okta's error body (either shape) into an *APIError with
// the given code and caller-safe message.
func apiError(res *response, code, msg string) *APIError {
	e := &APIError{Status: res.status}
	var body struct {
		ErrorCode    string `json:"errorCode"`
		ErrorSummary string `json:"errorSummary"`
		ErrorID      string `json:"errorId"`
		ErrorCauses  []struct {
			ErrorSummary string `json:"errorSummary"`
		} `json:"errorCauses"`
		Error     string `json:"error"`
		ErrorDesc string `json:"error_description"`
	}
	if json.Unmarshal(res.body, &body) == nil {
		e.Code, e.Summary, e.ErrorID = body.ErrorCode, clip(body.ErrorSummary), body.ErrorID
		for _, c := range body.ErrorCauses {
			e.Causes = append(e.Causes, clip(c.ErrorSummary))
		}
		e.OAuth, e.OAuthDesc = clip(body.Error), clip(body.ErrorDesc)
	}
	if detail := e.detail(); detail != "" {
		msg += " (" + detail + ")"
	}
	e.err = plugin.Errorf(code, "%s", msg)
	return e
}

// detail is the short, secret-free part of Okta's answer shown to callers.
func (e *APIError) detail() string {
	switch {
	case e.Code != "" && e.Summary != "":
		return e.Code + ": " + e.Summary
	case e.Code != "":
		return e.Code
	case e.OAuth != "" && e.OAuthDesc != "":
		return e.OAuth + ": " + e.OAuthDesc
	}
	return e.OAuth
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
