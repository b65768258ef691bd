package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"mimecast-ure/actions"
	"mimecast-ure/api"
	"mimecast-ure/detect"
	"mimecast-ure/mimecast"
	"mimecast-ure/okta"
	"mimecast-ure/plugin"
	"mimecast-ure/store"
)

// app is a running server: the store, the plugin host and the HTTP server.
type app struct {
	cfg     serverConfig
	log     zerolog.Logger
	store   *store.Store
	service *plugin.Service
	http    *http.Server
	ln      net.Listener
	// URL is the base URL the server listens on (http or https).
	URL string
	// AdminToken is the bootstrap admin token when this start created it.
	AdminToken string

	inflight       *inflight
	cancelHandlers context.CancelFunc
}

// inflight counts the requests being served so shutdown can wait for them.
type inflight struct {
	h    http.Handler
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0 while someone waits
}

func (f *inflight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.n--
		if f.n == 0 && f.idle != nil {
			close(f.idle)
			f.idle = nil
		}
		f.mu.Unlock()
	}()
	f.h.ServeHTTP(w, r)
}

// wait returns true once no request is being served, false if ctx ends first.
func (f *inflight) wait(ctx context.Context) bool {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return true
	}
	if f.idle == nil {
		f.idle = make(chan struct{})
	}
	ch := f.idle
	f.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// newLogger builds the process logger writing to w.
func newLogger(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || level == "" {
		return zerolog.Nop(), fmt.Errorf("--log-level: want debug, info, warn or error")
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: true}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// startApp opens the store, starts the host's loops and begins serving.
// It returns once the listener is bound; Wait blocks until ctx is done.
func startApp(ctx context.Context, cfg serverConfig, getenv func(string) string, log zerolog.Logger, mcExtra mimecast.Options) (*app, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if _, err := plugin.ParseManifest(manifestJSON); err != nil {
		return nil, fmt.Errorf("embedded manifest.json: %w", err)
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	key, generated, err := store.ResolveMasterKey(getenv("URE_MASTER_KEY"), cfg.MasterKeyFile, cfg.Data)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	if generated {
		log.Warn().Str("file", filepath.Join(cfg.Data, store.MasterKeyFile)).
			Msg("no master key given (URE_MASTER_KEY or --master-key-file): generated one; back it up, without it stored secrets cannot be opened")
	}
	st, err := store.Open(store.FilePath(cfg.Data), store.Options{MasterKey: key, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	metrics := api.NewMetrics()
	mcExtra.Observer = metrics
	if mcExtra.HTTPClient == nil {
		mcExtra.HTTPClient = outboundClient(0)
	}
	svc := plugin.NewService(plugin.ServiceOptions{
		Store:    st,
		Mimecast: mimecast.Factory(mcExtra),
		Actions:  actions.New(actions.Options{Logger: log.With().Str("component", "actions").Logger()}),
		Detector: detect.New,
		Okta:     okta.Factory(okta.Options{HTTPClient: outboundClient(0)}),
		Webhooks: plugin.HTTPWebhookSender{Client: outboundClient(plugin.WebhookTimeout)},
		Metrics:  metrics,
		Logger:   log,
	})
	a := &app{cfg: cfg, log: log, store: st, service: svc}
	fail := func(err error) (*app, error) {
		_ = svc.Close()
		_ = st.Close()
		return nil, err
	}
	token, created, err := svc.EnsureAdminToken(ctx, getenv("URE_ADMIN_TOKEN"))
	if err != nil {
		return fail(fmt.Errorf("bootstrap admin token: %w", err))
	}
	if created && getenv("URE_ADMIN_TOKEN") == "" {
		a.AdminToken = token
	}
	if !created && getenv("URE_ADMIN_TOKEN") != "" {
		log.Warn().Msg("URE_ADMIN_TOKEN is set but an admin token exists already: the variable was not used (manage tokens with the API or `mimecast-ure token`)")
	}
	if err := svc.Start(ctx); err != nil {
		return fail(fmt.Errorf("start plugin host: %w", err))
	}
	h, err := api.New(api.Options{
		Service:           svc,
		Logger:            log.With().Str("component", "http").Logger(),
		Metrics:           metrics,
		Manifest:          manifestJSON,
		Ready:             svc.Ready,
		MaxBodyBytes:      cfg.MaxBodyBytes,
		AuthFailureLimit:  cfg.AuthFailLimit,
		AuthFailureWindow: cfg.AuthFailWindow,
		TrustedProxies:    cfg.trustedProxies(),
	})
	if err != nil {
		return fail(fmt.Errorf("build API: %w", err))
	}
	// Handlers run on a context that shutdown cancels once its grace period
	// is over, and are counted so the store closes only after the last one
	// has finished (its audit entries written).
	baseCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	a.cancelHandlers = cancelHandlers
	a.inflight = &inflight{h: h}
	a.http = &http.Server{
		Handler:           a.inflight,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      10 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          api.ErrorLog(log.With().Str("component", "http").Logger()),
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fail(fmt.Errorf("load TLS certificate: %w", err))
		}
		a.http.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		scheme = "https"
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fail(fmt.Errorf("listen on %s: %w", cfg.Addr, err))
	}
	if scheme == "http" && !isLoopback(ln.Addr()) {
		log.Warn().Str("addr", ln.Addr().String()).Msg("serving plain HTTP on a non-loopback address: bearer tokens cross the network in clear; use --tls-cert/--tls-key or a TLS proxy")
	}
	if a.http.TLSConfig != nil {
		ln = tls.NewListener(ln, a.http.TLSConfig)
	}
	a.ln = ln
	a.URL = scheme + "://" + ln.Addr().String()
	log.Info().Str("url", a.URL).Msg("listening")
	return a, nil
}

// Serve serves until ctx is done, then shuts down gracefully: stop taking
// requests, finish or cancel syncs, close the store.
func (a *app) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- a.http.Serve(a.ln) }()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	a.log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownWait)
	defer cancel()
	if err := a.http.Shutdown(sctx); err != nil {
		a.log.Warn().Err(err).Msg("HTTP shutdown: grace period over, cancelling requests in flight")
	}
	a.cancelHandlers()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	if !a.inflight.wait(wctx) {
		a.log.Error().Msg("requests still running after shutdown; closing the store anyway")
	}
	wcancel()
	if err := a.service.Close(); err != nil {
		a.log.Warn().Err(err).Msg("plugin host close")
	}
	if err := a.store.Close(); err != nil {
		a.log.Warn().Err(err).Msg("store close")
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// runServe is `mimecast-ure serve`.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg serverConfig
	cfg.register(fs, "./data")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	a, err := startApp(ctx, cfg, getenv, log, mimecast.Options{})
	if err != nil {
		return err
	}
	if a.AdminToken != "" {
		fmt.Fprintf(stdout, "Created the first admin token (shown once, store it now):\n  %s\n", a.AdminToken)
	}
	return a.Serve(ctx)
}

// outboundClient is the HTTP client for every call the server makes out
// (Mimecast, Okta, webhooks): it never follows a redirect (a signed body or
// a credential must not be re-sent somewhere else) and never connects to a
// link-local, multicast or unspecified address, whatever a host name
// resolves to (cloud metadata services live at 169.254.169.254).
func outboundClient(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: refuseSpecialAddress}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = dialer.DialContext
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// refuseSpecialAddress is a net.Dialer Control: it runs after name
// resolution, on the address actually dialled.
func refuseSpecialAddress(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() || ip.IsMulticast() {
		return fmt.Errorf("refusing to connect to %s: link-local, multicast or unspecified address", host)
	}
	return nil
}
