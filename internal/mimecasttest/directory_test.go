package mimecasttest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

type safeScore struct {
	EmailAddress, Name, Department, Risk, HumanError, Sentiment, Engagement, Knowledge, UserState string
}

func TestUsersGenerated(t *testing.T) {
	s := New(Options{Users: 3000, Seed: 7})
	users := s.Users()
	if len(users) != 3000 {
		t.Fatalf("got %d users, want 3000", len(users))
	}
	seen := map[string]bool{}
	grades := map[string]int{}
	mixed := 0
	for _, u := range users {
		low := strings.ToLower(u.Email)
		if seen[low] {
			t.Fatalf("duplicate address %s", u.Email)
		}
		seen[low] = true
		if low != u.Email {
			mixed++
		}
		if !strings.HasSuffix(low, "@example.com") || strings.Count(u.Email, ".") < 2 {
			t.Errorf("address %q is not first.last@example.com", u.Email)
		}
		grades[u.Risk]++
		for _, g := range []string{u.Risk, u.HumanError, u.Sentiment, u.Engagement, u.Knowledge} {
			if !strings.Contains("ABCDF", g) || len(g) != 1 {
				t.Fatalf("user %s has grade %q", u.Email, g)
			}
		}
		if u.UserState != "active" || u.Department == "" || u.Name == "" {
			t.Errorf("user %+v incomplete", u)
		}
	}
	for _, g := range []string{"A", "B", "C", "D", "F"} {
		if grades[g] == 0 {
			t.Errorf("no user with grade %s", g)
		}
	}
	if mixed == 0 {
		t.Error("no mixed-case address")
	}
	// Same seed, same tenant; all five grades even for five users.
	again := New(Options{Users: 3000, Seed: 7}).Users()
	if again[2999] != users[2999] {
		t.Errorf("not deterministic: %v vs %v", again[2999], users[2999])
	}
	five := New(Options{Users: 5}).Users()
	for i, g := range []string{"A", "B", "C", "D", "F"} {
		if five[i].Risk != g {
			t.Errorf("user %d grade %s, want %s", i, five[i].Risk, g)
		}
	}
}

func TestSafeScorePagination(t *testing.T) {
	tests := []struct {
		users, pageSize, wantSize int
	}{
		{users: 1234, pageSize: 100, wantSize: 100},
		{users: 1234, pageSize: 5000, wantSize: 500}, // clamped
		{users: 10, pageSize: 10, wantSize: 10},
		{users: 7, pageSize: 0, wantSize: 100}, // default
	}
	for _, tc := range tests {
		t.Run("", func(t *testing.T) {
			e := newEnv(t, Options{Users: tc.users})
			want := map[string]bool{}
			for _, u := range e.s.Users() {
				want[u.Email] = true
			}
			got := map[string]int{}
			token, pages := "", 0
			for {
				r := e.mustOK(PathSafeScoreDetails, body(tc.pageSize, token))
				pages++
				p := r.env.Meta.Pagination
				if p == nil || p.PageSize != tc.wantSize || p.TotalCount != tc.users {
					t.Fatalf("pagination %+v, want pageSize %d totalCount %d", p, tc.wantSize, tc.users)
				}
				for _, raw := range r.env.Data {
					u := decode[safeScore](t, raw)
					got[u.EmailAddress]++
				}
				if p.Next == nil {
					if len(r.env.Data) == 0 && tc.users > 0 {
						t.Error("last page is empty")
					}
					break
				}
				if *p.Next == "" || len(r.env.Data) != tc.wantSize {
					t.Fatalf("next %q with %d records", *p.Next, len(r.env.Data))
				}
				token = *p.Next
			}
			if len(got) != len(want) {
				t.Fatalf("walked %d distinct users, want %d", len(got), len(want))
			}
			for em, n := range got {
				if n != 1 || !want[em] {
					t.Errorf("user %s seen %d times (known %v)", em, n, want[em])
				}
			}
			if wantPages := (tc.users + tc.wantSize - 1) / tc.wantSize; pages != wantPages {
				t.Errorf("pages = %d, want %d", pages, wantPages)
			}
		})
	}
}

func TestSafeScoreFieldsAndFilters(t *testing.T) {
	e := newEnv(t, Options{Users: 200})
	r := e.mustOK(PathSafeScoreDetails, map[string]any{}) // no data, no meta
	var m map[string]any
	if err := json.Unmarshal(r.env.Data[0], &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"emailAddress", "name", "department", "risk", "humanError", "sentiment", "engagement", "knowledge", "userState"} {
		if _, ok := m[f]; !ok {
			t.Errorf("record lacks %q: %v", f, m)
		}
	}
	r = e.mustOK(PathSafeScoreDetails, body(500, "", map[string]any{"filterBy": []any{map[string]any{"fieldName": "type", "value": "F"}}}))
	wantF := 0
	for _, u := range e.s.Users() {
		if u.Risk == "F" {
			wantF++
		}
	}
	if len(r.env.Data) != wantF || r.env.Meta.Pagination.TotalCount != wantF {
		t.Errorf("filter F: %d records total %d, want %d", len(r.env.Data), r.env.Meta.Pagination.TotalCount, wantF)
	}
	t.Run("SetGrade serves unknown grades", func(t *testing.T) {
		u := e.s.Users()[3]
		if !e.s.SetGrade(strings.ToUpper(u.Email), "E") {
			t.Fatal("SetGrade: user not found")
		}
		r := e.mustOK(PathSafeScoreDetails, body(500, "", map[string]any{"searchBy": []any{map[string]any{"fieldName": "email", "value": u.Email}}}))
		if len(r.env.Data) != 1 || decode[safeScore](t, r.env.Data[0]).Risk != "E" {
			t.Errorf("got %s, want the user with risk E", r.raw)
		}
	})
	t.Run("summary", func(t *testing.T) {
		r := e.mustOK(PathSafeScoreSummary, nil)
		if !strings.Contains(string(r.env.Data[0]), `"scoreCounts"`) {
			t.Errorf("summary = %s", r.raw)
		}
	})
}

func TestGetAccount(t *testing.T) {
	for _, omit := range []bool{false, true} {
		e := newEnv(t, Options{Users: 12, NoAwarenessPackage: omit})
		r := e.mustOK(PathGetAccount, map[string]any{"data": []any{}})
		acct := decode[accountReply](t, r.env.Data[0])
		has := false
		for _, p := range acct.Packages {
			has = has || p == "Awareness Training [1078]"
		}
		if has == omit || acct.UserCount != 12 || acct.AccountCode == "" {
			t.Errorf("omit=%v: account %+v", omit, acct)
		}
	}
}

type folder struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Source      string `json:"source"`
	ParentID    string `json:"parentId"`
	UserCount   int    `json:"userCount"`
	FolderCount int    `json:"folderCount"`
}

func TestFindAndCreateGroups(t *testing.T) {
	e := newEnv(t, Options{Users: 400, Groups: 8})
	type findData struct {
		Folders []folder `json:"folders"`
		Source  string   `json:"source"`
		Query   string   `json:"query"`
	}
	// No data at all lists everything, paged.
	var all []folder
	token := ""
	for {
		r := e.mustOK(PathFindGroups, map[string]any{"meta": page(3, token)})
		d := decode[findData](t, r.env.Data[0])
		all = append(all, d.Folders...)
		if r.env.Meta.Pagination.TotalCount != 8 {
			t.Errorf("totalCount = %d, want 8", r.env.Meta.Pagination.TotalCount)
		}
		if r.env.Meta.Pagination.Next == nil {
			break
		}
		token = *r.env.Meta.Pagination.Next
	}
	if len(all) != 8 {
		t.Fatalf("listed %d groups, want 8", len(all))
	}
	fin, ok := e.s.FindGroupByName("Finance")
	if !ok {
		t.Fatal("no Finance group")
	}
	if got := len(e.s.GroupMembers(fin.ID)); got == 0 || got != fin.UserCount {
		t.Errorf("Finance has %d members, UserCount %d", got, fin.UserCount)
	}
	for _, f := range all {
		if !strings.HasPrefix(f.ID, "eNo") || f.Source != "cloud" || f.ParentID == "" {
			t.Errorf("folder %+v not shaped like Mimecast's", f)
		}
	}
	t.Run("query filter", func(t *testing.T) {
		r := e.mustOK(PathFindGroups, body(100, "", map[string]any{"query": "fin"}))
		d := decode[findData](t, r.env.Data[0])
		if len(d.Folders) != 1 || d.Folders[0].Description != "Finance" || d.Query != "fin" || d.Source != "cloud" {
			t.Errorf("query fin: %s", r.raw)
		}
	})
	t.Run("blank query is a validation error", func(t *testing.T) {
		r := e.post(PathFindGroups, body(100, "", map[string]any{"query": ""}))
		if r.status != 200 || len(r.env.Fail) != 1 || r.env.Fail[0].Errors[0].Code != "err_validation_blank" || r.env.Fail[0].Errors[0].Field != "query" {
			t.Errorf("blank query: %s", r.raw)
		}
		if _, ok := r.env.Fail[0].Key["query"]; !ok {
			t.Errorf("fail key does not echo the item: %v", r.env.Fail[0].Key)
		}
	})
	t.Run("create", func(t *testing.T) {
		r := e.mustOK(PathCreateGroup, map[string]any{"data": []any{map[string]any{"description": "A_Cloud_Exchange"}}})
		f := decode[folder](t, r.env.Data[0])
		if f.Description != "A_Cloud_Exchange" || f.UserCount != 0 || f.ID == "" {
			t.Errorf("created %+v", f)
		}
		if g, ok := e.s.FindGroupByName("A_Cloud_Exchange"); !ok || g.ID != f.ID {
			t.Errorf("FindGroupByName = %+v %v, want id %s", g, ok, f.ID)
		}
		r = e.post(PathCreateGroup, map[string]any{"data": []any{map[string]any{"description": " "}, map[string]any{"description": "x", "parentId": "eNoNope"}}})
		if got := r.failCodes(); len(got) != 2 || got[0] != "err_validation_blank" || got[1] != "err_folder_not_found" {
			t.Errorf("bad creates: codes %v", got)
		}
	})
}

type accountReply struct {
	AccountCode string   `json:"accountCode"`
	UserCount   int      `json:"userCount"`
	Packages    []string `json:"packages"`
}

type membersReply struct {
	GroupMembers []struct {
		EmailAddress string `json:"emailAddress"`
		Domain       string `json:"domain"`
		Internal     bool   `json:"internal"`
		Type         string `json:"type"`
	} `json:"groupMembers"`
}

type memberChangeReply struct {
	ID           string `json:"id"`
	FolderID     string `json:"folderId"`
	EmailAddress string `json:"emailAddress"`
	Internal     bool   `json:"internal"`
}

func TestGroupMembership(t *testing.T) {
	e := newEnv(t, Options{Users: 50})
	g, _ := e.s.FindGroupByName("Risky Users - Remediation")
	users := e.s.Users()
	u1, u2, u3 := users[1].Email, users[2].Email, users[3].Email
	mixed := ""
	for _, u := range users {
		if u.Email != strings.ToLower(u.Email) {
			mixed = u.Email
		}
	}
	if mixed == "" {
		t.Fatal("need a mixed-case user")
	}
	item := func(id, email string) map[string]any { return map[string]any{"id": id, "emailAddress": email} }

	r := e.mustOK(PathAddGroupMember, map[string]any{"data": []any{item(g.ID, u1), item(g.ID, strings.ToUpper(u2)), item(g.ID, mixed)}})
	if len(r.env.Data) != 3 {
		t.Fatalf("add: %d data items, want 3", len(r.env.Data))
	}
	c := decode[memberChangeReply](t, r.env.Data[1])
	if c.FolderID != g.ID || c.EmailAddress != strings.ToLower(u2) || !c.Internal || c.ID == "" {
		t.Errorf("add reply item %+v", c)
	}

	t.Run("partial add", func(t *testing.T) {
		r := e.post(PathAddGroupMember, map[string]any{"data": []any{
			item(g.ID, u1),                     // already a member
			item(g.ID, "new.hire@example.com"), // not in the directory
			item(g.ID, u3),                     // fine
			item("eNoUnknownGroup", u3),        // unknown group
			map[string]any{"id": g.ID},         // no address
			item(g.ID, "not-an-address"),       // invalid
		}})
		if r.status != 200 || r.env.Meta.Status != 200 {
			t.Fatalf("status %d", r.status)
		}
		want := []string{"err_folder_group_member_already_exists", "err_xdk_operation_forbidden_for_address", "err_folder_not_found", "err_validation_blank", "err_validation_invalid_email_address"}
		if got := r.failCodes(); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("fail codes %v, want %v", got, want)
		}
		if len(r.env.Data) != 1 {
			t.Errorf("data has %d items, want 1", len(r.env.Data))
		}
		if k := r.env.Fail[1].Key; k["emailAddress"] != "new.hire@example.com" || k["id"] != g.ID {
			t.Errorf("fail key = %v, want the request item echoed", k)
		}
		if m := r.env.Fail[1].Errors[0].Message; m != "0003 Forbidden To Perform Operation For Address" {
			t.Errorf("message %q", m)
		}
	})
	t.Run("members listed", func(t *testing.T) {
		want := []string{strings.ToLower(u1), strings.ToLower(u2), strings.ToLower(mixed), strings.ToLower(u3)}
		if got := e.s.GroupMembers(g.ID); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("GroupMembers = %v, want %v", got, want)
		}
		var got []string
		token := ""
		for {
			r := e.mustOK(PathGetGroupMembers, body(3, token, map[string]any{"id": g.ID}))
			d := decode[membersReply](t, r.env.Data[0])
			for _, m := range d.GroupMembers {
				if m.Domain != "example.com" || !m.Internal || m.Type != "created_manually" {
					t.Errorf("member %+v", m)
				}
				got = append(got, m.EmailAddress)
			}
			if r.env.Meta.Pagination.Next == nil {
				break
			}
			token = *r.env.Meta.Pagination.Next
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("get-group-members = %v, want %v", got, want)
		}
	})
	t.Run("remove", func(t *testing.T) {
		r := e.post(PathRemoveGroupMember, map[string]any{"data": []any{item(g.ID, strings.ToUpper(u1)), item(g.ID, u1), item(g.ID, "zed.nobody@example.com")}})
		if got := r.failCodes(); len(got) != 2 || got[0] != "err_folder_email_address_not_found" || got[1] != "err_folder_email_address_not_found" {
			t.Errorf("fail codes %v", got)
		}
		if len(r.env.Data) != 1 || decode[memberChangeReply](t, r.env.Data[0]).EmailAddress != strings.ToLower(u1) {
			t.Errorf("remove data %s", r.raw)
		}
		if r.env.Fail[0].Errors[0].Message != "Error email address not found" {
			t.Errorf("message %q", r.env.Fail[0].Errors[0].Message)
		}
		for _, m := range e.s.GroupMembers(g.ID) {
			if m == strings.ToLower(u1) {
				t.Error("u1 still a member")
			}
		}
	})
	t.Run("unknown group lists nothing", func(t *testing.T) {
		r := e.post(PathGetGroupMembers, body(10, "", map[string]any{"id": "eNoMissing"}))
		if got := r.failCodes(); len(got) != 1 || got[0] != "err_folder_not_found" {
			t.Errorf("codes %v", got)
		}
	})
}

func TestRoutingAndBody(t *testing.T) {
	e := newEnv(t, Options{Users: 5})
	t.Run("unknown path 404", func(t *testing.T) {
		if r := e.post("/api/nope/nothing", nil); r.status != 404 || r.env.Meta.Status != 404 {
			t.Errorf("status %d", r.status)
		}
	})
	t.Run("GET is 405", func(t *testing.T) {
		r := e.send(e.request(http.MethodGet, PathGetAccount, nil, e.defaultSign()))
		if r.status != 405 || r.header.Get("Allow") != "POST" {
			t.Errorf("status %d allow %q", r.status, r.header.Get("Allow"))
		}
	})
	t.Run("python-literal body", func(t *testing.T) {
		r := e.mustOK(PathFindGroups, `{'meta': {'pagination': {'pageSize': 2}}, 'data': [{'query': 'Fin'}]}`)
		if !strings.Contains(string(r.raw), "Finance") {
			t.Errorf("got %s", r.raw)
		}
	})
	t.Run("data as one object", func(t *testing.T) {
		e.mustOK(PathFindGroups, `{"data": {"query": "Fin"}}`)
	})
	t.Run("garbage body 400", func(t *testing.T) {
		if r := e.post(PathFindGroups, `not json`); r.status != 400 {
			t.Errorf("status %d", r.status)
		}
	})
	t.Run("bad page token", func(t *testing.T) {
		r := e.post(PathSafeScoreDetails, body(10, "eNo!!!"))
		if got := r.failCodes(); len(got) != 1 || r.env.Fail[0].Errors[0].Field != "pageToken" {
			t.Errorf("codes %v", got)
		}
	})
}
