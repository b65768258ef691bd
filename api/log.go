package api

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"

	"mimecast-ure/plugin"
)

const (
	headerRequestID = "X-Request-ID"
	ctxRequestID    = "ure.request_id"
)

// requestID returns the request's id (set by accessLog).
func requestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

// validRequestID accepts a caller's X-Request-ID only when it is short and
// plain, so it cannot forge log lines.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// accessLog writes one line per request: method, path, route, status,
// latency, client address, request id and the token id when there is one.
// Headers, query strings and bodies are never logged, so neither the
// Authorization header nor a token value can reach the log; a path segment
// that looks like a token is masked too.
func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	id := c.GetHeader(headerRequestID)
	if !validRequestID(id) {
		id = newRequestID()
	}
	c.Set(ctxRequestID, id)
	c.Header(headerRequestID, id)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Cache-Control", "no-store")

	c.Next()

	d := time.Since(start)
	status := c.Writer.Status()
	route := c.FullPath() // the template ("/api/v1/configurations/:name"), never the raw path
	if route == "" {
		route = routeUnmatched
	}
	s.metrics.request(route, c.Request.Method, status, d)

	level := zerolog.InfoLevel
	switch {
	case status >= 500:
		level = zerolog.ErrorLevel
	case status >= 400:
		level = zerolog.WarnLevel
	}
	ev := s.log.WithLevel(level).
		Str("method", logMethod(c.Request.Method)).
		Str("path", maskPath(c.Request.URL.Path)).
		Str("route", route).
		Int("status", status).
		Dur("latency", d).
		Str("client_ip", clientIP(c)).
		Str("request_id", id).
		Int("bytes", c.Writer.Size())
	if t := tokenOf(c); t.ID != "" {
		ev = ev.Str("token_id", t.ID)
	}
	ev.Msg("request")
}

// logMethod is the request method for the access log, capped so an
// invented method cannot make lines arbitrarily long.
func logMethod(m string) string {
	if len(m) > 32 {
		return m[:32] + "..."
	}
	return m
}

// maskPath masks any path segment that looks like a token value.
func maskPath(p string) string {
	if len(p) > 512 {
		p = p[:512] + "..."
	}
	if !strings.Contains(p, plugin.TokenPrefix) {
		return p
	}
	parts := strings.Split(p, "/")
	for i, seg := range parts {
		if strings.Contains(seg, plugin.TokenPrefix) {
			parts[i] = "[REDACTED]"
		}
	}
	return strings.Join(parts, "/")
}
