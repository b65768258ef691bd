package detect

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"mimecast-ure/plugin"
)

// TimeLayout is how Mimecast writes record times: no colon in the offset,
// and the offset is not always +0000.
const TimeLayout = "2006-01-02T15:04:05-0700"

// maxEvidenceValue caps one evidence value (a long URL, say) so an event
// stays small.
const maxEvidenceValue = 512

// evidenceFields are the record fields kept as evidence per log: what
// explains an event, never message content (subject, details, body).
var evidenceFields = map[plugin.LogKind][]string{
	plugin.LogURL:           {"url", "category", "scanResult", "action", "creationMethod", "route", "fromUserEmailAddress", "userEmailAddress"},
	plugin.LogAttachment:    {"fileName", "fileHash", "fileType", "result", "route", "senderAddress", "recipientAddress"},
	plugin.LogImpersonation: {"identifiers", "action", "definition", "hits", "senderAddress", "recipientAddress", "senderIpAddress"},
	plugin.LogDLP:           {"policy", "action", "route", "senderAddress", "recipientAddress"},
}

// contentFields are never copied into evidence, even when a custom rule
// tests them: they carry message content.
var contentFields = map[string]bool{"subject": true, "details": true, "body": true}

// addressFields are normalized (brackets stripped, lower case) in evidence.
var addressFields = map[string]bool{
	"senderAddress": true, "recipientAddress": true, "userEmailAddress": true, "fromUserEmailAddress": true,
}

// timeFields lists where each log keeps its record time, preferred first.
var timeFields = map[plugin.LogKind][]string{
	plugin.LogURL:           {"date", "eventTime"},
	plugin.LogAttachment:    {"date", "eventTime"},
	plugin.LogImpersonation: {"eventTime", "date"},
	plugin.LogDLP:           {"eventTime", "date"},
}

var ruleIDRE = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// Detector classifies records with one configuration's effective rules.
// Its rules are immutable after New and it is safe for concurrent use; the
// only thing that changes is the count of matches dropped for want of a
// user address (Unattributed).
type Detector struct {
	rules  []plugin.Rule
	byKind map[plugin.LogKind][]*compiled
}

var _ plugin.Detector = (*Detector)(nil)

// compiled is an enabled rule ready to match.
type compiled struct {
	rule  plugin.Rule
	conds []plugin.Condition
	// extra are the condition fields not already in the log's evidence
	// list (custom rules), copied into evidence when they are not content.
	extra []string
	// unattributed counts records that met the conditions but had no
	// usable address in the rule's user field.
	unattributed atomic.Int64
}

// New builds a Detector from a configuration's events section (nil means
// the defaults) and whether its controls are enabled, which adds the
// control-only rules. Overrides in events.Rules change a rule's enabled
// flag, weight and nudge; events.CustomRules add rules (enabled unless an
// override disables them). Errors are *plugin.Error EINVALID naming the
// field, e.g. "events.rules.no_such_rule" or "events.custom_rules[0].log".
// New is a plugin.DetectorFactory; the Detector it returns is a *Detector.
func New(events *plugin.EventSettings, controls bool) (plugin.Detector, error) {
	d, err := build(events, controls)
	if err != nil {
		return nil, err
	}
	return d, nil
}

var _ plugin.DetectorFactory = New

func build(events *plugin.EventSettings, controls bool) (*Detector, error) {
	rules := DefaultRules()
	if controls {
		rules = append(rules, ControlRules()...)
	}
	known := make(map[string]bool, len(rules)+2)
	for _, r := range rules {
		known[r.ID] = true
	}
	// Control rule ids are accepted in overrides even when the controls
	// are off, so turning controls on and off does not invalidate them.
	for _, r := range ControlRules() {
		known[r.ID] = true
	}
	if events != nil {
		for i, cr := range events.CustomRules {
			r, err := validateCustom(i, cr, known)
			if err != nil {
				return nil, err
			}
			known[r.ID] = true
			rules = append(rules, r)
		}
		ids := make([]string, 0, len(events.Rules))
		for id := range events.Rules {
			ids = append(ids, id)
		}
		sort.Strings(ids) // the first error reported is always the same one
		for _, id := range ids {
			o := events.Rules[id]
			field := "events.rules." + id
			if !known[id] {
				return nil, plugin.FieldError(field, "unknown rule %q", id)
			}
			if o.Weight != nil && (*o.Weight < 0 || *o.Weight > 1000) {
				return nil, plugin.FieldError(field+".weight", "must be between 0 and 1000")
			}
			for i := range rules {
				if rules[i].ID != id {
					continue
				}
				if o.Enabled != nil {
					rules[i].Enabled = *o.Enabled
				}
				if o.Weight != nil {
					rules[i].Weight = *o.Weight
				}
				if o.Nudge != nil {
					rules[i].Nudge = *o.Nudge
				}
			}
		}
	}
	d := &Detector{rules: rules, byKind: make(map[plugin.LogKind][]*compiled, 4)}
	for _, r := range rules {
		if !r.Enabled {
			continue
		}
		c := &compiled{rule: r, conds: r.Conditions}
		for _, cond := range r.Conditions {
			if !contains(evidenceFields[r.Log], cond.Field) && !contentFields[cond.Field] && !contains(c.extra, cond.Field) {
				c.extra = append(c.extra, cond.Field)
			}
		}
		d.byKind[r.Log] = append(d.byKind[r.Log], c)
	}
	return d, nil
}

// validateCustom checks custom rule i and returns it ready to use.
func validateCustom(i int, r plugin.Rule, known map[string]bool) (plugin.Rule, error) {
	at := fmt.Sprintf("events.custom_rules[%d]", i)
	r.ID = strings.TrimSpace(r.ID)
	switch {
	case !ruleIDRE.MatchString(r.ID) || len(r.ID) > 64:
		return r, plugin.FieldError(at+".id", "must be snake_case: lower-case letters, digits and single underscores, starting with a letter, at most 64 characters")
	case known[r.ID]:
		return r, plugin.FieldError(at+".id", "rule %q already exists", r.ID)
	}
	switch r.Log {
	case plugin.LogURL, plugin.LogAttachment, plugin.LogImpersonation, plugin.LogDLP:
	default:
		return r, plugin.FieldError(at+".log", "must be one of url, attachment, impersonation, dlp")
	}
	if len(r.Conditions) == 0 {
		return r, plugin.FieldError(at+".conditions", "at least one condition is required")
	}
	conds := make([]plugin.Condition, len(r.Conditions))
	for j, c := range r.Conditions {
		cf := fmt.Sprintf("%s.conditions[%d]", at, j)
		c.Field = strings.TrimSpace(c.Field)
		if c.Field == "" {
			return r, plugin.FieldError(cf+".field", "is required")
		}
		if (len(c.Values) == 0) == (c.Bool == nil) {
			return r, plugin.FieldError(cf, "name either values or bool")
		}
		vals := make([]string, 0, len(c.Values))
		for _, v := range c.Values {
			if v = strings.TrimSpace(v); v == "" {
				return r, plugin.FieldError(cf+".values", "must not contain an empty value")
			}
			vals = append(vals, v)
		}
		if c.Bool != nil {
			b := *c.Bool
			c.Bool = &b
			vals = nil
		}
		c.Values = vals
		conds[j] = c
	}
	r.Conditions = conds
	if r.UserField = strings.TrimSpace(r.UserField); r.UserField == "" {
		return r, plugin.FieldError(at+".user_field", "is required")
	}
	if r.Weight < 0 || r.Weight > 1000 {
		return r, plugin.FieldError(at+".weight", "must be between 0 and 1000")
	}
	if strings.TrimSpace(r.Title) == "" {
		r.Title = r.ID
	}
	r.DedupFields = append([]string(nil), r.DedupFields...)
	// r.Enabled stands as given: "enabled": false means off (see New).
	return r, nil
}

// Rules returns the effective rules, disabled ones included (Enabled
// false), in a new slice.
func (d *Detector) Rules() []plugin.Rule {
	out := make([]plugin.Rule, len(d.rules))
	copy(out, d.rules)
	return out
}

// Rule returns the effective rule with that id.
func (d *Detector) Rule(id string) (plugin.Rule, bool) {
	for _, r := range d.rules {
		if r.ID == id {
			return r, true
		}
	}
	return plugin.Rule{}, false
}

// Detect returns one event per enabled rule of kind that rec meets. Only a
// record that cannot be read at all (no readable time) is an error: the
// caller sets it aside. A rule whose user field holds no address (empty,
// or "<>", the null sender of a DLP bounce) does not match that record; it
// is counted (Unattributed) and the other rules' events are kept.
func (d *Detector) Detect(kind plugin.LogKind, rec plugin.LogRecord) ([]plugin.RiskEvent, error) {
	at, err := RecordTime(kind, rec)
	if err != nil {
		return nil, err
	}
	var out []plugin.RiskEvent
	for _, c := range d.byKind[kind] {
		if !c.matches(rec) {
			continue
		}
		user := plugin.NormalizeEmail(str(rec, c.rule.UserField))
		if !isAddress(user) {
			c.unattributed.Add(1)
			continue
		}
		ev := plugin.RiskEvent{
			Rule:      c.rule.ID,
			User:      user,
			At:        at,
			MessageID: strings.TrimSpace(str(rec, "messageId")),
			Log:       kind,
			Route:     strings.ToLower(strings.TrimSpace(str(rec, "route"))),
			Weight:    c.rule.Weight,
			Evidence:  evidence(kind, rec, c.extra),
		}
		ev.ID = eventID(c.rule, ev, rec)
		out = append(out, ev)
	}
	return out, nil
}

// Unattributed returns, per rule id, how many records since New met the
// rule's conditions but had no address in its user field (so made no
// event). Rules with none are left out; nil when there are none at all.
func (d *Detector) Unattributed() map[string]int {
	var out map[string]int
	for _, cs := range d.byKind {
		for _, c := range cs {
			if n := c.unattributed.Load(); n > 0 {
				if out == nil {
					out = map[string]int{}
				}
				out[c.rule.ID] = int(n)
			}
		}
	}
	return out
}

// isAddress reports whether a normalized user field names a mailbox:
// something before and after a single "@" ("<>" normalizes to "").
func isAddress(s string) bool {
	i := strings.IndexByte(s, '@')
	return i > 0 && i < len(s)-1 && strings.IndexByte(s[i+1:], '@') < 0
}

// RecordTime reads a record's time (`date` for URL and attachment logs,
// `eventTime` for impersonation and DLP, either accepted) in Mimecast's
// layout or RFC 3339, returned in UTC.
func RecordTime(kind plugin.LogKind, rec plugin.LogRecord) (time.Time, error) {
	fields := timeFields[kind]
	if fields == nil {
		fields = []string{"date", "eventTime"}
	}
	for _, f := range fields {
		v, ok := rec[f]
		if !ok || v == nil {
			continue
		}
		s, _ := v.(string)
		t, err := ParseTime(s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: %w", f, err)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("no record time (%s)", strings.Join(fields, " or "))
}

// ParseTime reads a Mimecast time ("2021-10-15T17:10:46+0000") or an RFC
// 3339 one, returned in UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(TimeLayout, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("unreadable time %q", truncate(s, 40))
}

func (c *compiled) matches(rec plugin.LogRecord) bool {
	for i := range c.conds {
		if !condMatches(&c.conds[i], lookup(rec, c.conds[i].Field)) {
			return false
		}
	}
	return true
}

// condMatches tests one condition: booleans accept a JSON bool or the
// strings "true"/"false" (the SIEM feed); values compare case-insensitively
// with a string, or test membership of an array.
func condMatches(c *plugin.Condition, v any) bool {
	if v == nil {
		return false
	}
	if c.Bool != nil {
		b, ok := asBool(v)
		return ok && b == *c.Bool
	}
	switch x := v.(type) {
	case string:
		return anyEqual(c.Values, x)
	case []any:
		for _, e := range x {
			if s, ok := scalar(e); ok && anyEqual(c.Values, s) {
				return true
			}
		}
		return false
	case []string:
		for _, s := range x {
			if anyEqual(c.Values, s) {
				return true
			}
		}
		return false
	default:
		s, ok := scalar(v)
		return ok && anyEqual(c.Values, s)
	}
}

func anyEqual(values []string, s string) bool {
	s = strings.TrimSpace(s)
	for _, v := range values {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func asBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(x)))
		return b, err == nil
	}
	return false, false
}

// scalar formats a JSON scalar as a string.
func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case fmt.Stringer: // json.Number
		return x.String(), true
	}
	return "", false
}

// lookup returns rec[field], or walks nested objects for a dotted path
// ("tagMap.UrlReputationScan.Type") when there is no such top-level key.
func lookup(rec plugin.LogRecord, field string) any {
	if v, ok := rec[field]; ok {
		return v
	}
	if !strings.Contains(field, ".") {
		return nil
	}
	var cur any = map[string]any(rec)
	for _, part := range strings.Split(field, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

func str(rec plugin.LogRecord, field string) string {
	s, _ := scalar(lookup(rec, field))
	return s
}

// text renders a field for evidence: arrays joined with ",".
func text(v any) string {
	switch x := v.(type) {
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := scalar(e); ok {
				parts = append(parts, strings.TrimSpace(s))
			}
		}
		return strings.Join(parts, ",")
	case []string:
		return strings.Join(x, ",")
	}
	s, _ := scalar(v)
	return strings.TrimSpace(s)
}

func evidence(kind plugin.LogKind, rec plugin.LogRecord, extra []string) map[string]string {
	fields := evidenceFields[kind]
	ev := make(map[string]string, len(fields)+len(extra))
	add := func(f string) {
		v := text(lookup(rec, f))
		if addressFields[f] {
			v = plugin.NormalizeEmail(v)
		}
		if v != "" {
			ev[f] = truncate(v, maxEvidenceValue)
		}
	}
	for _, f := range fields {
		add(f)
	}
	for _, f := range extra {
		add(f)
	}
	return ev
}

// eventID is a stable hash of (rule, user, messageId, the rule's dedup
// fields), so re-reading a record, or a second row for the same message,
// never makes a second event. Without a messageId the record's time and
// evidence stand in for it.
func eventID(r plugin.Rule, ev plugin.RiskEvent, rec plugin.LogRecord) string {
	h := sha256.New()
	w := func(s string) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	w(r.ID)
	w(ev.User)
	if ev.MessageID != "" {
		w("m:" + strings.ToLower(ev.MessageID))
	} else {
		w("t:" + ev.At.Format(time.RFC3339Nano))
		keys := make([]string, 0, len(ev.Evidence))
		for k := range ev.Evidence {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			w(k + "=" + strings.ToLower(ev.Evidence[k]))
		}
	}
	for _, f := range r.DedupFields {
		w(f + "=" + strings.ToLower(strings.TrimSpace(text(lookup(rec, f)))))
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
