package mimecast_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
)

// sampleServer answers path with the sample file (always the same).
func sampleServer(t *testing.T, samples map[string]string) (*recorder, *mimecast.Client) {
	t.Helper()
	rec := &recorder{reply: func(n int, w http.ResponseWriter, r *sentRequest) {
		name, ok := samples[r.Path]
		if !ok {
			writeJSON(w, 404, []byte(`{"meta":{"status":404},"data":[],"fail":[]}`))
			return
		}
		writeJSON(w, 200, mustSample(t, name))
	}}
	srv := newServer(t, rec)
	c, clk := newClient(t, srv.URL, nil)
	rec.clock = clk
	return rec, c
}

func TestAccount(t *testing.T) {
	for _, tt := range []struct {
		sample    string
		wantCode  string
		awareness bool
	}{
		{"get-account.json", "CUSA12A345", true},
		{"get-account-missing-awareness.json", "CUK45B678", false},
	} {
		t.Run(tt.sample, func(t *testing.T) {
			rec, c := sampleServer(t, map[string]string{mimecast.PathGetAccount: tt.sample})
			a, err := c.Account(context.Background())
			if err != nil {
				t.Fatalf("Account: %v", err)
			}
			if a.Code != tt.wantCode || a.HasAwareness() != tt.awareness {
				t.Errorf("got code %q awareness %v, want %q %v", a.Code, a.HasAwareness(), tt.wantCode, tt.awareness)
			}
			reqs := rec.Requests()
			if len(reqs) != 1 || !reqs[0].SigOK {
				t.Fatalf("got %d requests (signature ok %v), want 1 signed", len(reqs), len(reqs) > 0 && reqs[0].SigOK)
			}
			if reqs[0].RawBody != `{"data":[]}` {
				t.Errorf("body: got %s, want {\"data\":[]}", reqs[0].RawBody)
			}
		})
	}
}

func TestEachGradePageFollowsNext(t *testing.T) {
	rec := &recorder{reply: func(n int, w http.ResponseWriter, r *sentRequest) {
		if pageToken(r) == "" {
			writeJSON(w, 200, mustSample(t, "get-safe-score-details-page1.json"))
			return
		}
		writeJSON(w, 200, mustSample(t, "get-safe-score-details-last-page.json"))
	}}
	srv := newServer(t, rec)
	c, _ := newClient(t, srv.URL, nil)
	var got []plugin.UserGrade
	pages := 0
	err := c.EachGradePage(context.Background(), 4, func(p []plugin.UserGrade) error {
		pages++
		got = append(got, p...)
		return nil
	})
	if err != nil {
		t.Fatalf("EachGradePage: %v", err)
	}
	if pages != 2 || len(got) != 6 {
		t.Fatalf("got %d pages %d users, want 2 and 6", pages, len(got))
	}
	want := plugin.UserGrade{Email: "carol.cho@example.com", Name: "Carol Cho", Department: "Engineering",
		Risk: "F", HumanError: "F", Sentiment: "D", Engagement: "F", Knowledge: "D", UserState: "active"}
	if got[2] != want {
		t.Errorf("user 3: got %+v, want %+v", got[2], want)
	}
	reqs := rec.Requests()
	if pageSizeOf(&reqs[0]) != 4 || pageToken(&reqs[0]) != "" {
		t.Errorf("first page meta: size %d token %q", pageSizeOf(&reqs[0]), pageToken(&reqs[0]))
	}
	if !strings.HasPrefix(pageToken(&reqs[1]), "eNoVzr0OgjAYQNF3") {
		t.Errorf("second page token: got %q", pageToken(&reqs[1]))
	}
}

func TestPaginationManyPagesAndStops(t *testing.T) {
	const total = 57
	tests := []struct {
		name      string
		emptyLast bool // a stale next token with an empty page must stop
		wantCalls int
	}{
		{"missing next stops", false, total},
		{"empty page stops", true, total + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{reply: func(n int, w http.ResponseWriter, r *sentRequest) {
				if want := fmt.Sprintf("p%d", n); n > 0 && pageToken(r) != want {
					t.Errorf("call %d: token %q, want %q", n, pageToken(r), want)
				}
				if n >= total {
					writeJSON(w, 200, []byte(`{"meta":{"status":200,"pagination":{"next":"stale"}},"data":[],"fail":[]}`))
					return
				}
				next := fmt.Sprintf(`,"next":"p%d"`, n+1)
				if n == total-1 && !tt.emptyLast {
					next = ""
				}
				writeJSON(w, 200, []byte(fmt.Sprintf(`{"meta":{"status":200,"pagination":{"pageSize":2%s}},"data":[{"emailAddress":"u%d@x","risk":"A"},{"emailAddress":"v%d@x","risk":"B"}],"fail":[]}`, next, n, n)))
			}}
			srv := newServer(t, rec)
			c, _ := newClient(t, srv.URL, nil)
			users := 0
			if err := c.EachGradePage(context.Background(), 2, func(p []plugin.UserGrade) error { users += len(p); return nil }); err != nil {
				t.Fatalf("EachGradePage: %v", err)
			}
			if users != 2*total || len(rec.Requests()) != tt.wantCalls {
				t.Errorf("got %d users in %d calls, want %d in %d", users, len(rec.Requests()), 2*total, tt.wantCalls)
			}
		})
	}
}

func TestEachGradePageCallbackErrorStops(t *testing.T) {
	rec, c := sampleServer(t, map[string]string{mimecast.PathSafeScoreDetails: "get-safe-score-details-page1.json"})
	stop := errors.New("stop")
	if err := c.EachGradePage(context.Background(), 0, func([]plugin.UserGrade) error { return stop }); err != stop {
		t.Errorf("got %v, want the callback's error as is", err)
	}
	if n := len(rec.Requests()); n != 1 {
		t.Errorf("got %d calls, want 1", n)
	}
	if got := pageSizeOf(&rec.Requests()[0]); got != mimecast.DefaultPageSize {
		t.Errorf("default page size: got %d, want %d", got, mimecast.DefaultPageSize)
	}
}

func TestFindGroups(t *testing.T) {
	rec := &recorder{reply: func(n int, w http.ResponseWriter, r *sentRequest) {
		if pageToken(r) == "" {
			writeJSON(w, 200, mustSample(t, "find-groups.json"))
			return
		}
		writeJSON(w, 200, []byte(`{"meta":{"status":200},"data":[{"folders":[{"id":"g6","description":"Risky users","source":"cloud","userCount":4}]}],"fail":[]}`))
	}}
	srv := newServer(t, rec)
	c, _ := newClient(t, srv.URL, nil)
	for _, q := range []string{"", "Risky"} {
		t.Run("query="+q, func(t *testing.T) {
			before := len(rec.Requests())
			groups, err := c.FindGroups(context.Background(), q)
			if err != nil {
				t.Fatalf("FindGroups: %v", err)
			}
			if len(groups) != 6 {
				t.Fatalf("got %d groups, want 6 over two pages", len(groups))
			}
			if g := groups[2]; g.Name != "Permitted senders" || g.UserCount != 3 || g.Source != "cloud" || !strings.HasPrefix(g.ID, "eNoVzrsOgjAUANB_uSsMgiUIiYPgIyjiA0UZgV4eWq1QqBLjv6v7Gc4bBGZdgxUFG") {
				t.Errorf("group 3: got %+v", g)
			}
			if g := groups[5]; g != (plugin.Group{ID: "g6", Name: "Risky users", Source: "cloud", UserCount: 4}) {
				t.Errorf("group 6: got %+v", g)
			}
			reqs := rec.Requests()[before:]
			for _, r := range reqs {
				items := dataItems(&r)
				if q == "" && len(items) != 0 {
					t.Errorf("empty query sent data %v, want none (blank query is a validation error)", items)
				}
				if q != "" && (len(items) != 1 || items[0]["query"] != q) {
					t.Errorf("got data %v, want query %q on every page", items, q)
				}
			}
		})
	}
}

func TestFindGroupsValidationError(t *testing.T) {
	_, c := sampleServer(t, map[string]string{mimecast.PathFindGroups: "error-validation-blank.json"})
	_, err := c.FindGroups(context.Background(), "x")
	var ae *mimecast.APIError
	var pe *plugin.Error
	if !errors.As(err, &ae) || ae.Kind != mimecast.KindValidation || ae.Field != "query" || ae.Code != "err_validation_blank" {
		t.Fatalf("got %v, want a validation APIError on field query", err)
	}
	if !errors.As(err, &pe) || pe.Code != plugin.EINVALID || pe.Field != "query" {
		t.Errorf("got plugin error %+v, want EINVALID field query", pe)
	}
}

func TestCreateGroup(t *testing.T) {
	rec, c := sampleServer(t, map[string]string{mimecast.PathCreateGroup: "create-group.json"})
	g, err := c.CreateGroup(context.Background(), "A_Cloud_Exchange")
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	if g.Name != "A_Cloud_Exchange" || !strings.HasPrefix(g.ID, "eNoVjs0O") || g.Source != "cloud" {
		t.Errorf("got %+v", g)
	}
	items := dataItems(&rec.Requests()[0])
	if len(items) != 1 || items[0]["description"] != "A_Cloud_Exchange" || len(items[0]) != 1 {
		t.Errorf("got data %v, want one item with only description", items)
	}
}

func TestAddMembersPerItemResults(t *testing.T) {
	rec, c := sampleServer(t, map[string]string{mimecast.PathAddGroupMember: "add-group-member-partial.json"})
	const gid = "eNoVzrsOgjAUANB_uaskgoFgSRwsGoMBVFB8xEXoRdBilVJ8xX9X9zOcN0jMVI0lAwfyfVclYXSb2-LeI16yK142Laf6NkyTlsTuya86VjD21iaNhk-xOR47nowJ9y-r5bg_8wvMp6bbzMXknChZ3qnBt5zO0icWapH2mBe0j1sbLiR9yAFowNnhCk5-4BI1yJRsRIV1Jhj-Lm4cjoyhTSzzB1usZSku4Bga5IIzrP9fS9eJ-fkCsJk_yA"
	emails := []string{"New.Hire@example.com", "alice.archer@example.com", "bob.baker@example.com", "ghost@example.com"}
	got, err := c.AddMembers(context.Background(), gid, emails)
	if err != nil {
		t.Fatalf("AddMembers: %v", err)
	}
	want := []plugin.MemberResult{
		{Email: "New.Hire@example.com", Status: plugin.Failed, Reason: "address not managed by this Mimecast account", Code: "err_xdk_operation_forbidden_for_address"},
		{Email: "alice.archer@example.com", Status: plugin.Skipped, Reason: "already a member", Code: "err_folder_group_member_already_exists"},
		{Email: "bob.baker@example.com", Status: plugin.Done},
		{Email: "ghost@example.com", Status: plugin.Failed, Reason: "no result from Mimecast"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	items := dataItems(&rec.Requests()[0])
	if len(items) != 4 || items[0]["id"] != gid || items[0]["emailAddress"] != "New.Hire@example.com" {
		t.Errorf("got data %v", items)
	}
}

func TestRemoveMembersNotMemberIsSkipped(t *testing.T) {
	_, c := sampleServer(t, map[string]string{mimecast.PathRemoveGroupMember: "remove-group-member-not-found.json"})
	got, err := c.RemoveMembers(context.Background(), "g", []string{"zed.nobody@example.com"})
	if err != nil {
		t.Fatalf("RemoveMembers: %v", err)
	}
	want := []plugin.MemberResult{{Email: "zed.nobody@example.com", Status: plugin.Skipped, Reason: "not a member", Code: "err_folder_email_address_not_found"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// memberEcho answers add/remove with every item in data, except
// addresses starting with "fail" which fail with a keyed error.
func memberEcho(n int, w http.ResponseWriter, r *sentRequest) {
	var data, fail []string
	for _, it := range dataItems(r) {
		e := it["emailAddress"].(string)
		if strings.HasPrefix(e, "fail") {
			fail = append(fail, fmt.Sprintf(`{"key":{"id":%q,"emailAddress":%q},"errors":[{"code":"err_other","message":"Other problem","retryable":false}]}`, it["id"], e))
			continue
		}
		data = append(data, fmt.Sprintf(`{"id":"m-%s","folderId":%q,"emailAddress":%q,"internal":true}`, e, it["id"], strings.ToUpper(e)))
	}
	writeJSON(w, 200, []byte(`{"meta":{"status":200},"data":[`+strings.Join(data, ",")+`],"fail":[`+strings.Join(fail, ",")+`]}`))
}

func TestMembersChunkedByBatchSizeInOrder(t *testing.T) {
	rec := &recorder{reply: memberEcho}
	srv := newServer(t, rec)
	c, _ := newClient(t, srv.URL, func(o *mimecast.Options) { o.BatchSize = 10 })
	var emails []string
	for i := range 25 {
		if i%7 == 3 {
			emails = append(emails, fmt.Sprintf("fail%d@example.com", i))
			continue
		}
		emails = append(emails, fmt.Sprintf("user%d@example.com", i))
	}
	got, err := c.RemoveMembers(context.Background(), "grp", emails)
	if err != nil {
		t.Fatalf("RemoveMembers: %v", err)
	}
	if len(got) != len(emails) {
		t.Fatalf("got %d results, want %d", len(got), len(emails))
	}
	for i, r := range got {
		wantStatus := plugin.Done
		if strings.HasPrefix(emails[i], "fail") {
			wantStatus = plugin.Failed
		}
		if r.Email != emails[i] || r.Status != wantStatus {
			t.Errorf("result %d: got %+v, want %s %s", i, r, emails[i], wantStatus)
		}
		if wantStatus == plugin.Failed && (r.Reason != "Other problem" || r.Code != "err_other") {
			t.Errorf("result %d: got reason %q code %q", i, r.Reason, r.Code)
		}
	}
	var sizes []int
	for _, r := range rec.Requests() {
		sizes = append(sizes, len(dataItems(&r)))
		if r.Path != mimecast.PathRemoveGroupMember {
			t.Errorf("path %s", r.Path)
		}
	}
	if !reflect.DeepEqual(sizes, []int{10, 10, 5}) {
		t.Errorf("got call sizes %v, want [10 10 5]", sizes)
	}
}

func TestMembersCallErrorReturnsDoneChunks(t *testing.T) {
	rec := &recorder{reply: func(n int, w http.ResponseWriter, r *sentRequest) {
		if n == 0 {
			memberEcho(n, w, r)
			return
		}
		writeJSON(w, 403, []byte(`{"meta":{"status":403},"data":[],"fail":[{"errors":[{"code":"err_xdk_forbidden","message":"Forbidden"}]}]}`))
	}}
	srv := newServer(t, rec)
	c, _ := newClient(t, srv.URL, func(o *mimecast.Options) { o.BatchSize = 2 })
	got, err := c.AddMembers(context.Background(), "grp", []string{"a@x", "b@x", "c@x"})
	if plugin.ErrorCode(err) != plugin.EUPSTREAMAUTH {
		t.Fatalf("got %v, want upstream_auth", err)
	}
	if len(got) != 2 || got[0].Status != plugin.Done {
		t.Errorf("got %+v, want the first chunk's 2 results", got)
	}
	if !strings.Contains(err.Error(), "members 3-3 of 3") {
		t.Errorf("error %q does not say which members", err)
	}
}

func TestGroupMembersAllPages(t *testing.T) {
	rec := &recorder{reply: func(n int, w http.ResponseWriter, r *sentRequest) {
		if n == 0 {
			writeJSON(w, 200, []byte(`{"meta":{"status":200,"pagination":{"next":"t2"}},"data":[{"groupMembers":[{"emailAddress":"a@x"},{"domain":"only-domain.example","emailAddress":""}]}],"fail":[]}`))
			return
		}
		writeJSON(w, 200, mustSample(t, "get-group-members.json"))
	}}
	srv := newServer(t, rec)
	c, _ := newClient(t, srv.URL, nil)
	got, err := c.GroupMembers(context.Background(), "gid-1")
	if err != nil {
		t.Fatalf("GroupMembers: %v", err)
	}
	if want := []string{"a@x", "alice.archer@example.com", "partner@vendor.example.net"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, r := range rec.Requests() {
		if items := dataItems(&r); len(items) != 1 || items[0]["id"] != "gid-1" {
			t.Errorf("got data %v, want the group id on every page", items)
		}
	}
}

func TestEachLogPage(t *testing.T) {
	from := time.Date(2024, 11, 16, 0, 0, 0, 0, time.UTC)
	to := time.Date(2024, 11, 18, 1, 0, 0, 0, time.FixedZone("", 3600))
	tests := []struct {
		kind       plugin.LogKind
		path       string
		sample     string
		route      string
		wantFilter map[string]any
		wantFirst  string // a field of record 1
	}{
		{plugin.LogURL, "/api/ttp/url/get-logs", "ttp-url-get-logs.json", "inbound",
			map[string]any{"route": "inbound"}, "bob.baker@example.com"},
		{plugin.LogAttachment, "/api/ttp/attachment/get-logs", "ttp-attachment-get-logs.json", "outbound",
			map[string]any{"route": "outbound"}, "thomas.bentz@partner.example.net"},
		{plugin.LogImpersonation, "/api/ttp/impersonation/get-logs", "ttp-impersonation-get-logs.json", "inbound",
			map[string]any{}, "ceo.lookalike@examp1e.com"},
		{plugin.LogDLP, "/api/dlp/get-logs", "dlp-get-logs.json", "outbound",
			map[string]any{"routes": []any{"outbound"}}, "kay.mann@example.com"},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			rec := &recorder{reply: func(n int, w http.ResponseWriter, r *sentRequest) {
				if r.Path != tt.path {
					t.Errorf("path: got %s, want %s", r.Path, tt.path)
				}
				if n == 0 {
					writeJSON(w, 200, mustSample(t, tt.sample))
					return
				}
				writeJSON(w, 200, mustSample(t, "empty-last-page.json"))
			}}
			srv := newServer(t, rec)
			c, _ := newClient(t, srv.URL, nil)
			var pages []plugin.LogPage
			err := c.EachLogPage(context.Background(), tt.kind, plugin.LogQuery{From: from, To: to, OldestFirst: true, PageSize: 2, Route: tt.route},
				func(p plugin.LogPage) error { pages = append(pages, p); return nil })
			if err != nil {
				t.Fatalf("EachLogPage: %v", err)
			}
			if len(pages) != 1 || len(pages[0].Records) != 2 || pages[0].Next != "nexttoken" {
				t.Fatalf("got %d pages, want 1 non-empty page of 2 with next (the empty page is not passed)", len(pages))
			}
			r0 := pages[0].Records[0]
			first := r0["userEmailAddress"]
			if first == nil {
				first = r0["senderAddress"]
			}
			if first != tt.wantFirst {
				t.Errorf("record 1: got %v, want %s", first, tt.wantFirst)
			}
			reqs := rec.Requests()
			if len(reqs) != 2 {
				t.Fatalf("got %d calls, want 2", len(reqs))
			}
			items := dataItems(&reqs[1])
			if len(items) != 1 {
				t.Fatalf("got data %v, want the filter on every page", items)
			}
			f := items[0]
			if f["from"] != "2024-11-16T00:00:00+0000" || f["to"] != "2024-11-18T00:00:00+0000" || f["oldestFirst"] != true {
				t.Errorf("got filter %v", f)
			}
			wantAll := map[plugin.LogKind]string{plugin.LogURL: "scanResult", plugin.LogAttachment: "result"}[tt.kind]
			for _, k := range []string{"scanResult", "result"} {
				if got, want := f[k], map[bool]any{true: "all", false: nil}[k == wantAll]; got != want {
					t.Errorf("%s: got %v, want %v", k, got, want)
				}
			}
			for _, k := range []string{"route", "routes"} {
				if !reflect.DeepEqual(f[k], tt.wantFilter[k]) {
					t.Errorf("%s: got %v, want %v", k, f[k], tt.wantFilter[k])
				}
			}
			if pageToken(&reqs[1]) != "nexttoken" || pageSizeOf(&reqs[1]) != 2 {
				t.Errorf("second page meta: token %q size %d", pageToken(&reqs[1]), pageSizeOf(&reqs[1]))
			}
		})
	}
}

func TestImpersonationRecordTypes(t *testing.T) {
	_, c := sampleServer(t, map[string]string{mimecast.PathImpersonationLogs: "ttp-impersonation-get-logs.json"})
	stop := errors.New("stop")
	err := c.EachLogPage(context.Background(), plugin.LogImpersonation, plugin.LogQuery{}, func(p plugin.LogPage) error {
		r := p.Records[0]
		if r["taggedMalicious"] != true || r["hits"] != float64(1) {
			t.Errorf("got taggedMalicious %v hits %#v", r["taggedMalicious"], r["hits"])
		}
		if ids, _ := r["identifiers"].([]any); len(ids) != 1 || ids[0] != "internal_user_name" {
			t.Errorf("got identifiers %v", r["identifiers"])
		}
		return stop
	})
	if err != stop {
		t.Errorf("got %v, want the callback's error", err)
	}
}

func TestEachLogPageUnknownKind(t *testing.T) {
	c, _ := newClient(t, "http://127.0.0.1:1", nil)
	err := c.EachLogPage(context.Background(), "nope", plugin.LogQuery{}, func(plugin.LogPage) error { return nil })
	if plugin.ErrorCode(err) != plugin.EINVALID {
		t.Errorf("got %v, want invalid", err)
	}
}

func TestRemoveBodyLimit(t *testing.T) {
	rec := &recorder{reply: memberEcho}
	srv := newServer(t, rec)
	c, _ := newClient(t, srv.URL, func(o *mimecast.Options) { o.BatchSize = 10; o.RemoveBodyLimit = 2048 })
	gid := strings.Repeat("g", 200) // Mimecast ids are long
	var emails []string
	for i := range 23 {
		emails = append(emails, fmt.Sprintf("someone.with.a.long.name%02d@example.com", i))
	}
	got, err := c.RemoveMembers(context.Background(), gid, emails)
	if err != nil {
		t.Fatalf("RemoveMembers: %v", err)
	}
	if len(got) != 23 {
		t.Fatalf("got %d results", len(got))
	}
	for i, r := range got {
		if r.Email != emails[i] || r.Status != plugin.Done {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	total := 0
	for _, r := range rec.Requests() {
		if len(r.RawBody) > 2048 {
			t.Errorf("body of %d bytes, want at most 2048", len(r.RawBody))
		}
		total += len(dataItems(&r))
	}
	if total != 23 || len(rec.Requests()) < 3 {
		t.Errorf("got %d items over %d calls", total, len(rec.Requests()))
	}
	// Adds are not limited.
	before := len(rec.Requests())
	if _, err := c.AddMembers(context.Background(), gid, emails[:10]); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Requests()) - before; n != 1 {
		t.Errorf("got %d add calls, want 1", n)
	}
}

// listCalls are the four paginated calls, each returning one record per
// page from a server that answers every page with two records.
var listCalls = []struct {
	name string
	run  func(c *mimecast.Client) (records int, err error)
}{
	{"grades", func(c *mimecast.Client) (int, error) {
		n := 0
		err := c.EachGradePage(context.Background(), 2, func(p []plugin.UserGrade) error { n += len(p); return nil })
		return n, err
	}},
	{"find groups", func(c *mimecast.Client) (int, error) {
		g, err := c.FindGroups(context.Background(), "")
		return len(g), err
	}},
	{"group members", func(c *mimecast.Client) (int, error) {
		m, err := c.GroupMembers(context.Background(), "grp")
		return len(m), err
	}},
	{"url logs", func(c *mimecast.Client) (int, error) {
		n := 0
		err := c.EachLogPage(context.Background(), plugin.LogURL, plugin.LogQuery{}, func(p plugin.LogPage) error { n += len(p.Records); return nil })
		return n, err
	}},
}

// anyPage answers every list endpoint with two records and the next token.
func anyPage(w http.ResponseWriter, r *sentRequest, next string) {
	var data string
	switch r.Path {
	case mimecast.PathSafeScoreDetails:
		data = `{"emailAddress":"a@x","risk":"A"},{"emailAddress":"b@x","risk":"B"}`
	case mimecast.PathFindGroups:
		data = `{"folders":[{"id":"g1","description":"One"},{"id":"g2","description":"Two"}]}`
	case mimecast.PathGetGroupMembers:
		data = `{"groupMembers":[{"emailAddress":"a@x"},{"emailAddress":"b@x"}]}`
	case mimecast.PathURLLogs:
		data = `{"clickLogs":[{"userEmailAddress":"a@x"},{"userEmailAddress":"b@x"}]}`
	}
	writeJSON(w, 200, []byte(`{"meta":{"status":200,"pagination":{"next":"`+next+`"}},"data":[`+data+`],"fail":[]}`))
}

func TestPaginationRepeatedTokenIsAnError(t *testing.T) {
	for _, lc := range listCalls {
		t.Run(lc.name, func(t *testing.T) {
			rec := &recorder{reply: func(n int, w http.ResponseWriter, r *sentRequest) {
				if n > 10 {
					t.Errorf("call %d: the client keeps following a repeated token", n)
					writeJSON(w, 200, []byte(`{"meta":{"status":200},"data":[],"fail":[]}`))
					return
				}
				next := "tok-A"
				if n >= 2 {
					next = pageToken(r) // from the third page on, the token sent comes back
				}
				if n == 1 {
					next = "tok-B"
				}
				anyPage(w, r, next)
			}}
			srv := newServer(t, rec)
			c, _ := newClient(t, srv.URL, nil)
			records, err := lc.run(c)
			if err == nil {
				t.Fatalf("got %d records and no error, want an error for the repeated token", records)
			}
			if code := plugin.ErrorCode(err); code != plugin.EUNAVAILABLE || !strings.Contains(err.Error(), "Mimecast returned the same page token twice") {
				t.Errorf("got %v (code %s), want unavailable: Mimecast returned the same page token twice", err, code)
			}
			if n := len(rec.Requests()); n != 3 {
				t.Errorf("got %d calls, want 3 (tokens \"\", tok-A, tok-B)", n)
			}
		})
	}
}

func TestPaginationMaxPagesIsAnError(t *testing.T) {
	for _, lc := range listCalls {
		t.Run(lc.name, func(t *testing.T) {
			rec := &recorder{reply: func(n int, w http.ResponseWriter, r *sentRequest) {
				anyPage(w, r, fmt.Sprintf("p%d", n+1))
			}}
			srv := newServer(t, rec)
			c, _ := newClient(t, srv.URL, func(o *mimecast.Options) { o.MaxPages = 4 })
			records, err := lc.run(c)
			if err == nil || plugin.ErrorCode(err) != plugin.EUNAVAILABLE || !strings.Contains(err.Error(), "gave up after 4 pages") {
				t.Errorf("got %d records, err %v; want unavailable: gave up after 4 pages", records, err)
			}
			if n := len(rec.Requests()); n != 4 {
				t.Errorf("got %d calls, want 4", n)
			}
		})
	}
}

func TestRemoveBodyLimitByDefault(t *testing.T) {
	gid := "eNo1jk0LgjAAhv_LzhrzI0uhgwh9WCCmFR27jLnhlpvbXNNC_PfNoPfy8B6eB54P6KpOKOLYAAnG4nYgvjSQWtEJZiwa5ZjfyOopyMGyFEzbjXRFNdTlyhE2hl6pCn0ck0bDafnHKQGAyoL5cbgZGMTmNjpmShOTzMWl0FLbsJhJN4m5X27M42aRN0Aj1XQpgbzFb5a1iQ6DtxaLftd4"
	emails := make([]string, 50)
	for i := range emails {
		emails[i] = fmt.Sprintf("a.rather.long.mailbox.name.for.testing.%02d@subsidiary.example-corporation.com", i)
	}
	for _, tt := range []struct {
		name      string
		limit     int
		wantCalls int // 0: more than one, each body at most 2048 bytes
	}{
		{"default 2048", 0, 0},
		{"turned off", -1, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{reply: memberEcho}
			srv := newServer(t, rec)
			c, _ := newClient(t, srv.URL, func(o *mimecast.Options) { o.BatchSize = 100; o.RemoveBodyLimit = tt.limit })
			got, err := c.RemoveMembers(context.Background(), gid, emails)
			if err != nil {
				t.Fatalf("RemoveMembers: %v", err)
			}
			for i, r := range got {
				if r.Email != emails[i] || r.Status != plugin.Done {
					t.Errorf("result %d: %+v", i, r)
				}
			}
			reqs := rec.Requests()
			total := 0
			for i, r := range reqs {
				if tt.wantCalls == 0 && len(r.RawBody) > mimecast.DefaultRemoveBodyLimit {
					t.Errorf("call %d: body of %d bytes, want at most %d", i, len(r.RawBody), mimecast.DefaultRemoveBodyLimit)
				}
				total += len(dataItems(&r))
			}
			if len(got) != 50 || total != 50 {
				t.Errorf("got %d results, %d items sent; want 50", len(got), total)
			}
			if tt.wantCalls == 0 && len(reqs) < 2 || tt.wantCalls > 0 && len(reqs) != tt.wantCalls {
				t.Errorf("got %d calls, want %v", len(reqs), map[bool]string{true: "several", false: fmt.Sprint(tt.wantCalls)}[tt.wantCalls == 0])
			}
		})
	}
}

// Directory lists page by at most 100 however large the grade pages are.
func TestDirectoryPageSizeCapped(t *testing.T) {
	rec := &recorder{reply: func(n int, w http.ResponseWriter, r *sentRequest) {
		writeJSON(w, 200, []byte(`{"meta":{"status":200},"data":[{"folders":[],"groupMembers":[]}],"fail":[]}`))
	}}
	srv := newServer(t, rec)
	c, _ := newClient(t, srv.URL, func(o *mimecast.Options) { o.PageSize = 500 })
	if _, err := c.FindGroups(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GroupMembers(context.Background(), "eNoGroup"); err != nil {
		t.Fatal(err)
	}
	for _, r := range rec.Requests() {
		if got := pageSizeOf(&r); got != mimecast.MaxDirectoryPageSize {
			t.Errorf("%s pageSize %d, want %d", r.Path, got, mimecast.MaxDirectoryPageSize)
		}
	}
	if len(rec.Requests()) != 2 {
		t.Errorf("got %d requests, want 2", len(rec.Requests()))
	}
}
