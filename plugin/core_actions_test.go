package plugin_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"mimecast-ure/internal/mimecasttest"
	"mimecast-ure/plugin"
)

func TestActionsList(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 5})
	got := e.svc.Actions()
	want := []plugin.ActionOption{{Label: "Add to Group", Value: "add"}, {Label: "Remove from Group", Value: "remove"}, {Label: "No Action", Value: "generate"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Actions() = %v, want %v", got, want)
	}
}

func TestActionFieldsAndValidation(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 5, Groups: 3})
	ctx := context.Background()
	groups := e.emu.Groups()

	add, err := e.svc.ActionFields(ctx, "acme", "add")
	if err != nil {
		t.Fatal(err)
	}
	if len(add) != 2 || add[0].Key != "group" || add[0].Type != "choice" || add[1].Key != "name" || add[1].Type != "text" {
		t.Fatalf("add fields = %+v", add)
	}
	ch := add[0].Choices
	if len(ch) != len(groups)+1 || ch[0] != (plugin.FieldChoice{Key: "Create New Group", Value: "create"}) {
		t.Fatalf("add choices = %+v", ch)
	}
	ids := map[string]string{}
	for _, c := range ch[1:] {
		ids[c.Value] = c.Key
	}
	for _, g := range groups {
		if ids[g.ID] != g.Name {
			t.Errorf("group %s (%s) missing from choices", g.ID, g.Name)
		}
	}
	rm, err := e.svc.ActionFields(ctx, "acme", "remove")
	if err != nil {
		t.Fatal(err)
	}
	if len(rm) != 1 || len(rm[0].Choices) != len(groups) || rm[0].Choices[0].Value == "create" {
		t.Errorf("remove fields = %+v", rm)
	}
	if gen, err := e.svc.ActionFields(ctx, "acme", "generate"); err != nil || len(gen) != 0 {
		t.Errorf("generate fields = %+v, %v", gen, err)
	}
	_, err = e.svc.ActionFields(ctx, "acme", "delete")
	mustCode(t, err, plugin.EINVALID)
	_, err = e.svc.ActionFields(ctx, "nope", "add")
	mustCode(t, err, plugin.ENOTFOUND)

	long := strings.Repeat("x", 256)
	cases := []struct {
		name string
		a    plugin.Action
		ok   bool
	}{
		{"generate", plugin.Action{Value: "generate"}, true},
		{"add existing", plugin.Action{Value: "add", Parameters: map[string]string{"group": groups[0].ID}}, true},
		{"remove existing", plugin.Action{Value: "remove", Parameters: map[string]string{"group": groups[1].ID}}, true},
		{"add create with name", plugin.Action{Value: "add", Parameters: map[string]string{"group": "create", "name": "Risky"}}, true},
		{"unknown value", plugin.Action{Value: "delete"}, false},
		{"add without group", plugin.Action{Value: "add"}, false},
		{"create without name", plugin.Action{Value: "add", Parameters: map[string]string{"group": "create", "name": "  "}}, false},
		{"create with long name", plugin.Action{Value: "add", Parameters: map[string]string{"group": "create", "name": long}}, false},
		{"remove with create", plugin.Action{Value: "remove", Parameters: map[string]string{"group": "create", "name": "x"}}, false},
		{"group that does not exist", plugin.Action{Value: "add", Parameters: map[string]string{"group": "eNoNOPE"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.svc.ValidateAction(ctx, "acme", tc.a)
			if err != nil {
				t.Fatal(err)
			}
			if got.Success != tc.ok || got.Message == "" {
				t.Errorf("got %+v, want success %v with a message", got, tc.ok)
			}
		})
	}
	// Forms and validations share one group list.
	if got := e.emu.Calls(mimecasttest.PathFindGroups); got != 1 {
		t.Errorf("find-groups calls = %d, want 1 (cached)", got)
	}
}

// actionEnv adds n managed users to the emulator's directory and returns
// their addresses.
func tenantUsers(e *coreEnv, n int) []string {
	out := make([]string, 0, n)
	for _, u := range e.emu.Users()[:n] {
		out = append(out, u.Email)
	}
	return out
}

func resultsByStatus(res []plugin.ActionResult) map[plugin.Outcome]int {
	m := map[plugin.Outcome]int{}
	for _, r := range res {
		m[r.Status]++
	}
	return m
}

func TestExecuteAddCreatesGroupOnceAndBatches(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 250})
	ctx := context.Background()
	users := tenantUsers(e, 250)
	e.emu.ResetStats()
	a := plugin.Action{Label: "Add to Group", Value: "add", Parameters: map[string]string{"group": "create", "name": "Risky Users"}}
	res, err := e.svc.ExecuteAction(ctx, "op", "acme", "", users, a)
	if err != nil {
		t.Fatal(err)
	}
	if got := resultsByStatus(res); got[plugin.Done] != 250 {
		t.Fatalf("outcomes = %v, want 250 done", got)
	}
	stats := e.emu.Stats()
	if got, want := stats[mimecasttest.PathAddGroupMember], 25; got != want {
		t.Errorf("add-group-member calls = %d, want %d (250 users / batch 10)", got, want)
	}
	if stats[mimecasttest.PathFindGroups] != 1 || stats[mimecasttest.PathCreateGroup] != 1 {
		t.Errorf("find-groups %d, create-group %d; want 1 and 1", stats[mimecasttest.PathFindGroups], stats[mimecasttest.PathCreateGroup])
	}
	if stats[mimecasttest.PathSafeScoreDetails] != 0 {
		t.Errorf("an action downloaded the user list")
	}
	g, ok := e.emu.FindGroupByName("Risky Users")
	if !ok || len(e.emu.GroupMembers(g.ID)) != 250 {
		t.Fatalf("group %v members %d", ok, len(e.emu.GroupMembers(g.ID)))
	}

	// Again, by another case of the name: found, not created; all skipped.
	a.Parameters["name"] = "risky users"
	res, err = e.svc.ExecuteAction(ctx, "op", "acme", "", users[:30], a)
	if err != nil {
		t.Fatal(err)
	}
	if got := resultsByStatus(res); got[plugin.Skipped] != 30 {
		t.Errorf("outcomes = %v, want 30 skipped (already members)", got)
	}
	if got := e.emu.Calls(mimecasttest.PathCreateGroup); got != 1 {
		t.Errorf("create-group calls = %d, want still 1", got)
	}
	for _, r := range res {
		if r.Message == "" {
			t.Errorf("skip without a reason: %+v", r)
		}
	}
}

func TestExecuteConcurrentCreateMakesOneGroup(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 40})
	// A second configuration of the same tenant creates concurrently too.
	e.create("acme-2")
	users := tenantUsers(e, 40)
	a := plugin.Action{Value: "add", Parameters: map[string]string{"group": "create", "name": "Same Name"}}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			part := users[i*5 : i*5+5]
			name := "acme"
			if i%2 == 1 {
				name = "acme-2"
			}
			if _, err := e.svc.ExecuteAction(context.Background(), "op", name, "", part, a); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	n := 0
	var id string
	for _, g := range e.emu.Groups() {
		if strings.EqualFold(g.Name, "Same Name") {
			n++
			id = g.ID
		}
	}
	if n != 1 {
		t.Fatalf("groups named Same Name = %d, want 1", n)
	}
	if got := len(e.emu.GroupMembers(id)); got != 40 {
		t.Errorf("members = %d, want 40", got)
	}
}

func TestExecuteOutcomes(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 10, Groups: 2})
	ctx := context.Background()
	users := tenantUsers(e, 4)
	g := e.emu.Groups()[0]
	e.emu.AddGroupMember(g.ID, users[0])
	e.emu.ResetStats()

	uids := []string{
		strings.ToUpper(users[0]), // already a member, any case
		users[1],
		"stranger@unmanaged.example", // not in the directory
		"not-an-address",
		users[1], // duplicate: one action, two results
	}
	res, err := e.svc.ExecuteAction(ctx, "op", "acme", "", uids, plugin.Action{Value: "add", Parameters: map[string]string{"group": g.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(uids) {
		t.Fatalf("results = %d, want %d", len(res), len(uids))
	}
	want := []plugin.Outcome{plugin.Skipped, plugin.Done, plugin.Failed, plugin.Failed, plugin.Done}
	for i, r := range res {
		if r.UID != uids[i] || r.Status != want[i] || r.Message == "" {
			t.Errorf("result %d = %+v, want uid %s status %s with a message", i, r, uids[i], want[i])
		}
	}
	if res[3].Message != plugin.MsgInvalidEmail {
		t.Errorf("invalid address message = %q", res[3].Message)
	}
	t.Logf("unmanaged: %s; already a member: %s", res[2].Message, res[0].Message)
	if got := e.emu.Calls(mimecasttest.PathAddGroupMember); got != 1 {
		t.Errorf("add-group-member calls = %d, want 1", got)
	}

	// Remove: a member is removed, a non-member is skipped.
	res, err = e.svc.ExecuteAction(ctx, "op", "acme", "", []string{users[1], users[2]}, plugin.Action{Value: "remove", Parameters: map[string]string{"group": g.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != plugin.Done || res[1].Status != plugin.Skipped || res[1].Message == "" {
		t.Errorf("remove results = %+v", res)
	}

	// generate touches nothing.
	e.emu.ResetStats()
	res, err = e.svc.ExecuteAction(ctx, "op", "acme", "", users, plugin.Action{Value: "generate"})
	if err != nil {
		t.Fatal(err)
	}
	if got := resultsByStatus(res); got[plugin.Done] != len(users) {
		t.Errorf("generate outcomes = %v", got)
	}
	if got := e.emu.Stats()["total"]; got != 0 {
		t.Errorf("generate made %d Mimecast calls", got)
	}

	// Bad actions are refused before anything happens.
	for _, a := range []plugin.Action{
		{Value: "explode"},
		{Value: "remove", Parameters: map[string]string{"group": "create", "name": "x"}},
		{Value: "add", Parameters: map[string]string{"group": "create"}},
		{Value: "add"},
	} {
		_, err := e.svc.ExecuteAction(ctx, "op", "acme", "", users, a)
		mustCode(t, err, plugin.EINVALID)
	}
	_, err = e.svc.ExecuteAction(ctx, "op", "nope", "", users, plugin.Action{Value: "generate"})
	mustCode(t, err, plugin.ENOTFOUND)

	// Every user acted on is audited.
	entries, err := e.svc.Audit(ctx, plugin.AuditFilter{Action: "action.add", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		t.Errorf("action.add audit entries = %d, want 4 (one per distinct user)", len(entries))
	}
	for _, en := range entries {
		if en.Actor != "op" || en.Detail["group"] != g.ID || en.Outcome == "" {
			t.Errorf("audit entry %+v", en)
		}
	}
}

func TestExecuteIdempotency(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 20, Groups: 1})
	ctx := context.Background()
	users := tenantUsers(e, 20)
	g := e.emu.Groups()[0]
	a := plugin.Action{Value: "add", Parameters: map[string]string{"group": g.ID}}

	first, err := e.svc.ExecuteAction(ctx, "op", "acme", "key-1", users, a)
	if err != nil {
		t.Fatal(err)
	}
	e.emu.ResetStats()
	again, err := e.svc.ExecuteAction(ctx, "op", "acme", "key-1", users, a)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(first) != fmt.Sprint(again) {
		t.Errorf("repeat answered %v, want the first answer %v", again, first)
	}
	if got := e.emu.Stats()["total"]; got != 0 {
		t.Errorf("repeat made %d Mimecast calls, want 0", got)
	}
	// After a restart, too.
	if _, err := e.newService().ExecuteAction(ctx, "op", "acme", "key-1", users, a); err != nil || e.emu.Stats()["total"] != 0 {
		t.Errorf("repeat after restart: %v, %d calls", err, e.emu.Stats()["total"])
	}
	// The same key with another request conflicts.
	_, err = e.svc.ExecuteAction(ctx, "op", "acme", "key-1", users[:3], a)
	mustCode(t, err, plugin.ECONFLICT)

	// Concurrent calls with one key act once.
	e.emu.ResetStats()
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.svc.ExecuteAction(ctx, "op", "acme", "key-2", users, plugin.Action{Value: "remove", Parameters: map[string]string{"group": g.ID}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := e.emu.Calls(mimecasttest.PathRemoveGroupMember); got != 2 {
		t.Errorf("remove-group-member calls = %d, want 2 (one execution of 20 users)", got)
	}
	// Keys are scoped to the configuration.
	e.create("other")
	if _, err := e.svc.ExecuteAction(ctx, "op", "other", "key-1", users[:3], a); err != nil {
		t.Errorf("same key on another configuration: %v", err)
	}
	// And to the caller: another token's key-1 is its own, and acts.
	e.emu.ResetStats()
	if _, err := e.svc.ExecuteAction(ctx, "op2", "acme", "key-1", users[:3], a); err != nil {
		t.Errorf("same key from another caller: %v", err)
	}
	if got := e.emu.Calls(mimecasttest.PathAddGroupMember); got != 1 {
		t.Errorf("another caller's key-1 made %d add calls, want 1", got)
	}
}
