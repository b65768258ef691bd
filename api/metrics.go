package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mimecast-ure/plugin"
)

// Metrics holds every Prometheus series the server exposes, on its own
// registry (never the global one). It implements plugin.Metrics, and its
// Call and RateLimitWait methods match the Mimecast client's Observer, so
// main passes the same value to the service, the client factory and New.
type Metrics struct {
	reg *prometheus.Registry

	httpDuration  *prometheus.HistogramVec
	syncs         *prometheus.CounterVec
	syncDuration  *prometheus.HistogramVec
	mcCalls       *prometheus.CounterVec
	mcDuration    *prometheus.HistogramVec
	mcWaits       *prometheus.CounterVec
	mcWaitSeconds *prometheus.CounterVec
	actions       *prometheus.CounterVec
	events        *prometheus.CounterVec
	authFailures  *prometheus.CounterVec
	authThrottled prometheus.Counter
}

var _ plugin.Metrics = (*Metrics)(nil)

// NewMetrics registers the series on a fresh registry, together with the Go
// runtime and process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ure_http_request_duration_seconds",
			Help:    "HTTP request latency by route template, method and status.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method", "status"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ure_syncs_total",
			Help: "Grade syncs by configuration and outcome (ok, failed).",
		}, []string{"configuration", "outcome"}),
		syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ure_sync_duration_seconds",
			Help:    "Grade sync duration by configuration.",
			Buckets: []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"configuration"}),
		mcCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ure_mimecast_requests_total",
			Help: "Mimecast API attempts by endpoint and HTTP status (0: transport error).",
		}, []string{"endpoint", "status"}),
		mcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ure_mimecast_request_duration_seconds",
			Help:    "Mimecast API attempt latency by endpoint.",
			Buckets: prometheus.DefBuckets,
		}, []string{"endpoint"}),
		mcWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ure_mimecast_rate_limit_waits_total",
			Help: "Waits imposed by Mimecast rate limits, by endpoint.",
		}, []string{"endpoint"}),
		mcWaitSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ure_mimecast_rate_limit_wait_seconds_total",
			Help: "Time spent waiting for Mimecast rate limits, by endpoint.",
		}, []string{"endpoint"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ure_action_results_total",
			Help: "Per-user action results by action and outcome (done, skipped, failed).",
		}, []string{"action", "outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ure_events_stored_total",
			Help: "New risk events stored, by configuration and log.",
		}, []string{"configuration", "log"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ure_auth_failures_total",
			Help: "Failed API authentications by reason (missing, invalid).",
		}, []string{"reason"}),
		authThrottled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ure_auth_throttled_total",
			Help: "Requests refused with 429 because their client address failed authentication too often.",
		}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpDuration, m.syncs, m.syncDuration, m.mcCalls, m.mcDuration, m.mcWaits,
		m.mcWaitSeconds, m.actions, m.events, m.authFailures, m.authThrottled,
	)
	for _, r := range []string{"missing", "invalid"} {
		m.authFailures.WithLabelValues(r)
	}
	return m
}

// Registry returns the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// SyncFinished counts one grade sync (plugin.Metrics).
func (m *Metrics) SyncFinished(configuration string, ok bool, d time.Duration) {
	outcome := "ok"
	if !ok {
		outcome = "failed"
	}
	m.syncs.WithLabelValues(configuration, outcome).Inc()
	m.syncDuration.WithLabelValues(configuration).Observe(d.Seconds())
}

// ActionOutcomes counts n per-user results of an action (plugin.Metrics).
func (m *Metrics) ActionOutcomes(action string, outcome plugin.Outcome, n int) {
	if n > 0 {
		m.actions.WithLabelValues(action, string(outcome)).Add(float64(n))
	}
}

// EventsStored counts new risk events (plugin.Metrics).
func (m *Metrics) EventsStored(configuration string, log plugin.LogKind, n int) {
	if n > 0 {
		m.events.WithLabelValues(configuration, string(log)).Add(float64(n))
	}
}

// Call counts one Mimecast API attempt (the Mimecast client's Observer).
func (m *Metrics) Call(endpoint string, status int, d time.Duration) {
	m.mcCalls.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
	m.mcDuration.WithLabelValues(endpoint).Observe(d.Seconds())
}

// RateLimitWait counts one wait imposed by a Mimecast rate limit (the
// Mimecast client's Observer).
func (m *Metrics) RateLimitWait(endpoint string, d time.Duration) {
	m.mcWaits.WithLabelValues(endpoint).Inc()
	m.mcWaitSeconds.WithLabelValues(endpoint).Add(d.Seconds())
}

// AuthFailure counts one failed authentication; reason is missing or invalid.
func (m *Metrics) AuthFailure(reason string) { m.authFailures.WithLabelValues(reason).Inc() }

// AuthThrottled counts one request refused by the failed-authentication throttle.
func (m *Metrics) AuthThrottled() { m.authThrottled.Inc() }

// request observes one HTTP request. route must be a route template or
// routeUnmatched, never a raw path; the method is folded into the known
// verbs so a client cannot mint new series by inventing methods.
func (m *Metrics) request(route, method string, status int, d time.Duration) {
	m.httpDuration.WithLabelValues(route, methodLabel(method), strconv.Itoa(status)).Observe(d.Seconds())
}

// routeUnmatched is the route label of a request no route matched (404,
// 405): the raw path would let any client add series.
const routeUnmatched = "unmatched"

// methodLabel is the metrics label of an HTTP method: one of the standard
// verbs, or OTHER for anything else a client sent.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodPatch, http.MethodHead, http.MethodOptions:
		return m
	}
	return "OTHER"
}
