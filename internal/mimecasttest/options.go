package mimecasttest

import (
	"context"
	"time"
)

// Default credentials of the emulator. They are test credentials, printed on
// purpose by the emulator command; never use them against a real tenant.
const (
	// DefaultAppID is the API 1.0 application id (header x-mc-app-id).
	DefaultAppID = "8b7f2c1e-5d4a-4e3b-9c2d-1a0f9e8d7c6b"
	// DefaultAppKey is the API 1.0 application key (only signed, never sent).
	DefaultAppKey = "3c9e1f7a-0b2d-4c6e-8f1a-5b7d9e2c4a6f"
	// DefaultAccessKey is the API 1.0 access key (sent in Authorization).
	DefaultAccessKey = "mYtOL3Emul4t0r-AccessKey-0001-mimecast-ure"
	// DefaultSecretKey is the API 1.0 secret key, valid standard base64
	// (it decodes to the 35 ASCII bytes "mimecast-ure emulator secret key, 32b").
	DefaultSecretKey = "bWltZWNhc3QtdXJlIGVtdWxhdG9yIHNlY3JldCBrZXksIDMyYg=="
	// DefaultClientID is the API 2.0 OAuth client id.
	DefaultClientID = "mimecast-ure-emulator-client"
	// DefaultClientSecret is the API 2.0 OAuth client secret.
	DefaultClientSecret = "emulator-client-secret-not-for-production"
)

// Defaults applied by New when an Options field is zero.
const (
	DefaultUsers            = 50
	DefaultDomain           = "example.com"
	DefaultMaxSkew          = 15 * time.Minute
	DefaultTokenTTL         = 1799 * time.Second
	DefaultPageCap          = 500
	DefaultPageSize         = 100
	DefaultGroups           = 6
	DefaultLogVolume        = 500
	DefaultLogWindow        = 7 * 24 * time.Hour
	DefaultReplayIDs        = 200_000
	DefaultMaxBodyBytes     = 1 << 20
	DefaultRateLimitResetMS = 1000
)

// Log kinds, the keys of Options.LogVolume and the kind argument of
// AddLogRecords / LogRecord / LogCount.
const (
	KindURL           = "url"           // /api/ttp/url/get-logs, data[0].clickLogs
	KindAttachment    = "attachment"    // /api/ttp/attachment/get-logs, data[0].attachmentLogs
	KindImpersonation = "impersonation" // /api/ttp/impersonation/get-logs, data[0].impersonationLogs
	KindDLP           = "dlp"           // /api/dlp/get-logs, data[0].dlpLogs
)

// Endpoint paths served by the emulator.
const (
	PathOAuthToken        = "/oauth/token"
	PathGetAccount        = "/api/account/get-account"
	PathSafeScoreDetails  = "/api/awareness-training/company/get-safe-score-details"
	PathSafeScoreSummary  = "/api/awareness-training/company/get-safe-score-summary"
	PathFindGroups        = "/api/directory/find-groups"
	PathCreateGroup       = "/api/directory/create-group"
	PathAddGroupMember    = "/api/directory/add-group-member"
	PathRemoveGroupMember = "/api/directory/remove-group-member"
	PathGetGroupMembers   = "/api/directory/get-group-members"
	PathURLLogs           = "/api/ttp/url/get-logs"
	PathAttachmentLogs    = "/api/ttp/attachment/get-logs"
	PathImpersonationLogs = "/api/ttp/impersonation/get-logs"
	PathDLPLogs           = "/api/dlp/get-logs"
	PathStats             = "/_emulator/stats"
	PathStatsReset        = "/_emulator/stats/reset"
)

// RateLimit configures one token bucket per endpoint. Capacity 0 turns rate
// limiting off (the default); then every response still carries the three
// X-RateLimit-* headers with a nominal full bucket.
type RateLimit struct {
	// Capacity is the bucket size, sent as X-RateLimit-Limit.
	Capacity int
	// Refill is the time after which one call is added back (default 1s).
	Refill time.Duration
}

// Options configures a Server. Every zero field takes the default named in
// its comment.
type Options struct {
	// Users is the number of synthetic users (default DefaultUsers). For
	// Users >= 5 all five grades A B C D F are present.
	Users int
	// Seed makes the tenant and its logs deterministic.
	Seed int64
	// Domain is the tenant's internal mail domain (default example.com).
	Domain string

	// API 1.0 credentials (defaults: the Default* constants).
	AppID, AppKey, AccessKey, SecretKey string
	// API 2.0 credentials (defaults: DefaultClientID, DefaultClientSecret).
	ClientID, ClientSecret string

	// Latency is added to every reply.
	Latency time.Duration
	// Now is the clock used for auth dates, token expiry, rate limits and
	// default log ranges (default time.Now).
	Now func() time.Time
	// Sleep waits d or until ctx is done (default: a real timer). Tests
	// inject a fake to avoid real waits.
	Sleep func(ctx context.Context, d time.Duration) error
	// MaxSkew is the allowed difference between x-mc-date and Now
	// (default 15m). Request ids are remembered at least this long.
	MaxSkew time.Duration
	// TokenTTL is the bearer token lifetime (default 1799s).
	TokenTTL time.Duration
	// RateLimit is the per-endpoint token bucket (off by default).
	RateLimit RateLimit
	// EndpointRateLimits overrides RateLimit for some paths.
	EndpointRateLimits map[string]RateLimit
	// PageCap is the largest page size served; larger requests are clamped
	// and the size used is echoed (default 500).
	PageCap int
	// DefaultPageSize is used when a request gives none (default 100).
	DefaultPageSize int
	// Groups is the number of pre-made profile groups (default 6).
	Groups int
	// NoAwarenessPackage omits "Awareness Training [1078]" from get-account.
	NoAwarenessPackage bool

	// LogVolume is the number of generated records per kind (keys Kind*).
	// nil gives DefaultLogVolume for every kind; a non-nil map gives 0 for
	// missing kinds, so map[string]int{} means "explicit records only".
	LogVolume map[string]int
	// LogEnd is the end of the generated records' span (default: Now at
	// New, truncated to the second). Records dated after Now are not served
	// until the clock reaches them, so a LogEnd in the future (with a
	// LogWindow that long more) makes new records arrive over time.
	LogEnd time.Time
	// LogWindow is the span the generated records are spread over evenly,
	// ending at LogEnd (default 7 days).
	LogWindow time.Duration

	// ReplayIDs bounds the remembered x-mc-req-id values (default 200,000).
	// When full, the oldest id is forgotten even if still inside the window.
	ReplayIDs int
}

// Faults are failures injected at run time with Server.SetFaults. Counters
// ("next N") count down as calls consume them. A fault that refuses a call
// (5xx, 429, 418) is decided before the endpoint runs, so it never applies a
// write. TruncateNext and AbortNext cut the reply AFTER the endpoint ran: a
// write (add/remove member, create group) HAS been applied.
type Faults struct {
	// Endpoint restricts the faults to one path (e.g. PathAddGroupMember);
	// "" applies them to every endpoint including /oauth/token.
	Endpoint string
	// Latency is added to every matching call.
	Latency time.Duration
	// ErrorRate is the share (0..1) of matching calls answered ErrorStatus,
	// chosen deterministically from the seed and the call number.
	ErrorRate float64
	// FailNext answers the next N matching calls with ErrorStatus.
	FailNext int
	// ErrorStatus is the status of FailNext / ErrorRate replies (default 503).
	ErrorStatus int
	// RateLimitNext answers the next N matching calls 429 with
	// X-RateLimit-Reset = RateLimitResetMS (default 1000).
	RateLimitNext    int
	RateLimitResetMS int
	// SlowNext delays the next N matching calls by SlowBy (the wait stops
	// when the client gives up, i.e. the request context is done).
	SlowNext int
	SlowBy   time.Duration
	// TruncateNext cuts the next N replies mid-body (status 200, invalid JSON).
	TruncateNext int
	// AbortNext sends half of the next N replies, then drops the connection.
	AbortNext int
	// BindingExpireAfter, when > 0, lets that many more API 1.0 (HMAC) calls
	// through and then answers every API 1.0 call 418 err_xdk_binding_expired
	// until the faults are replaced.
	BindingExpireAfter int
}
