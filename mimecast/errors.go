package mimecast

import (
	"fmt"
	"strings"
	"time"

	"mimecast-ure/plugin"
)

// Kind classifies an APIError.
type Kind string

// The kinds of APIError.
const (
	// KindInvalidCredentials: HTTP 401, a bad signature, a stale date or a
	// rejected OAuth client (plugin.EUPSTREAMAUTH).
	KindInvalidCredentials Kind = "invalid_credentials"
	// KindForbidden: HTTP 403 or err_xdk_forbidden (plugin.EUPSTREAMAUTH).
	KindForbidden Kind = "forbidden"
	// KindBindingExpired: HTTP 418 or err_xdk_binding_expired (plugin.EUPSTREAMAUTH).
	KindBindingExpired Kind = "binding_expired"
	// KindRateLimited: HTTP 429 until Wait has passed (plugin.ERATELIMITED).
	KindRateLimited Kind = "rate_limited"
	// KindNotFound: HTTP 404 (plugin.ENOTFOUND).
	KindNotFound Kind = "not_found"
	// KindValidation: err_validation_*, Field names the field (plugin.EINVALID).
	KindValidation Kind = "validation"
	// KindRejected: any other 4xx or function failure Mimecast reported
	// (plugin.EUNAVAILABLE); never retried.
	KindRejected Kind = "rejected"
	// KindUnavailable: 5xx, timeouts, connection errors, responses that are
	// not valid JSON, cancellation (plugin.EUNAVAILABLE).
	KindUnavailable Kind = "unavailable"
)

// APIError is every error the client returns for a Mimecast call. Its text
// never contains a key or secret of MinRedactLen bytes or more, a token or
// a signature. errors.As also finds a
// *plugin.Error in it (see PluginError), and errors.Is finds the cause
// (context.Canceled, context.DeadlineExceeded, a *url.Error).
type APIError struct {
	Kind     Kind
	Endpoint string        // the path called, e.g. /api/account/get-account
	Status   int           // HTTP status; 0 when no response arrived
	Code     string        // Mimecast's error code, e.g. err_xdk_invalid_signature
	Message  string        // Mimecast's message (secrets removed)
	Field    string        // the offending field of a validation error
	Wait     time.Duration // rate limited: how long before the next call may go
	Attempts int           // attempts made before giving up
	Err      error         // the underlying cause, if any

	cause     string // Err's text with secrets removed (logs: Error)
	public    string // caller-safe summary of a transport failure (PluginError)
	reason    string // caller-safe reason that goes with public, e.g. "DNS lookup failed"
	retryable bool   // unavailable: another attempt may succeed
	skew      bool   // 401 "Date Header Too Skewed"
	oauth     bool   // API 2.0 credentials are in use
	tokenErr  bool   // the token endpoint refused: no re-mint
	tokenGen  uint64 // which cached token the attempt used
}

// Error describes the failure for logs: endpoint, what happened and what
// to do, then HTTP status, Mimecast's code and message, field, cause and
// attempt count. It never includes secrets.
func (e *APIError) Error() string {
	var d []string
	if e.Status != 0 {
		d = append(d, fmt.Sprintf("HTTP %d", e.Status))
	}
	switch {
	case e.Code != "" && e.Message != "":
		d = append(d, fmt.Sprintf("%s: %q", e.Code, e.Message))
	case e.Code != "":
		d = append(d, e.Code)
	case e.Message != "":
		d = append(d, fmt.Sprintf("%q", e.Message))
	}
	if e.Field != "" {
		d = append(d, "field "+e.Field)
	}
	if e.cause != "" && e.Kind != KindUnavailable {
		d = append(d, e.cause)
	}
	d = append(d, attempts(e.Attempts)...)
	msg := "mimecast " + e.Endpoint + ": " + e.summary()
	if len(d) > 0 {
		msg += " (" + strings.Join(d, ", ") + ")"
	}
	return msg
}

func attempts(n int) []string {
	switch {
	case n == 1:
		return []string{"1 attempt"}
	case n > 1:
		return []string{fmt.Sprintf("%d attempts", n)}
	}
	return nil
}

// summary is the part of the message a person can act on.
func (e *APIError) summary() string {
	switch e.Kind {
	case KindInvalidCredentials:
		switch {
		case e.skew:
			return "Mimecast rejected the request date as too far from its own clock: check this server's clock (NTP)"
		case e.oauth:
			return "Mimecast rejected the credentials: check the API 2.0 client id and client secret"
		case e.Code == CodeInvalidSignature:
			return "Mimecast rejected the credentials (invalid signature): check the application id, application key, access key and secret key"
		}
		return "Mimecast rejected the credentials: check the application id, application key, access key and secret key"
	case KindForbidden:
		return "Mimecast refused the operation: the API application or user lacks the permission for it"
	case KindBindingExpired:
		return "the access/secret key binding has expired (HTTP 418): create new access and secret keys"
	case KindRateLimited:
		return fmt.Sprintf("Mimecast rate limit reached: retry in %s", e.Wait.Round(time.Millisecond))
	case KindNotFound:
		return "Mimecast answered not found"
	case KindValidation:
		return "Mimecast rejected the request as invalid"
	case KindRejected:
		return "Mimecast rejected the request"
	}
	if e.cause != "" {
		return e.cause
	}
	return "Mimecast is unavailable"
}

// PluginError returns the *plugin.Error for e: EUPSTREAMAUTH for invalid
// credentials, forbidden and binding expired, ERATELIMITED, ENOTFOUND,
// EINVALID (with Field) and EUNAVAILABLE for the rest. Its message is safe
// to show a caller: a transport failure is named by the host and a generic
// reason ("could not reach Mimecast at us-api.mimecast.com (DNS lookup
// failed, 3 attempts)"), never by resolver addresses or Go's error text,
// which only Error (for logs) carries.
func (e *APIError) PluginError() *plugin.Error {
	code := plugin.EUNAVAILABLE
	switch e.Kind {
	case KindInvalidCredentials, KindForbidden, KindBindingExpired:
		code = plugin.EUPSTREAMAUTH
	case KindRateLimited:
		code = plugin.ERATELIMITED
	case KindNotFound:
		code = plugin.ENOTFOUND
	case KindValidation:
		code = plugin.EINVALID
	}
	msg := e.summary()
	var d []string
	if e.Kind == KindUnavailable && e.public != "" {
		msg = e.public
		if e.reason != "" {
			d = append(d, e.reason)
		}
	}
	switch e.Kind {
	case KindValidation, KindRejected:
		if e.Message != "" {
			msg += ": " + e.Message
		}
	}
	switch e.Kind {
	case KindRejected, KindNotFound, KindUnavailable:
		if e.Status != 0 {
			d = append(d, fmt.Sprintf("HTTP %d", e.Status))
		}
		if e.Code != "" {
			d = append(d, e.Code)
		}
		if e.Kind == KindUnavailable {
			d = append(d, attempts(e.Attempts)...)
		}
	}
	if len(d) > 0 {
		msg += " (" + strings.Join(d, ", ") + ")"
	}
	return &plugin.Error{Code: code, Message: msg, Field: e.Field}
}

// Unwrap exposes both the *plugin.Error and the cause to errors.Is/As.
func (e *APIError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.PluginError(), e.Err}
	}
	return []error{e.PluginError()}
}

// kindFor classifies an HTTP status and a Mimecast code. ok is false for a
// success (2xx status with no error code).
func kindFor(status int, code string) (Kind, bool) {
	switch {
	case code == CodeBindingExpired || status == 418:
		return KindBindingExpired, true
	case code == CodeInvalidSignature || code == "err_developer_key" || status == 401:
		return KindInvalidCredentials, true
	case code == CodeForbidden || status == 403:
		return KindForbidden, true
	case status == 429:
		return KindRateLimited, true
	case strings.HasPrefix(code, "err_validation"):
		return KindValidation, true
	case status == 404:
		return KindNotFound, true
	case status >= 500:
		return KindUnavailable, true
	case status >= 400 || code != "":
		return KindRejected, true
	}
	return "", false
}
