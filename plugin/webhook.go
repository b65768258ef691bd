package plugin

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook delivery and signatures.
//
// Every delivery (nudges, control notifications) is a POST of a JSON body
// with two headers:
//
//	X-URE-Timestamp: <the send time in Unix seconds, decimal>
//	X-URE-Signature: sha256=<lower-case hex HMAC-SHA256 under the webhook's secret of
//	                 the timestamp exactly as sent, ".", then the raw body bytes>
//
// The signature covers the timestamp, so a captured delivery cannot be
// replayed later under a fresh timestamp. A receiver recomputes the HMAC
// over "<X-URE-Timestamp>.<body>", compares it with X-URE-Signature in
// constant time, and rejects a timestamp more than WebhookTolerance from
// its own clock (VerifyWebhook does all three). Each attempt of a
// delivery is stamped and signed anew. Without a secret no signature
// header is sent.
const (
	// WebhookSignatureHeader carries "sha256=" + hex HMAC-SHA256 of
	// "<timestamp>.<body>" under the webhook's secret.
	WebhookSignatureHeader = "X-URE-Signature"
	// WebhookTimestampHeader carries the send time in Unix seconds; it
	// is part of the signed text.
	WebhookTimestampHeader = "X-URE-Timestamp"
	// WebhookTolerance is how far a delivery's timestamp may be from the
	// receiver's clock for VerifyWebhook to accept it.
	WebhookTolerance = 5 * time.Minute
	// WebhookTimeout bounds one delivery attempt.
	WebhookTimeout = 10 * time.Second
	// WebhookAttempts is how many times a delivery is tried.
	WebhookAttempts = 3
	// webhookBackoff is the wait before the second attempt; it doubles.
	webhookBackoff = time.Second
)

// SignWebhook returns the X-URE-Signature value of a delivery of body
// stamped timestamp (X-URE-Timestamp, the decimal Unix seconds as sent)
// under secret: "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
func SignWebhook(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifyWebhook is the receiver's check of a delivery (also used by the
// tests): timestamp must be decimal Unix seconds within WebhookTolerance
// of now, and signature the signature of timestamp and body under secret,
// compared in constant time.
func VerifyWebhook(secret string, body []byte, timestamp, signature string, now time.Time) bool {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || timestamp != strconv.FormatInt(ts, 10) {
		return false
	}
	if d := now.Sub(time.Unix(ts, 0)); d > WebhookTolerance || d < -WebhookTolerance {
		return false
	}
	return hmac.Equal([]byte(SignWebhook(secret, timestamp, body)), []byte(signature))
}

// WebhookStatusError is a delivery the receiver answered with a non-2xx
// status.
type WebhookStatusError struct {
	Status int
}

func (e *WebhookStatusError) Error() string {
	return fmt.Sprintf("webhook answered HTTP %d", e.Status)
}

// Retryable reports whether another attempt may succeed (5xx, 408, 429).
func (e *WebhookStatusError) Retryable() bool {
	return e.Status >= 500 || e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests
}

// HTTPWebhookSender posts signed JSON bodies with net/http. It is the
// WebhookSender the Service uses when ServiceOptions.Webhooks is nil.
type HTTPWebhookSender struct {
	// Client defaults to one with WebhookTimeout.
	Client *http.Client
	// Now stamps X-URE-Timestamp; nil uses time.Now.
	Now Clock
}

var _ WebhookSender = HTTPWebhookSender{}

// Send makes one POST of body to w.URL stamped with X-URE-Timestamp and,
// when w has a secret, signed over "<timestamp>.<body>" (X-URE-Signature;
// see SignWebhook). Errors name the host, never the full URL (webhook URLs
// often embed a token).
func (h HTTPWebhookSender) Send(ctx context.Context, w Webhook, body []byte) error {
	c := h.Client
	if c == nil {
		// Never follow a redirect: the signed body would go elsewhere.
		c = &http.Client{Timeout: WebhookTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return Errorf(EINVALID, "webhook URL is not usable")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mimecast-ure")
	ts := strconv.FormatInt(now().Unix(), 10)
	req.Header.Set(WebhookTimestampHeader, ts)
	if w.Secret != "" {
		req.Header.Set(WebhookSignatureHeader, SignWebhook(w.Secret, ts, body))
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL
		}
		return fmt.Errorf("post to %s: %w", webhookHost(w.URL), err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &WebhookStatusError{Status: resp.StatusCode}
	}
	return nil
}

// webhookHost is the part of a webhook URL safe to log and audit.
func webhookHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	return u.Host
}

// sendWebhook POSTs payload as JSON to w, stamped with X-URE-Timestamp and
// signed with HMAC-SHA256 of "<timestamp>.<body>" under w.Secret (header
// X-URE-Signature: sha256=<hex>; see SignWebhook), each attempt bounded by 10 s, retrying transient
// failures with exponential backoff up to 3 attempts. It uses
// ServiceOptions.Webhooks when set. Used by nudges (events) and
// notifications (controls); the error (EUNAVAILABLE, or EINVALID for a
// receiver's 4xx) never contains the URL or the secret.
func (s *Service) sendWebhook(ctx context.Context, w Webhook, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode webhook payload: %w", err)
	}
	sender := s.opts.Webhooks
	if sender == nil {
		sender = HTTPWebhookSender{Now: s.now}
	}
	host := webhookHost(w.URL)
	s.events.mu.Lock()
	sleep := s.events.sleep
	s.events.mu.Unlock()
	var last error
	attempts := 0
	for attempts < WebhookAttempts {
		if attempts > 0 {
			wait := webhookBackoff << (attempts - 1)
			wait += time.Duration(rand.Int64N(int64(wait) / 4)) // jitter up to 25%
			if err := sleep(ctx, wait); err != nil {
				break
			}
		}
		attempts++
		actx, cancel := context.WithTimeout(ctx, WebhookTimeout)
		last = sender.Send(actx, w, body)
		cancel()
		if last == nil {
			return nil
		}
		var se *WebhookStatusError
		if errors.As(last, &se) && !se.Retryable() {
			return Errorf(EINVALID, "webhook %s refused the delivery: HTTP %d", host, se.Status)
		}
		if ctx.Err() != nil {
			break
		}
	}
	msg := "unreachable"
	var se *WebhookStatusError
	switch {
	case errors.As(last, &se):
		msg = fmt.Sprintf("HTTP %d", se.Status)
	case ctx.Err() != nil:
		msg = "cancelled"
	case last != nil && errors.Is(last, context.DeadlineExceeded):
		msg = "timed out"
	case last != nil:
		msg = sanitizeError(last.Error(), w)
	}
	return Errorf(EUNAVAILABLE, "webhook %s failed after %d attempts: %s", host, attempts, msg)
}

// sanitizeError removes the webhook's URL and secret from an error text.
func sanitizeError(msg string, w Webhook) string {
	if w.URL != "" {
		msg = strings.ReplaceAll(msg, w.URL, webhookHost(w.URL))
	}
	if w.Secret != "" {
		msg = strings.ReplaceAll(msg, w.Secret, Masked)
	}
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}
