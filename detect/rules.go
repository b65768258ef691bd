// Package detect turns Mimecast security log records into per-user risk
// events. It is pure: rules are data (plugin.Rule), a Detector compiles them
// once and classifies records with no I/O, so the pull loop, the tests and
// the benchmarks run the same code.
package detect

import "mimecast-ure/plugin"

// Rule ids of the default rule set (detection-rules.md, "The default rule
// set") and of the control-only rules ("Evidence-based controls").
const (
	SensitiveDataExposure         = "sensitive_data_exposure"
	MaliciousFileReceived         = "malicious_file_received"
	MaliciousFileSent             = "malicious_file_sent"
	MaliciousFileSentInternal     = "malicious_file_sent_internal"
	SpoofReceived                 = "spoof_received"
	ImpersonationReceived         = "impersonation_received"
	TargetedImpersonationReceived = "targeted_impersonation_received"
	ClickedCompromised            = "clicked_compromised"
	ClickedPhishing               = "clicked_phishing"
	ClickedSpam                   = "clicked_spam"
	ClickedSuspicious             = "clicked_suspicious"
	ClickedMalware                = "clicked_malware"
	ClickedBotnets                = "clicked_botnets"

	// MaliciousURLSent and ContentExaminationSent exist only in a
	// configuration whose controls are enabled.
	MaliciousURLSent       = "malicious_url_sent"
	ContentExaminationSent = "content_examination_sent"
)

// defaultWeights are the weights of the table in DefaultRules.
var defaultWeights = map[string]float64{
	SensitiveDataExposure:         80,
	MaliciousFileReceived:         30,
	MaliciousFileSent:             100,
	MaliciousFileSentInternal:     100,
	SpoofReceived:                 20,
	ImpersonationReceived:         30,
	TargetedImpersonationReceived: 40,
	ClickedCompromised:            100,
	ClickedPhishing:               100,
	ClickedSpam:                   40,
	ClickedSuspicious:             60,
	ClickedMalware:                120,
	ClickedBotnets:                120,
	MaliciousURLSent:              100,
	ContentExaminationSent:        40,
}

func eq(field string, values ...string) plugin.Condition {
	return plugin.Condition{Field: field, Values: values}
}

func isTrue(field string) plugin.Condition {
	t := true
	return plugin.Condition{Field: field, Bool: &t}
}

// userClick is the condition every "clicked" rule shares: an Entry Scan is
// the gateway scanning a message, not a person clicking.
var userClick = eq("creationMethod", "User Click")

func clicked(id, category, title string, actions ...string) plugin.Rule {
	return plugin.Rule{
		ID: id, Title: title, Log: plugin.LogURL,
		Conditions: []plugin.Condition{eq("category", category), eq("action", actions...), userClick},
		UserField:  "userEmailAddress",
		// Two different links clicked from one message are two events; the
		// same click read twice is one.
		DedupFields: []string{"url"},
	}
}

func impersonation(id, identifier, title string) plugin.Rule {
	return plugin.Rule{
		ID: id, Title: title, Log: plugin.LogImpersonation,
		Conditions: []plugin.Condition{isTrue("taggedMalicious"), eq("action", "hold"), eq("identifiers", identifier)},
		UserField:  "recipientAddress",
	}
}

func attachment(id, route, user, title string) plugin.Rule {
	return plugin.Rule{
		ID: id, Title: title, Log: plugin.LogAttachment,
		Conditions: []plugin.Condition{eq("result", "malicious"), eq("route", route)},
		UserField:  user,
	}
}

// DefaultRules returns the 13 default rules of detection-rules.md with
// their default weights and nudge flags, all enabled. The slice is new on
// every call; callers may change it.
//
// Weights are how many points (on the 1–1000 scale) a fresh event takes
// off a user's grade score, before decay. The reasoning: what the user did
// weighs more than what was done to them, and a click on malware or a
// botnet link (likely infection) weighs most.
//
//	rule                             weight  nudge  why
//	sensitive_data_exposure              80   yes   user sent data a DLP policy blocked
//	malicious_file_received              30   no    exposure only: the gateway caught it
//	malicious_file_sent                 100   yes   user's mailbox/device likely compromised
//	malicious_file_sent_internal        100   yes   same, spreading inside the company
//	spoof_received                       20   no    exposure: lookalike internal domain
//	impersonation_received               30   no    exposure: internal display name abused
//	targeted_impersonation_received      40   no    exposure: targeted threat dictionary hit
//	clicked_compromised                 100   yes   clicked a compromised site (blocked)
//	clicked_phishing                    100   yes   clicked a phishing link
//	clicked_spam                         40   yes   clicked a spam site
//	clicked_suspicious                   60   yes   clicked a suspicious site
//	clicked_malware                     120   yes   clicked a malware link
//	clicked_botnets                     120   yes   clicked a botnet link
//	malicious_url_sent (controls)       100   no    user sent a malicious link
//	content_examination_sent (ctrls)     40   no    outbound mail tripped a DLP policy (any action)
//
// Nudges only go out when the configuration names a nudge_webhook.
func DefaultRules() []plugin.Rule {
	rules := []plugin.Rule{
		{
			ID: SensitiveDataExposure, Title: "Sensitive data exposure", Log: plugin.LogDLP,
			Conditions: []plugin.Condition{eq("action", "block")},
			UserField:  "senderAddress",
		},
		attachment(MaliciousFileReceived, "inbound", "recipientAddress", "Employee received a malicious file via email"),
		attachment(MaliciousFileSent, "outbound", "senderAddress", "Employee sent a malicious file via email"),
		attachment(MaliciousFileSentInternal, "internal", "senderAddress", "Employee sent a malicious file to a coworker"),
		impersonation(SpoofReceived, "similar_internal_domain", "Employee received a spoof email"),
		impersonation(ImpersonationReceived, "internal_user_name", "Employee received an impersonation email attack"),
		impersonation(TargetedImpersonationReceived, "targeted_threat_dictionary", "Employee received a targeted impersonation email"),
		clicked(ClickedCompromised, "Compromised", "Clicked a malicious link (Compromised Website)", "block"),
		clicked(ClickedPhishing, "Phishing & Fraud", "Clicked a malicious link (Phishing & Fraud)", "block", "warn"),
		clicked(ClickedSpam, "Spam Sites", "Clicked a malicious link (Spam Sites)", "block", "warn"),
		clicked(ClickedSuspicious, "Suspicious", "Clicked a malicious link (Suspicious)", "block", "warn"),
		clicked(ClickedMalware, "Malware", "Clicked a malicious link (Malware)", "block", "warn"),
		clicked(ClickedBotnets, "Botnets", "Clicked a malicious link (Botnets)", "block", "warn"),
	}
	for i := range rules {
		r := &rules[i]
		r.Weight = defaultWeights[r.ID]
		r.Enabled = true
		r.Nudge = nudgeByDefault(r.ID)
	}
	return rules
}

// ControlRules returns the rules that exist only when a configuration's
// controls are enabled (malicious_file_sent, the third control event type,
// is a default rule).
func ControlRules() []plugin.Rule {
	rules := []plugin.Rule{
		{
			ID: MaliciousURLSent, Title: "Employee sent a malicious link", Log: plugin.LogURL,
			Conditions: []plugin.Condition{eq("scanResult", "malicious"), eq("creationMethod", "Entry Scan"), eq("route", "outbound")},
			UserField:  "fromUserEmailAddress",
			// One message carrying two malicious links is two pieces of evidence.
			DedupFields: []string{"url"},
		},
		{
			// Any action counts (hold, notification, block...): there is no
			// action condition; rows for one message count once per policy.
			ID: ContentExaminationSent, Title: "Outbound email triggered content examination", Log: plugin.LogDLP,
			Conditions:  []plugin.Condition{eq("route", "outbound")},
			UserField:   "senderAddress",
			DedupFields: []string{"policy"},
		},
	}
	for i := range rules {
		rules[i].Weight = defaultWeights[rules[i].ID]
		rules[i].Enabled = true
	}
	return rules
}

// nudgeByDefault: rules about something the user did nudge; exposure
// ("received") rules do not, the user did nothing wrong.
func nudgeByDefault(id string) bool {
	switch id {
	case MaliciousFileReceived, SpoofReceived, ImpersonationReceived, TargetedImpersonationReceived:
		return false
	}
	return true
}
