package plugin_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mimecast-ure/internal/mimecasttest"
	"mimecast-ure/internal/oktatest"
	"mimecast-ure/plugin"
)

// ctlClock is a settable clock for the controls' retry delays.
type ctlClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *ctlClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *ctlClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// withClock makes e's service (and the ones it builds later) read clk.
func (e *ctlEnv) withClock(t *testing.T) *ctlClock {
	t.Helper()
	clk := &ctlClock{t: time.Now().UTC()}
	e.opts.Now = clk.now
	e.svc = e.newService(t)
	return clk
}

// controlAudit returns the controls' audit entries with the outcome.
func (e *ctlEnv) controlAudit(t *testing.T, outcome string) []plugin.AuditEntry {
	t.Helper()
	entries, err := e.svc.Audit(context.Background(), plugin.AuditFilter{Actor: plugin.ControlsActor})
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	var out []plugin.AuditEntry
	for _, a := range entries {
		if a.Outcome == outcome {
			out = append(out, a)
		}
	}
	return out
}

func TestControlsGroupsCheckedWhenSaved(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		mutate    func(e *ctlEnv, c *plugin.Configuration)
		faults    func(e *ctlEnv)
		wantCode  string
		wantField string
		wantMsg   string
	}{
		{name: "unknown Okta group by name", mutate: func(e *ctlEnv, c *plugin.Configuration) {
			c.Controls.Targets["malicious_file_sent"] = plugin.ControlTarget{OktaGroup: "No Such Group"}
		}, wantCode: plugin.EINVALID, wantField: "controls.targets.malicious_file_sent", wantMsg: `Okta group "No Such Group" not found`},
		{name: "unknown Okta group by id", mutate: func(e *ctlEnv, c *plugin.Configuration) {
			c.Controls.Targets["malicious_url_sent"] = plugin.ControlTarget{OktaGroup: "00gnosuchgroup000001"}
		}, wantCode: plugin.EINVALID, wantField: "controls.targets.malicious_url_sent", wantMsg: "not found"},
		{name: "unknown Mimecast target", mutate: func(e *ctlEnv, c *plugin.Configuration) {
			c.Controls.Targets["content_examination_sent"] = plugin.ControlTarget{MimecastGroup: "No Such Group"}
		}, wantCode: plugin.EINVALID, wantField: "controls.targets.content_examination_sent", wantMsg: `Mimecast group "No Such Group" not found`},
		{name: "ambiguous Mimecast target", mutate: func(e *ctlEnv, c *plugin.Configuration) {
			e.mc.CreateGroup("Twice")
			e.mc.CreateGroup("Twice")
			c.Controls.Targets["content_examination_sent"] = plugin.ControlTarget{MimecastGroup: "twice"}
		}, wantCode: plugin.EINVALID, wantField: "controls.targets.content_examination_sent", wantMsg: "use the group id"},
		{name: "unknown scope group", mutate: func(e *ctlEnv, c *plugin.Configuration) {
			c.Controls.ScopeGroups = []string{"Controls Scope", "Ghost Group"}
		}, wantCode: plugin.EINVALID, wantField: "controls.scope_groups", wantMsg: `Mimecast group "Ghost Group" not found`},
		{name: "no Okta on the server", mutate: func(e *ctlEnv, c *plugin.Configuration) {
			e.opts.Okta = nil
			e.svc = e.newService(t)
		}, wantCode: plugin.EINVALID, wantField: "controls.targets.malicious_file_sent", wantMsg: "Okta is not available"},
		{name: "Okta refuses the key", mutate: func(e *ctlEnv, c *plugin.Configuration) {
			c.Controls.Okta.PrivateKey = oktatest.SEC1PEM(t, oktatest.NewECKey(t))
		}, wantCode: plugin.EUPSTREAMAUTH, wantMsg: "invalid_client"},
		{name: "Okta down", faults: func(e *ctlEnv) {
			e.okta.Fail(oktatest.EndpointGroups, oktatest.Fault{Status: 503, Times: 100})
		}, wantCode: plugin.EUNAVAILABLE, wantMsg: "Okta group"},
		{name: "Mimecast down", faults: func(e *ctlEnv) {
			e.mc.SetFaults(mimecasttest.Faults{Endpoint: mimecasttest.PathFindGroups, FailNext: 100})
		}, wantCode: plugin.EUNAVAILABLE, wantMsg: "Mimecast groups"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCtlEnv(t)
			c := e.config("acme")
			if tt.mutate != nil {
				tt.mutate(e, &c)
			}
			if tt.faults != nil {
				tt.faults(e)
			}
			_, err := e.svc.CreateConfiguration(ctx, "admin", c)
			mustCode(t, err, tt.wantCode)
			if f := fieldOf(err); f != tt.wantField {
				t.Errorf("field = %q, want %q (%v)", f, tt.wantField, err)
			}
			if msg := plugin.ErrorMessage(err); !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", msg, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("the error shows the key: %v", err)
			}
			if _, err := e.st.Configuration(ctx, "acme"); plugin.ErrorCode(err) != plugin.ENOTFOUND {
				t.Errorf("configuration stored after a failed check: %v", err)
			}
		})
	}
}

func TestControlsGroupsCheckedOnUpdate(t *testing.T) {
	ctx := context.Background()
	e := newCtlEnv(t)
	e.create(t, e.config("acme"))

	bad := e.config("acme")
	bad.Controls.Targets["malicious_file_sent"] = plugin.ControlTarget{OktaGroup: "Renamed Away"}
	_, err := e.svc.UpdateConfiguration(ctx, "admin", "acme", bad)
	mustCode(t, err, plugin.EINVALID)
	if f := fieldOf(err); f != "controls.targets.malicious_file_sent" {
		t.Errorf("field = %q, want controls.targets.malicious_file_sent", f)
	}
	if got := e.stored(t, "acme").Controls.Targets["malicious_file_sent"].OktaGroup; got != "Risky Malware Senders" {
		t.Errorf("stored target = %q after a refused update, want the old one", got)
	}

	// Okta unreachable: the update is refused with Okta's error, not saved.
	e.okta.Fail(oktatest.EndpointGroups, oktatest.Fault{Status: 503, Times: 100})
	good := e.config("acme")
	good.Controls.InternalDomains = []string{"other.example"}
	_, err = e.svc.UpdateConfiguration(ctx, "admin", "acme", good)
	mustCode(t, err, plugin.EUNAVAILABLE)
	if got := e.stored(t, "acme").Controls.InternalDomains; slices.Contains(got, "other.example") {
		t.Errorf("internal domains = %v saved while Okta was down", got)
	}
	e.okta.ClearFaults()
	if _, err := e.svc.UpdateConfiguration(ctx, "admin", "acme", good); err != nil {
		t.Fatalf("UpdateConfiguration once Okta is back: %v", err)
	}

	// Controls switched off: the groups are not looked up.
	off := e.config("acme")
	off.Controls.Enabled = false
	off.Controls.Targets["malicious_file_sent"] = plugin.ControlTarget{OktaGroup: "Renamed Away"}
	before := e.okta.TotalCalls()
	if _, err := e.svc.UpdateConfiguration(ctx, "admin", "acme", off); err != nil {
		t.Fatalf("UpdateConfiguration with controls off: %v", err)
	}
	if got := e.okta.TotalCalls(); got != before {
		t.Errorf("Okta calls = %d with controls off, want %d", got, before)
	}
}

func TestControlsRetryWithoutNewEvents(t *testing.T) {
	ctx := context.Background()
	e := newCtlEnv(t)
	clk := e.withClock(t)
	e.create(t, e.config("acme"))
	cfg := e.stored(t, "acme")

	// Okta is down for one run (both attempts of the client).
	e.okta.Fail(oktatest.EndpointAddMember, oktatest.Fault{Status: 503, Times: 2})
	plugin.ControlsOnEvents(ctx, e.svc, cfg, []plugin.RiskEvent{event("malicious_file_sent", e.u[0], "outbound", "p1")})
	st := e.status(t, "acme")
	if st.Counts[plugin.ControlFailed] != 1 || st.Counts[plugin.ControlPending] != 1 || len(e.okta.Members(e.oktaMal.ID)) != 0 {
		t.Fatalf("after the outage: counts %v, members %v; want 1 failed, 1 pending, none", st.Counts, e.okta.Members(e.oktaMal.ID))
	}

	// Too soon: a run without events does not call Okta.
	calls := e.okta.Calls(oktatest.EndpointAddMember)
	plugin.ControlsOnEvents(ctx, e.svc, cfg, nil)
	if got := e.okta.Calls(oktatest.EndpointAddMember); got != calls {
		t.Errorf("PUT calls = %d before the retry delay, want %d", got, calls)
	}

	// Later, and after a restart: the next run, with no new event, adds
	// the sender, audited once with the first event's evidence.
	clk.advance(plugin.ControlRetryDelay + time.Second)
	svc := e.newService(t)
	plugin.ControlsOnEvents(ctx, svc, cfg, nil)
	if got, want := e.okta.Members(e.oktaMal.ID), []string{e.u[0]}; !slices.Equal(got, want) {
		t.Fatalf("members = %v, want %v", got, want)
	}
	done := e.controlAudit(t, "done")
	if len(done) != 1 || done[0].Target != e.u[0] || done[0].Detail["evidence.fileName"] != "p1.exe" || done[0].Detail["message_id"] != "<p1@mail>" {
		t.Fatalf("audit = %+v, want one addition of %s with the evidence of p1", done, e.u[0])
	}
	if n := len(e.hooks.notifications(t)); n != 1 {
		t.Errorf("notifications = %d, want 1", n)
	}
	st = e.status(t, "acme")
	if st.Counts[plugin.ControlAdded] != 1 || st.Counts[plugin.ControlPending] != 0 || st.Counts[plugin.ControlDropped] != 0 {
		t.Errorf("counts = %v, want added 1, pending 0, dropped 0", st.Counts)
	}

	// Nothing is left to retry: later runs make no call and no entry.
	clk.advance(time.Hour)
	okCalls := e.okta.TotalCalls()
	plugin.ControlsOnEvents(ctx, svc, cfg, nil)
	plugin.ControlsOnEvents(ctx, svc, cfg, []plugin.RiskEvent{event("malicious_file_sent", e.u[0], "outbound", "p2")})
	if got := e.okta.TotalCalls(); got != okCalls {
		t.Errorf("Okta calls = %d after the retry succeeded, want %d", got, okCalls)
	}
	if n := len(e.controlAudit(t, "done")); n != 1 {
		t.Errorf("audit entries = %d, want 1", n)
	}
}

func TestControlsRetryGivesUpOnMissingUser(t *testing.T) {
	ctx := context.Background()
	e := newCtlEnv(t)
	clk := e.withClock(t)
	e.create(t, e.config("acme"))
	cfg := e.stored(t, "acme")
	// u[5] is in scope but not in Okta.
	e.mc.AddGroupMember(e.scope.ID, e.u[5])
	plugin.ControlsOnEvents(ctx, e.svc, cfg, []plugin.RiskEvent{event("malicious_file_sent", e.u[5], "outbound", "q1")})
	for i := 1; i < plugin.MaxControlAttempts; i++ {
		if st := e.status(t, "acme"); st.Counts[plugin.ControlPending] != 1 {
			t.Fatalf("attempt %d: counts %v, want 1 pending", i, st.Counts)
		}
		clk.advance(plugin.ControlRetryDelay)
		plugin.ControlsOnEvents(ctx, e.svc, cfg, nil)
	}
	st := e.status(t, "acme")
	if st.Counts[plugin.ControlFailed] != plugin.MaxControlAttempts || st.Counts[plugin.ControlDropped] != 1 || st.Counts[plugin.ControlPending] != 0 {
		t.Errorf("counts = %v, want %d failed, 1 dropped, 0 pending", st.Counts, plugin.MaxControlAttempts)
	}
	if len(st.LastErrors) == 0 || !strings.Contains(st.LastErrors[0], "given up") {
		t.Errorf("last errors = %v, want the give-up first", st.LastErrors)
	}
	failed := e.controlAudit(t, "failed")
	if len(failed) != 1 || failed[0].Target != e.u[5] || failed[0].Action != plugin.ControlsAddAction ||
		failed[0].Detail["event_id"] == "" || failed[0].Detail["evidence.fileName"] != "q1.exe" || !strings.Contains(failed[0].Detail["error"], "Okta user not found") {
		t.Fatalf("failed audit = %+v, want one entry for %s with the evidence and the error", failed, e.u[5])
	}
	calls := e.okta.TotalCalls()
	clk.advance(time.Hour)
	plugin.ControlsOnEvents(ctx, e.svc, cfg, nil)
	if got := e.okta.TotalCalls(); got != calls {
		t.Errorf("Okta calls = %d after giving up, want %d", got, calls)
	}
}

func TestControlsRetryListBounded(t *testing.T) {
	ctx := context.Background()
	e := newCtlEnv(t)
	clk := e.withClock(t)
	plugin.SetMaxPendingControls(e.svc, 2)
	c := e.config("acme")
	c.Controls.ScopeGroups = nil
	e.create(t, c)
	cfg := e.stored(t, "acme")
	ghosts := []string{"ghost1@" + e.mc.Domain(), "ghost2@" + e.mc.Domain(), "ghost3@" + e.mc.Domain()}
	for i, g := range ghosts {
		plugin.ControlsOnEvents(ctx, e.svc, cfg, []plugin.RiskEvent{event("malicious_file_sent", g, "outbound", "r"+string(rune('1'+i)))})
		clk.advance(time.Second)
	}
	st := e.status(t, "acme")
	if st.Counts[plugin.ControlPending] != 2 || st.Counts[plugin.ControlDropped] != 1 {
		t.Fatalf("counts = %v, want 2 pending, 1 dropped", st.Counts)
	}
	// The ghosts appear in Okta: only the two newest are still waiting.
	for _, g := range ghosts {
		e.okta.AddUser(oktatest.User{Login: g})
	}
	clk.advance(plugin.ControlRetryDelay)
	plugin.ControlsOnEvents(ctx, e.svc, cfg, nil)
	if got, want := e.okta.Members(e.oktaMal.ID), ghosts[1:]; !slices.Equal(sorted(got), want) {
		t.Errorf("members = %v, want %v (the oldest dropped)", got, want)
	}
}

func sorted(v []string) []string {
	v = slices.Clone(v)
	slices.Sort(v)
	return v
}

// partialMimecast fails AddMembers after the first address (while on),
// returning that address' result with the error, as the client does when
// a later batch fails.
type partialMimecast struct {
	plugin.Mimecast
	on *atomic.Bool
}

func (p partialMimecast) AddMembers(ctx context.Context, groupID string, emails []string) ([]plugin.MemberResult, error) {
	if !p.on.Load() || len(emails) < 2 {
		return p.Mimecast.AddMembers(ctx, groupID, emails)
	}
	res, err := p.Mimecast.AddMembers(ctx, groupID, emails[:1])
	if err != nil {
		return res, err
	}
	return res, plugin.Errorf(plugin.EUNAVAILABLE, "group %s, members 2-%d of %d: Mimecast unavailable", groupID, len(emails), len(emails))
}

func TestControlsMimecastPartialResultsKept(t *testing.T) {
	ctx := context.Background()
	e := newCtlEnv(t)
	var on atomic.Bool
	on.Store(true)
	real := e.opts.Mimecast
	e.opts.Mimecast = func(s plugin.MimecastSettings) (plugin.Mimecast, error) {
		mc, err := real(s)
		if err != nil {
			return nil, err
		}
		return partialMimecast{Mimecast: mc, on: &on}, nil
	}
	clk := e.withClock(t)
	c := e.config("acme")
	c.Controls.ScopeGroups = nil
	e.create(t, c)
	cfg := e.stored(t, "acme")
	plugin.ControlsOnEvents(ctx, e.svc, cfg, []plugin.RiskEvent{
		event("content_examination_sent", e.u[0], "outbound", "s1"),
		event("content_examination_sent", e.u[1], "outbound", "s2"),
	})
	if got, want := e.mc.GroupMembers(e.mcData.ID), []string{e.u[0]}; !slices.Equal(got, want) {
		t.Fatalf("Mimecast members = %v, want %v", got, want)
	}
	st := e.status(t, "acme")
	if st.Counts[plugin.ControlAdded] != 1 || st.Counts[plugin.ControlFailed] != 1 || st.Counts[plugin.ControlPending] != 1 {
		t.Errorf("counts = %v, want added 1, failed 1, pending 1", st.Counts)
	}
	if len(st.LastErrors) != 1 || !strings.Contains(st.LastErrors[0], e.u[1]) {
		t.Errorf("last errors = %v, want one for %s", st.LastErrors, e.u[1])
	}
	done := e.controlAudit(t, "done")
	if len(done) != 1 || done[0].Target != e.u[0] || done[0].Detail["provider"] != "mimecast" {
		t.Fatalf("audit = %+v, want the addition of %s", done, e.u[0])
	}
	if ns := e.hooks.notifications(t); len(ns) != 1 || ns[0].User != e.u[0] {
		t.Errorf("notifications = %+v, want one for %s", ns, e.u[0])
	}

	// Mimecast recovers: the retry adds only the one left.
	on.Store(false)
	clk.advance(plugin.ControlRetryDelay)
	before := e.mc.Calls(mimecasttest.PathAddGroupMember)
	plugin.ControlsOnEvents(ctx, e.svc, cfg, nil)
	if got, want := sorted(e.mc.GroupMembers(e.mcData.ID)), sorted([]string{e.u[0], e.u[1]}); !slices.Equal(got, want) {
		t.Errorf("Mimecast members = %v, want %v", got, want)
	}
	if got := e.mc.Calls(mimecasttest.PathAddGroupMember) - before; got != 1 {
		t.Errorf("add calls on retry = %d, want 1", got)
	}
	if n := len(e.controlAudit(t, "done")); n != 2 {
		t.Errorf("audit entries = %d, want 2", n)
	}
}

// A failed addition retried after the sender stopped being internal (the
// internal domains changed) is dropped, not made.
func TestControlsRetryRechecksInternal(t *testing.T) {
	ctx := context.Background()
	e := newCtlEnv(t)
	clk := e.withClock(t)
	e.create(t, e.config("acme"))
	cfg := e.stored(t, "acme")
	e.okta.Fail(oktatest.EndpointAddMember, oktatest.Fault{Status: 503, Times: 2})
	plugin.ControlsOnEvents(ctx, e.svc, cfg, []plugin.RiskEvent{event("malicious_file_sent", e.u[0], "outbound", "p1")})
	if n := len(e.okta.Members(e.oktaMal.ID)); n != 0 {
		t.Fatalf("members after the outage = %d, want 0", n)
	}
	moved := cfg
	k := *cfg.Controls
	k.InternalDomains = []string{"elsewhere.example"}
	moved.Controls = &k
	clk.advance(plugin.ControlRetryDelay + time.Second)
	plugin.ControlsOnEvents(ctx, e.svc, moved, nil)
	if got := e.okta.Members(e.oktaMal.ID); len(got) != 0 {
		t.Errorf("the retry added %v although the sender is no longer internal", got)
	}
}
