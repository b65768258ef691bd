package plugin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Masked is what responses show in place of a secret. A PUT that sends it
// keeps the stored value.
const Masked = "********"

// Duration is a time.Duration that reads and writes JSON as "15m".
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "15m" (or a number of seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n float64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration must be a string such as \"15m\"")
		}
		*d = Duration(time.Duration(n * float64(time.Second)))
		return nil
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration reads a Go duration ("15m", "720h") or a number of days
// ("30d"), the forms every duration field and parameter accepts.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && days != "" {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 || n > 36500 {
			return 0, fmt.Errorf("invalid duration %q (use e.g. 30d, 72h or 15m)", s)
		}
		return time.Duration(n * 24 * float64(time.Hour)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 30d, 72h or 15m)", s)
	}
	return v, nil
}

// Configuration is one Mimecast tenant registered with the host (the
// platform's "plugin configuration"). Secret fields hold clear text only in
// memory; the store seals them and responses show Masked.
type Configuration struct {
	Name         string           `json:"name"`
	SyncInterval Duration         `json:"sync_interval,omitempty"`
	Mimecast     MimecastSettings `json:"mimecast"`
	Score        ScoreSettings    `json:"score,omitzero"`
	Events       *EventSettings   `json:"events,omitempty"`
	Controls     *ControlSettings `json:"controls,omitempty"`
	CreatedAt    time.Time        `json:"created_at,omitzero"`
	UpdatedAt    time.Time        `json:"updated_at,omitzero"`
}

// Mimecast auth modes.
const (
	AuthLegacy = "legacy" // API 1.0, HMAC-signed
	AuthOAuth2 = "oauth2" // API 2.0, client credentials
)

// MimecastSettings says how to reach one tenant.
type MimecastSettings struct {
	BaseURL      string `json:"base_url"`
	Auth         string `json:"auth"`
	AppID        string `json:"app_id,omitempty"`
	AppKey       string `json:"app_key,omitempty"`
	AccessKey    string `json:"access_key,omitempty"`
	SecretKey    string `json:"secret_key,omitempty"`
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
	// PageSize is used for list calls (default 500 for grade syncs, at most 500).
	PageSize int `json:"page_size,omitempty"`
	// BatchSize is the number of members per add/remove call (default 10).
	BatchSize int `json:"batch_size,omitempty"`
	// Timeout bounds every request (default 30s).
	Timeout Duration `json:"timeout,omitempty"`
}

// ScoreSettings maps grades to scores.
type ScoreSettings struct {
	// Band picks min (default), mid or max of each grade's band.
	Band string `json:"band,omitempty"`
	// Mapping, when set, overrides the band with explicit values.
	Mapping map[string]int `json:"mapping,omitempty"`
}

// RuleSettings overrides one built-in rule.
type RuleSettings struct {
	Enabled *bool    `json:"enabled,omitempty"`
	Weight  *float64 `json:"weight,omitempty"`
	Nudge   *bool    `json:"nudge,omitempty"`
}

// Condition is one field test of a rule: the record's Field equals one of
// Values (case-insensitively), or, for array fields, contains one.
type Condition struct {
	Field  string   `json:"field"`
	Values []string `json:"values"`
	// Bool, when set, compares a boolean field instead.
	Bool *bool `json:"bool,omitempty"`
}

// Rule is a detection rule as data: which log, which conditions, whose event.
type Rule struct {
	ID         string      `json:"id"`
	Title      string      `json:"title,omitempty"`
	Log        LogKind     `json:"log"`
	Conditions []Condition `json:"conditions"`
	UserField  string      `json:"user_field"`
	Weight     float64     `json:"weight"`
	Enabled    bool        `json:"enabled"`
	Nudge      bool        `json:"nudge,omitempty"`
	// DedupFields are the extra record fields (besides rule, user and
	// messageId) that make an event unique, e.g. ["policy"].
	DedupFields []string `json:"dedup_fields,omitempty"`
}

// UnmarshalJSON reads a rule strictly (unknown fields refused) and takes
// an omitted "enabled" as true: a custom rule an admin writes is on unless
// it says "enabled": false.
func (r *Rule) UnmarshalJSON(b []byte) error {
	type plain Rule
	var in struct {
		plain
		Enabled *bool `json:"enabled"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return err
	}
	*r = Rule(in.plain)
	r.Enabled = in.Enabled == nil || *in.Enabled
	return nil
}

// Webhook is an outgoing notification target; Secret signs the body.
type Webhook struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
}

// EventSettings is the `events` section of a configuration.
type EventSettings struct {
	Enabled       bool                    `json:"enabled"`
	Interval      Duration                `json:"interval,omitempty"`
	LookbackDays  int                     `json:"lookback_days,omitempty"`
	RetentionDays int                     `json:"retention_days,omitempty"`
	Scoring       bool                    `json:"scoring"`
	HalfLife      Duration                `json:"half_life,omitempty"`
	Rules         map[string]RuleSettings `json:"rules,omitempty"`
	CustomRules   []Rule                  `json:"custom_rules,omitempty"`
	NudgeWebhook  *Webhook                `json:"nudge_webhook,omitempty"`
}

// OktaSettings says how to reach an Okta org with a service app.
type OktaSettings struct {
	BaseURL    string `json:"base_url"`
	ClientID   string `json:"client_id"`
	PrivateKey string `json:"private_key,omitempty"`
	KeyID      string `json:"key_id,omitempty"`
	DPoP       bool   `json:"dpop"`
}

// ControlTarget is the group one event type's senders are added to.
type ControlTarget struct {
	OktaGroup     string `json:"okta_group,omitempty"`
	MimecastGroup string `json:"mimecast_group,omitempty"`
}

// ControlSettings is the `controls` section of a configuration.
type ControlSettings struct {
	Enabled         bool                     `json:"enabled"`
	InternalDomains []string                 `json:"internal_domains"`
	ScopeGroups     []string                 `json:"scope_groups,omitempty"`
	Okta            *OktaSettings            `json:"okta,omitempty"`
	Targets         map[string]ControlTarget `json:"targets"`
	NotifyWebhook   *Webhook                 `json:"notify_webhook,omitempty"`
}

// Defaults and limits.
const (
	DefaultSyncInterval  = time.Hour
	MinSyncInterval      = time.Minute
	DefaultPageSize      = 500
	MaxPageSize          = 500
	DefaultBatchSize     = 10
	MaxBatchSize         = 500
	DefaultTimeout       = 30 * time.Second
	DefaultEventInterval = 15 * time.Minute
	DefaultLookbackDays  = 7
	DefaultRetentionDays = 90
	DefaultHalfLife      = 30 * 24 * time.Hour
	MaxScopeGroups       = 5
	// MinSecretLength is the shortest key or secret accepted: real ones
	// are far longer, and a very short one could not be told apart from
	// ordinary text when it is redacted from error messages.
	MinSecretLength = 8
)

// ControlEventTypes are the event types the controls act on.
var ControlEventTypes = []string{"malicious_file_sent", "malicious_url_sent", "content_examination_sent"}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// WithDefaults returns c with every unset value at its default.
func (c Configuration) WithDefaults() Configuration {
	if c.SyncInterval == 0 {
		c.SyncInterval = Duration(DefaultSyncInterval)
	}
	if c.Mimecast.Auth == "" {
		c.Mimecast.Auth = AuthLegacy
	}
	if c.Mimecast.PageSize == 0 {
		c.Mimecast.PageSize = DefaultPageSize
	}
	if c.Mimecast.BatchSize == 0 {
		c.Mimecast.BatchSize = DefaultBatchSize
	}
	if c.Mimecast.Timeout == 0 {
		c.Mimecast.Timeout = Duration(DefaultTimeout)
	}
	c.Mimecast.BaseURL = strings.TrimRight(strings.TrimSpace(c.Mimecast.BaseURL), "/")
	if c.Score.Band == "" && len(c.Score.Mapping) == 0 {
		c.Score.Band = "min"
	}
	if e := c.Events; e != nil {
		ev := *e
		if ev.Interval == 0 {
			ev.Interval = Duration(DefaultEventInterval)
		}
		if ev.LookbackDays == 0 {
			ev.LookbackDays = DefaultLookbackDays
		}
		if ev.RetentionDays == 0 {
			ev.RetentionDays = DefaultRetentionDays
		}
		if ev.HalfLife == 0 {
			ev.HalfLife = Duration(DefaultHalfLife)
		}
		c.Events = &ev
	}
	return c
}

// Validate checks the fields that do not need the network and returns an
// EINVALID *Error naming the first bad field. Score tables and rules are
// checked by their own packages (see Service).
func (c Configuration) Validate() error {
	if !nameRE.MatchString(c.Name) {
		return FieldError("name", "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if time.Duration(c.SyncInterval) < MinSyncInterval {
		return FieldError("sync_interval", "must be at least 1m")
	}
	if c.Score.Band != "" && len(c.Score.Mapping) > 0 {
		return FieldError("score", "give either band or mapping, not both")
	}
	m := c.Mimecast
	if err := validURL(m.BaseURL); err != nil {
		return FieldError("mimecast.base_url", "%s", err)
	}
	switch m.Auth {
	case AuthLegacy:
		for _, f := range []struct{ name, v string }{
			{"mimecast.app_id", m.AppID}, {"mimecast.app_key", m.AppKey},
			{"mimecast.access_key", m.AccessKey}, {"mimecast.secret_key", m.SecretKey},
		} {
			if strings.TrimSpace(f.v) == "" {
				return FieldError(f.name, "is required when auth is legacy")
			}
		}
		for _, f := range []struct{ name, v string }{
			{"mimecast.app_key", m.AppKey}, {"mimecast.access_key", m.AccessKey}, {"mimecast.secret_key", m.SecretKey},
		} {
			if len(strings.TrimSpace(f.v)) < MinSecretLength {
				return FieldError(f.name, "is too short to be a Mimecast key (at least %d characters)", MinSecretLength)
			}
		}
		if _, err := base64.StdEncoding.DecodeString(strings.TrimSpace(m.SecretKey)); err != nil && m.SecretKey != Masked {
			return FieldError("mimecast.secret_key", "must be standard base64 as Mimecast issues it")
		}
	case AuthOAuth2:
		if strings.TrimSpace(m.ClientID) == "" {
			return FieldError("mimecast.client_id", "is required when auth is oauth2")
		}
		if strings.TrimSpace(m.ClientSecret) == "" {
			return FieldError("mimecast.client_secret", "is required when auth is oauth2")
		}
		if len(strings.TrimSpace(m.ClientSecret)) < MinSecretLength {
			return FieldError("mimecast.client_secret", "is too short to be a client secret (at least %d characters)", MinSecretLength)
		}
	default:
		return FieldError("mimecast.auth", "must be legacy or oauth2")
	}
	if m.PageSize < 1 || m.PageSize > MaxPageSize {
		return FieldError("mimecast.page_size", "must be between 1 and %d", MaxPageSize)
	}
	if m.BatchSize < 1 || m.BatchSize > MaxBatchSize {
		return FieldError("mimecast.batch_size", "must be between 1 and %d", MaxBatchSize)
	}
	if time.Duration(m.Timeout) < time.Second || time.Duration(m.Timeout) > 5*time.Minute {
		return FieldError("mimecast.timeout", "must be between 1s and 5m")
	}
	if e := c.Events; e != nil {
		if time.Duration(e.Interval) < MinSyncInterval {
			return FieldError("events.interval", "must be at least 1m")
		}
		if e.LookbackDays < 1 || e.LookbackDays > 365 {
			return FieldError("events.lookback_days", "must be between 1 and 365")
		}
		if e.RetentionDays < 1 || e.RetentionDays > 3650 {
			return FieldError("events.retention_days", "must be between 1 and 3650")
		}
		if time.Duration(e.HalfLife) < time.Hour {
			return FieldError("events.half_life", "must be at least 1h")
		}
		if w := e.NudgeWebhook; w != nil {
			if err := validURL(w.URL); err != nil {
				return FieldError("events.nudge_webhook.url", "%s", err)
			}
			if w.Secret != "" && len(w.Secret) < MinSecretLength {
				return FieldError("events.nudge_webhook.secret", "must be at least %d characters", MinSecretLength)
			}
		}
	}
	if k := c.Controls; k != nil {
		if len(k.ScopeGroups) > MaxScopeGroups {
			return FieldError("controls.scope_groups", "at most %d groups may be in scope, got %d", MaxScopeGroups, len(k.ScopeGroups))
		}
		if k.Enabled && len(k.InternalDomains) == 0 {
			return FieldError("controls.internal_domains", "at least one internal domain is required")
		}
		for _, d := range k.InternalDomains {
			if d = strings.TrimSpace(d); d == "" || strings.ContainsAny(d, "@/ ") {
				return FieldError("controls.internal_domains", "%q is not a domain", d)
			}
		}
		for typ, t := range k.Targets {
			if !contains(ControlEventTypes, typ) {
				return FieldError("controls.targets", "unknown event type %q (want one of %s)", typ, strings.Join(ControlEventTypes, ", "))
			}
			if (t.OktaGroup == "") == (t.MimecastGroup == "") {
				return FieldError("controls.targets."+typ, "name exactly one of okta_group or mimecast_group")
			}
			if t.OktaGroup != "" && k.Okta == nil {
				return FieldError("controls.okta", "is required when a target is an Okta group")
			}
		}
		if o := k.Okta; o != nil {
			if err := validURL(o.BaseURL); err != nil {
				return FieldError("controls.okta.base_url", "%s", err)
			}
			if strings.TrimSpace(o.ClientID) == "" {
				return FieldError("controls.okta.client_id", "is required")
			}
			if strings.TrimSpace(o.PrivateKey) == "" {
				return FieldError("controls.okta.private_key", "is required")
			}
		}
		if w := k.NotifyWebhook; w != nil {
			if err := validURL(w.URL); err != nil {
				return FieldError("controls.notify_webhook.url", "%s", err)
			}
			if w.Secret != "" && len(w.Secret) < MinSecretLength {
				return FieldError("controls.notify_webhook.secret", "must be at least %d characters", MinSecretLength)
			}
		}
	}
	return nil
}

// validURL accepts the URLs credentials and signed payloads may be sent
// to: https anywhere, plain http only to a loopback host (the emulators,
// a local proxy), never a link-local address (cloud metadata services
// live there), never one with user info or a fragment.
func validURL(s string) error {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("must be an https URL such as https://us-api.mimecast.com")
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	loopback := strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback())
	if u.Scheme == "http" && !loopback {
		return fmt.Errorf("must use https (plain http is allowed only to a loopback host)")
	}
	if ip != nil && (ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() || ip.IsMulticast()) {
		return fmt.Errorf("must not point at a link-local, multicast or unspecified address")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// secretFields lists pointers to every secret of c, for sealing, masking
// and keeping stored values.
func (c *Configuration) secretFields() []*string {
	out := []*string{&c.Mimecast.AppKey, &c.Mimecast.AccessKey, &c.Mimecast.SecretKey, &c.Mimecast.ClientSecret}
	if c.Events != nil && c.Events.NudgeWebhook != nil {
		out = append(out, &c.Events.NudgeWebhook.Secret)
	}
	if c.Controls != nil {
		if c.Controls.Okta != nil {
			out = append(out, &c.Controls.Okta.PrivateKey)
		}
		if c.Controls.NotifyWebhook != nil {
			out = append(out, &c.Controls.NotifyWebhook.Secret)
		}
	}
	return out
}

// Clone returns a deep copy of c so masking or sealing one copy never
// touches another.
func (c Configuration) Clone() Configuration {
	if c.Events != nil {
		e := *c.Events
		if e.NudgeWebhook != nil {
			w := *e.NudgeWebhook
			e.NudgeWebhook = &w
		}
		if e.Rules != nil {
			r := make(map[string]RuleSettings, len(e.Rules))
			for k, v := range e.Rules {
				r[k] = v
			}
			e.Rules = r
		}
		e.CustomRules = append([]Rule(nil), e.CustomRules...)
		c.Events = &e
	}
	if c.Controls != nil {
		k := *c.Controls
		if k.Okta != nil {
			o := *k.Okta
			k.Okta = &o
		}
		if k.NotifyWebhook != nil {
			w := *k.NotifyWebhook
			k.NotifyWebhook = &w
		}
		if k.Targets != nil {
			t := make(map[string]ControlTarget, len(k.Targets))
			for n, v := range k.Targets {
				t[n] = v
			}
			k.Targets = t
		}
		k.InternalDomains = append([]string(nil), k.InternalDomains...)
		k.ScopeGroups = append([]string(nil), k.ScopeGroups...)
		c.Controls = &k
	}
	if c.Score.Mapping != nil {
		m := make(map[string]int, len(c.Score.Mapping))
		for k, v := range c.Score.Mapping {
			m[k] = v
		}
		c.Score.Mapping = m
	}
	return c
}

// Redacted returns a copy of c with every non-empty secret replaced by Masked.
func (c Configuration) Redacted() Configuration {
	r := c.Clone()
	for _, p := range r.secretFields() {
		if *p != "" {
			*p = Masked
		}
	}
	return r
}

// KeepMasked returns a copy of c in which every secret sent as Masked takes
// the value from stored, so a PUT of a GET's answer changes no secret.
func (c Configuration) KeepMasked(stored Configuration) Configuration {
	r := c.Clone()
	old := stored.Clone()
	names := func(x *Configuration) map[string]*string {
		m := map[string]*string{
			"app_key": &x.Mimecast.AppKey, "access_key": &x.Mimecast.AccessKey,
			"secret_key": &x.Mimecast.SecretKey, "client_secret": &x.Mimecast.ClientSecret,
		}
		if x.Events != nil && x.Events.NudgeWebhook != nil {
			m["nudge"] = &x.Events.NudgeWebhook.Secret
		}
		if x.Controls != nil && x.Controls.Okta != nil {
			m["okta"] = &x.Controls.Okta.PrivateKey
		}
		if x.Controls != nil && x.Controls.NotifyWebhook != nil {
			m["notify"] = &x.Controls.NotifyWebhook.Secret
		}
		return m
	}
	src := names(&old)
	for k, p := range names(&r) {
		if *p == Masked {
			if q, ok := src[k]; ok {
				*p = *q
			} else {
				*p = ""
			}
		}
	}
	return r
}

// Secrets returns every non-empty secret value of c, for leak checks and
// log redaction.
func (c Configuration) Secrets() []string {
	var out []string
	for _, p := range c.secretFields() {
		if *p != "" && *p != Masked {
			out = append(out, *p)
		}
	}
	return out
}

// SecretPointers exposes the secret fields for the store's sealing. The
// order is stable for a given shape of configuration.
func (c *Configuration) SecretPointers() []*string { return c.secretFields() }

// CheckKeptSecrets refuses a PUT that keeps a stored secret (sends Masked)
// while changing where that secret goes: the Mimecast base URL or auth
// mode, the Okta org or client, a webhook's URL. Without this, anyone who
// may edit a configuration could point it at their own host and collect
// the tenant's credentials on the next call. The error names the secret
// field that must be sent again.
func (c Configuration) CheckKeptSecrets(stored Configuration) error {
	sm, cm := stored.Mimecast, c.Mimecast
	moved := !sameURL(sm.BaseURL, cm.BaseURL) || (cm.Auth != "" && sm.Auth != "" && cm.Auth != sm.Auth)
	for _, f := range []struct {
		field string
		v     string
	}{
		{"mimecast.app_key", cm.AppKey}, {"mimecast.access_key", cm.AccessKey},
		{"mimecast.secret_key", cm.SecretKey}, {"mimecast.client_secret", cm.ClientSecret},
	} {
		if moved && f.v == Masked {
			return FieldError(f.field, "the Mimecast base URL or auth mode changed: send the secret again instead of %q", Masked)
		}
	}
	if c.Controls != nil && c.Controls.Okta != nil && c.Controls.Okta.PrivateKey == Masked {
		var so *OktaSettings
		if stored.Controls != nil {
			so = stored.Controls.Okta
		}
		if so == nil || !sameURL(so.BaseURL, c.Controls.Okta.BaseURL) || so.ClientID != c.Controls.Okta.ClientID {
			return FieldError("controls.okta.private_key", "the Okta org or client changed: send the private key again instead of %q", Masked)
		}
	}
	if c.Events != nil && c.Events.NudgeWebhook != nil && c.Events.NudgeWebhook.Secret == Masked {
		if stored.Events == nil || stored.Events.NudgeWebhook == nil || !sameURL(stored.Events.NudgeWebhook.URL, c.Events.NudgeWebhook.URL) {
			return FieldError("events.nudge_webhook.secret", "the webhook URL changed: send the secret again instead of %q", Masked)
		}
	}
	if c.Controls != nil && c.Controls.NotifyWebhook != nil && c.Controls.NotifyWebhook.Secret == Masked {
		if stored.Controls == nil || stored.Controls.NotifyWebhook == nil || !sameURL(stored.Controls.NotifyWebhook.URL, c.Controls.NotifyWebhook.URL) {
			return FieldError("controls.notify_webhook.secret", "the webhook URL changed: send the secret again instead of %q", Masked)
		}
	}
	return nil
}

func sameURL(a, b string) bool {
	return strings.EqualFold(strings.TrimRight(strings.TrimSpace(a), "/"), strings.TrimRight(strings.TrimSpace(b), "/"))
}
