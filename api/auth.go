package api

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"

	"mimecast-ure/plugin"
)

// ctxToken is the gin context key of the authenticated token.
const ctxToken = "ure.token"

// tokenOf returns the request's authenticated token.
func tokenOf(c *gin.Context) plugin.Token {
	t, _ := c.Get(ctxToken)
	tok, _ := t.(plugin.Token)
	return tok
}

// actorOf names the caller in audit entries: the token's id and name.
func actorOf(c *gin.Context) string {
	t := tokenOf(c)
	return "token:" + t.ID + " (" + t.Name + ")"
}

// bearer extracts the token from an Authorization header; ok is false
// when the header is absent. A malformed header yields its raw text so it
// is still hashed and looked up like any other wrong value.
func bearer(h string) (value string, present bool) {
	if h == "" {
		return "", false
	}
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return h, true
}

// authenticate is the /api/v1 middleware. A valid token is always served,
// whatever the throttle says about its client address: a neighbour behind
// the same proxy sending bad tokens must not lock the risk platform out.
// Every other request gets the one 401, or 429 once its address has
// failed too often; only those failures count towards the throttle. The
// token is looked up in every case so that the answer takes about the
// same time whatever was wrong, and put on the context for the role
// checks.
func (s *Server) authenticate(c *gin.Context) {
	value, present := bearer(c.GetHeader("Authorization"))
	if len(value) > 4096 {
		value = value[:4096]
	}
	// Always hash and look up, even a missing or malformed value, and
	// before asking the throttle, so neither what was wrong nor whether
	// the address is blocked changes the work done.
	tok, err := s.host.Authenticate(c.Request.Context(), value)
	if err == nil {
		c.Set(ctxToken, tok)
		c.Next()
		return
	}
	if code := plugin.ErrorCode(err); code != plugin.EUNAUTHORIZED {
		s.fail(c, err)
		return
	}
	ip := clientIP(c)
	key := throttleKey(ip)
	now := s.now()
	reason := "invalid"
	if !present {
		reason = "missing"
	}
	s.metrics.AuthFailure(reason)
	if until, blocked := s.throttle.blocked(key, now); blocked {
		// Already over the threshold: the trip was audited and alerted.
		// The attempts during the block are all counted and recorded, but
		// in one audit entry per window with their count, so a flood from
		// a blocked address cannot grow the append-only log without bound.
		s.metrics.AuthThrottled()
		if n := s.throttle.suppress(key, now); n > 0 {
			detail := map[string]string{"reason": reason, "throttled": "true", "count": strconv.Itoa(n),
				"method": logMethod(c.Request.Method), "path": maskPath(c.Request.URL.Path)}
			if err := s.host.RecordAuthFailure(context.WithoutCancel(c.Request.Context()), ip, detail); err != nil {
				s.log.Error().Err(err).Str("client_ip", ip).Msg("failed authentications not audited")
			}
		}
		secs := int(until.Sub(now).Seconds()) + 1
		c.Header("Retry-After", strconv.Itoa(secs))
		s.fail(c, plugin.Errorf(plugin.ERATELIMITED, "too many failed authentications from this address; retry in %ds", secs))
		return
	}
	tripped, leftover := s.throttle.fail(key, now)
	detail := map[string]string{"reason": reason, "method": logMethod(c.Request.Method), "path": maskPath(c.Request.URL.Path)}
	if n := leftover; n > 0 {
		detail["earlier_throttled"] = strconv.Itoa(n)
	}
	if tripped {
		detail["throttled"] = "true"
	}
	if err := s.host.RecordAuthFailure(context.WithoutCancel(c.Request.Context()), ip, detail); err != nil {
		s.log.Error().Err(err).Str("client_ip", ip).Msg("failed authentication not audited")
	}
	if tripped {
		s.log.WithLevel(zerolog.ErrorLevel).Bool("alert", true).Str("client_ip", ip).
			Int("failures", s.opts.AuthFailureLimit).Dur("window", s.opts.AuthFailureWindow).
			Dur("blocked_for", s.opts.AuthBlockFor).
			Msg("repeated failed authentications: client address throttled")
	}
	unauthorized(c)
}

// ctxAllow is the gin context key of the Allow header of a 405, held back
// until the caller has authenticated.
const ctxAllow = "ure.allow"

// isV1 reports whether path is under /api/v1.
func isV1(path string) bool {
	return path == "/api/v1" || strings.HasPrefix(path, "/api/v1/")
}

// authenticateV1 runs before the 404 and 405 answers: under /api/v1 it
// authenticates first (the same 401 or 429, counted and audited like any
// other failure), and holds back the Allow header gin set for a 405 until
// then, so neither the status nor the header tells a caller without a
// token which routes exist. Other paths go straight on.
func (s *Server) authenticateV1(c *gin.Context) {
	if !isV1(c.Request.URL.Path) {
		c.Next()
		return
	}
	if allow := c.Writer.Header().Get("Allow"); allow != "" {
		c.Set(ctxAllow, allow)
		c.Writer.Header().Del("Allow")
	}
	s.authenticate(c)
}

// require returns a middleware that lets through tokens of at least role.
// For routes with a :name parameter the token must also allow that
// configuration; global routes marked unrestricted need a token that is
// not limited to some configurations.
func (s *Server) require(role plugin.Role, unrestricted bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		tok := tokenOf(c)
		if tok.Role.Rank() < role.Rank() {
			s.fail(c, plugin.Errorf(plugin.EFORBIDDEN, "this needs the %s role", role))
			return
		}
		if unrestricted && len(tok.Configurations) > 0 {
			s.fail(c, plugin.Errorf(plugin.EFORBIDDEN, "a token restricted to some configurations cannot do this"))
			return
		}
		if name := c.Param("name"); name != "" && !tok.Allows(name) {
			s.fail(c, plugin.Errorf(plugin.EFORBIDDEN, "this token is not allowed on configuration %q", name))
			return
		}
		c.Next()
	}
}

// clientIP is the caller's address: the remote address unless the request
// came through a trusted proxy (Options.TrustedProxies).
func clientIP(c *gin.Context) string {
	if ip := c.ClientIP(); ip != "" {
		return ip
	}
	return "unknown"
}

// throttleKey is the address a failure counts against: the IPv4 address,
// or the /64 of an IPv6 one, since one host usually holds a whole /64 and
// could otherwise rotate addresses past the throttle.
func throttleKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil || addr.Unmap().Is4() {
		return ip
	}
	p, err := addr.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

// throttle counts failed authentications per client address in a fixed
// window and blocks an address for a while once it reaches the limit.
type throttle struct {
	limit   int
	window  time.Duration
	blockTo time.Duration

	mu        sync.Mutex
	clients   map[string]*failures
	lastSweep time.Time
}

type failures struct {
	start time.Time // window start
	n     int
	until time.Time // blocked until
	// suppressed counts failures during a block not audited yet; they are
	// audited together, at most once per window (see suppress).
	suppressed int
	flushed    time.Time
}

func newThrottle(limit int, window, block time.Duration) *throttle {
	return &throttle{limit: limit, window: window, blockTo: block, clients: map[string]*failures{}}
}

// blocked reports whether ip is blocked at now, and until when.
func (t *throttle) blocked(ip string, now time.Time) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.clients[ip]
	if f == nil || !now.Before(f.until) {
		return time.Time{}, false
	}
	return f.until, true
}

// suppress counts one failure of a blocked ip and, at most once per
// window, returns how many are due to be audited together (0 otherwise).
func (t *throttle) suppress(ip string, now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.clients[ip]
	if f == nil {
		return 1
	}
	f.suppressed++
	if now.Sub(f.flushed) < t.window {
		return 0
	}
	n := f.suppressed
	f.suppressed, f.flushed = 0, now
	return n
}

// fail records one failure of ip at now and reports whether it tripped
// the block, and how many failures of an earlier block were not audited
// yet (they are recorded with this one).
func (t *throttle) fail(ip string, now time.Time) (tripped bool, leftover int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f := t.clients[ip]; f != nil {
		leftover, f.suppressed = f.suppressed, 0
	}
	t.sweep(now)
	f := t.clients[ip]
	if f == nil {
		f = &failures{start: now}
		t.clients[ip] = f
	}
	if now.Sub(f.start) >= t.window {
		f.start, f.n = now, 0
	}
	f.n++
	if f.n >= t.limit && !now.Before(f.until) {
		f.until = now.Add(t.blockTo)
		f.start, f.n = now, 0
		f.flushed = now // the trip itself is audited
		return true, leftover
	}
	return false, leftover
}

// sweep drops stale addresses at most once per window so the map stays
// bounded by the addresses seen recently.
func (t *throttle) sweep(now time.Time) {
	if now.Sub(t.lastSweep) < t.window {
		return
	}
	t.lastSweep = now
	for ip, f := range t.clients {
		if now.Sub(f.start) >= t.window && !now.Before(f.until) {
			delete(t.clients, ip)
		}
	}
}
