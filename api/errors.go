package api

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"mimecast-ure/plugin"
)

// statusOf is the one table from plugin error codes to HTTP statuses.
var statusOf = map[string]int{
	plugin.EINVALID:      http.StatusBadRequest,
	plugin.ENOTFOUND:     http.StatusNotFound,
	plugin.ECONFLICT:     http.StatusConflict,
	plugin.EUNAUTHORIZED: http.StatusUnauthorized,
	plugin.EFORBIDDEN:    http.StatusForbidden,
	plugin.ERATELIMITED:  http.StatusTooManyRequests,
	plugin.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	plugin.EUPSTREAMAUTH: http.StatusBadGateway,
	plugin.EUNAVAILABLE:  http.StatusServiceUnavailable,
	plugin.EINTERNAL:     http.StatusInternalServerError,
}

// StatusOf returns the HTTP status for err's plugin error code (500 for
// anything that is not a *plugin.Error).
func StatusOf(err error) int {
	if s, ok := statusOf[plugin.ErrorCode(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// errorBody is the one error shape.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// fail answers err in the one error shape and stops the handler chain.
// Internal errors are logged with their details and shown as a generic
// message; a caller's mistake never becomes a 5xx here.
func (s *Server) fail(c *gin.Context, err error) {
	code := plugin.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		code, status = plugin.EINTERNAL, http.StatusInternalServerError
	}
	body := errorDetail{Code: code, Message: plugin.ErrorMessage(err)}
	var pe *plugin.Error
	if errors.As(err, &pe) {
		body.Field = pe.Field
	}
	if code == plugin.EINTERNAL {
		body.Message = "internal error"
		body.Field = ""
	}
	if status >= 500 {
		s.log.Error().Err(err).Str("request_id", requestID(c)).Str("code", code).Msg("request failed")
	}
	if code == plugin.ERATELIMITED && c.Writer.Header().Get("Retry-After") == "" {
		c.Header("Retry-After", "60")
	}
	c.AbortWithStatusJSON(status, errorBody{Error: body})
}

// unauthorized answers the one 401 for every authentication failure.
func unauthorized(c *gin.Context) {
	c.Header("WWW-Authenticate", `Bearer realm="mimecast-ure"`)
	c.AbortWithStatusJSON(http.StatusUnauthorized, errorBody{Error: errorDetail{Code: plugin.EUNAUTHORIZED, Message: "invalid credentials"}})
}
