package actions_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mimecast-ure/actions"
	"mimecast-ure/internal/mimecasttest"
	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
)

// newTenant starts the emulator and returns it with a client for it.
func newTenant(t *testing.T, o mimecasttest.Options) (*mimecasttest.Server, plugin.Mimecast) {
	t.Helper()
	emu := mimecasttest.New(o)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	mc, err := mimecast.New(mimecast.Options{
		BaseURL: srv.URL, Auth: plugin.AuthLegacy,
		AppID: mimecasttest.DefaultAppID, AppKey: mimecasttest.DefaultAppKey,
		AccessKey: mimecasttest.DefaultAccessKey, SecretKey: mimecasttest.DefaultSecretKey,
		MaxAttempts: 2,
		Sleep:       func(ctx context.Context, d time.Duration) error { return ctx.Err() },
		Jitter:      func(time.Duration) time.Duration { return 0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	return emu, mc
}

func emails(emu *mimecasttest.Server, n int) []string {
	var out []string
	for _, u := range emu.Users()[:n] {
		out = append(out, u.Email)
	}
	return out
}

func count(res []plugin.ActionResult) map[plugin.Outcome]int {
	m := map[plugin.Outcome]int{}
	for _, r := range res {
		m[r.Status]++
	}
	return m
}

func TestExecuteAddBatches(t *testing.T) {
	emu, mc := newTenant(t, mimecasttest.Options{Users: 95})
	ex := actions.New(actions.Options{Concurrency: 3, Logger: zerolog.Nop()})
	users := emails(emu, 95)
	res, err := ex.Execute(context.Background(), plugin.ActionRequest{
		Configuration: "acme", Mimecast: mc, Users: users, BatchSize: 10,
		Action: plugin.Action{Value: plugin.ActionAdd, Parameters: map[string]string{"group": "create", "name": "Risky"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 95 {
		t.Fatalf("results = %d", len(res))
	}
	for i, r := range res {
		if r.UID != users[i] || r.Status != plugin.Done {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	st := emu.Stats()
	if st[mimecasttest.PathAddGroupMember] != 10 || st[mimecasttest.PathFindGroups] != 1 || st[mimecasttest.PathCreateGroup] != 1 {
		t.Errorf("calls: add %d find %d create %d; want 10, 1, 1", st[mimecasttest.PathAddGroupMember], st[mimecasttest.PathFindGroups], st[mimecasttest.PathCreateGroup])
	}
}

func TestExecuteCreateOnceUnderConcurrency(t *testing.T) {
	emu, mc := newTenant(t, mimecasttest.Options{Users: 20})
	emu.SetFaults(mimecasttest.Faults{Endpoint: mimecasttest.PathFindGroups, Latency: 10 * time.Millisecond})
	ex := actions.New(actions.Options{Logger: zerolog.Nop()})
	users := emails(emu, 20)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := ex.Execute(context.Background(), plugin.ActionRequest{
				Configuration: "acme", Mimecast: mc, Users: users[i*2 : i*2+2], BatchSize: 10,
				Action: plugin.Action{Value: plugin.ActionAdd, Parameters: map[string]string{"group": "create", "name": "Once"}},
			})
			if err != nil || count(res)[plugin.Done] != 2 {
				t.Errorf("%v %v", res, err)
			}
		}()
	}
	wg.Wait()
	if got := emu.Calls(mimecasttest.PathCreateGroup); got != 1 {
		t.Errorf("create-group calls = %d, want 1", got)
	}
}

func TestExecuteOutcomesAndReasons(t *testing.T) {
	emu, mc := newTenant(t, mimecasttest.Options{Users: 5, Groups: 1})
	g := emu.Groups()[0]
	users := emails(emu, 3)
	emu.AddGroupMember(g.ID, users[0])
	ex := actions.New(actions.Options{Logger: zerolog.Nop()})
	ctx := context.Background()

	res, err := ex.Execute(ctx, plugin.ActionRequest{Configuration: "acme", Mimecast: mc, BatchSize: 10,
		Users:  []string{users[0], users[1], "ghost@elsewhere.example"},
		Action: plugin.Action{Value: plugin.ActionAdd, Parameters: map[string]string{"group": g.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != plugin.Skipped || res[1].Status != plugin.Done || res[2].Status != plugin.Failed {
		t.Errorf("add results %+v", res)
	}
	for _, r := range res {
		if r.Message == "" {
			t.Errorf("no message: %+v", r)
		}
	}
	if emu.Calls(mimecasttest.PathFindGroups) != 0 {
		t.Errorf("a group id needed a lookup")
	}

	res, err = ex.Execute(ctx, plugin.ActionRequest{Configuration: "acme", Mimecast: mc, BatchSize: 10,
		Users:  []string{users[1], users[2]},
		Action: plugin.Action{Value: plugin.ActionRemove, Parameters: map[string]string{"group": g.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != plugin.Done || res[1].Status != plugin.Skipped {
		t.Errorf("remove results %+v", res)
	}
}

func TestExecuteBatchErrorIsolated(t *testing.T) {
	emu, mc := newTenant(t, mimecasttest.Options{Users: 30, Groups: 1})
	g := emu.Groups()[0]
	emu.SetFaults(mimecasttest.Faults{Endpoint: mimecasttest.PathAddGroupMember, FailNext: 2, ErrorStatus: 500})
	ex := actions.New(actions.Options{Concurrency: 1, Logger: zerolog.Nop()})
	res, err := ex.Execute(context.Background(), plugin.ActionRequest{Configuration: "acme", Mimecast: mc, BatchSize: 10,
		Users:  emails(emu, 30),
		Action: plugin.Action{Value: plugin.ActionAdd, Parameters: map[string]string{"group": g.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	if c := count(res); c[plugin.Failed] != 10 || c[plugin.Done]+c[plugin.Skipped] != 20 {
		t.Errorf("outcomes %v, want 10 failed and 20 done or skipped", c)
	}
	for i, r := range res {
		if (i < 10) != (r.Status == plugin.Failed) {
			t.Errorf("result %d = %+v: only the first batch should fail", i, r)
		}
	}
	if res[0].Message == "" || res[0].Message == "internal error" || strings.Contains(res[0].Message, mimecasttest.DefaultAccessKey) {
		t.Errorf("batch failure message %q", res[0].Message)
	}
}

func TestExecuteCreateFailureFailsEveryUser(t *testing.T) {
	emu, mc := newTenant(t, mimecasttest.Options{Users: 5})
	emu.SetFaults(mimecasttest.Faults{Endpoint: mimecasttest.PathCreateGroup, FailNext: 5, ErrorStatus: 503})
	ex := actions.New(actions.Options{Logger: zerolog.Nop()})
	res, err := ex.Execute(context.Background(), plugin.ActionRequest{Configuration: "acme", Mimecast: mc, BatchSize: 10,
		Users:  emails(emu, 5),
		Action: plugin.Action{Value: plugin.ActionAdd, Parameters: map[string]string{"group": "create", "name": "X"}}})
	if err != nil {
		t.Fatal(err)
	}
	if c := count(res); c[plugin.Failed] != 5 || !strings.Contains(res[0].Message, "could not find or create the group") {
		t.Errorf("results %+v", res)
	}
	if emu.Calls(mimecasttest.PathAddGroupMember) != 0 {
		t.Errorf("members added without a group")
	}
}

func TestExecuteGenerateAndInvalid(t *testing.T) {
	ex := actions.New(actions.Options{Logger: zerolog.Nop()})
	res, err := ex.Execute(context.Background(), plugin.ActionRequest{Users: []string{"a@x.com", "b@x.com"}, Action: plugin.Action{Value: plugin.ActionGenerate}})
	if err != nil || len(res) != 2 || res[1].Status != plugin.Done || res[1].Message != actions.MsgNoAction {
		t.Errorf("generate: %+v, %v", res, err)
	}
	for _, a := range []plugin.Action{
		{Value: "nope"},
		{Value: plugin.ActionAdd},
		{Value: plugin.ActionRemove, Parameters: map[string]string{"group": "create"}},
	} {
		if _, err := ex.Execute(context.Background(), plugin.ActionRequest{Users: []string{"a@x.com"}, Action: a}); plugin.ErrorCode(err) != plugin.EINVALID {
			t.Errorf("%+v: err %v, want invalid", a, err)
		}
	}
}

// With "create", an existing group of that name is reused: a cloud group
// before an LDAP-synced one, an exact-case name before another case.
func TestExecuteCreatePrefersCloudExactGroup(t *testing.T) {
	emu, mc := newTenant(t, mimecasttest.Options{Users: 4, Groups: 1})
	ldap := emu.CreateLDAPGroup("Risky users")
	otherCase := emu.CreateGroup("RISKY USERS")
	exact := emu.CreateGroup("Risky users")
	ex := actions.New(actions.Options{Logger: zerolog.Nop()})
	users := emails(emu, 4)
	res, err := ex.Execute(context.Background(), plugin.ActionRequest{
		Configuration: "acme", Mimecast: mc, Users: users, BatchSize: 10,
		Action: plugin.Action{Value: plugin.ActionAdd, Parameters: map[string]string{"group": "create", "name": "Risky users"}},
	})
	if err != nil || count(res)[plugin.Done] != 4 {
		t.Fatalf("%v %v", res, err)
	}
	if got := len(emu.GroupMembers(exact.ID)); got != 4 {
		t.Errorf("exact cloud group has %d members, want 4", got)
	}
	if n := len(emu.GroupMembers(ldap.ID)) + len(emu.GroupMembers(otherCase.ID)); n != 0 {
		t.Errorf("the LDAP or other-case group got %d members, want 0", n)
	}
	if got := emu.Calls(mimecasttest.PathCreateGroup); got != 0 {
		t.Errorf("create-group calls = %d, want 0", got)
	}
}
