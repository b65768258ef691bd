package plugin

import (
	"context"
	"time"
)

// Mimecast is what the host needs from one tenant's Mimecast API. The
// mimecast package implements it; every method retries transient failures
// itself and returns an *Error (codes below) when it gives up.
type Mimecast interface {
	// Account returns get-account. EUPSTREAMAUTH for bad credentials, no
	// permission or an expired binding (the message says which and what to
	// do), ERATELIMITED, EUNAVAILABLE when unreachable or broken.
	Account(ctx context.Context) (Account, error)
	// EachGradePage calls fn with every page of get-safe-score-details in
	// order, pageSize records per call. An error from fn stops the pull and
	// is returned as is.
	EachGradePage(ctx context.Context, pageSize int, fn func([]UserGrade) error) error
	// FindGroups returns the groups whose name contains query ("" for all),
	// following every page.
	FindGroups(ctx context.Context, query string) ([]Group, error)
	// CreateGroup creates a root group with that name.
	CreateGroup(ctx context.Context, name string) (Group, error)
	// AddMembers adds the addresses to the group in calls of the client's
	// batch size, one result per address in input order: "already a member"
	// is Skipped, a per-item fail[] is Failed with Mimecast's reason.
	AddMembers(ctx context.Context, groupID string, emails []string) ([]MemberResult, error)
	// RemoveMembers is AddMembers' reverse; "not a member" is Skipped.
	RemoveMembers(ctx context.Context, groupID string, emails []string) ([]MemberResult, error)
	// GroupMembers lists the group's member addresses (all pages).
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
	// EachLogPage calls fn with every page of one security log for q.
	EachLogPage(ctx context.Context, kind LogKind, q LogQuery, fn func(LogPage) error) error
}

// MimecastFactory builds a client for one configuration's settings (secrets
// in clear). main supplies it; tests point it at the emulator.
type MimecastFactory func(MimecastSettings) (Mimecast, error)

// Okta is what the controls need from an Okta org. The okta package
// implements it. ENOTFOUND tells "no such user" and "no such group" apart
// by Message.
type Okta interface {
	// Ping obtains a token, proving the credentials.
	Ping(ctx context.Context) error
	// FindGroup resolves a group by id or exact name.
	FindGroup(ctx context.Context, idOrName string) (Group, error)
	// FindUser resolves a user by login or email and returns the user id.
	FindUser(ctx context.Context, loginOrEmail string) (string, error)
	// AddUserToGroup makes the user a member (idempotent on Okta's side).
	AddUserToGroup(ctx context.Context, groupID, userID string) error
	// RemoveUserFromGroup removes a member.
	RemoveUserFromGroup(ctx context.Context, groupID, userID string) error
	// GroupMembers lists the logins of the group's members.
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
}

// OktaFactory builds an Okta client for one configuration's settings.
type OktaFactory func(OktaSettings) (Okta, error)

// Detector turns log records into risk events with one configuration's
// rules. The detect package implements it.
type Detector interface {
	// Detect returns the events one record yields (zero or more). An error
	// means the record could not be read (missing user, bad time): the
	// caller sets it aside and goes on.
	Detect(kind LogKind, rec LogRecord) ([]RiskEvent, error)
	// Rules returns the effective rule set.
	Rules() []Rule
}

// DetectorFactory builds a Detector from a configuration's events section
// (nil means defaults) and whether its controls are enabled (which adds the
// control-only rules). It returns EINVALID naming the field for a bad rule.
type DetectorFactory func(events *EventSettings, controls bool) (Detector, error)

// Store is the persistent state. The store package implements it with
// bbolt. Secrets are sealed at rest and returned in clear.
type Store interface {
	// CreateConfiguration stores a new configuration; ECONFLICT if the name exists.
	CreateConfiguration(ctx context.Context, c Configuration) error
	// UpdateConfiguration replaces one; ENOTFOUND if absent.
	UpdateConfiguration(ctx context.Context, c Configuration) error
	// Configuration returns one with secrets in clear; ENOTFOUND if absent.
	Configuration(ctx context.Context, name string) (Configuration, error)
	// Configurations returns all, sorted by name.
	Configurations(ctx context.Context) ([]Configuration, error)
	// DeleteConfiguration removes it and everything kept for it
	// (snapshot, status, events, checkpoints); ENOTFOUND if absent.
	DeleteConfiguration(ctx context.Context, name string) error

	// PutSnapshot replaces the configuration's snapshot in one transaction.
	PutSnapshot(ctx context.Context, s Snapshot) error
	// Snapshot returns the current snapshot; ENOTFOUND if none yet.
	Snapshot(ctx context.Context, configuration string) (Snapshot, error)
	// PutSyncStatus / SyncStatus keep the last sync's status.
	PutSyncStatus(ctx context.Context, configuration string, s SyncStatus) error
	SyncStatus(ctx context.Context, configuration string) (SyncStatus, error)

	// Idempotent returns the stored answer for key, ok false if none
	// (or expired).
	Idempotent(ctx context.Context, key string) (answer []byte, ok bool, err error)
	// PutIdempotent stores an answer for key; ECONFLICT if one exists.
	PutIdempotent(ctx context.Context, key string, answer []byte, ttl time.Duration) error

	// CreateToken stores a token (Hash set, value never stored).
	CreateToken(ctx context.Context, t Token) error
	// TokenByHash finds a token by the SHA-256 hex of its value; ENOTFOUND.
	TokenByHash(ctx context.Context, hash string) (Token, error)
	// Tokens lists every token (revoked ones too), oldest first.
	Tokens(ctx context.Context) ([]Token, error)
	// RevokeToken marks a token revoked; ENOTFOUND.
	RevokeToken(ctx context.Context, id string, at time.Time) error
	// TouchToken records a use.
	TouchToken(ctx context.Context, id string, at time.Time) error

	// AppendAudit appends entries in one transaction, in order, setting
	// each one's Seq, PrevHash and Hash.
	AppendAudit(ctx context.Context, entries ...AuditEntry) error
	// Audit returns entries matching f in Seq order.
	Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)

	// SaveLogPage stores a page's events (skipping ids already stored),
	// its rejected records and the log's new checkpoint in one
	// transaction, and returns how many events were new.
	SaveLogPage(ctx context.Context, configuration string, events []RiskEvent, rejected []Rejected, cp Checkpoint) (added int, err error)
	// Checkpoint returns a log's checkpoint (zero value if none).
	Checkpoint(ctx context.Context, configuration string, log LogKind) (Checkpoint, error)
	// PutCheckpoint stores a checkpoint alone (status updates, errors).
	PutCheckpoint(ctx context.Context, configuration string, cp Checkpoint) error
	// Events returns events matching f, newest first, and the cursor of
	// the next page ("" at the end).
	Events(ctx context.Context, configuration string, f EventFilter) ([]RiskEvent, string, error)
	// UserEvents returns all of one user's events (normalized email).
	UserEvents(ctx context.Context, configuration, user string) ([]RiskEvent, error)
	// Rejected returns the records set aside for a configuration (newest first, at most limit).
	Rejected(ctx context.Context, configuration string, limit int) ([]Rejected, error)
	// PruneEvents removes events older than before and returns how many.
	PruneEvents(ctx context.Context, configuration string, before time.Time) (int, error)

	// MarkOnce records key (e.g. "nudge|rule|user|day" or
	// "control|type|user") and reports whether it was new.
	MarkOnce(ctx context.Context, configuration, key string, at time.Time) (bool, error)
	// PutState / State keep small JSON documents per configuration
	// (controls status, events status).
	PutState(ctx context.Context, configuration, key string, v []byte) error
	State(ctx context.Context, configuration, key string) ([]byte, error)
}

// Clock returns the current time; tests inject a fixed one.
type Clock func() time.Time

// ActionRequest is one execute-action call handed to the executor.
type ActionRequest struct {
	Configuration string
	// Tenant identifies the Mimecast tenant (base URL and app or client
	// id): two configurations of one tenant must not create a group twice.
	Tenant   string
	Mimecast Mimecast
	Action   Action
	// Users are normalized, de-duplicated, valid addresses.
	Users []string
	// BatchSize is the number of members per Mimecast call.
	BatchSize int
}

// ActionExecutor carries out group actions for many users. The actions
// package implements it: one group lookup per call, create only when
// missing (never twice), batched writes with bounded concurrency, one
// result per user in input order.
type ActionExecutor interface {
	Execute(ctx context.Context, req ActionRequest) ([]ActionResult, error)
}

// Metrics receives the host's counters; main wires Prometheus. A nil
// Metrics in ServiceOptions is replaced by one that does nothing.
type Metrics interface {
	SyncFinished(configuration string, ok bool, d time.Duration)
	ActionOutcomes(action string, outcome Outcome, n int)
	EventsStored(configuration string, log LogKind, n int)
}

type nopMetrics struct{}

func (nopMetrics) SyncFinished(string, bool, time.Duration) {}
func (nopMetrics) ActionOutcomes(string, Outcome, int)      {}
func (nopMetrics) EventsStored(string, LogKind, int)        {}
