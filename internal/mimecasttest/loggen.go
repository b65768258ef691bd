package mimecasttest

import (
	"fmt"
	"strings"
	"time"
)

// Synthetic security logs. Record i of a kind is rebuilt on demand from
// (seed, kind, i): its profile (route, verdict, action...) comes from the
// first draw, so filters and counts need not build the whole record.

const respTimeLayout = "2006-01-02T15:04:05-0700"

var plus7 = time.FixedZone("", 7*3600)

type urlLog struct {
	UserEmailAddress      string   `json:"userEmailAddress"`
	FromUserEmailAddress  string   `json:"fromUserEmailAddress"`
	URL                   string   `json:"url"`
	TTPDefinition         string   `json:"ttpDefinition"`
	Subject               string   `json:"subject"`
	Action                string   `json:"action"`
	AdminOverride         string   `json:"adminOverride"`
	UserOverride          string   `json:"userOverride"`
	ScanResult            string   `json:"scanResult"`
	Category              string   `json:"category"`
	SendingIP             string   `json:"sendingIp"`
	UserAwarenessAction   string   `json:"userAwarenessAction"`
	Date                  string   `json:"date"`
	Actions               string   `json:"actions"`
	Route                 string   `json:"route"`
	CreationMethod        string   `json:"creationMethod"`
	EmailPartsDescription []string `json:"emailPartsDescription"`
	MessageID             string   `json:"messageId"`
	TagMap                *tagMap  `json:"tagMap,omitempty"`
}

// tagMap is the optional scanner detail newer URL log records carry.
type tagMap struct {
	UrlReputationScan struct {
		Status   []string `json:"Status"`
		Type     []string `json:"Type"`
		UrlBlock []string `json:"UrlBlock"`
		Url      []string `json:"Url"`
	} `json:"UrlReputationScan"`
}

type attachmentLog struct {
	SenderAddress    string `json:"senderAddress"`
	RecipientAddress string `json:"recipientAddress"`
	FileName         string `json:"fileName"`
	FileType         string `json:"fileType"`
	Result           string `json:"result"`
	ActionTriggered  string `json:"actionTriggered"`
	Date             string `json:"date"`
	Details          string `json:"details"`
	Route            string `json:"route"`
	MessageID        string `json:"messageId"`
	Subject          string `json:"subject"`
	FileHash         string `json:"fileHash"`
	Definition       string `json:"definition"`
}

type impersonationResult struct {
	ImpersonationDomainSource string `json:"impersonationDomainSource"`
	SimilarDomain             string `json:"similarDomain"`
	StringSimilarToDomain     string `json:"stringSimilarToDomain"`
	CheckerResult             string `json:"checkerResult"`
}

type impersonationLog struct {
	ID                   string                `json:"id"`
	SenderAddress        string                `json:"senderAddress"`
	RecipientAddress     string                `json:"recipientAddress"`
	Subject              string                `json:"subject"`
	Definition           string                `json:"definition"`
	Hits                 int                   `json:"hits"`
	Identifiers          []string              `json:"identifiers"`
	Action               string                `json:"action"`
	TaggedExternal       bool                  `json:"taggedExternal"`
	TaggedMalicious      bool                  `json:"taggedMalicious"`
	SenderIPAddress      string                `json:"senderIpAddress"`
	EventTime            string                `json:"eventTime"`
	ImpersonationResults []impersonationResult `json:"impersonationResults"`
	MessageID            string                `json:"messageId"`
}

type dlpLog struct {
	SenderAddress    string `json:"senderAddress"`
	RecipientAddress string `json:"recipientAddress"`
	Subject          string `json:"subject"`
	EventTime        string `json:"eventTime"`
	Route            string `json:"route"`
	Policy           string `json:"policy"`
	Action           string `json:"action"`
	MessageID        string `json:"messageId"`
}

// attrs are the filterable fields of a record.
type attrs struct {
	route, scan, result, action string
	tagged                      bool
	idents                      []string
}

// ---- profiles ----

type urlProfile struct {
	w                  int
	method, route      string
	scan               string
	acts               []string // action, drawn
	cats               []string
	fromInt, clickInt  bool // sender / clicker internal
	awareness, actions string
}

var benignCats = []string{"Business", "Business", "Search Engines & Portals", "News & Media", "Shopping", "Fashion & Beauty", "Technology"}

var urlProfiles = []urlProfile{
	{w: 40, method: "User Click", route: "inbound", scan: "clean", acts: []string{"allow"}, cats: benignCats, clickInt: true, awareness: "N/A", actions: "Allow"},
	{w: 15, method: "Entry Scan", route: "inbound", scan: "clean", acts: []string{"allow"}, cats: benignCats, clickInt: true, awareness: "N/A", actions: "None"},
	{w: 8, method: "User Click", route: "inbound", scan: "malicious", acts: []string{"block", "warn"}, cats: []string{"Phishing & Fraud"}, clickInt: true, awareness: "N/A"},
	{w: 6, method: "User Click", route: "inbound", scan: "malicious", acts: []string{"block", "block", "warn"}, cats: []string{"Compromised"}, clickInt: true, awareness: "N/A"},
	{w: 5, method: "User Click", route: "inbound", scan: "malicious", acts: []string{"block", "warn"}, cats: []string{"Malware"}, clickInt: true, awareness: "N/A"},
	{w: 4, method: "User Click", route: "inbound", scan: "malicious", acts: []string{"warn", "block"}, cats: []string{"Spam Sites"}, clickInt: true, awareness: "NA"},
	{w: 2, method: "User Click", route: "inbound", scan: "malicious", acts: []string{"block"}, cats: []string{"Botnets"}, clickInt: true, awareness: "N/A"},
	{w: 2, method: "User Click", route: "inbound", scan: "malicious", acts: []string{"warn"}, cats: []string{"Suspicious"}, clickInt: true, awareness: "NA"},
	{w: 3, method: "User Click", route: "inbound", scan: "malicious", acts: []string{"warn", "block"}, cats: []string{"Potentially Malicious"}, clickInt: true, awareness: "N/A"},
	{w: 2, method: "User Click", route: "inbound", scan: "malicious", acts: []string{"allow"}, cats: []string{"Phishing & Fraud"}, clickInt: true, awareness: "Continue", actions: "Allow"},
	{w: 6, method: "Entry Scan", route: "outbound", scan: "malicious", acts: []string{"block"}, cats: []string{"Malware", "Phishing & Fraud", "Compromised"}, fromInt: true, awareness: "N/A"},
	{w: 3, method: "Entry Scan", route: "internal", scan: "malicious", acts: []string{"block", "warn"}, cats: []string{"Compromised", "Phishing & Fraud"}, fromInt: true, clickInt: true, awareness: "N/A"},
	{w: 2, method: "User Click", route: "internal", scan: "malicious", acts: []string{"warn"}, cats: []string{"Compromised"}, fromInt: true, clickInt: true, awareness: "N/A", actions: "Block"},
	{w: 2, method: "User Click", route: "inbound", scan: "malicious", acts: []string{"warn"}, cats: []string{"Dangerous file extension"}, clickInt: true, awareness: "N/A"},
}

type attProfile struct {
	w                      int
	route, result          string
	fromInt, toInt, bounce bool
	actionTriggered        []string
}

var attProfiles = []attProfile{
	{w: 55, route: "inbound", result: "safe", toInt: true, actionTriggered: []string{"none, none", "none, none", "user release, none"}},
	{w: 12, route: "inbound", result: "malicious", toInt: true, actionTriggered: []string{"none, none", "none"}},
	{w: 8, route: "outbound", result: "malicious", fromInt: true, actionTriggered: []string{"none"}},
	{w: 6, route: "internal", result: "malicious", fromInt: true, toInt: true, actionTriggered: []string{"none"}},
	{w: 10, route: "outbound", result: "safe", fromInt: true, actionTriggered: []string{"none, none"}},
	{w: 5, route: "internal", result: "safe", fromInt: true, toInt: true, actionTriggered: []string{"none, none"}},
	{w: 1, route: "inbound", result: "timeout", toInt: true, actionTriggered: []string{"none, none"}},
	{w: 1, route: "inbound", result: "unknown", toInt: true, actionTriggered: []string{"none, none"}},
	{w: 2, route: "inbound", result: "safe", toInt: true, bounce: true, actionTriggered: []string{"none, none"}},
}

type impProfile struct {
	w      int
	idents []string
	action string
	tagged bool
}

var impProfiles = []impProfile{
	{w: 12, idents: []string{"similar_internal_domain"}, action: "hold", tagged: true},
	{w: 12, idents: []string{"internal_user_name"}, action: "hold", tagged: true},
	{w: 8, idents: []string{"targeted_threat_dictionary"}, action: "hold", tagged: true},
	{w: 8, idents: []string{"targeted_threat_dictionary", "internal_user_name"}, action: "hold", tagged: true},
	{w: 5, idents: []string{"similar_internal_domain", "internal_user_name", "reply_address_mismatch"}, action: "hold", tagged: true},
	{w: 15, idents: []string{"internal_user_name"}, action: "none", tagged: true},
	{w: 20, idents: []string{"newly_observed_domain"}, action: "none", tagged: false},
	{w: 10, idents: []string{"reply_address_mismatch"}, action: "none", tagged: false},
	{w: 5, idents: []string{"similar_internal_domain"}, action: "hold", tagged: false},
	{w: 5, idents: []string{"newly_observed_domain"}, action: "hold", tagged: true},
}

type dlpProfile struct {
	w              int
	route, action  string
	fromInt, toInt bool
	bounce         bool
}

var dlpProfiles = []dlpProfile{
	{w: 25, route: "outbound", action: "block", fromInt: true},
	{w: 15, route: "outbound", action: "hold", fromInt: true},
	{w: 15, route: "outbound", action: "notification", fromInt: true},
	{w: 15, route: "inbound", action: "notification", toInt: true, bounce: true},
	{w: 10, route: "internal", action: "hold", fromInt: true, toInt: true},
	{w: 15, route: "internal", action: "notification", fromInt: true, toInt: true},
	{w: 5, route: "inbound", action: "block", toInt: true},
}

// dlpDupShare is the share (percent) of DLP record pairs that are one
// outbound message logged twice: "hold" then "notification", same messageId.
const dlpDupShare = 30

func weightsOf[T any](ps []T, w func(T) int) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = w(p)
	}
	return out
}

var (
	urlWeights = weightsOf(urlProfiles, func(p urlProfile) int { return p.w })
	attWeights = weightsOf(attProfiles, func(p attProfile) int { return p.w })
	impWeights = weightsOf(impProfiles, func(p impProfile) int { return p.w })
	dlpWeights = weightsOf(dlpProfiles, func(p dlpProfile) int { return p.w })
)

// ---- value pools ----

var externalDomains = []string{"partner.example.net", "vendor.example.org", "shop.example.net", "news.example.org", "mail.example.org", "supplier.example.net"}
var externalLocals = []string{"thomas.bentz", "cbrashear", "billing", "news", "noreply", "sales", "support", "j.okoro", "m.lindqvist", "accounts"}
var subjects = []string{"Management Changes", "Invoice overdue", "Q3 report", "RE", "FW: contract draft", "Jump Pass + Mega Sale", "Your password expires today", "Shared document", "Meeting notes", "FIRE DRILL", "Payroll update", "Urgent wire transfer", "Delivery failed", "Benefits enrollment"}
var policies = []string{"Confidential", "PCI - Credit Card Numbers", "PII - Social Security Numbers", "Content Inspection - Watermark", "Source Code Leak", "Financial Statements"}

type fileKind struct{ ext, mime string }

var safeFiles = []fileKind{
	{"pdf", "application/pdf"},
	{"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
	{"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
	{"png", "image/png"},
	{"zip", "application/zip"},
}
var maliciousFiles = []fileKind{
	{"xlsm", "application/vnd.ms-excel.sheet.macroEnabled.12"},
	{"exe", "application/x-dosexec"},
	{"html", "text/html"},
	{"zip", "application/zip"},
	{"docm", "application/vnd.ms-word.document.macroEnabled.12"},
	{"pdf", "application/pdf"},
}
var fileStems = []string{"invoice", "statement", "report", "scan", "order", "payment-advice", "Sandbox Test", "remittance", "contract", "shipping-label"}

func urlFor(r *rng, cat string) string {
	switch cat {
	case "Phishing & Fraud":
		return fmt.Sprintf("https://login-microsoftonline.account-verify.example.org/oauth2/authorize?session=%s", hexOf(r, 8))
	case "Compromised":
		return fmt.Sprintf("http://compromised.example.org/corp/release-%d.html", r.intn(1000))
	case "Malware":
		return fmt.Sprintf("http://cdn-files.example.net/dl/invoice_%d.exe", r.intn(100000))
	case "Spam Sites":
		return fmt.Sprintf("http://best-deals.spam.example.net/offer?id=%d", r.intn(100000))
	case "Botnets":
		return fmt.Sprintf("http://198.51.100.%d:8080/gate.php", 1+r.intn(254))
	case "Suspicious":
		return fmt.Sprintf("http://short.example.net/%s", hexOf(r, 8)[:10])
	case "Potentially Malicious":
		return fmt.Sprintf("https://docs-share.example.org/view/%s", hexOf(r, 8))
	case "Dangerous file extension":
		return fmt.Sprintf("https://files.example.org/update-%d.scr", r.intn(1000))
	}
	return fmt.Sprintf("https://www.%s/news/%d", pick(r, externalDomains), r.intn(100000))
}

func extIP(r *rng) string {
	if r.intn(2) == 0 {
		return fmt.Sprintf("203.0.113.%d", 1+r.intn(254))
	}
	return fmt.Sprintf("198.51.100.%d", 1+r.intn(254))
}

func messageID(r *rng, fromDomain string) string {
	return fmt.Sprintf("<%s-%d@mail.%s>", hexOf(r, 8), r.intn(1000000), fromDomain)
}

// ---- generator ----

type generator struct {
	seed   uint64
	domain string
	emails []string // snapshot of the directory at New: records stay stable
	names  []string
}

func (g *generator) rngFor(kind int, i int64) rng {
	return newRNG(g.seed, 0x1065+uint64(kind), uint64(i))
}

func (g *generator) internal(r *rng) string {
	return g.emails[r.intn(len(g.emails))]
}

func (g *generator) external(r *rng) string {
	return pick(r, externalLocals) + "@" + pick(r, externalDomains)
}

func (g *generator) lookalike(r *rng) string {
	d := g.domain
	switch r.intn(4) {
	case 0:
		if strings.Contains(d, "l") {
			return strings.Replace(d, "l", "1", 1)
		}
		return "secure-" + d
	case 1:
		if strings.Contains(d, "m") {
			return strings.Replace(d, "m", "rn", 1)
		}
		return d + ".co"
	case 2:
		parts := strings.SplitN(d, ".", 2)
		if len(parts) == 2 {
			return parts[0] + "-corp." + parts[1]
		}
		return d + "-corp.net"
	default:
		return strings.TrimSuffix(d, ".com") + ".co"
	}
}

func routeTitle(route string) string {
	if route == "" {
		return ""
	}
	return strings.ToUpper(route[:1]) + route[1:]
}

func fmtTime(t int64, alt bool) string {
	tt := time.Unix(t, 0).UTC()
	if alt {
		tt = tt.In(plus7)
	}
	return tt.Format(respTimeLayout)
}

func (g *generator) attrs(kind int, i int64) attrs {
	r := g.rngFor(kind, i)
	switch kind {
	case kURL:
		p := urlProfiles[pickWeighted(&r, urlWeights)]
		return attrs{route: p.route, scan: p.scan}
	case kAttachment:
		p := attProfiles[pickWeighted(&r, attWeights)]
		return attrs{route: p.route, result: p.result}
	case kImpersonation:
		p := impProfiles[pickWeighted(&r, impWeights)]
		return attrs{action: p.action, tagged: p.tagged, idents: p.idents}
	default:
		if dup, twin := g.dlpSlot(i); dup {
			action := "hold"
			if twin {
				action = "notification"
			}
			return attrs{route: "outbound", action: action}
		}
		p := dlpProfiles[pickWeighted(&r, dlpWeights)]
		return attrs{route: p.route, action: p.action}
	}
}

// dlpSlot reports whether record i belongs to a duplicated message pair
// (records 2k and 2k+1) and, if so, whether it is the second row.
func (g *generator) dlpSlot(i int64) (dup, twin bool) {
	r := newRNG(g.seed, 0xd1bd, uint64(i/2))
	return r.intn(100) < dlpDupShare, i%2 == 1
}

// record builds generated record i of kind, dated t (unix seconds).
func (g *generator) record(kind int, i, t int64) any {
	r := g.rngFor(kind, i)
	switch kind {
	case kURL:
		return g.urlRecord(&r, t)
	case kAttachment:
		return g.attachmentRecord(&r, t)
	case kImpersonation:
		return g.impersonationRecord(&r, t, i)
	default:
		return g.dlpRecord(&r, i, t)
	}
}

func (g *generator) urlRecord(r *rng, t int64) urlLog {
	p := urlProfiles[pickWeighted(r, urlWeights)]
	from, to := g.external(r), g.external(r)
	if p.fromInt {
		from = g.internal(r)
	}
	if p.clickInt {
		to = g.internal(r)
	}
	action := pick(r, p.acts)
	actions := p.actions
	if actions == "" {
		switch action {
		case "block":
			actions = "Block"
		case "allow":
			actions = "Allow"
		default:
			actions = "None"
		}
	}
	cat := pick(r, p.cats)
	def := "Default " + routeTitle(p.route) + " URL Protect Definition"
	ip := "Internal IP"
	if p.route == "inbound" {
		ip = extIP(r)
	}
	parts := []string{"Body"}
	if r.intn(5) == 0 {
		parts = []string{"Attachment"}
	}
	u := urlFor(r, cat)
	var tm *tagMap
	if p.scan == "malicious" && r.intn(2) == 0 {
		tm = &tagMap{}
		tm.UrlReputationScan.Status = []string{"CustomerAll", "VerdictBlock"}
		tm.UrlReputationScan.Type = []string{cat}
		tm.UrlReputationScan.UrlBlock = []string{"ORIGINAL:" + u + " (Blocked as " + strings.ToUpper(cat) + ")"}
		tm.UrlReputationScan.Url = []string{u}
	}
	return urlLog{
		TagMap:                tm,
		UserEmailAddress:      to,
		FromUserEmailAddress:  from,
		URL:                   u,
		TTPDefinition:         def,
		Subject:               pick(r, subjects),
		Action:                action,
		AdminOverride:         "N/A",
		UserOverride:          "None",
		ScanResult:            p.scan,
		Category:              cat,
		SendingIP:             ip,
		UserAwarenessAction:   p.awareness,
		Date:                  fmtTime(t, false),
		Actions:               actions,
		Route:                 p.route,
		CreationMethod:        p.method,
		EmailPartsDescription: parts,
		MessageID:             messageID(r, domainOf(from)),
	}
}

func (g *generator) attachmentRecord(r *rng, t int64) attachmentLog {
	p := attProfiles[pickWeighted(r, attWeights)]
	from, to := g.external(r), g.external(r)
	if p.fromInt {
		from = g.internal(r)
	}
	if p.toInt {
		to = g.internal(r)
	}
	msgDomain := domainOf(from)
	if p.bounce {
		from = "<>"
		msgDomain = pick(r, externalDomains)
	}
	if r.intn(40) == 0 { // some feeds wrap addresses in <...>
		to = "<" + to + ">"
	}
	fk := pick(r, safeFiles)
	hash := hexOf(r, 32)
	verdict := "Safe"
	if p.result == "malicious" {
		fk = pick(r, maliciousFiles)
		// A small pool of known-bad hashes recurs, as real campaigns do.
		hr := newRNG(g.seed, 0xbad, uint64(r.intn(8)))
		hash = hexOf(&hr, 32)
		verdict = "Malicious"
	} else if p.result != "safe" {
		verdict = strings.ToUpper(p.result[:1]) + p.result[1:]
	}
	def := "Default " + routeTitle(p.route) + " Attachment Protect Definition"
	return attachmentLog{
		SenderAddress:    from,
		RecipientAddress: to,
		FileName:         fmt.Sprintf("%s-%s.%s", pick(r, fileStems), hexOf(r, 8)[:8], fk.ext),
		FileType:         fk.mime,
		Result:           p.result,
		ActionTriggered:  pick(r, p.actionTriggered),
		Date:             fmtTime(t, false),
		Details:          fmt.Sprintf("%-50s\r\nTime taken: 0 hrs, 0 min, %d sec", verdict, 1+r.intn(9)),
		Route:            p.route,
		MessageID:        messageID(r, msgDomain),
		Subject:          pick(r, subjects),
		FileHash:         hash,
		Definition:       def,
	}
}

func (g *generator) impersonationRecord(r *rng, t, i int64) impersonationLog {
	p := impProfiles[pickWeighted(r, impWeights)]
	to := g.internal(r)
	exec := g.names[r.intn(len(g.names))]
	senderDomain := pick(r, externalDomains)
	var results []impersonationResult
	for _, id := range p.idents {
		res := impersonationResult{ImpersonationDomainSource: id, CheckerResult: "hit"}
		switch id {
		case "similar_internal_domain":
			senderDomain = g.lookalike(r)
			res.SimilarDomain, res.StringSimilarToDomain = senderDomain, g.domain
		case "internal_user_name":
			res.SimilarDomain = fmt.Sprintf("%s <%s@%s>", exec, strings.ReplaceAll(strings.ToLower(exec), " ", "."), senderDomain)
			res.StringSimilarToDomain = exec
		case "targeted_threat_dictionary":
			res.SimilarDomain, res.StringSimilarToDomain = "", pick(r, []string{"wire transfer", "urgent payment", "gift cards", "bank details"})
		case "newly_observed_domain":
			senderDomain = fmt.Sprintf("fresh-%s.example.net", hexOf(r, 8)[:6])
			res.SimilarDomain = senderDomain
		case "reply_address_mismatch":
			res.SimilarDomain = "reply-to: " + g.external(r)
		}
		results = append(results, res)
	}
	sender := strings.ReplaceAll(strings.ToLower(exec), " ", ".") + "@" + senderDomain
	hits := len(p.idents)
	def := "IP - 1 hit (Tag email)"
	if p.action == "hold" {
		plural := ""
		if hits > 1 {
			plural = "s"
		}
		def = fmt.Sprintf("IP - %d hit%s (Hold for Review / User Hold)", hits, plural)
	} else if hits > 1 {
		def = fmt.Sprintf("IP - %d hits (Tag email)", hits)
	}
	idr := newRNG(g.seed, 0x1d, uint64(i))
	return impersonationLog{
		ID:                   "MTOKEN:eNq" + hexOf(&idr, 24),
		SenderAddress:        sender,
		RecipientAddress:     to,
		Subject:              pick(r, subjects),
		Definition:           def,
		Hits:                 hits,
		Identifiers:          append([]string(nil), p.idents...),
		Action:               p.action,
		TaggedExternal:       r.intn(2) == 0,
		TaggedMalicious:      p.tagged,
		SenderIPAddress:      extIP(r),
		EventTime:            fmtTime(t, false),
		ImpersonationResults: results,
		MessageID:            messageID(r, senderDomain),
	}
}

func (g *generator) dlpRecord(r *rng, i, t int64) dlpLog {
	if dup, twin := g.dlpSlot(i); dup {
		sr := newRNG(g.seed, 0xd1bd, uint64(i/2), 1)
		from, to := g.internal(&sr), g.external(&sr)
		rec := dlpLog{
			SenderAddress:    from,
			RecipientAddress: to,
			Subject:          pick(&sr, subjects),
			EventTime:        fmtTime(t, false),
			Route:            "outbound",
			Policy:           pick(&sr, policies),
			Action:           "hold",
			MessageID:        messageID(&sr, domainOf(from)),
		}
		if twin {
			rec.Action = "notification"
		}
		return rec
	}
	p := dlpProfiles[pickWeighted(r, dlpWeights)]
	from, to := g.external(r), g.external(r)
	if p.fromInt {
		from = g.internal(r)
	}
	if p.toInt {
		to = g.internal(r)
	}
	msgDomain := domainOf(from)
	subject := pick(r, subjects)
	if p.bounce {
		from, subject = "<>", "Undelivered Mail Returned to Sender"
		msgDomain = pick(r, externalDomains)
	}
	return dlpLog{
		SenderAddress:    from,
		RecipientAddress: to,
		Subject:          subject,
		EventTime:        fmtTime(t, r.intn(20) == 0), // a few carry +0700, as seen in real data
		Route:            p.route,
		Policy:           pick(r, policies),
		Action:           p.action,
		MessageID:        messageID(r, msgDomain),
	}
}
