package plugin

import (
	"errors"
	"fmt"
)

// Error codes. Only api/ maps them to HTTP statuses.
const (
	EINVALID      = "invalid"       // the caller's input is wrong (400)
	ENOTFOUND     = "not_found"     // the named thing does not exist (404)
	ECONFLICT     = "conflict"      // it exists already / state conflict (409)
	EUNAUTHORIZED = "unauthorized"  // bad or missing credentials (401)
	EFORBIDDEN    = "forbidden"     // authenticated, not allowed (403)
	ERATELIMITED  = "rate_limited"  // slow down (429)
	ETOOLARGE     = "too_large"     // body over the cap (413)
	EUNAVAILABLE  = "unavailable"   // an upstream (Mimecast, Okta) failed or timed out (503)
	EUPSTREAMAUTH = "upstream_auth" // Mimecast/Okta refused the stored credentials, incl. an expired binding (502)
	EINTERNAL     = "internal"      // our bug (500)
)

// Error is the one application error type. Message is safe to show to the
// caller: it never contains a secret. Field names the offending input field
// for EINVALID errors, when there is one.
type Error struct {
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf builds an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError builds an EINVALID error that names the field.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the caller-safe message of err: the *Error's message,
// or a generic text for anything else (whose details are only logged).
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		if e.Field != "" && e.Code == EINVALID {
			return e.Field + ": " + e.Message
		}
		return e.Message
	}
	return "internal error"
}
