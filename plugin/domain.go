// Package plugin holds mimecast-ure's domain: the types every other package
// speaks, the interfaces they implement, and the host operations a risk
// exchange calls. It imports scoring only; api/, store/, mimecast/, actions/,
// detect/ and okta/ implement or call what is declared here, and main wires them.
package plugin

import (
	"strings"
	"time"
)

// UserGrade is one user's awareness-training SAFE score record, every field
// of get-safe-score-details. Email is as Mimecast sent it; use NormalizeEmail
// to match.
type UserGrade struct {
	Email      string `json:"emailAddress"`
	Name       string `json:"name,omitempty"`
	Department string `json:"department,omitempty"`
	Risk       string `json:"risk"`
	HumanError string `json:"humanError,omitempty"`
	Sentiment  string `json:"sentiment,omitempty"`
	Engagement string `json:"engagement,omitempty"`
	Knowledge  string `json:"knowledge,omitempty"`
	UserState  string `json:"userState,omitempty"`
}

// NormalizeEmail lowercases, trims and strips <...> so addresses match
// case-insensitively everywhere.
func NormalizeEmail(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "<")
	s = strings.TrimSuffix(s, ">")
	return strings.ToLower(strings.TrimSpace(s))
}

// Snapshot is the last complete grade pull of one configuration. It is
// replaced whole by the next successful sync and never partially written.
type Snapshot struct {
	Configuration string      `json:"configuration"`
	TakenAt       time.Time   `json:"taken_at"`
	Users         []UserGrade `json:"users"`
}

// SyncStatus describes the last grade sync of a configuration. While a
// sync runs (State "running"), StartedAt is its start and FinishedAt still
// the end of the previous one, as are the counts.
type SyncStatus struct {
	State         string    `json:"state"` // idle, running, ok, failed
	StartedAt     time.Time `json:"started_at,omitzero"`
	FinishedAt    time.Time `json:"finished_at,omitzero"`
	Users         int       `json:"users"`
	Scored        int       `json:"scored"`
	UnknownGrades int       `json:"unknown_grades"`
	Pages         int       `json:"pages"`
	Error         string    `json:"error,omitempty"`
	SnapshotAt    time.Time `json:"snapshot_at,omitzero"`
}

// Account is the part of get-account the host uses.
type Account struct {
	Code     string   `json:"accountCode"`
	Name     string   `json:"accountName"`
	Region   string   `json:"region"`
	Packages []string `json:"packages"`
}

// AwarenessPackage is the package string get-account lists when the tenant
// has Awareness Training. Mimecast renamed the product "Engage"; the rename's
// package string is accepted too (see HasAwareness).
const AwarenessPackage = "Awareness Training [1078]"

// HasAwareness reports whether the account has the Awareness Training
// package: an exact match on the documented string, or the later "Engage
// Core [1124]" name.
func (a Account) HasAwareness() bool {
	for _, p := range a.Packages {
		if p == AwarenessPackage || p == "Engage Core [1124]" {
			return true
		}
	}
	return false
}

// Group is a Mimecast directory (profile) group. Mimecast calls the name
// "description".
type Group struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Source    string `json:"source,omitempty"`
	UserCount int    `json:"user_count,omitempty"`
}

// Outcome is the result of acting on one user.
type Outcome string

// Outcomes of one user's action.
const (
	Done    Outcome = "done"
	Skipped Outcome = "skipped"
	Failed  Outcome = "failed"
)

// MemberResult is one item's result of a group membership write.
type MemberResult struct {
	Email  string  `json:"email"`
	Status Outcome `json:"status"`
	Reason string  `json:"reason,omitempty"`
	// Code is the upstream error code, e.g. err_folder_group_member_already_exists.
	Code string `json:"code,omitempty"`
}

// Action is what the platform asks to do with a set of users.
type Action struct {
	Label      string            `json:"label,omitempty"`
	Value      string            `json:"value"`
	Parameters map[string]string `json:"parameters,omitempty"`
}

// Action values.
const (
	ActionAdd      = "add"
	ActionRemove   = "remove"
	ActionGenerate = "generate"
	// CreateGroup is the `group` parameter value that means "create a group
	// named by the `name` parameter if none exists".
	CreateGroup = "create"
)

// ActionResult is one user's outcome of execute-action.
type ActionResult struct {
	UID     string  `json:"uid"`
	Status  Outcome `json:"status"`
	Message string  `json:"message,omitempty"`
}

// ActionOption is one entry of the action list.
type ActionOption struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Field is one form field the platform renders for an action.
type Field struct {
	Label       string        `json:"label"`
	Key         string        `json:"key"`
	Type        string        `json:"type"` // choice, text
	Choices     []FieldChoice `json:"choices,omitempty"`
	Default     string        `json:"default,omitempty"`
	Mandatory   bool          `json:"mandatory"`
	Description string        `json:"description,omitempty"`
}

// FieldChoice is one choice of a choice field, in the platform's
// convention: Key is the text shown, Value is what is stored and sent back
// (e.g. a group id, or "create").
type FieldChoice struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ValidationResult is the answer of validate and validate-action.
type ValidationResult struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
}

// LogKind names one of the four Mimecast security logs.
type LogKind string

// The security logs pulled for risk events.
const (
	LogURL           LogKind = "url"
	LogAttachment    LogKind = "attachment"
	LogImpersonation LogKind = "impersonation"
	LogDLP           LogKind = "dlp"
)

// LogKinds lists every log in pull order.
var LogKinds = []LogKind{LogURL, LogAttachment, LogImpersonation, LogDLP}

// LogRecord is one raw log record, field names as Mimecast spells them.
type LogRecord map[string]any

// LogQuery filters a log pull. From and To are inclusive bounds on the
// record time; OldestFirst is what incremental pulls use.
type LogQuery struct {
	From        time.Time
	To          time.Time
	OldestFirst bool
	PageSize    int
	// Route, when set, filters URL/attachment logs by route (inbound,
	// outbound, internal).
	Route string
}

// LogPage is one page of a log pull. Next is empty on the last page.
type LogPage struct {
	Records []LogRecord
	Next    string
}

// RiskEvent is one rule match on one log record, for one user.
type RiskEvent struct {
	// ID is stable for the same (rule, user, message) so re-reading a
	// record never duplicates its event.
	ID        string            `json:"id"`
	Rule      string            `json:"rule"`
	User      string            `json:"user"`
	At        time.Time         `json:"at"`
	MessageID string            `json:"message_id,omitempty"`
	Log       LogKind           `json:"log"`
	Route     string            `json:"route,omitempty"`
	Weight    float64           `json:"weight"`
	Evidence  map[string]string `json:"evidence"`
}

// Rejected is a log record that could not be parsed, kept aside with why.
type Rejected struct {
	Log    LogKind   `json:"log"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	Record string    `json:"record"` // raw JSON, truncated
}

// Checkpoint is how far a log has been pulled for one configuration.
type Checkpoint struct {
	Log      LogKind   `json:"log"`
	Through  time.Time `json:"through,omitzero"` // newest record time stored
	LastPull time.Time `json:"last_pull,omitzero"`
	Records  int       `json:"records"`  // records read, all time
	Events   int       `json:"events"`   // events stored, all time
	Rejected int       `json:"rejected"` // records set aside, all time
	Error    string    `json:"error,omitempty"`
}

// Role is an API token's role. Roles are ordered viewer < operator < admin.
type Role string

// The roles.
const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

// Rank orders roles; an unknown role ranks 0 and is allowed nothing.
func (r Role) Rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Token is an API token. Only Hash (SHA-256 of the value) is stored.
type Token struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Owner          string    `json:"owner"`
	Role           Role      `json:"role"`
	Hash           string    `json:"hash,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	ExpiresAt      time.Time `json:"expires_at,omitzero"`
	LastUsedAt     time.Time `json:"last_used_at,omitzero"`
	RevokedAt      time.Time `json:"revoked_at,omitzero"`
	Configurations []string  `json:"configurations,omitempty"`
}

// Allows reports whether the token may act on the named configuration.
func (t Token) Allows(configuration string) bool {
	if len(t.Configurations) == 0 {
		return true
	}
	for _, c := range t.Configurations {
		if c == configuration {
			return true
		}
	}
	return false
}

// AuditEntry is one append-only audit record. Hash chains each entry to
// the previous one so an edit or removal is detectable.
type AuditEntry struct {
	Seq      uint64            `json:"seq"`
	At       time.Time         `json:"at"`
	Actor    string            `json:"actor"`
	Action   string            `json:"action"`
	Target   string            `json:"target"`
	Outcome  string            `json:"outcome"`
	Detail   map[string]string `json:"detail,omitempty"`
	PrevHash string            `json:"prev_hash,omitempty"`
	Hash     string            `json:"hash,omitempty"`
}

// AuditFilter selects audit entries. Zero fields match everything.
type AuditFilter struct {
	Since  time.Time
	Until  time.Time
	Actor  string
	Action string
	Target string
	After  uint64 // cursor: entries with Seq > After
	Limit  int
}

// EventFilter selects stored risk events.
type EventFilter struct {
	User   string
	Rule   string
	Since  time.Time
	Cursor string
	Limit  int
}
