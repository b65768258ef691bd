// Package api is mimecast-ure's HTTP API (gin): every route of the
// contract in one function, bearer-token authentication with roles and a
// failed-authentication throttle, one error shape with one table from
// plugin error codes to statuses, an access log and Prometheus metrics.
package api

import (
	"context"
	_ "embed"
	"fmt"
	stdlog "log"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"

	"mimecast-ure/plugin"
)

// Host is what the API needs from the plugin host; *plugin.Service
// implements it.
type Host interface {
	Authenticate(ctx context.Context, value string) (plugin.Token, error)
	RecordAuthFailure(ctx context.Context, addr string, detail map[string]string) error
	CreateToken(ctx context.Context, actor string, req plugin.TokenRequest) (plugin.Token, string, error)
	ListTokens(ctx context.Context) ([]plugin.Token, error)
	RevokeToken(ctx context.Context, actor, id string) error
	Audit(ctx context.Context, f plugin.AuditFilter) ([]plugin.AuditEntry, error)

	CreateConfiguration(ctx context.Context, actor string, c plugin.Configuration) (plugin.Configuration, error)
	UpdateConfiguration(ctx context.Context, actor, name string, c plugin.Configuration) (plugin.Configuration, error)
	GetConfiguration(ctx context.Context, name string) (plugin.Configuration, error)
	ListConfigurations(ctx context.Context) ([]plugin.Configuration, error)
	DeleteConfiguration(ctx context.Context, actor, name string) error
	ValidateConfiguration(ctx context.Context, name string) (plugin.ValidationResult, error)

	FetchRecords(ctx context.Context, name string) ([]plugin.Record, error)
	FetchScores(ctx context.Context, name string, uids []string) ([]plugin.ScoredRecord, error)
	Actions() []plugin.ActionOption
	ActionFields(ctx context.Context, name, value string) ([]plugin.Field, error)
	ValidateAction(ctx context.Context, name string, a plugin.Action) (plugin.ValidationResult, error)
	ExecuteAction(ctx context.Context, actor, name, idempotencyKey string, uids []string, a plugin.Action) ([]plugin.ActionResult, error)
	TriggerSync(ctx context.Context, name string) error
	SyncStatus(ctx context.Context, name string) (plugin.SyncStatus, error)

	PullEvents(ctx context.Context, name string) error
	EventsStatus(ctx context.Context, name string) ([]plugin.Checkpoint, error)
	EventsPullState(ctx context.Context, name string) (plugin.EventsPullState, error)
	Events(ctx context.Context, name string, f plugin.EventFilter) ([]plugin.RiskEvent, string, error)
	UserDetail(ctx context.Context, name, uid string) (plugin.UserDetail, error)
	Targets(ctx context.Context, name, rule string, since time.Duration) (plugin.Targets, error)

	ValidateControls(ctx context.Context, name string) (plugin.ControlsValidation, error)
	ControlsStatus(ctx context.Context, name string) (plugin.ControlsStatus, error)
}

var _ Host = (*plugin.Service)(nil)

// Defaults of Options.
const (
	DefaultMaxBodyBytes      = 10 << 20
	DefaultAuthFailureLimit  = 10
	DefaultAuthFailureWindow = time.Minute
	DefaultAuthBlockFor      = 5 * time.Minute
	// MaxIdempotencyKey is the longest Idempotency-Key header accepted.
	MaxIdempotencyKey = 255
)

// Options configure a Server. Service is required; zero values take the
// defaults above.
type Options struct {
	Service Host
	Logger  zerolog.Logger
	// Metrics is shared with the service and the Mimecast clients; nil
	// makes a private one.
	Metrics *Metrics
	// Manifest is the plugin's manifest.json, served as is.
	Manifest []byte
	// Ready reports whether the service can serve (/readyz); nil is always ready.
	Ready func() bool
	// MaxBodyBytes caps request bodies (413 above it).
	MaxBodyBytes int64
	// Now is the clock (throttling); nil is time.Now.
	Now func() time.Time
	// AuthFailureLimit failed authentications from one client address
	// within AuthFailureWindow block it with 429 for AuthBlockFor.
	AuthFailureLimit  int
	AuthFailureWindow time.Duration
	AuthBlockFor      time.Duration
	// TrustedProxies are the proxy addresses or CIDRs whose
	// X-Forwarded-For / X-Real-IP name the client. None by default: the
	// client address is the connection's remote address.
	TrustedProxies []string
}

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	opts     Options
	host     Host
	log      zerolog.Logger
	metrics  *Metrics
	now      func() time.Time
	throttle *throttle
	engine   *gin.Engine
}

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

// New builds the server and registers every route.
func New(opts Options) (*Server, error) {
	if opts.Service == nil {
		return nil, fmt.Errorf("api: Options.Service is required")
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	if opts.Ready == nil {
		opts.Ready = func() bool { return true }
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AuthFailureLimit <= 0 {
		opts.AuthFailureLimit = DefaultAuthFailureLimit
	}
	if opts.AuthFailureWindow <= 0 {
		opts.AuthFailureWindow = DefaultAuthFailureWindow
	}
	if opts.AuthBlockFor <= 0 {
		opts.AuthBlockFor = DefaultAuthBlockFor
	}
	s := &Server{
		opts:     opts,
		host:     opts.Service,
		log:      opts.Logger.With().Str("component", "api").Logger(),
		metrics:  opts.Metrics,
		now:      opts.Now,
		throttle: newThrottle(opts.AuthFailureLimit, opts.AuthFailureWindow, opts.AuthBlockFor),
	}
	// Release mode only silences gin's debug printing (a process-wide
	// switch, the same value for every server).
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.TrustedPlatform = ""
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	if err := e.SetTrustedProxies(opts.TrustedProxies); err != nil {
		return nil, fmt.Errorf("api: trusted proxies: %w", err)
	}
	s.engine = e
	s.routes()
	return s, nil
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// HTTPServer returns an *http.Server for addr serving s, with timeouts
// that keep slow or idle clients from holding connections: 10 s for the
// headers, 1 min for the body, 15 min for the answer (an execute-action on
// many users takes a while), 2 min idle, 64 KiB of headers.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      15 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          ErrorLog(s.log),
	}
}

// ErrorLog returns a standard-library logger for http.Server.ErrorLog:
// net/http's own errors (TLS handshake failures, malformed requests,
// panics in handlers) become one zerolog line each at warn level, with
// source=net/http, instead of going to stderr unformatted.
func ErrorLog(l zerolog.Logger) *stdlog.Logger {
	return stdlog.New(warnWriter{l: l.With().Str("source", "net/http").Logger()}, "", 0)
}

// warnWriter writes each line it is given as one warn-level log entry.
type warnWriter struct{ l zerolog.Logger }

func (w warnWriter) Write(p []byte) (int, error) {
	w.l.Warn().Msg(strings.TrimRight(string(p), "\r\n"))
	return len(p), nil
}

// Metrics returns the server's metrics (the ones passed in Options, or
// its private ones).
func (s *Server) Metrics() *Metrics { return s.metrics }

// routes registers every route. Role per route: viewer reads, operator
// also validates, executes actions and triggers syncs and pulls, admin
// also manages configurations; tokens and audit need an admin token that
// is not restricted to some configurations.
func (s *Server) routes() {
	e := s.engine
	e.Use(s.accessLog, s.recover, s.limitBody)
	// Under /api/v1 an unknown path or method is answered only after
	// authentication, so 404 and 405 cannot map the routes for someone
	// without a token.
	e.NoRoute(s.authenticateV1, func(c *gin.Context) {
		s.fail(c, plugin.Errorf(plugin.ENOTFOUND, "no such route: %s %s", c.Request.Method, c.Request.URL.Path))
	})
	e.NoMethod(s.authenticateV1, func(c *gin.Context) {
		if allow, ok := c.Get(ctxAllow); ok {
			c.Header("Allow", allow.(string))
		}
		c.AbortWithStatusJSON(http.StatusMethodNotAllowed, errorBody{Error: errorDetail{Code: "method_not_allowed", Message: "method " + c.Request.Method + " is not allowed here"}})
	})

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", gin.WrapH(s.metrics.Handler()))
	e.GET("/openapi.json", s.openapi)

	viewer := s.require(plugin.RoleViewer, false)
	operator := s.require(plugin.RoleOperator, false)
	admin := s.require(plugin.RoleAdmin, false)
	globalAdmin := s.require(plugin.RoleAdmin, true)

	v1 := e.Group("/api/v1", s.authenticate)
	v1.GET("/manifest", viewer, s.manifest)

	v1.POST("/tokens", globalAdmin, s.createToken)
	v1.GET("/tokens", globalAdmin, s.listTokens)
	v1.DELETE("/tokens/:id", globalAdmin, s.revokeToken)
	v1.GET("/audit", globalAdmin, s.audit)

	v1.POST("/configurations", admin, s.createConfiguration)
	v1.GET("/configurations", viewer, s.listConfigurations)

	cfg := v1.Group("/configurations/:name")
	cfg.GET("", viewer, s.getConfiguration)
	cfg.PUT("", admin, s.updateConfiguration)
	cfg.DELETE("", admin, s.deleteConfiguration)
	cfg.POST("/validate", operator, s.validateConfiguration)

	cfg.POST("/fetch-records", viewer, s.fetchRecords)
	cfg.POST("/fetch-scores", viewer, s.fetchScores)
	cfg.GET("/actions", viewer, s.actions)
	cfg.GET("/actions/:value/fields", viewer, s.actionFields)
	cfg.POST("/validate-action", operator, s.validateAction)
	cfg.POST("/execute-action", operator, s.executeAction)
	cfg.POST("/sync", operator, s.triggerSync)
	cfg.GET("/sync", viewer, s.syncStatus)

	cfg.POST("/events/pull", operator, s.pullEvents)
	cfg.GET("/events/pull", viewer, s.eventsStatus)
	cfg.GET("/events", viewer, s.events)
	cfg.GET("/users/:uid", viewer, s.userDetail)
	cfg.GET("/targets", viewer, s.targets)

	cfg.POST("/controls/validate", operator, s.validateControls)
	cfg.GET("/controls/status", viewer, s.controlsStatus)
}

// recover turns a panic into the generic 500, logging what happened.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.Error().Str("request_id", requestID(c)).Str("panic", fmt.Sprint(r)).
				Bytes("stack", debug.Stack()).Msg("handler panicked")
			if !c.Writer.Written() {
				c.AbortWithStatusJSON(http.StatusInternalServerError, errorBody{Error: errorDetail{Code: plugin.EINTERNAL, Message: "internal error"}})
			} else {
				c.Abort()
			}
		}
	}()
	c.Next()
}

// limitBody caps every request body; reading past the cap fails with
// *http.MaxBytesError, which decode turns into a 413.
func (s *Server) limitBody(c *gin.Context) {
	if c.Request.ContentLength > s.opts.MaxBodyBytes {
		s.fail(c, plugin.Errorf(plugin.ETOOLARGE, "the request body is over %d bytes", s.opts.MaxBodyBytes))
		return
	}
	if c.Request.Body != nil && c.Request.Body != http.NoBody {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.opts.MaxBodyBytes)
	}
	c.Next()
}
