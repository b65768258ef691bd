package plugin

import (
	"context"
	"time"

	"github.com/rs/zerolog"
)

// ServiceOptions wires a Service. Store, Mimecast and Actions are required.
type ServiceOptions struct {
	Store    Store
	Mimecast MimecastFactory
	Actions  ActionExecutor
	Detector DetectorFactory // nil: events are off
	Okta     OktaFactory     // nil: Okta targets fail validation
	Metrics  Metrics         // nil: nothing is counted
	Logger   zerolog.Logger
	Now      Clock // nil: time.Now
	// HTTPDo posts webhooks (nudges, notifications); nil uses a client
	// with a 10 s timeout.
	Webhooks WebhookSender
}

// WebhookSender delivers one signed JSON body; main passes an HTTP one.
type WebhookSender interface {
	Send(ctx context.Context, w Webhook, body []byte) error
}

// Service is the plugin host: the operations a risk exchange calls, the
// background grade sync and event pull loops, and token and audit
// management. All methods are safe for concurrent use.
type Service struct {
	opts   ServiceOptions
	store  Store
	log    zerolog.Logger
	now    Clock
	m      Metrics
	host   *hostState // grade sync, snapshots in memory (sync.go)
	events *eventState
	ctrls  *controlState
	// clients shares one Mimecast client per tenant settings (clients.go).
	clients clientCache
}

// NewService builds a Service; call Start to begin background loops.
func NewService(opts ServiceOptions) *Service {
	s := &Service{opts: opts, store: opts.Store, log: opts.Logger.With().Str("component", "plugin").Logger(), now: opts.Now, m: opts.Metrics}
	if s.now == nil {
		s.now = time.Now
	}
	if s.m == nil {
		s.m = nopMetrics{}
	}
	s.host = newHostState()
	s.events = newEventState()
	s.ctrls = newControlState()
	return s
}

// Record is one fetch-records entry.
type Record struct {
	UID  string `json:"uid"`
	Type string `json:"type"`
}

// ScoredRecord is one fetch-scores entry.
type ScoredRecord struct {
	UID   string `json:"uid"`
	Type  string `json:"type"`
	Score int    `json:"score"`
	Grade string `json:"grade"`
	// GradeScore is the grade-only score when event scoring changed Score.
	GradeScore int `json:"grade_score,omitempty"`
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Name           string   `json:"name"`
	Owner          string   `json:"owner"`
	Role           Role     `json:"role"`
	ExpiresIn      Duration `json:"expires_in,omitempty"`
	Configurations []string `json:"configurations,omitempty"`
}

// UserDetail explains one user's score.
type UserDetail struct {
	UID        string              `json:"uid"`
	Grade      string              `json:"grade"`
	GradeScore int                 `json:"grade_score"`
	Score      int                 `json:"score"`
	Name       string              `json:"name,omitempty"`
	Department string              `json:"department,omitempty"`
	Components map[string]string   `json:"components,omitempty"`
	Events     []EventContribution `json:"events"`
}

// EventContribution is one event's share of a user's score.
type EventContribution struct {
	ID           string            `json:"id"`
	Rule         string            `json:"rule"`
	At           time.Time         `json:"at"`
	Weight       float64           `json:"weight"`
	Contribution float64           `json:"contribution"`
	Evidence     map[string]string `json:"evidence"`
}

// Targets is the campaign-targeting answer.
type Targets struct {
	Rule  string       `json:"rule"`
	Since string       `json:"since"`
	Users []TargetUser `json:"users"`
}

// TargetUser is one user to target, with how often the rule matched.
type TargetUser struct {
	UID    string    `json:"uid"`
	Count  int       `json:"count"`
	LastAt time.Time `json:"last_at"`
}

// ControlCheck is one line of controls/validate.
type ControlCheck struct {
	Name    string `json:"name"`
	Success bool   `json:"success"`
	Message string `json:"message"`
}

// ControlsValidation is the answer of controls/validate.
type ControlsValidation struct {
	Success bool           `json:"success"`
	Message string         `json:"message"`
	Checks  []ControlCheck `json:"checks"`
}

// ControlsStatus is the answer of controls/status.
type ControlsStatus struct {
	LastRun    time.Time      `json:"last_run,omitzero"`
	Counts     map[string]int `json:"counts"`
	LastErrors []string       `json:"last_errors"`
}
