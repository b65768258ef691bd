package mimecasttest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

var logPaths = map[string]string{KindURL: PathURLLogs, KindAttachment: PathAttachmentLogs, KindImpersonation: PathImpersonationLogs, KindDLP: PathDLPLogs}
var logKeys = map[string]string{KindURL: "clickLogs", KindAttachment: "attachmentLogs", KindImpersonation: "impersonationLogs", KindDLP: "dlpLogs"}
var logTimeField = map[string]string{KindURL: "date", KindAttachment: "date", KindImpersonation: "eventTime", KindDLP: "eventTime"}

var sha256HexRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
var respTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$`)

// pullLogs walks every page of a log query and returns the records.
func (e *testEnv) pullLogs(kind string, size int, item map[string]any, tokenOnly bool) ([]map[string]any, int) {
	e.t.Helper()
	var out []map[string]any
	token, total := "", -1
	for pages := 0; ; pages++ {
		b := body(size, token, item)
		if token != "" && tokenOnly {
			b = map[string]any{"meta": page(size, token)}
		}
		r := e.mustOK(logPaths[kind], b)
		if len(r.env.Data) != 1 {
			e.t.Fatalf("data has %d items, want 1", len(r.env.Data))
		}
		var d map[string]json.RawMessage
		if err := json.Unmarshal(r.env.Data[0], &d); err != nil {
			e.t.Fatal(err)
		}
		var recs []map[string]any
		if err := json.Unmarshal(d[logKeys[kind]], &recs); err != nil {
			e.t.Fatalf("data[0].%s: %v in %s", logKeys[kind], err, r.env.Data[0])
		}
		if kind == KindImpersonation {
			if _, ok := d["resultCount"]; !ok {
				e.t.Error("impersonation reply lacks resultCount")
			}
		}
		p := r.env.Meta.Pagination
		if total >= 0 && p.TotalCount != total {
			e.t.Errorf("totalCount changed from %d to %d", total, p.TotalCount)
		}
		total = p.TotalCount
		out = append(out, recs...)
		if p.Next == nil {
			return out, total
		}
		if len(recs) == 0 {
			e.t.Fatal("empty page with a next token")
		}
		token = *p.Next
		if pages > 100000 {
			e.t.Fatal("runaway paging")
		}
	}
}

func recTime(t *testing.T, kind string, m map[string]any) time.Time {
	t.Helper()
	s, _ := m[logTimeField[kind]].(string)
	if !respTimeRE.MatchString(s) {
		t.Fatalf("%s time %q not in layout 2006-01-02T15:04:05-0700", kind, s)
	}
	tt, err := time.Parse("2006-01-02T15:04:05-0700", s)
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

func TestLogFieldsAndRuleMaterial(t *testing.T) {
	const n = 2000
	e := newEnv(t, Options{Users: 300, LogVolume: map[string]int{KindURL: n, KindAttachment: n, KindImpersonation: n, KindDLP: n}})
	start, end := e.s.LogWindow()
	item := map[string]any{"from": start.Format(time.RFC3339), "to": end.Format(time.RFC3339), "oldestFirst": true}
	internal := func(a any) bool {
		s, _ := a.(string)
		s = strings.ToLower(strings.Trim(s, "<>"))
		_, ok := e.s.User(s)
		return ok
	}
	fields := map[string][]string{
		KindURL:           {"userEmailAddress", "fromUserEmailAddress", "url", "ttpDefinition", "subject", "action", "adminOverride", "userOverride", "scanResult", "category", "sendingIp", "userAwarenessAction", "date", "actions", "route", "creationMethod", "emailPartsDescription", "messageId"},
		KindAttachment:    {"senderAddress", "recipientAddress", "fileName", "fileType", "result", "actionTriggered", "date", "details", "route", "messageId", "subject", "fileHash", "definition"},
		KindImpersonation: {"id", "senderAddress", "recipientAddress", "subject", "definition", "hits", "identifiers", "action", "taggedExternal", "taggedMalicious", "senderIpAddress", "eventTime", "impersonationResults", "messageId"},
		KindDLP:           {"senderAddress", "recipientAddress", "subject", "eventTime", "route", "policy", "action", "messageId"},
	}
	recs := map[string][]map[string]any{}
	for kind := range logPaths {
		got, total := e.pullLogs(kind, 500, item, false)
		if len(got) != n || total != n {
			t.Fatalf("%s: pulled %d total %d, want %d", kind, len(got), total, n)
		}
		for _, m := range got {
			for _, f := range fields[kind] {
				if _, ok := m[f]; !ok {
					t.Fatalf("%s record lacks %q: %v", kind, f, m)
				}
			}
			if id, _ := m["messageId"].(string); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, ">") {
				t.Fatalf("%s messageId %q", kind, id)
			}
			recTime(t, kind, m)
		}
		recs[kind] = got
	}
	counts := map[string]int{}
	hasIdent := func(m map[string]any, id string) bool {
		for _, x := range m["identifiers"].([]any) {
			if x == id {
				return true
			}
		}
		return false
	}
	for _, m := range recs[KindURL] {
		if m["creationMethod"] == "User Click" && (m["action"] == "block" || m["action"] == "warn") {
			counts["clicked "+m["category"].(string)+" "+m["action"].(string)]++
		}
		if m["scanResult"] == "malicious" && m["creationMethod"] == "Entry Scan" && m["route"] == "outbound" && internal(m["fromUserEmailAddress"]) {
			counts["malicious_url_sent"]++
		}
		if m["creationMethod"] == "Entry Scan" && m["route"] == "inbound" {
			counts["entry scan inbound"]++
		}
	}
	for _, m := range recs[KindAttachment] {
		if m["result"] == "malicious" {
			switch m["route"] {
			case "inbound":
				if internal(m["recipientAddress"]) {
					counts["malicious_file_received"]++
				}
			case "outbound":
				if internal(m["senderAddress"]) {
					counts["malicious_file_sent"]++
				}
			case "internal":
				if internal(m["senderAddress"]) {
					counts["malicious_file_sent_internal"]++
				}
			}
		}
		if h, _ := m["fileHash"].(string); !sha256HexRE.MatchString(h) {
			t.Fatalf("fileHash %q", h)
		}
		counts["result "+m["result"].(string)]++
	}
	for _, m := range recs[KindImpersonation] {
		if m["taggedMalicious"] == true && m["action"] == "hold" {
			for _, id := range []string{"similar_internal_domain", "internal_user_name", "targeted_threat_dictionary"} {
				if hasIdent(m, id) {
					counts["imp "+id]++
				}
			}
		}
		if !strings.HasPrefix(m["id"].(string), "MTOKEN:") {
			t.Fatalf("impersonation id %v", m["id"])
		}
	}
	byMsg := map[string][]string{}
	for _, m := range recs[KindDLP] {
		if m["action"] == "block" && internal(m["senderAddress"]) {
			counts["sensitive_data_exposure"]++
		}
		if m["route"] == "outbound" && internal(m["senderAddress"]) {
			counts["content_examination_sent"]++
		}
		byMsg[m["messageId"].(string)] = append(byMsg[m["messageId"].(string)], m["action"].(string))
	}
	for _, acts := range byMsg {
		if len(acts) > 1 {
			counts["dlp duplicate rows"]++
		}
	}
	want := []string{
		"clicked Phishing & Fraud block", "clicked Phishing & Fraud warn", "clicked Compromised block", "clicked Malware block",
		"clicked Malware warn", "clicked Spam Sites warn", "clicked Botnets block", "clicked Suspicious warn",
		"malicious_url_sent", "entry scan inbound",
		"malicious_file_received", "malicious_file_sent", "malicious_file_sent_internal", "result safe", "result malicious",
		"imp similar_internal_domain", "imp internal_user_name", "imp targeted_threat_dictionary",
		"sensitive_data_exposure", "content_examination_sent", "dlp duplicate rows",
	}
	for _, w := range want {
		if counts[w] == 0 {
			t.Errorf("no generated record for %q", w)
		}
	}
}

func TestLogTimeFilterAndOrder(t *testing.T) {
	e := newEnv(t, Options{Users: 50, LogVolume: map[string]int{KindURL: 1000, KindDLP: 777}})
	start, _ := e.s.LogWindow()
	from := start.Add(37*time.Hour + 13*time.Second)
	to := start.Add(101*time.Hour + 7*time.Second)
	for _, kind := range []string{KindURL, KindDLP} {
		want := e.s.LogRecords(kind, from, to)
		if len(want) == 0 {
			t.Fatal("no records in range")
		}
		tests := []struct {
			name      string
			item      map[string]any
			oldest    bool
			tokenOnly bool
		}{
			{"mimecast layout, newest first", map[string]any{"from": from.Format("2006-01-02T15:04:05-0700"), "to": to.Format("2006-01-02T15:04:05-0700")}, false, false},
			{"rfc3339 Z, oldest first", map[string]any{"from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339), "oldestFirst": true}, true, false},
			{"rfc3339 +00:00 offset elsewhere, token only", map[string]any{"from": from.In(time.FixedZone("", -5*3600)).Format(time.RFC3339), "to": to.In(plus7).Format(time.RFC3339), "oldestFirst": true}, true, true},
		}
		for _, tc := range tests {
			t.Run(kind+" "+tc.name, func(t *testing.T) {
				got, total := e.pullLogs(kind, 37, tc.item, tc.tokenOnly)
				if len(got) != len(want) || total != len(want) {
					t.Fatalf("got %d records (total %d), want %d", len(got), total, len(want))
				}
				for i, m := range got {
					tt := recTime(t, kind, m)
					if tt.Before(from) || !tt.Before(to) {
						t.Fatalf("record at %v outside [%v, %v)", tt, from, to)
					}
					if i > 0 {
						prev := recTime(t, kind, got[i-1])
						if tc.oldest && tt.Before(prev) || !tc.oldest && tt.After(prev) {
							t.Fatalf("order broken at %d: %v after %v (oldestFirst %v)", i, tt, prev, tc.oldest)
						}
					}
				}
				if !tc.oldest {
					for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
						got[i], got[j] = got[j], got[i]
					}
				}
				for i := range got {
					if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
						t.Fatalf("record %d = %v, want %v", i, got[i], want[i])
					}
				}
			})
		}
	}
	t.Run("default range is today so far", func(t *testing.T) {
		// The fake clock is 09:05:03 on the day the window ends.
		got, _ := e.pullLogs(KindURL, 500, map[string]any{}, false)
		today := time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)
		for _, m := range got {
			if tt := recTime(t, KindURL, m); tt.Before(today) {
				t.Fatalf("record at %v before today", tt)
			}
		}
		if len(got) == 0 {
			t.Error("no records today")
		}
	})
	t.Run("from after to is empty", func(t *testing.T) {
		got, total := e.pullLogs(KindURL, 10, map[string]any{"from": to.Format(time.RFC3339), "to": from.Format(time.RFC3339)}, false)
		if len(got) != 0 || total != 0 {
			t.Errorf("got %d records, total %d, want none", len(got), total)
		}
	})
	t.Run("bad date", func(t *testing.T) {
		r := e.post(PathURLLogs, body(10, "", map[string]any{"from": "yesterday"}))
		if got := r.failCodes(); len(got) != 1 || r.env.Fail[0].Errors[0].Field != "from" {
			t.Errorf("codes %v", got)
		}
		r = e.post(PathURLLogs, body(10, "", map[string]any{"to": ""}))
		if got := r.failCodes(); len(got) != 1 || got[0] != "err_validation_blank" {
			t.Errorf("codes %v", got)
		}
	})
}

func TestLogFilters(t *testing.T) {
	const n = 800
	e := newEnv(t, Options{Users: 80, LogVolume: map[string]int{KindURL: n, KindAttachment: n, KindImpersonation: n, KindDLP: n}})
	start, end := e.s.LogWindow()
	rng := func(extra map[string]any) map[string]any {
		m := map[string]any{"from": start.Format(time.RFC3339), "to": end.Format(time.RFC3339)}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name string
		kind string
		item map[string]any
		keep func(m map[string]any) bool
	}{
		{"url route outbound", KindURL, rng(map[string]any{"route": "outbound"}), func(m map[string]any) bool { return m["route"] == "outbound" }},
		{"url route all", KindURL, rng(map[string]any{"route": "all", "scanResult": "all"}), func(map[string]any) bool { return true }},
		{"url malicious", KindURL, rng(map[string]any{"scanResult": "malicious"}), func(m map[string]any) bool { return m["scanResult"] == "malicious" }},
		{"attachment inbound malicious", KindAttachment, rng(map[string]any{"route": "inbound", "result": "malicious"}), func(m map[string]any) bool {
			return m["route"] == "inbound" && m["result"] == "malicious"
		}},
		{"dlp routes outbound+internal", KindDLP, rng(map[string]any{"routes": []any{"outbound", "internal"}}), func(m map[string]any) bool { return m["route"] == "outbound" || m["route"] == "internal" }},
		{"dlp actions block", KindDLP, rng(map[string]any{"actions": []any{"block"}}), func(m map[string]any) bool { return m["action"] == "block" }},
		{"impersonation tagged hold", KindImpersonation, rng(map[string]any{"taggedMalicious": true, "actions": []any{"hold"}}), func(m map[string]any) bool {
			return m["taggedMalicious"] == true && m["action"] == "hold"
		}},
		{"impersonation identifiers", KindImpersonation, rng(map[string]any{"identifiers": []any{"targeted_threat_dictionary"}}), func(m map[string]any) bool {
			return strings.Contains(fmt.Sprint(m["identifiers"]), "targeted_threat_dictionary")
		}},
		{"dlp search subject", KindDLP, rng(map[string]any{"searchField": "subject", "query": "invoice"}), func(m map[string]any) bool {
			return strings.Contains(strings.ToLower(m["subject"].(string)), "invoice")
		}},
	}
	all := map[string][]map[string]any{}
	for kind := range logPaths {
		all[kind] = e.s.LogRecords(kind, start, end)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want int
			for _, m := range all[tc.kind] {
				if tc.keep(m) {
					want++
				}
			}
			got, total := e.pullLogs(tc.kind, 111, tc.item, true)
			if len(got) != want || total != want || want == 0 {
				t.Fatalf("got %d (total %d), want %d > 0", len(got), total, want)
			}
			for _, m := range got {
				if !tc.keep(m) {
					t.Fatalf("record %v should have been filtered out", m)
				}
			}
		})
	}
	t.Run("invalid filters", func(t *testing.T) {
		for _, tc := range []struct {
			path  string
			item  map[string]any
			field string
		}{
			{PathURLLogs, map[string]any{"route": "sideways"}, "route"},
			{PathURLLogs, map[string]any{"route": []any{"inbound"}}, "route"},
			{PathDLPLogs, map[string]any{"routes": "outbound"}, "routes"},
			{PathDLPLogs, map[string]any{"searchField": "subject"}, "query"},
			{PathImpersonationLogs, map[string]any{"taggedMalicious": "yes"}, "taggedMalicious"},
		} {
			r := e.post(tc.path, body(10, "", tc.item))
			if len(r.env.Fail) != 1 || r.env.Fail[0].Errors[0].Field != tc.field {
				t.Errorf("%s %v: got %s, want a failure on %s", tc.path, tc.item, r.raw, tc.field)
			}
		}
	})
}

func TestAddLogRecords(t *testing.T) {
	e := newEnv(t, Options{Users: 20, LogVolume: map[string]int{KindAttachment: 50}})
	start, end := e.s.LogWindow()
	mid := start.Add(end.Sub(start) / 2)
	e.s.AddLogRecords(KindAttachment,
		map[string]any{"senderAddress": "x@evil.example.net", "recipientAddress": "a@example.com", "result": "malicious", "route": "inbound", "date": mid.Format("2006-01-02T15:04:05-0700"), "messageId": "<explicit-1@x>"},
		map[string]any{"senderAddress": "y@evil.example.net", "recipientAddress": "b@example.com", "result": "malicious", "route": "outbound", "date": start.Add(time.Second).Format("2006-01-02T15:04:05-0700"), "messageId": "<explicit-2@x>"},
	)
	e.s.AddLogRecords(KindDLP, map[string]any{"senderAddress": "c@example.com", "action": "block", "route": "outbound", "messageId": "<explicit-3@x>"})
	if got := e.s.LogCount(KindAttachment); got != 52 {
		t.Errorf("LogCount = %d, want 52", got)
	}
	got, total := e.pullLogs(KindAttachment, 7, map[string]any{"from": start.Format(time.RFC3339), "to": end.Format(time.RFC3339), "oldestFirst": true}, false)
	if len(got) != 52 || total != 52 {
		t.Fatalf("got %d (total %d), want 52", len(got), total)
	}
	times := make([]time.Time, len(got))
	pos := map[string]int{}
	for i, m := range got {
		times[i] = recTime(t, KindAttachment, m)
		if id, _ := m["messageId"].(string); strings.HasPrefix(id, "<explicit") {
			pos[id] = i
		}
	}
	if !sort.SliceIsSorted(times, func(i, j int) bool { return times[i].Before(times[j]) }) {
		t.Error("merged records out of order")
	}
	if len(pos) != 2 || pos["<explicit-2@x>"] > 1 {
		t.Errorf("explicit positions %v", pos)
	}
	got, _ = e.pullLogs(KindAttachment, 7, map[string]any{"from": start.Format(time.RFC3339), "to": end.Format(time.RFC3339), "route": "outbound", "result": "malicious"}, false)
	found := false
	for _, m := range got {
		found = found || m["messageId"] == "<explicit-2@x>"
	}
	if !found {
		t.Error("explicit outbound record not served under the route filter")
	}
	// An explicit record without a time is dated Now, inside the default range.
	dl, _ := e.pullLogs(KindDLP, 10, map[string]any{}, false)
	if len(dl) != 1 || dl[0]["eventTime"] != e.clk.Now().Format("2006-01-02T15:04:05-0700") {
		t.Errorf("dlp today = %v", dl)
	}
}

func TestLogsArriveOverTime(t *testing.T) {
	clk := newClock()
	e := newEnv(t, Options{Users: 10, Now: clk.Now, LogEnd: clk.Now().Add(time.Hour), LogWindow: 2 * time.Hour, LogVolume: map[string]int{KindURL: 120}})
	e.clk = clk
	start, _ := e.s.LogWindow()
	item := map[string]any{"from": start.Format(time.RFC3339), "to": start.Add(24 * time.Hour).Format(time.RFC3339)}
	got, _ := e.pullLogs(KindURL, 500, item, false)
	if len(got) != 61 { // records at minutes 0..60 of the 2h span
		t.Errorf("now: %d records, want 61", len(got))
	}
	clk.Advance(30 * time.Minute)
	if got, _ := e.pullLogs(KindURL, 500, item, false); len(got) != 91 {
		t.Errorf("30 minutes later: %d records, want 91", len(got))
	}
}
