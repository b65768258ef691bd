package plugin_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mimecast-ure/detect"
	"mimecast-ure/plugin"
	"mimecast-ure/store"
)

// evClock is a settable clock.
type evClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *evClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *evClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *evClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// evFakeMC is an in-memory plugin.Mimecast serving log records (filtered
// by time, oldest first, paged) and grades.
type evFakeMC struct {
	mu      sync.Mutex
	logs    map[plugin.LogKind][]plugin.LogRecord
	grades  []plugin.UserGrade
	queries map[plugin.LogKind][]plugin.LogQuery
	pages   int // pages served, all logs
	// failAfter, when > 0, fails the page request after that many pages
	// served (counting from when it was set); it then resets.
	failAfter int
	failLeft  int
	// gate, when set, holds every EachLogPage call until it is closed;
	// entered gets a value each time a call starts waiting on it.
	gate    chan struct{}
	entered chan struct{}
}

var _ plugin.Mimecast = (*evFakeMC)(nil)

func newEvFakeMC() *evFakeMC {
	return &evFakeMC{logs: map[plugin.LogKind][]plugin.LogRecord{}, queries: map[plugin.LogKind][]plugin.LogQuery{}}
}

func (f *evFakeMC) add(kind plugin.LogKind, recs ...plugin.LogRecord) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs[kind] = append(f.logs[kind], recs...)
}

func (f *evFakeMC) failAfterPages(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failAfter, f.failLeft = n, n
}

// hold makes log reads wait until the returned release is called;
// entered signals each read that starts waiting.
func (f *evFakeMC) hold() (entered <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate, f.entered = make(chan struct{}), make(chan struct{}, 16)
	gate := f.gate
	var once sync.Once
	return f.entered, func() { once.Do(func() { close(gate) }) }
}

func (f *evFakeMC) queryCount(kind plugin.LogKind) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queries[kind])
}

func (f *evFakeMC) lastQuery(kind plugin.LogKind) plugin.LogQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	qs := f.queries[kind]
	if len(qs) == 0 {
		return plugin.LogQuery{}
	}
	return qs[len(qs)-1]
}

func recTime(kind plugin.LogKind, r plugin.LogRecord) time.Time {
	t, _ := detect.RecordTime(kind, r)
	return t
}

func (f *evFakeMC) EachLogPage(ctx context.Context, kind plugin.LogKind, q plugin.LogQuery, fn func(plugin.LogPage) error) error {
	f.mu.Lock()
	gate, entered := f.gate, f.entered
	f.mu.Unlock()
	if gate != nil {
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	f.queries[kind] = append(f.queries[kind], q)
	var sel []plugin.LogRecord
	for _, r := range f.logs[kind] {
		t := recTime(kind, r)
		if t.IsZero() || (!t.Before(q.From) && !t.After(q.To)) {
			sel = append(sel, r)
		}
	}
	f.mu.Unlock()
	sort.SliceStable(sel, func(i, j int) bool { return recTime(kind, sel[i]).Before(recTime(kind, sel[j])) })
	size := q.PageSize
	if size <= 0 {
		size = 100
	}
	for i := 0; i < len(sel); i += size {
		f.mu.Lock()
		if f.failAfter > 0 {
			if f.failLeft == 0 {
				f.failAfter = 0
				f.mu.Unlock()
				return plugin.Errorf(plugin.EUNAVAILABLE, "Mimecast answered HTTP 503 after 3 attempts")
			}
			f.failLeft--
		}
		f.pages++
		f.mu.Unlock()
		end := min(i+size, len(sel))
		next := ""
		if end < len(sel) {
			next = fmt.Sprintf("p%d", end)
		}
		if err := fn(plugin.LogPage{Records: sel[i:end], Next: next}); err != nil {
			return err
		}
	}
	return nil
}

func (f *evFakeMC) Account(ctx context.Context) (plugin.Account, error) {
	return plugin.Account{Code: "C1", Name: "Acme", Packages: []string{plugin.AwarenessPackage}}, nil
}

func (f *evFakeMC) EachGradePage(ctx context.Context, pageSize int, fn func([]plugin.UserGrade) error) error {
	f.mu.Lock()
	g := append([]plugin.UserGrade(nil), f.grades...)
	f.mu.Unlock()
	return fn(g)
}

func (f *evFakeMC) FindGroups(ctx context.Context, query string) ([]plugin.Group, error) {
	return nil, plugin.Errorf(plugin.EUNAVAILABLE, "not in this fake")
}
func (f *evFakeMC) CreateGroup(ctx context.Context, name string) (plugin.Group, error) {
	return plugin.Group{}, plugin.Errorf(plugin.EUNAVAILABLE, "not in this fake")
}
func (f *evFakeMC) AddMembers(ctx context.Context, groupID string, emails []string) ([]plugin.MemberResult, error) {
	return nil, plugin.Errorf(plugin.EUNAVAILABLE, "not in this fake")
}
func (f *evFakeMC) RemoveMembers(ctx context.Context, groupID string, emails []string) ([]plugin.MemberResult, error) {
	return nil, plugin.Errorf(plugin.EUNAVAILABLE, "not in this fake")
}
func (f *evFakeMC) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	return nil, plugin.Errorf(plugin.EUNAVAILABLE, "not in this fake")
}

// evEnv is a Service on a temp bbolt store with the fake Mimecast, the
// real detector and a settable clock.
type evEnv struct {
	tb    testing.TB
	st    *store.Store
	mc    *evFakeMC
	clock *evClock
	svc   *plugin.Service
	opts  plugin.ServiceOptions
}

var evMasterKey = bytes.Repeat([]byte{0x24}, 32)

// evNow is the test's "now": records are generated before it.
var evNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func newEvEnv(tb testing.TB) *evEnv {
	tb.Helper()
	st, err := store.Open(filepath.Join(tb.TempDir(), "ev.db"), store.Options{MasterKey: evMasterKey, Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatalf("store.Open: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	e := &evEnv{tb: tb, st: st, mc: newEvFakeMC(), clock: &evClock{t: evNow}}
	e.opts = plugin.ServiceOptions{
		Store:    st,
		Mimecast: func(plugin.MimecastSettings) (plugin.Mimecast, error) { return e.mc, nil },
		Detector: detect.New,
		Logger:   zerolog.Nop(),
		Now:      e.clock.Now,
	}
	e.svc = e.newService()
	return e
}

// newService builds a Service on the same store (a "restart").
func (e *evEnv) newService() *plugin.Service {
	svc := plugin.NewService(e.opts)
	plugin.SetWebhookSleep(svc, func(ctx context.Context, d time.Duration) error { return ctx.Err() })
	e.tb.Cleanup(func() { svc.Close() })
	return svc
}

func evConfig(name string, ev *plugin.EventSettings) plugin.Configuration {
	return plugin.Configuration{
		Name: name,
		Mimecast: plugin.MimecastSettings{
			BaseURL: "https://mimecast.invalid", Auth: plugin.AuthLegacy,
			AppID: "app", AppKey: "events-app-key", AccessKey: "events-access-key", SecretKey: "c2VjcmV0LWtleS12YWx1ZQ==",
			PageSize: 50,
		},
		Events: ev,
	}
}

func (e *evEnv) create(name string, ev *plugin.EventSettings) {
	e.tb.Helper()
	if _, err := e.svc.CreateConfiguration(context.Background(), "admin", evConfig(name, ev)); err != nil {
		e.tb.Fatalf("CreateConfiguration: %v", err)
	}
}

func (e *evEnv) pull(name string) plugin.EventPullStats {
	e.tb.Helper()
	res, err := plugin.PullEventsNow(context.Background(), e.svc, name)
	if err != nil {
		e.tb.Fatalf("pull: %v", err)
	}
	return res
}

// allEvents reads every stored event of the configuration.
func (e *evEnv) allEvents(name string) []plugin.RiskEvent {
	e.tb.Helper()
	var out []plugin.RiskEvent
	f := plugin.EventFilter{Limit: 1000}
	for {
		evs, next, err := e.svc.Events(context.Background(), name, f)
		if err != nil {
			e.tb.Fatalf("Events: %v", err)
		}
		out = append(out, evs...)
		if next == "" {
			return out
		}
		f.Cursor = next
	}
}

func eventIDs(evs []plugin.RiskEvent) map[string]plugin.RiskEvent {
	m := make(map[string]plugin.RiskEvent, len(evs))
	for _, e := range evs {
		m[e.ID] = e
	}
	return m
}

func mtime(t time.Time) string { return t.UTC().Format(detect.TimeLayout) }

// Record builders. i makes the message id unique.

func evClick(user, category, action string, at time.Time, i int) plugin.LogRecord {
	return plugin.LogRecord{
		"userEmailAddress": user, "fromUserEmailAddress": "bad@evil.example.net",
		"url": fmt.Sprintf("http://bad.example.org/%d", i), "subject": "secret subject",
		"action": action, "scanResult": "malicious", "category": category,
		"date": mtime(at), "route": "inbound", "creationMethod": "User Click",
		"messageId": fmt.Sprintf("<c%d@mail.example.net>", i),
	}
}

func evCleanClick(user string, at time.Time, i int) plugin.LogRecord {
	r := evClick(user, "Business", "allow", at, i)
	r["scanResult"] = "clean"
	return r
}

func evAttachment(sender, recipient, route string, at time.Time, i int) plugin.LogRecord {
	return plugin.LogRecord{
		"senderAddress": sender, "recipientAddress": recipient, "fileName": fmt.Sprintf("f%d.xlsm", i),
		"fileHash": fmt.Sprintf("%064x", i), "result": "malicious", "route": route,
		"date": mtime(at), "messageId": fmt.Sprintf("<a%d@mail.example.com>", i), "subject": "RE",
	}
}

func evImpersonation(recipient string, at time.Time, i int, identifiers ...any) plugin.LogRecord {
	return plugin.LogRecord{
		"senderAddress": "ceo@examp1e.com", "recipientAddress": recipient, "identifiers": identifiers,
		"action": "hold", "taggedMalicious": true, "eventTime": mtime(at),
		"messageId": fmt.Sprintf("<i%d@mail.examp1e.com>", i), "subject": "wire now",
	}
}

func evDLP(sender, action string, at time.Time, i int) plugin.LogRecord {
	return plugin.LogRecord{
		"senderAddress": sender, "recipientAddress": "x@partner.example.net", "route": "outbound",
		"policy": "Confidential", "action": action, "eventTime": mtime(at),
		"messageId": fmt.Sprintf("<d%d@mail.example.com>", i), "subject": "numbers",
	}
}

// evMix adds n records of each log, spread over the window before end,
// a fifth of them events; it returns the records by kind.
func evMix(mc *evFakeMC, n int, end time.Time, window time.Duration, seed int) {
	step := window / time.Duration(n+1)
	for i := 0; i < n; i++ {
		at := end.Add(-window + step*time.Duration(i+1))
		id := seed*1_000_000 + i
		user := fmt.Sprintf("user%d@example.com", i%37)
		if i%5 == 0 {
			mc.add(plugin.LogURL, evClick(user, "Phishing & Fraud", "warn", at, id))
			mc.add(plugin.LogAttachment, evAttachment(user, "y@example.com", "outbound", at, id))
			mc.add(plugin.LogImpersonation, evImpersonation(user, at, id, "internal_user_name", "targeted_threat_dictionary"))
			mc.add(plugin.LogDLP, evDLP(user, "block", at, id))
		} else {
			mc.add(plugin.LogURL, evCleanClick(user, at, id))
			r := evAttachment(user, "y@example.com", "inbound", at, id)
			r["result"] = "safe"
			mc.add(plugin.LogAttachment, r)
			r = evImpersonation(user, at, id, "newly_observed_domain")
			mc.add(plugin.LogImpersonation, r)
			mc.add(plugin.LogDLP, evDLP(user, "notification", at, id))
		}
	}
}

// expectedEvents runs the default detector over every record in the
// fake within [from, to].
func expectedEvents(tb testing.TB, mc *evFakeMC, from, to time.Time) map[string]plugin.RiskEvent {
	tb.Helper()
	d, err := detect.New(nil, false)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]plugin.RiskEvent{}
	mc.mu.Lock()
	defer mc.mu.Unlock()
	for kind, recs := range mc.logs {
		for _, r := range recs {
			t := recTime(kind, r)
			if t.Before(from) || t.After(to) {
				continue
			}
			evs, err := d.Detect(kind, r)
			if err != nil {
				continue
			}
			for _, e := range evs {
				out[e.ID] = e
			}
		}
	}
	return out
}
