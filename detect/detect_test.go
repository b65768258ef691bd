package detect_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"mimecast-ure/detect"
	"mimecast-ure/plugin"
)

func mustNew(t testing.TB, ev *plugin.EventSettings, controls bool) plugin.Detector {
	t.Helper()
	d, err := detect.New(ev, controls)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

// rec builds a record from alternating key/value pairs.
func rec(kv ...any) plugin.LogRecord {
	r := plugin.LogRecord{}
	for i := 0; i+1 < len(kv); i += 2 {
		r[kv[i].(string)] = kv[i+1]
	}
	return r
}

// with returns a copy of base with kv set (a nil value deletes the key).
func with(base plugin.LogRecord, kv ...any) plugin.LogRecord {
	r := plugin.LogRecord{}
	for k, v := range base {
		r[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(r, kv[i].(string))
			continue
		}
		r[kv[i].(string)] = kv[i+1]
	}
	return r
}

func urlClick(category, action string) plugin.LogRecord {
	return rec(
		"userEmailAddress", "Bob.Baker@Example.com",
		"fromUserEmailAddress", "<attacker@evil.example.net>",
		"url", "http://bad.example.org/login",
		"subject", "Reset your password",
		"action", action,
		"actions", "Block",
		"scanResult", "malicious",
		"category", category,
		"date", "2024-11-17T17:02:30+0000",
		"route", "inbound",
		"creationMethod", "User Click",
		"emailPartsDescription", []any{"Body"},
		"messageId", "<m1@mail.example.net>",
	)
}

var (
	attachmentBase = rec(
		"senderAddress", "<Eric.Boyt@example.com>",
		"recipientAddress", "carol.cho@example.com",
		"fileName", "Sandbox Test.xlsx",
		"fileType", "application/vnd.ms-excel",
		"result", "malicious",
		"actionTriggered", "none",
		"date", "2024-11-17T00:52:30+0000",
		"details", "Malicious\r\nTime taken: 0 hrs",
		"route", "internal",
		"messageId", "<a1@mail.example.com>",
		"subject", "RE",
		"fileHash", "168dde02cf41aed3bf31ad831b75d8ee0b738304baa6957c40e29b2487f15116",
		"definition", "Default Internal Attachment Protect Definition",
	)
	impersonationBase = rec(
		"id", "MTOKEN:abc",
		"senderAddress", "ceo.lookalike@examp1e.com",
		"recipientAddress", "Dan.Diaz@example.com",
		"subject", "Don't read, just fill out!",
		"definition", "IP - 1 hit (Hold)",
		"hits", float64(1),
		"identifiers", []any{"internal_user_name"},
		"action", "hold",
		"taggedExternal", false,
		"taggedMalicious", true,
		"senderIpAddress", "198.51.100.8",
		"eventTime", "2021-11-12T15:30:15+0000",
		"messageId", "<0-MN2PR16MB2719@mail.examp1e.com>",
	)
	dlpBase = rec(
		"senderAddress", "kay.mann@example.com",
		"recipientAddress", "cbrashear@partner.example.net",
		"subject", "Q3 numbers",
		"eventTime", "2024-11-18T05:11:02+0700",
		"route", "outbound",
		"policy", "Confidential",
		"action", "block",
		"messageId", "<ee36704d0e84b012-226716@mail.example.com>",
	)
)

func rulesOf(evs []plugin.RiskEvent) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.Rule)
	}
	sort.Strings(out)
	return out
}

func TestDefaultRuleSet(t *testing.T) {
	rules := detect.DefaultRules()
	if got, want := len(rules), 13; got != want {
		t.Fatalf("got %d default rules, want %d", got, want)
	}
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.ID] {
			t.Errorf("rule %s twice", r.ID)
		}
		seen[r.ID] = true
		if !r.Enabled || r.Weight <= 0 || r.UserField == "" || len(r.Conditions) == 0 || r.Title == "" {
			t.Errorf("rule %s incomplete: %+v", r.ID, r)
		}
	}
	d := mustNew(t, nil, false)
	if got := len(d.Rules()); got != 13 {
		t.Errorf("without controls got %d rules, want 13", got)
	}
	d = mustNew(t, nil, true)
	if got := len(d.Rules()); got != 15 {
		t.Errorf("with controls got %d rules, want 15", got)
	}
}

func TestEachRule(t *testing.T) {
	tests := []struct {
		name     string
		kind     plugin.LogKind
		rec      plugin.LogRecord
		controls bool
		want     []string // rule ids, sorted
		user     string
	}{
		{"sensitive_data_exposure", plugin.LogDLP, dlpBase, false, []string{"sensitive_data_exposure"}, "kay.mann@example.com"},
		{"dlp block with controls", plugin.LogDLP, dlpBase, true, []string{"content_examination_sent", "sensitive_data_exposure"}, "kay.mann@example.com"},
		{"dlp hold is not exposure", plugin.LogDLP, with(dlpBase, "action", "hold"), false, nil, ""},
		{"dlp notification is not exposure", plugin.LogDLP, with(dlpBase, "action", "notification"), false, nil, ""},
		{"dlp action case-insensitive", plugin.LogDLP, with(dlpBase, "action", "BLOCK"), false, []string{"sensitive_data_exposure"}, "kay.mann@example.com"},
		{"content examination any action", plugin.LogDLP, with(dlpBase, "action", "notification"), true, []string{"content_examination_sent"}, "kay.mann@example.com"},
		{"content examination needs outbound", plugin.LogDLP, with(dlpBase, "action", "hold", "route", "inbound"), true, nil, ""},

		{"malicious_file_received", plugin.LogAttachment, with(attachmentBase, "route", "inbound"), false, []string{"malicious_file_received"}, "carol.cho@example.com"},
		{"malicious_file_sent", plugin.LogAttachment, with(attachmentBase, "route", "outbound"), false, []string{"malicious_file_sent"}, "eric.boyt@example.com"},
		{"malicious_file_sent_internal", plugin.LogAttachment, attachmentBase, false, []string{"malicious_file_sent_internal"}, "eric.boyt@example.com"},
		{"attachment safe", plugin.LogAttachment, with(attachmentBase, "result", "safe"), false, nil, ""},
		{"attachment result upper case", plugin.LogAttachment, with(attachmentBase, "result", "Malicious", "route", "Inbound"), false, []string{"malicious_file_received"}, "carol.cho@example.com"},
		{"attachment external route", plugin.LogAttachment, with(attachmentBase, "route", "external"), false, nil, ""},

		{"spoof_received", plugin.LogImpersonation, with(impersonationBase, "identifiers", []any{"similar_internal_domain"}), false, []string{"spoof_received"}, "dan.diaz@example.com"},
		{"impersonation_received", plugin.LogImpersonation, impersonationBase, false, []string{"impersonation_received"}, "dan.diaz@example.com"},
		{"targeted_impersonation_received", plugin.LogImpersonation, with(impersonationBase, "identifiers", []any{"targeted_threat_dictionary"}), false, []string{"targeted_impersonation_received"}, "dan.diaz@example.com"},
		{"several identifiers, several events", plugin.LogImpersonation,
			with(impersonationBase, "identifiers", []any{"targeted_threat_dictionary", "internal_user_name", "similar_internal_domain", "newly_observed_domain"}), false,
			[]string{"impersonation_received", "spoof_received", "targeted_impersonation_received"}, "dan.diaz@example.com"},
		{"taggedMalicious as SIEM string", plugin.LogImpersonation, with(impersonationBase, "taggedMalicious", "true"), false, []string{"impersonation_received"}, "dan.diaz@example.com"},
		{"taggedMalicious false", plugin.LogImpersonation, with(impersonationBase, "taggedMalicious", false), false, nil, ""},
		{"taggedMalicious missing", plugin.LogImpersonation, with(impersonationBase, "taggedMalicious", nil), false, nil, ""},
		{"action none", plugin.LogImpersonation, with(impersonationBase, "action", "none"), false, nil, ""},
		{"identifiers without the value", plugin.LogImpersonation, with(impersonationBase, "identifiers", []any{"newly_observed_domain", "reply_address_mismatch"}), false, nil, ""},
		{"identifiers empty", plugin.LogImpersonation, with(impersonationBase, "identifiers", []any{}), false, nil, ""},

		{"clicked_compromised", plugin.LogURL, urlClick("Compromised", "block"), false, []string{"clicked_compromised"}, "bob.baker@example.com"},
		{"compromised warn is not clicked_compromised", plugin.LogURL, urlClick("Compromised", "warn"), false, nil, ""},
		{"clicked_phishing block", plugin.LogURL, urlClick("Phishing & Fraud", "block"), false, []string{"clicked_phishing"}, "bob.baker@example.com"},
		{"clicked_phishing warn", plugin.LogURL, urlClick("phishing & fraud", "Warn"), false, []string{"clicked_phishing"}, "bob.baker@example.com"},
		{"phishing allow", plugin.LogURL, urlClick("Phishing & Fraud", "allow"), false, nil, ""},
		{"clicked_spam", plugin.LogURL, urlClick("Spam Sites", "warn"), false, []string{"clicked_spam"}, "bob.baker@example.com"},
		{"clicked_suspicious", plugin.LogURL, urlClick("Suspicious", "block"), false, []string{"clicked_suspicious"}, "bob.baker@example.com"},
		{"clicked_malware", plugin.LogURL, urlClick("Malware", "block"), false, []string{"clicked_malware"}, "bob.baker@example.com"},
		{"clicked_botnets", plugin.LogURL, urlClick("Botnets", "warn"), false, []string{"clicked_botnets"}, "bob.baker@example.com"},
		{"entry scan is not a click", plugin.LogURL, with(urlClick("Phishing & Fraud", "block"), "creationMethod", "Entry Scan"), false, nil, ""},
		{"business category", plugin.LogURL, urlClick("Business", "block"), false, nil, ""},
		{"malicious_url_sent", plugin.LogURL,
			with(urlClick("Phishing & Fraud", "block"), "creationMethod", "Entry Scan", "route", "outbound"), true,
			[]string{"malicious_url_sent"}, "attacker@evil.example.net"},
		{"url sent needs controls", plugin.LogURL,
			with(urlClick("Phishing & Fraud", "block"), "creationMethod", "Entry Scan", "route", "outbound"), false, nil, ""},
		{"url sent wrong route", plugin.LogURL,
			with(urlClick("Phishing & Fraud", "block"), "creationMethod", "Entry Scan", "route", "internal"), true, nil, ""},
		{"url sent clean", plugin.LogURL,
			with(urlClick("Business", "allow"), "creationMethod", "Entry Scan", "route", "outbound", "scanResult", "clean"), true, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustNew(t, nil, tt.controls)
			evs, err := d.Detect(tt.kind, tt.rec)
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if got, want := strings.Join(rulesOf(evs), ","), strings.Join(tt.want, ","); got != want {
				t.Fatalf("got rules %q, want %q", got, want)
			}
			for _, e := range evs {
				if e.User != tt.user {
					t.Errorf("%s: got user %q, want %q", e.Rule, e.User, tt.user)
				}
				if e.ID == "" || e.Log != tt.kind || e.At.IsZero() || e.Weight <= 0 {
					t.Errorf("%s: incomplete event %+v", e.Rule, e)
				}
				if _, ok := e.Evidence["subject"]; ok {
					t.Errorf("%s: subject in evidence", e.Rule)
				}
				for k, v := range e.Evidence {
					if strings.Contains(v, "Reset your password") || strings.Contains(v, "Q3 numbers") {
						t.Errorf("%s: message content in evidence %s=%q", e.Rule, k, v)
					}
				}
			}
		})
	}
}

func TestEventFields(t *testing.T) {
	d := mustNew(t, nil, false)
	evs, err := d.Detect(plugin.LogURL, urlClick("Phishing & Fraud", "warn"))
	if err != nil || len(evs) != 1 {
		t.Fatalf("Detect: %v %v", evs, err)
	}
	e := evs[0]
	if want := time.Date(2024, 11, 17, 17, 2, 30, 0, time.UTC); !e.At.Equal(want) || e.At.Location() != time.UTC {
		t.Errorf("got at %v, want %v UTC", e.At, want)
	}
	if e.MessageID != "<m1@mail.example.net>" || e.Route != "inbound" || e.Weight != 100 {
		t.Errorf("got %+v", e)
	}
	want := map[string]string{
		"url": "http://bad.example.org/login", "category": "Phishing & Fraud", "action": "warn",
		"scanResult": "malicious", "creationMethod": "User Click", "route": "inbound",
		"fromUserEmailAddress": "attacker@evil.example.net", "userEmailAddress": "bob.baker@example.com",
	}
	if len(e.Evidence) != len(want) {
		t.Errorf("got evidence %v, want %v", e.Evidence, want)
	}
	for k, v := range want {
		if e.Evidence[k] != v {
			t.Errorf("evidence %s: got %q, want %q", k, e.Evidence[k], v)
		}
	}

	// Offsets other than +0000 are honoured.
	evs, _ = d.Detect(plugin.LogDLP, dlpBase)
	if want := time.Date(2024, 11, 17, 22, 11, 2, 0, time.UTC); len(evs) != 1 || !evs[0].At.Equal(want) {
		t.Errorf("got %v, want at %v", evs, want)
	}
	if got := evs[0].Evidence["policy"]; got != "Confidential" {
		t.Errorf("got policy %q", got)
	}

	// Identifiers are joined.
	evs, _ = d.Detect(plugin.LogImpersonation, with(impersonationBase, "identifiers", []any{"targeted_threat_dictionary", "internal_user_name"}))
	if len(evs) != 2 || evs[0].Evidence["identifiers"] != "targeted_threat_dictionary,internal_user_name" {
		t.Errorf("got %+v", evs)
	}
	if evs[0].ID == evs[1].ID {
		t.Errorf("two rules on one record share id %s", evs[0].ID)
	}

	// Attachment evidence: name and hash.
	evs, _ = d.Detect(plugin.LogAttachment, attachmentBase)
	if len(evs) != 1 || evs[0].Evidence["fileHash"] == "" || evs[0].Evidence["fileName"] != "Sandbox Test.xlsx" || evs[0].Evidence["senderAddress"] != "eric.boyt@example.com" {
		t.Errorf("got %+v", evs)
	}
	if _, ok := evs[0].Evidence["details"]; ok {
		t.Errorf("details in evidence")
	}

	// RFC 3339 fallback.
	evs, err = d.Detect(plugin.LogDLP, with(dlpBase, "eventTime", "2024-11-18T05:11:02Z"))
	if err != nil || len(evs) != 1 || !evs[0].At.Equal(time.Date(2024, 11, 18, 5, 11, 2, 0, time.UTC)) {
		t.Errorf("got %v %v", evs, err)
	}
}

func TestUnreadableRecords(t *testing.T) {
	d := mustNew(t, nil, true)
	tests := []struct {
		name string
		kind plugin.LogKind
		rec  plugin.LogRecord
		want string
	}{
		{"no time", plugin.LogDLP, with(dlpBase, "eventTime", nil), "no record time"},
		{"bad time", plugin.LogURL, with(urlClick("Malware", "block"), "date", "yesterday"), "unreadable time"},
		{"time not a string", plugin.LogAttachment, with(attachmentBase, "date", float64(1700000000)), "unreadable time"},
		{"bad time and no user", plugin.LogDLP, with(dlpBase, "eventTime", "soon", "senderAddress", "<>"), "unreadable time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := d.Detect(tt.kind, tt.rec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, %v; want error containing %q", evs, err, tt.want)
			}
		})
	}
}

// A rule whose user field holds no address does not match; the record is
// not an error and the other rules' events are kept.
func TestNoUserAddress(t *testing.T) {
	tests := []struct {
		name      string
		kind      plugin.LogKind
		rec       plugin.LogRecord
		wantRules []string
		wantSkip  map[string]int
	}{
		// A DLP bounce: Mimecast documents senderAddress "<>". Both DLP
		// rules (with controls) name the sender.
		{"dlp bounce", plugin.LogDLP, with(dlpBase, "senderAddress", "<>"), []string{},
			map[string]int{"sensitive_data_exposure": 1, "content_examination_sent": 1}},
		{"dlp empty sender", plugin.LogDLP, with(dlpBase, "senderAddress", "  "), []string{},
			map[string]int{"sensitive_data_exposure": 1, "content_examination_sent": 1}},
		{"no user field", plugin.LogURL, with(urlClick("Malware", "block"), "userEmailAddress", nil), []string{},
			map[string]int{"clicked_malware": 1}},
		{"not an address", plugin.LogImpersonation, with(impersonationBase, "recipientAddress", "N/A"), []string{},
			map[string]int{"impersonation_received": 1}},
		{"at sign alone", plugin.LogImpersonation, with(impersonationBase, "recipientAddress", "@"), []string{},
			map[string]int{"impersonation_received": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := detect.New(nil, true)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := d.Detect(tt.kind, tt.rec)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got := rulesOf(evs); strings.Join(got, ",") != strings.Join(tt.wantRules, ",") {
				t.Errorf("got rules %v, want %v", got, tt.wantRules)
			}
			got := d.(*detect.Detector).Unattributed()
			if len(got) != len(tt.wantSkip) {
				t.Errorf("got unattributed %v, want %v", got, tt.wantSkip)
			}
			for id, n := range tt.wantSkip {
				if got[id] != n {
					t.Errorf("got unattributed %v, want %v", got, tt.wantSkip)
				}
			}
		})
	}
	// No two default rules with different user fields meet one record; a
	// custom rule naming a field the record lacks must not discard the
	// event a default rule found in the same record.
	d := mustNew(t, &plugin.EventSettings{CustomRules: []plugin.Rule{{
		ID: "dlp_by_manager", Log: plugin.LogDLP, UserField: "managerAddress", Weight: 5, Enabled: true,
		Conditions: []plugin.Condition{{Field: "policy", Values: []string{"confidential"}}},
	}}}, false)
	evs, err := d.Detect(plugin.LogDLP, dlpBase)
	if err != nil || strings.Join(rulesOf(evs), ",") != "sensitive_data_exposure" {
		t.Errorf("got %v, %v; want the sensitive_data_exposure event kept", rulesOf(evs), err)
	}
	if got := d.(*detect.Detector).Unattributed(); got["dlp_by_manager"] != 1 || len(got) != 1 {
		t.Errorf("got unattributed %v", got)
	}
	// A bounce that meets no rule is not counted.
	d = mustNew(t, nil, false)
	if evs, err := d.Detect(plugin.LogDLP, with(dlpBase, "senderAddress", "<>", "action", "notification")); err != nil || len(evs) != 0 {
		t.Errorf("bounce meeting no rule: %v %v", evs, err)
	}
	if got := d.(*detect.Detector).Unattributed(); got != nil {
		t.Errorf("got unattributed %v, want nil", got)
	}
}

func TestStableIDs(t *testing.T) {
	d := mustNew(t, nil, true)
	one := func(kind plugin.LogKind, r plugin.LogRecord, rule string) string {
		t.Helper()
		evs, err := d.Detect(kind, r)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Rule == rule {
				return e.ID
			}
		}
		t.Fatalf("no %s event from %v", rule, r)
		return ""
	}
	a := one(plugin.LogDLP, dlpBase, detect.SensitiveDataExposure)
	if b := one(plugin.LogDLP, dlpBase, detect.SensitiveDataExposure); a != b {
		t.Errorf("same record, ids %s and %s", a, b)
	}
	// A second block row for the same message, later: one event.
	if b := one(plugin.LogDLP, with(dlpBase, "eventTime", "2024-11-18T05:12:00+0700", "recipientAddress", "x@partner.example.net"), detect.SensitiveDataExposure); a != b {
		t.Errorf("duplicate DLP row made a new event: %s vs %s", a, b)
	}
	// Content examination: hold and notification rows of one message and
	// policy are one event; another policy is another.
	h := one(plugin.LogDLP, with(dlpBase, "action", "hold"), detect.ContentExaminationSent)
	if n := one(plugin.LogDLP, with(dlpBase, "action", "notification"), detect.ContentExaminationSent); h != n {
		t.Errorf("hold and notification rows: %s vs %s", h, n)
	}
	if p := one(plugin.LogDLP, with(dlpBase, "action", "hold", "policy", "PCI"), detect.ContentExaminationSent); p == h {
		t.Errorf("another policy shares the id")
	}
	// Another message, another event; the message id compares case-insensitively.
	if c := one(plugin.LogDLP, with(dlpBase, "messageId", "<other@mail.example.com>"), detect.SensitiveDataExposure); c == a {
		t.Errorf("other message shares the id")
	}
	// Without a messageId the time and key fields decide.
	noID := with(dlpBase, "messageId", nil)
	x := one(plugin.LogDLP, noID, detect.SensitiveDataExposure)
	if y := one(plugin.LogDLP, noID, detect.SensitiveDataExposure); x != y {
		t.Errorf("no messageId: unstable id")
	}
	if y := one(plugin.LogDLP, with(noID, "eventTime", "2024-11-18T06:00:00+0700"), detect.SensitiveDataExposure); x == y {
		t.Errorf("no messageId: different times share the id")
	}
	// Clicks: a second URL in the same message is a second event.
	u1 := one(plugin.LogURL, urlClick("Malware", "block"), detect.ClickedMalware)
	if u2 := one(plugin.LogURL, with(urlClick("Malware", "block"), "url", "http://other.example.org/"), detect.ClickedMalware); u1 == u2 {
		t.Errorf("two URLs share the id")
	}
}

func TestSamples(t *testing.T) {
	type sample struct {
		file, key string
		kind      plugin.LogKind
	}
	samples := []sample{
		{"ttp-url-get-logs.json", "clickLogs", plugin.LogURL},
		{"ttp-attachment-get-logs.json", "attachmentLogs", plugin.LogAttachment},
		{"ttp-impersonation-get-logs.json", "impersonationLogs", plugin.LogImpersonation},
		{"dlp-get-logs.json", "dlpLogs", plugin.LogDLP},
	}
	want := map[bool][]string{
		false: {"malicious_file_sent_internal:eric.boyt@example.com"},
		true:  {"content_examination_sent:kay.mann@example.com", "malicious_file_sent_internal:eric.boyt@example.com"},
	}
	for _, controls := range []bool{false, true} {
		d := mustNew(t, nil, controls)
		var got []string
		for _, s := range samples {
			for _, r := range loadSample(t, s.file, s.key) {
				evs, err := d.Detect(s.kind, r)
				if err != nil {
					t.Fatalf("%s: %v", s.file, err)
				}
				for _, e := range evs {
					got = append(got, e.Rule+":"+e.User)
				}
			}
		}
		sort.Strings(got)
		if strings.Join(got, " ") != strings.Join(want[controls], " ") {
			t.Errorf("controls=%v: got %v, want %v", controls, got, want[controls])
		}
	}
}

func loadSample(t *testing.T, file, key string) []plugin.LogRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Data []map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	var recs []plugin.LogRecord
	if err := json.Unmarshal(env.Data[0][key], &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Fatalf("%s: no records", file)
	}
	return recs
}

func ptr[T any](v T) *T { return &v }

func TestOverrides(t *testing.T) {
	d := mustNew(t, &plugin.EventSettings{Rules: map[string]plugin.RuleSettings{
		"clicked_phishing":         {Weight: ptr(250.0), Nudge: ptr(false)},
		"clicked_malware":          {Enabled: ptr(false)},
		"malicious_file_received":  {Nudge: ptr(true)},
		"content_examination_sent": {Weight: ptr(5.0)}, // accepted with controls off
	}}, false)
	byID := map[string]plugin.Rule{}
	for _, r := range d.Rules() {
		byID[r.ID] = r
	}
	if r := byID["clicked_phishing"]; r.Weight != 250 || r.Nudge || !r.Enabled {
		t.Errorf("clicked_phishing: got %+v", r)
	}
	if r := byID["clicked_malware"]; r.Enabled {
		t.Errorf("clicked_malware still enabled")
	}
	if r := byID["malicious_file_received"]; !r.Nudge || r.Weight != 30 {
		t.Errorf("malicious_file_received: got %+v", r)
	}
	evs, _ := d.Detect(plugin.LogURL, urlClick("Malware", "block"))
	if len(evs) != 0 {
		t.Errorf("disabled rule matched: %v", evs)
	}
	evs, _ = d.Detect(plugin.LogURL, urlClick("Phishing & Fraud", "block"))
	if len(evs) != 1 || evs[0].Weight != 250 {
		t.Errorf("got %+v, want weight 250", evs)
	}
	// Overrides do not leak into the defaults.
	if r := detect.DefaultRules()[8]; r.ID != "clicked_phishing" || r.Weight != 100 {
		t.Errorf("defaults changed: %+v", r)
	}
}

func TestCustomRules(t *testing.T) {
	custom := plugin.Rule{
		ID: "clicked_potentially_malicious", Log: plugin.LogURL, UserField: "userEmailAddress", Weight: 70, Enabled: true,
		Conditions: []plugin.Condition{
			{Field: "category", Values: []string{"Potentially Malicious", "Hacking"}},
			{Field: "creationMethod", Values: []string{"user click"}},
			{Field: "tagMap.UrlReputationScan.Status", Values: []string{"verdictblock"}},
		},
		DedupFields: []string{"url"},
	}
	tagged := true
	subjectRule := plugin.Rule{
		ID: "external_tagged", Log: plugin.LogImpersonation, UserField: "recipientAddress", Weight: 0, Enabled: true,
		Conditions: []plugin.Condition{{Field: "taggedExternal", Bool: &tagged}, {Field: "subject", Values: []string{"urgent"}}},
	}
	d := mustNew(t, &plugin.EventSettings{
		CustomRules: []plugin.Rule{custom, subjectRule},
		Rules:       map[string]plugin.RuleSettings{"external_tagged": {Weight: ptr(3.0)}},
	}, false)
	r := with(urlClick("Hacking", "allow"), "tagMap", map[string]any{
		"UrlReputationScan": map[string]any{"Status": []any{"CustomerAll", "VerdictBlock"}},
	})
	evs, err := d.Detect(plugin.LogURL, r)
	if err != nil || len(evs) != 1 || evs[0].Rule != custom.ID || evs[0].Weight != 70 {
		t.Fatalf("got %+v %v", evs, err)
	}
	if got := evs[0].Evidence["tagMap.UrlReputationScan.Status"]; got != "CustomerAll,VerdictBlock" {
		t.Errorf("matched custom field not in evidence: %v", evs[0].Evidence)
	}
	if evs, _ := d.Detect(plugin.LogURL, with(r, "tagMap", nil)); len(evs) != 0 {
		t.Errorf("matched without the nested field: %v", evs)
	}
	evs, _ = d.Detect(plugin.LogImpersonation, with(impersonationBase, "taggedExternal", true, "subject", "URGENT", "action", "none"))
	if len(evs) != 1 || evs[0].Rule != "external_tagged" || evs[0].Weight != 3 {
		t.Fatalf("got %+v", evs)
	}
	if _, ok := evs[0].Evidence["subject"]; ok {
		t.Errorf("subject copied into evidence")
	}
	if got := len(d.Rules()); got != 15 {
		t.Errorf("got %d rules, want 15", got)
	}
}

// A custom rule the administrator switched off is off: its own "enabled"
// is honoured, and an override by id wins over it either way.
func TestCustomRuleEnabled(t *testing.T) {
	rule := func(enabled bool) plugin.Rule {
		return plugin.Rule{
			ID: "dlp_pci", Log: plugin.LogDLP, UserField: "senderAddress", Weight: 10, Enabled: enabled,
			Conditions: []plugin.Condition{{Field: "policy", Values: []string{"Confidential"}}},
		}
	}
	fromJSON := func(t *testing.T, js string) plugin.Rule {
		t.Helper()
		var r plugin.Rule
		if err := json.Unmarshal([]byte(js), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	const base = `"id":"dlp_pci","log":"dlp","user_field":"senderAddress","weight":10,"conditions":[{"field":"policy","values":["Confidential"]}]`
	tests := []struct {
		name     string
		rule     func(t *testing.T) plugin.Rule
		override *bool
		want     bool
	}{
		{"enabled true", func(*testing.T) plugin.Rule { return rule(true) }, nil, true},
		{"enabled false", func(*testing.T) plugin.Rule { return rule(false) }, nil, false},
		{"json enabled false", func(t *testing.T) plugin.Rule { return fromJSON(t, `{`+base+`,"enabled":false}`) }, nil, false},
		{"json enabled true", func(t *testing.T) plugin.Rule { return fromJSON(t, `{`+base+`,"enabled":true}`) }, nil, true},
		// A custom rule the admin wrote is on unless it says otherwise.
		{"json enabled omitted", func(t *testing.T) plugin.Rule { return fromJSON(t, `{`+base+`}`) }, nil, true},
		{"off, override on", func(*testing.T) plugin.Rule { return rule(false) }, ptr(true), true},
		{"on, override off", func(*testing.T) plugin.Rule { return rule(true) }, ptr(false), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &plugin.EventSettings{CustomRules: []plugin.Rule{tt.rule(t)}}
			if tt.override != nil {
				ev.Rules = map[string]plugin.RuleSettings{"dlp_pci": {Enabled: tt.override}}
			}
			d := mustNew(t, ev, false)
			evs, err := d.Detect(plugin.LogDLP, with(dlpBase, "action", "notification"))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(evs) == 1 && evs[0].Rule == "dlp_pci"; got != tt.want {
				t.Errorf("custom rule matched = %v (%v), want %v", got, rulesOf(evs), tt.want)
			}
			r, ok := d.(*detect.Detector).Rule("dlp_pci")
			if !ok || r.Enabled != tt.want {
				t.Errorf("got rule %+v, want Enabled %v", r, tt.want)
			}
		})
	}
}

func TestInvalidRules(t *testing.T) {
	ok := plugin.Rule{ID: "my_rule", Log: plugin.LogDLP, UserField: "senderAddress", Weight: 10,
		Conditions: []plugin.Condition{{Field: "policy", Values: []string{"PCI"}}}}
	mod := func(f func(r *plugin.Rule)) plugin.Rule {
		r := ok
		r.Conditions = append([]plugin.Condition(nil), ok.Conditions...)
		f(&r)
		return r
	}
	tests := []struct {
		name  string
		ev    plugin.EventSettings
		field string
	}{
		{"unknown rule override", plugin.EventSettings{Rules: map[string]plugin.RuleSettings{"clicked_everything": {}}}, "events.rules.clicked_everything"},
		{"override weight", plugin.EventSettings{Rules: map[string]plugin.RuleSettings{"clicked_spam": {Weight: ptr(1001.0)}}}, "events.rules.clicked_spam.weight"},
		{"negative override weight", plugin.EventSettings{Rules: map[string]plugin.RuleSettings{"clicked_spam": {Weight: ptr(-1.0)}}}, "events.rules.clicked_spam.weight"},
		{"id not snake", plugin.EventSettings{CustomRules: []plugin.Rule{mod(func(r *plugin.Rule) { r.ID = "MyRule" })}}, "events.custom_rules[0].id"},
		{"id empty", plugin.EventSettings{CustomRules: []plugin.Rule{mod(func(r *plugin.Rule) { r.ID = "" })}}, "events.custom_rules[0].id"},
		{"id double underscore", plugin.EventSettings{CustomRules: []plugin.Rule{mod(func(r *plugin.Rule) { r.ID = "a__b" })}}, "events.custom_rules[0].id"},
		{"id of a default", plugin.EventSettings{CustomRules: []plugin.Rule{mod(func(r *plugin.Rule) { r.ID = "clicked_spam" })}}, "events.custom_rules[0].id"},
		{"id twice", plugin.EventSettings{CustomRules: []plugin.Rule{ok, ok}}, "events.custom_rules[1].id"},
		{"bad log", plugin.EventSettings{CustomRules: []plugin.Rule{mod(func(r *plugin.Rule) { r.Log = "siem" })}}, "events.custom_rules[0].log"},
		{"no conditions", plugin.EventSettings{CustomRules: []plugin.Rule{mod(func(r *plugin.Rule) { r.Conditions = nil })}}, "events.custom_rules[0].conditions"},
		{"condition without field", plugin.EventSettings{CustomRules: []plugin.Rule{mod(func(r *plugin.Rule) { r.Conditions[0].Field = " " })}}, "events.custom_rules[0].conditions[0].field"},
		{"condition without values", plugin.EventSettings{CustomRules: []plugin.Rule{mod(func(r *plugin.Rule) { r.Conditions[0].Values = nil })}}, "events.custom_rules[0].conditions[0]"},
		{"condition with both", plugin.EventSettings{CustomRules: []plugin.Rule{mod(func(r *plugin.Rule) { r.Conditions[0].Bool = ptr(true) })}}, "events.custom_rules[0].conditions[0]"},
		{"empty value", plugin.EventSettings{CustomRules: []plugin.Rule{mod(func(r *plugin.Rule) { r.Conditions[0].Values = []string{"a", ""} })}}, "events.custom_rules[0].conditions[0].values"},
		{"no user field", plugin.EventSettings{CustomRules: []plugin.Rule{mod(func(r *plugin.Rule) { r.UserField = "" })}}, "events.custom_rules[0].user_field"},
		{"weight too high", plugin.EventSettings{CustomRules: []plugin.Rule{mod(func(r *plugin.Rule) { r.Weight = 1000.5 })}}, "events.custom_rules[0].weight"},
		{"weight negative", plugin.EventSettings{CustomRules: []plugin.Rule{ok, mod(func(r *plugin.Rule) { r.ID = "second"; r.Weight = -1 })}}, "events.custom_rules[1].weight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.ev
			d, err := detect.New(&ev, false)
			var pe *plugin.Error
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, %v; want *plugin.Error", d, err)
			}
			if pe.Code != plugin.EINVALID || pe.Field != tt.field {
				t.Errorf("got code %q field %q, want invalid %q (%v)", pe.Code, pe.Field, tt.field, pe)
			}
			if d != nil {
				t.Errorf("got a detector with an error")
			}
		})
	}
	// A valid custom rule overridden by id is fine.
	if _, err := detect.New(&plugin.EventSettings{CustomRules: []plugin.Rule{ok},
		Rules: map[string]plugin.RuleSettings{"my_rule": {Enabled: ptr(false)}}}, false); err != nil {
		t.Errorf("override of a custom rule: %v", err)
	}
}
