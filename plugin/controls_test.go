package plugin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mimecast-ure/actions"
	"mimecast-ure/detect"
	"mimecast-ure/internal/mimecasttest"
	"mimecast-ure/internal/oktatest"
	"mimecast-ure/mimecast"
	"mimecast-ure/okta"
	"mimecast-ure/plugin"
	"mimecast-ure/store"
)

const ctlOktaClient = "0oacontrols000000001"

// ctlHooks records the notifications the controls send.
type ctlHooks struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (h *ctlHooks) Send(ctx context.Context, w plugin.Webhook, body []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bodies = append(h.bodies, append([]byte(nil), body...))
	return nil
}

func (h *ctlHooks) notifications(t *testing.T) []plugin.ControlNotification {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []plugin.ControlNotification
	for _, b := range h.bodies {
		var n plugin.ControlNotification
		if err := json.Unmarshal(b, &n); err != nil {
			t.Fatalf("notification %s: %v", b, err)
		}
		out = append(out, n)
	}
	return out
}

// ctlEnv is a Service on a temp store, the Mimecast emulator through the
// real client, the Okta emulator through the real client and the real
// detector. Users u[0..2] are in the scope group, u[3] and u[4] are not;
// every one of them exists in Okta.
type ctlEnv struct {
	mc        *mimecasttest.Server
	okta      *oktatest.Emulator
	st        *store.Store
	svc       *plugin.Service
	opts      plugin.ServiceOptions
	hooks     *ctlHooks
	key       string
	u         []string
	oktaMal   oktatest.Group
	oktaURL   oktatest.Group
	mcData    mimecasttest.Group
	scope     mimecasttest.Group
	oktaUsers map[string]oktatest.User
}

func newCtlEnv(t *testing.T) *ctlEnv {
	t.Helper()
	return newCtlEnvTB(t)
}

func newCtlEnvTB(t testing.TB) *ctlEnv {
	t.Helper()
	e := &ctlEnv{hooks: &ctlHooks{}, oktaUsers: map[string]oktatest.User{}}
	e.mc = mimecasttest.NewTestServer(t, mimecasttest.Options{Users: 10, LogVolume: map[string]int{}})
	for _, u := range e.mc.Users()[:6] {
		e.u = append(e.u, strings.ToLower(u.Email))
	}
	e.scope = e.mc.CreateGroup("Controls Scope")
	for _, u := range e.u[:3] {
		e.mc.AddGroupMember(e.scope.ID, u)
	}
	e.mcData = e.mc.CreateGroup("Risky Data")

	e.okta = oktatest.Start(t, oktatest.Options{})
	k := oktatest.NewRSAKey(t)
	e.okta.RegisterClient(ctlOktaClient, k.Public())
	e.key = oktatest.PKCS8PEM(t, k)
	e.oktaMal = e.okta.AddGroup(oktatest.Group{Name: "Risky Malware Senders"})
	e.oktaURL = e.okta.AddGroup(oktatest.Group{Name: "Risky URL Senders"})
	for _, u := range e.u[:5] {
		e.oktaUsers[u] = e.okta.AddUser(oktatest.User{Login: u})
	}

	st, err := store.Open(filepath.Join(t.TempDir(), "ctl.db"), store.Options{MasterKey: coreMasterKey, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	noSleep := func(ctx context.Context, d time.Duration) error { return ctx.Err() }
	e.opts = plugin.ServiceOptions{
		Store:    st,
		Mimecast: mimecast.Factory(mimecast.Options{MaxAttempts: 2, Sleep: noSleep, Jitter: func(time.Duration) time.Duration { return 0 }}),
		Okta:     okta.Factory(okta.Options{MaxAttempts: 2, Sleep: noSleep}),
		Actions:  actions.New(actions.Options{Logger: zerolog.Nop()}),
		Detector: detect.New,
		Logger:   zerolog.Nop(),
		Webhooks: e.hooks,
	}
	e.svc = e.newService(t)
	return e
}

func (e *ctlEnv) newService(t testing.TB) *plugin.Service {
	svc := plugin.NewService(e.opts)
	plugin.SetWebhookSleep(svc, func(ctx context.Context, d time.Duration) error { return ctx.Err() })
	t.Cleanup(func() { svc.Close() })
	return svc
}

// config is a configuration with events and controls on: file and URL
// senders go to Okta groups (by name and by id), DLP senders to a
// Mimecast group, scoped to "Controls Scope".
func (e *ctlEnv) config(name string) plugin.Configuration {
	return plugin.Configuration{
		Name: name,
		Mimecast: plugin.MimecastSettings{
			BaseURL: e.mc.URL(), Auth: plugin.AuthLegacy,
			AppID: mimecasttest.DefaultAppID, AppKey: mimecasttest.DefaultAppKey,
			AccessKey: mimecasttest.DefaultAccessKey, SecretKey: mimecasttest.DefaultSecretKey,
		},
		Events: &plugin.EventSettings{Enabled: true},
		Controls: &plugin.ControlSettings{
			Enabled:         true,
			InternalDomains: []string{strings.ToUpper(e.mc.Domain())},
			ScopeGroups:     []string{"controls scope"},
			Okta:            &plugin.OktaSettings{BaseURL: e.okta.URL, ClientID: ctlOktaClient, PrivateKey: e.key},
			Targets: map[string]plugin.ControlTarget{
				"malicious_file_sent":      {OktaGroup: "Risky Malware Senders"},
				"malicious_url_sent":       {OktaGroup: e.oktaURL.ID},
				"content_examination_sent": {MimecastGroup: "Risky Data"},
			},
			NotifyWebhook: &plugin.Webhook{URL: "https://hooks.example/controls", Secret: "notify-secret"},
		},
	}
}

func (e *ctlEnv) create(t *testing.T, c plugin.Configuration) {
	t.Helper()
	if _, err := e.svc.CreateConfiguration(context.Background(), "admin", c); err != nil {
		t.Fatalf("CreateConfiguration: %v", err)
	}
}

// stored returns the configuration with secrets in clear.
func (e *ctlEnv) stored(t *testing.T, name string) plugin.Configuration {
	t.Helper()
	c, err := e.st.Configuration(context.Background(), name)
	if err != nil {
		t.Fatalf("store Configuration: %v", err)
	}
	return c.WithDefaults()
}

// storeUpdate changes the stored configuration through the store, past
// the service's checks: it stands for a group deleted or renamed in Okta
// or Mimecast after the configuration was saved.
func (e *ctlEnv) storeUpdate(t *testing.T, name string, mutate func(c *plugin.Configuration)) {
	t.Helper()
	c := e.stored(t, name)
	mutate(&c)
	if err := e.st.UpdateConfiguration(context.Background(), c); err != nil {
		t.Fatalf("store UpdateConfiguration: %v", err)
	}
}

func (e *ctlEnv) status(t *testing.T, name string) plugin.ControlsStatus {
	t.Helper()
	st, err := e.svc.ControlsStatus(context.Background(), name)
	if err != nil {
		t.Fatalf("ControlsStatus: %v", err)
	}
	return st
}

func (e *ctlEnv) membershipCalls() int {
	return e.okta.Calls(oktatest.EndpointAddMember) + e.mc.Calls(mimecasttest.PathAddGroupMember)
}

func recordTime(d time.Duration) string {
	return time.Now().Add(-d).UTC().Format("2006-01-02T15:04:05-0700")
}

// addLogs puts one record of every interesting shape in the emulator.
func (e *ctlEnv) addLogs() {
	at := recordTime(time.Hour)
	att := func(sender, recipient, route, msg string) map[string]any {
		return map[string]any{"senderAddress": sender, "recipientAddress": recipient, "result": "malicious", "route": route,
			"fileName": "invoice-" + msg + ".exe", "fileHash": "ab12" + msg, "fileType": "application/x-msdownload", "messageId": "<" + msg + "@mail>", "date": at, "subject": "Invoice"}
	}
	e.mc.AddLogRecords(mimecasttest.KindAttachment,
		att("<"+strings.ToUpper(e.u[0])+">", "buyer@partner.example.net", "outbound", "m1"), // in scope -> Okta malware group
		att(e.u[0], "other@partner.example.net", "outbound", "m2"),                          // same sender again: once
		att(e.u[3], "buyer@partner.example.net", "outbound", "m3"),                          // internal, out of scope
		att("mallory@evil.example.net", "buyer@partner.example.net", "outbound", "m4"),      // external sender
		att("spam@evil.example.net", e.u[4], "inbound", "m5"),                               // inbound: not a control event
	)
	e.mc.AddLogRecords(mimecasttest.KindURL, map[string]any{
		"fromUserEmailAddress": e.u[1], "userEmailAddress": "buyer@partner.example.net", "url": "http://bad.example/x",
		"scanResult": "malicious", "creationMethod": "Entry Scan", "route": "outbound", "action": "block", "category": "Malware",
		"messageId": "<m6@mail>", "date": at,
	})
	dlp := func(action string) map[string]any {
		return map[string]any{"senderAddress": e.u[2], "recipientAddress": "buyer@partner.example.net", "route": "outbound",
			"action": action, "policy": "Confidential", "messageId": "<m7@mail>", "eventTime": at}
	}
	e.mc.AddLogRecords(mimecasttest.KindDLP, dlp("hold"), dlp("notification"))
}

func pull(t *testing.T, svc *plugin.Service, name string) {
	t.Helper()
	if _, err := plugin.PullEventsNow(context.Background(), svc, name); err != nil {
		t.Fatalf("PullEventsNow: %v", err)
	}
}

func TestControlsFromEmulatorEvents(t *testing.T) {
	e := newCtlEnv(t)
	ctx := context.Background()
	e.create(t, e.config("acme"))
	e.addLogs()
	pull(t, e.svc, "acme")

	if got, want := e.okta.Members(e.oktaMal.ID), []string{e.u[0]}; !slices.Equal(got, want) {
		t.Errorf("Okta malware group = %v, want %v", got, want)
	}
	if got, want := e.okta.Members(e.oktaURL.ID), []string{e.u[1]}; !slices.Equal(got, want) {
		t.Errorf("Okta URL group = %v, want %v", got, want)
	}
	if got, want := e.mc.GroupMembers(e.mcData.ID), []string{e.u[2]}; !slices.Equal(got, want) {
		t.Errorf("Mimecast data group = %v, want %v", got, want)
	}

	st := e.status(t, "acme")
	for outcome, want := range map[string]int{
		plugin.ControlAdded: 3, plugin.ControlSkippedExternal: 1, plugin.ControlSkippedOutOfScope: 1,
		plugin.ControlAlreadyMember: 1, plugin.ControlFailed: 0, plugin.ControlSkippedInbound: 0, plugin.ControlSkippedDisabled: 0,
	} {
		if st.Counts[outcome] != want {
			t.Errorf("count %s = %d, want %d (all: %v, errors %v)", outcome, st.Counts[outcome], want, st.Counts, st.LastErrors)
		}
	}
	if st.LastRun.IsZero() || len(st.LastErrors) != 0 {
		t.Errorf("status = %+v, want a last run and no errors", st)
	}

	// The audit log shows each addition with its evidence.
	entries, err := e.svc.Audit(ctx, plugin.AuditFilter{Actor: plugin.ControlsActor})
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	byUser := map[string]plugin.AuditEntry{}
	for _, a := range entries {
		if a.Action != plugin.ControlsAddAction || a.Outcome != "done" {
			t.Errorf("audit entry %+v: want action %s, outcome done", a, plugin.ControlsAddAction)
		}
		byUser[a.Target] = a
	}
	if len(entries) != 3 {
		t.Fatalf("audit entries = %d, want 3: %+v", len(entries), entries)
	}
	mal := byUser[e.u[0]].Detail
	for k, want := range map[string]string{
		"event_type": "malicious_file_sent", "provider": "okta", "group_id": e.oktaMal.ID, "group_name": "Risky Malware Senders",
		"rule": "malicious_file_sent", "message_id": "<m1@mail>", "evidence.fileName": "invoice-m1.exe", "evidence.fileHash": "ab12m1",
		"evidence.route": "outbound", "configuration": "acme",
	} {
		if mal[k] != want {
			t.Errorf("malware audit detail %s = %q, want %q (detail %v)", k, mal[k], want, mal)
		}
	}
	if mal["event_id"] == "" {
		t.Errorf("malware audit detail has no event id: %v", mal)
	}
	if d := byUser[e.u[1]].Detail; d["group_id"] != e.oktaURL.ID || d["evidence.url"] != "http://bad.example/x" {
		t.Errorf("URL audit detail = %v", d)
	}
	if d := byUser[e.u[2]].Detail; d["provider"] != "mimecast" || d["group_id"] != e.mcData.ID || d["evidence.policy"] != "Confidential" {
		t.Errorf("DLP audit detail = %v", d)
	}

	// Each addition was notified.
	ns := e.hooks.notifications(t)
	var users []string
	for _, n := range ns {
		users = append(users, n.User)
		if n.Type != plugin.ControlsAddAction || n.Configuration != "acme" || n.Event.ID == "" || len(n.Event.Evidence) == 0 {
			t.Errorf("notification %+v lacks type, configuration or evidence", n)
		}
	}
	sort.Strings(users)
	want := []string{e.u[0], e.u[1], e.u[2]}
	sort.Strings(want)
	if !slices.Equal(users, want) {
		t.Errorf("notified %v, want %v", users, want)
	}

	// A second run (and a restart) adds nobody again: no membership call.
	before := e.membershipCalls()
	oktaBefore := e.okta.TotalCalls()
	pull(t, e.svc, "acme")
	pull(t, e.newService(t), "acme")
	if got := e.membershipCalls(); got != before {
		t.Errorf("membership calls = %d after re-runs, want %d", got, before)
	}
	if got := e.okta.TotalCalls(); got != oktaBefore {
		t.Errorf("Okta calls = %d after re-runs, want %d", got, oktaBefore)
	}
	entries, _ = e.svc.Audit(ctx, plugin.AuditFilter{Actor: plugin.ControlsActor})
	if len(entries) != 3 {
		t.Errorf("audit entries after re-runs = %d, want 3", len(entries))
	}
	if n := len(e.hooks.notifications(t)); n != 3 {
		t.Errorf("notifications after re-runs = %d, want 3", n)
	}
	if st := e.status(t, "acme"); st.Counts[plugin.ControlAdded] != 3 {
		t.Errorf("added after re-runs = %d, want 3", st.Counts[plugin.ControlAdded])
	}
}

// event builds a RiskEvent as the detector does for the control rules.
func event(rule, user, route, msg string) plugin.RiskEvent {
	return plugin.RiskEvent{
		ID: rule + "-" + msg, Rule: rule, User: user, Route: route, At: time.Now().Add(-time.Hour).UTC(),
		MessageID: "<" + msg + "@mail>", Log: plugin.LogAttachment, Weight: 100,
		Evidence: map[string]string{"fileName": msg + ".exe", "route": route, "senderAddress": user},
	}
}

func TestControlsSkips(t *testing.T) {
	e := newCtlEnv(t)
	ctx := context.Background()
	c := e.config("acme")
	delete(c.Controls.Targets, "content_examination_sent") // disabled type
	e.create(t, c)
	cfg := e.stored(t, "acme")
	plugin.ControlsOnEvents(ctx, e.svc, cfg, []plugin.RiskEvent{
		event("malicious_file_sent", e.u[0], "inbound", "a1"),
		event("malicious_file_sent", e.u[0], "internal", "a2"),
		event("content_examination_sent", e.u[1], "outbound", "a3"),
		event("clicked_phishing", e.u[1], "outbound", "a4"), // not a control type: ignored
		event("malicious_file_sent", "someone@elsewhere.example", "outbound", "a5"),
		event("malicious_file_sent", e.u[3], "outbound", "a6"),
	})
	st := e.status(t, "acme")
	for outcome, want := range map[string]int{
		plugin.ControlSkippedInbound: 2, plugin.ControlSkippedDisabled: 1, plugin.ControlSkippedExternal: 1,
		plugin.ControlSkippedOutOfScope: 1, plugin.ControlAdded: 0, plugin.ControlFailed: 0,
	} {
		if st.Counts[outcome] != want {
			t.Errorf("count %s = %d, want %d (all %v)", outcome, st.Counts[outcome], want, st.Counts)
		}
	}
	if n := e.membershipCalls(); n != 0 {
		t.Errorf("membership calls = %d, want 0", n)
	}

	// Controls switched off: nothing happens at all.
	cfg.Controls.Enabled = false
	plugin.ControlsOnEvents(ctx, e.svc, cfg, []plugin.RiskEvent{event("malicious_file_sent", e.u[0], "outbound", "b1")})
	if got := e.status(t, "acme"); got.Counts[plugin.ControlAdded] != 0 || !got.LastRun.Equal(st.LastRun) {
		t.Errorf("status changed with controls off: %+v", got)
	}
	if n := e.membershipCalls(); n != 0 {
		t.Errorf("membership calls with controls off = %d, want 0", n)
	}
}

func TestControlsWithoutScopeGroups(t *testing.T) {
	e := newCtlEnv(t)
	c := e.config("acme")
	c.Controls.ScopeGroups = nil
	e.create(t, c)
	plugin.ControlsOnEvents(context.Background(), e.svc, e.stored(t, "acme"), []plugin.RiskEvent{
		event("malicious_file_sent", e.u[3], "outbound", "c1"), // out of the (absent) scope group: still acted on
	})
	if got := e.okta.Members(e.oktaMal.ID); !slices.Equal(got, []string{e.u[3]}) {
		t.Errorf("members = %v, want [%s]", got, e.u[3])
	}
	if n := e.mc.Calls(mimecasttest.PathGetGroupMembers); n != 0 {
		t.Errorf("scope lookups = %d, want 0 without scope groups", n)
	}
}

func TestControlsRetryAfterFailure(t *testing.T) {
	e := newCtlEnv(t)
	ctx := context.Background()
	e.create(t, e.config("acme"))
	cfg := e.stored(t, "acme")
	// u[5] is in scope but unknown to Okta; a transient 503 on the
	// first lookup is retried by the client.
	e.mc.AddGroupMember(e.scope.ID, e.u[5])
	e.okta.Fail(oktatest.EndpointUser, oktatest.Fault{Status: 503, Times: 1})
	evs := []plugin.RiskEvent{event("malicious_file_sent", e.u[5], "outbound", "d1")}
	plugin.ControlsOnEvents(ctx, e.svc, cfg, evs)
	st := e.status(t, "acme")
	if st.Counts[plugin.ControlFailed] != 1 || len(st.LastErrors) != 1 || !strings.Contains(st.LastErrors[0], "Okta user not found") {
		t.Fatalf("status = %+v, want one failure saying the Okta user is missing", st)
	}
	if strings.Contains(strings.Join(st.LastErrors, " "), "PRIVATE KEY") {
		t.Errorf("errors show the key: %v", st.LastErrors)
	}
	// The user shows up in Okta: the next event for them is acted on,
	// because nothing was marked after the failure.
	u := e.okta.AddUser(oktatest.User{Login: e.u[5]})
	plugin.ControlsOnEvents(ctx, e.svc, cfg, []plugin.RiskEvent{event("malicious_file_sent", e.u[5], "outbound", "d2")})
	if got := e.okta.Members(e.oktaMal.ID); !slices.Equal(got, []string{u.Login}) {
		t.Errorf("members = %v, want [%s]", got, u.Login)
	}
	if st := e.status(t, "acme"); st.Counts[plugin.ControlAdded] != 1 || st.Counts[plugin.ControlFailed] != 1 {
		t.Errorf("counts = %v, want added 1, failed 1", st.Counts)
	}
}

func TestControlsRecordEveryFailureKind(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(e *ctlEnv, c *plugin.Configuration)
		opts    func(o *plugin.ServiceOptions)
		event   func(e *ctlEnv) plugin.RiskEvent
		wantErr string
	}{
		{"unknown Okta group", func(e *ctlEnv, c *plugin.Configuration) {
			c.Controls.Targets["malicious_file_sent"] = plugin.ControlTarget{OktaGroup: "No Such Group"}
		}, nil, func(e *ctlEnv) plugin.RiskEvent { return event("malicious_file_sent", e.u[0], "outbound", "f1") }, "Okta group not found"},
		{"unknown Mimecast group", func(e *ctlEnv, c *plugin.Configuration) {
			c.Controls.Targets["content_examination_sent"] = plugin.ControlTarget{MimecastGroup: "No Such Group"}
		}, nil, func(e *ctlEnv) plugin.RiskEvent { return event("content_examination_sent", e.u[0], "outbound", "f2") }, `Mimecast group "No Such Group" not found`},
		{"unknown scope group", func(e *ctlEnv, c *plugin.Configuration) {
			c.Controls.ScopeGroups = []string{"Nobody's Group"}
		}, nil, func(e *ctlEnv) plugin.RiskEvent { return event("malicious_file_sent", e.u[0], "outbound", "f3") }, "not found"},
		{"no Okta factory", nil, func(o *plugin.ServiceOptions) { o.Okta = nil },
			func(e *ctlEnv) plugin.RiskEvent { return event("malicious_file_sent", e.u[0], "outbound", "f4") }, "Okta is not available on this server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCtlEnv(t)
			// The configuration is saved good (groups are checked then),
			// then its groups vanish or the server loses Okta.
			e.create(t, e.config("acme"))
			if tt.mutate != nil {
				e.storeUpdate(t, "acme", func(c *plugin.Configuration) { tt.mutate(e, c) })
			}
			if tt.opts != nil {
				tt.opts(&e.opts)
				e.svc = e.newService(t)
			}
			plugin.ControlsOnEvents(context.Background(), e.svc, e.stored(t, "acme"), []plugin.RiskEvent{tt.event(e)})
			st := e.status(t, "acme")
			if st.Counts[plugin.ControlFailed] != 1 || len(st.LastErrors) != 1 || !strings.Contains(st.LastErrors[0], tt.wantErr) {
				t.Errorf("status = %+v, want one failure mentioning %q", st, tt.wantErr)
			}
			if n := e.membershipCalls(); n != 0 {
				t.Errorf("membership calls = %d, want 0", n)
			}
		})
	}
}

func TestControlsLastErrorsBounded(t *testing.T) {
	e := newCtlEnv(t)
	c := e.config("acme")
	c.Controls.ScopeGroups = nil
	e.create(t, c)
	var evs []plugin.RiskEvent
	for i := range 15 {
		evs = append(evs, event("malicious_file_sent", "ghost"+string(rune('a'+i))+"@"+e.mc.Domain(), "outbound", "g"+string(rune('a'+i))))
	}
	plugin.ControlsOnEvents(context.Background(), e.svc, e.stored(t, "acme"), evs)
	st := e.status(t, "acme")
	if st.Counts[plugin.ControlFailed] != 15 || len(st.LastErrors) != plugin.MaxControlErrors {
		t.Errorf("failed %d, %d errors kept; want 15 and %d", st.Counts[plugin.ControlFailed], len(st.LastErrors), plugin.MaxControlErrors)
	}
	if !strings.Contains(st.LastErrors[0], "ghosto@") {
		t.Errorf("newest error first: got %q", st.LastErrors[0])
	}
}

func TestValidateControls(t *testing.T) {
	ctx := context.Background()
	checks := func(v plugin.ControlsValidation) map[string]plugin.ControlCheck {
		m := map[string]plugin.ControlCheck{}
		for _, c := range v.Checks {
			m[c.Name] = c
		}
		return m
	}
	t.Run("good", func(t *testing.T) {
		e := newCtlEnv(t)
		e.create(t, e.config("acme"))
		v, err := e.svc.ValidateControls(ctx, "acme")
		if err != nil {
			t.Fatalf("ValidateControls: %v", err)
		}
		if !v.Success {
			t.Fatalf("validation failed: %+v", v)
		}
		m := checks(v)
		for _, name := range []string{"okta.client", "okta.credentials", "target.malicious_file_sent", "target.malicious_url_sent",
			"target.content_examination_sent", "scope_group.controls scope", "scope_groups", "internal_domains", "events"} {
			if !m[name].Success {
				t.Errorf("check %s = %+v, want success", name, m[name])
			}
		}
		if msg := m["target.malicious_url_sent"].Message; !strings.Contains(msg, e.oktaURL.ID) {
			t.Errorf("URL target message %q does not name the group id", msg)
		}
	})
	t.Run("six scope groups refused at configuration time", func(t *testing.T) {
		e := newCtlEnv(t)
		c := e.config("acme")
		c.Controls.ScopeGroups = []string{"a", "b", "c", "d", "e", "f"}
		_, err := e.svc.CreateConfiguration(ctx, "admin", c)
		mustCode(t, err, plugin.EINVALID)
		if f := fieldOf(err); f != "controls.scope_groups" {
			t.Errorf("field = %q, want controls.scope_groups", f)
		}
		// Stored anyway (an older version, an import): validation says so.
		c = c.WithDefaults()
		if err := e.st.CreateConfiguration(ctx, c); err != nil {
			t.Fatal(err)
		}
		v, err := e.svc.ValidateControls(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if v.Success || checks(v)["scope_groups"].Success {
			t.Errorf("validation = %+v, want the scope_groups check to fail", v)
		}
	})
	t.Run("unknown groups", func(t *testing.T) {
		e := newCtlEnv(t)
		e.create(t, e.config("acme"))
		// Groups deleted after the configuration was saved.
		e.storeUpdate(t, "acme", func(c *plugin.Configuration) {
			c.Controls.Targets["malicious_file_sent"] = plugin.ControlTarget{OktaGroup: "Nope"}
			c.Controls.Targets["content_examination_sent"] = plugin.ControlTarget{MimecastGroup: "Nope Either"}
			c.Controls.ScopeGroups = []string{"Controls Scope", "Ghost Group"}
		})
		v, err := e.svc.ValidateControls(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		m := checks(v)
		if v.Success {
			t.Errorf("validation succeeded: %+v", v)
		}
		for name, want := range map[string]string{
			"target.malicious_file_sent":      "Okta group not found",
			"target.content_examination_sent": `Mimecast group "Nope Either" not found`,
			"scope_group.Ghost Group":         `Mimecast group "Ghost Group" not found`,
		} {
			if c := m[name]; c.Success || !strings.Contains(c.Message, want) {
				t.Errorf("check %s = %+v, want failure %q", name, c, want)
			}
		}
		if !m["target.malicious_url_sent"].Success || !m["scope_group.Controls Scope"].Success {
			t.Errorf("good targets failed: %+v", v.Checks)
		}
	})
	t.Run("bad key", func(t *testing.T) {
		e := newCtlEnv(t)
		c := e.config("acme")
		// A key that does not parse is refused when the configuration is
		// created, naming the field and never quoting the key.
		c.Controls.Okta.PrivateKey = "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n"
		_, err := e.svc.CreateConfiguration(ctx, "admin", c)
		var pe *plugin.Error
		if !errors.As(err, &pe) || pe.Code != plugin.EINVALID || pe.Field != "controls.okta.private_key" {
			t.Fatalf("create with a bad key: %v, want invalid controls.okta.private_key", err)
		}
		if strings.Contains(err.Error(), "bm90IGEga2V5") {
			t.Errorf("the error shows the key: %v", err)
		}
	})
	t.Run("unregistered key", func(t *testing.T) {
		e := newCtlEnv(t)
		e.create(t, e.config("acme"))
		// The key was revoked in Okta after the configuration was saved.
		other := oktatest.SEC1PEM(t, oktatest.NewECKey(t))
		e.storeUpdate(t, "acme", func(c *plugin.Configuration) { c.Controls.Okta.PrivateKey = other })
		v, err := e.svc.ValidateControls(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if c := checks(v)["okta.credentials"]; c.Success || !strings.Contains(c.Message, "invalid_client") {
			t.Errorf("okta.credentials = %+v, want invalid_client", c)
		}
	})
	t.Run("no controls and unknown configuration", func(t *testing.T) {
		e := newCtlEnv(t)
		c := e.config("acme")
		c.Controls = nil
		e.create(t, c)
		v, err := e.svc.ValidateControls(ctx, "acme")
		if err != nil || v.Success {
			t.Errorf("ValidateControls = %+v, %v; want an unsuccessful answer", v, err)
		}
		_, err = e.svc.ValidateControls(ctx, "nope")
		mustCode(t, err, plugin.ENOTFOUND)
		_, err = e.svc.ControlsStatus(ctx, "nope")
		mustCode(t, err, plugin.ENOTFOUND)
		st, err := e.svc.ControlsStatus(ctx, "acme")
		if err != nil || len(st.Counts) != len(plugin.ControlOutcomes) || st.LastErrors == nil {
			t.Errorf("empty status = %+v, %v; want zeroed counts", st, err)
		}
	})
}

var _ http.Handler = (*oktatest.Emulator)(nil)

// BenchmarkControlsSteadyState measures a page of 500 control events whose
// senders were all handled before: the cost every later pull pays.
func BenchmarkControlsSteadyState(b *testing.B) {
	e := newCtlEnvTB(b)
	ctx := context.Background()
	c := e.config("acme")
	c.Controls.ScopeGroups = nil
	c.Controls.Targets = map[string]plugin.ControlTarget{"content_examination_sent": {MimecastGroup: "Risky Data"}}
	c.Controls.NotifyWebhook = nil
	if _, err := e.svc.CreateConfiguration(ctx, "admin", c); err != nil {
		b.Fatal(err)
	}
	cfg, err := e.st.Configuration(ctx, "acme")
	if err != nil {
		b.Fatal(err)
	}
	cfg = cfg.WithDefaults()
	var evs []plugin.RiskEvent
	for i := range 500 {
		evs = append(evs, event("content_examination_sent", e.u[i%len(e.u)], "outbound", fmt.Sprint("m", i)))
	}
	plugin.ControlsOnEvents(ctx, e.svc, cfg, evs) // first run adds
	calls := e.membershipCalls()
	b.ReportAllocs()
	for b.Loop() {
		plugin.ControlsOnEvents(ctx, e.svc, cfg, evs)
	}
	if e.membershipCalls() != calls {
		b.Fatalf("membership calls grew in the steady state")
	}
}

func TestControlsStopTryingWhenOktaIsDown(t *testing.T) {
	e := newCtlEnv(t)
	c := e.config("acme")
	c.Controls.ScopeGroups = nil
	e.create(t, c)
	cfg := e.stored(t, "acme")
	e.okta.Fail(oktatest.EndpointAddMember, oktatest.Fault{Status: 503, Times: 100})
	plugin.ControlsOnEvents(context.Background(), e.svc, cfg, []plugin.RiskEvent{
		event("malicious_file_sent", e.u[0], "outbound", "h1"),
		event("malicious_file_sent", e.u[1], "outbound", "h2"),
		event("malicious_file_sent", e.u[2], "outbound", "h3"),
	})
	st := e.status(t, "acme")
	if st.Counts[plugin.ControlFailed] != 3 || !strings.Contains(st.LastErrors[0], "not tried") {
		t.Errorf("status = %+v, want 3 failures, the last ones not tried", st)
	}
	if n := e.okta.Calls(oktatest.EndpointAddMember); n != 2 {
		t.Errorf("PUT calls = %d, want 2 (one sender's attempts)", n)
	}
	// Okta is back: the next events add everyone.
	e.okta.ClearFaults()
	plugin.ControlsOnEvents(context.Background(), e.svc, cfg, []plugin.RiskEvent{
		event("malicious_file_sent", e.u[0], "outbound", "h4"),
		event("malicious_file_sent", e.u[1], "outbound", "h5"),
		event("malicious_file_sent", e.u[2], "outbound", "h6"),
	})
	if got := e.okta.Members(e.oktaMal.ID); len(got) != 3 {
		t.Errorf("members after recovery = %v, want 3", got)
	}
}
