package plugin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mimecast-ure/plugin"
)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := plugin.ErrorCode(err); got != code {
		t.Fatalf("got error %v (code %q), want code %q", err, got, code)
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestEventPullStoresEventsAndCheckpoints(t *testing.T) {
	e := newEvEnv(t)
	e.create("acme", &plugin.EventSettings{Enabled: true})
	evMix(e.mc, 300, evNow.Add(-time.Minute), 6*24*time.Hour, 1)
	// Older than the 7-day lookback: never read on the first run.
	e.mc.add(plugin.LogURL, evClick("old@example.com", "Malware", "block", evNow.AddDate(0, 0, -8), 99))

	res := e.pull("acme")
	want := expectedEvents(t, e.mc, evNow.AddDate(0, 0, -7), evNow)
	got := eventIDs(e.allEvents("acme"))
	if len(got) != len(want) || len(want) != 300 {
		t.Fatalf("got %d events, want %d (300)", len(got), len(want))
	}
	for id := range want {
		if _, ok := got[id]; !ok {
			t.Fatalf("event %s missing", id)
		}
	}
	if res.Events != 300 || res.Records != 1200 || res.Pages != 24 || res.Rejected != 0 {
		t.Errorf("got result %+v, want 300 events, 1200 records, 24 pages", res)
	}
	for _, kind := range plugin.LogKinds {
		q := e.mc.lastQuery(kind)
		if !q.OldestFirst || !q.From.Equal(evNow.AddDate(0, 0, -7)) || !q.To.Equal(evNow) || q.PageSize != 50 {
			t.Errorf("%s: got query %+v", kind, q)
		}
	}
	status, err := e.svc.EventsStatus(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(status) != 4 {
		t.Fatalf("got %d checkpoints", len(status))
	}
	newest := evNow.Add(-time.Minute).Add(-6 * 24 * time.Hour / 301).Truncate(time.Second)
	total := 0
	for _, cp := range status {
		if cp.Records != 300 || cp.Error != "" || !cp.LastPull.Equal(evNow) || cp.Through.Sub(newest).Abs() > time.Second {
			t.Errorf("%s: got %+v, want 300 records through ~%v", cp.Log, cp, newest)
		}
		total += cp.Events
	}
	if total != 300 {
		t.Errorf("checkpoints count %d events, want 300", total)
	}

	// The next pull starts at the checkpoint less the overlap and adds nothing.
	e.clock.Add(15 * time.Minute)
	res = e.pull("acme")
	if res.Events != 0 {
		t.Errorf("second pull added %d events", res.Events)
	}
	for _, cp := range status {
		q := e.mc.lastQuery(cp.Log)
		if want := cp.Through.Add(-10 * time.Minute); !q.From.Equal(want) {
			t.Errorf("%s: second pull from %v, want %v", cp.Log, q.From, want)
		}
	}
}

func TestEventPullResumesAfterFailure(t *testing.T) {
	run := func(t *testing.T, fail bool) (map[string]plugin.RiskEvent, int) {
		e := newEvEnv(t)
		e.create("acme", &plugin.EventSettings{Enabled: true})
		evMix(e.mc, 400, evNow.Add(-time.Hour), 5*24*time.Hour, 2)
		if fail {
			e.mc.failAfterPages(5) // the URL log fails on its 6th of 8 pages
			_, err := plugin.PullEventsNow(context.Background(), e.svc, "acme")
			if err == nil || !strings.Contains(err.Error(), "url log") {
				t.Fatalf("got %v, want the url log's error", err)
			}
			st, _ := e.svc.EventsStatus(context.Background(), "acme")
			if st[0].Error == "" || st[0].Records != 250 || st[0].Through.IsZero() {
				t.Fatalf("url checkpoint after failure: %+v", st[0])
			}
			for _, cp := range st[1:] {
				if cp.Error != "" || cp.Records != 400 {
					t.Errorf("%s should be unaffected: %+v", cp.Log, cp)
				}
			}
			partial := len(e.allEvents("acme"))
			// Restart: a new Service on the same store resumes.
			e.svc.Close()
			e.svc = e.newService()
			e.clock.Add(time.Minute)
			if _, err := plugin.PullEventsNow(context.Background(), e.svc, "acme"); err != nil {
				t.Fatalf("resumed pull: %v", err)
			}
			q := e.mc.lastQuery(plugin.LogURL)
			if want := st[0].Through.Add(-10 * time.Minute); !q.From.Equal(want) {
				t.Errorf("resumed from %v, want %v", q.From, want)
			}
			if partial == 0 || partial >= 400 {
				t.Errorf("partial pull stored %d events", partial)
			}
		} else {
			e.pull("acme")
		}
		st, _ := e.svc.EventsStatus(context.Background(), "acme")
		counted := 0
		for _, cp := range st {
			if cp.Error != "" {
				t.Errorf("%s still shows error %q", cp.Log, cp.Error)
			}
			counted += cp.Events
		}
		return eventIDs(e.allEvents("acme")), counted
	}
	clean, cleanCount := run(t, false)
	resumed, resumedCount := run(t, true)
	if len(clean) != 400 || len(resumed) != len(clean) {
		t.Fatalf("got %d events after resume, %d uninterrupted (want 400)", len(resumed), len(clean))
	}
	for id, ev := range clean {
		r, ok := resumed[id]
		if !ok {
			t.Fatalf("event %s (%s) lost", id, ev.Rule)
		}
		if !r.At.Equal(ev.At) || r.User != ev.User || r.Rule != ev.Rule {
			t.Errorf("event %s differs: %+v vs %+v", id, r, ev)
		}
	}
	if cleanCount != 400 || resumedCount != 400 {
		t.Errorf("checkpoint counts %d and %d, want 400 each (no duplicates)", cleanCount, resumedCount)
	}
}

func TestEventPullOverlapCatchesLateRecords(t *testing.T) {
	e := newEvEnv(t)
	e.create("acme", &plugin.EventSettings{Enabled: true})
	evMix(e.mc, 50, evNow.Add(-time.Minute), 2*time.Hour, 3)
	first := e.pull("acme").Events
	st, _ := e.svc.EventsStatus(context.Background(), "acme")
	through := st[0].Through
	// A late click inside the overlap window, one outside it, one new.
	e.mc.add(plugin.LogURL,
		evClick("late@example.com", "Malware", "block", through.Add(-5*time.Minute), 7001),
		evClick("toolate@example.com", "Malware", "block", through.Add(-30*time.Minute), 7002),
		evClick("new@example.com", "Malware", "block", evNow.Add(5*time.Minute), 7003),
	)
	e.clock.Add(15 * time.Minute)
	res := e.pull("acme")
	if res.Events != 2 {
		t.Errorf("second pull added %d events, want 2 (late within overlap + new)", res.Events)
	}
	users := map[string]bool{}
	for _, ev := range e.allEvents("acme") {
		users[ev.User] = true
	}
	if !users["late@example.com"] || !users["new@example.com"] || users["toolate@example.com"] {
		t.Errorf("got users %v", users)
	}
	if got := len(e.allEvents("acme")); got != first+2 {
		t.Errorf("got %d events, want %d", got, first+2)
	}
}

func TestEventPullSetsAsideUnreadableRecords(t *testing.T) {
	e := newEvEnv(t)
	e.create("acme", &plugin.EventSettings{Enabled: true})
	t0 := evNow.Add(-2 * time.Hour)
	bad := evDLP("kay@example.com", "block", t0, 1)
	bad["eventTime"] = "last tuesday"
	// DLP bounces: Mimecast documents senderAddress "<>". They are
	// readable records that name no user: no event, nothing set aside.
	bounce := evDLP("<>", "block", t0.Add(time.Minute), 2)
	good := evDLP("kay@example.com", "block", t0.Add(2*time.Minute), 3)
	lastBounce := evDLP("<>", "block", t0.Add(3*time.Minute), 4)
	e.mc.add(plugin.LogDLP, bad, bounce, good, lastBounce)
	res := e.pull("acme")
	if res.Rejected != 1 || res.Events != 1 || res.Unattributed != 2 {
		t.Fatalf("got %+v, want 1 rejected, 1 event, 2 unattributed", res)
	}
	rej, err := e.st.Rejected(context.Background(), "acme", 10)
	if err != nil || len(rej) != 1 {
		t.Fatalf("Rejected: %v %v", rej, err)
	}
	if !strings.Contains(rej[0].Reason, "unreadable time") {
		t.Errorf("got reason %q", rej[0].Reason)
	}
	for _, r := range rej {
		if r.Log != plugin.LogDLP || r.Record == "" || strings.Contains(r.Record, "numbers") {
			t.Errorf("got rejected %+v (subject must be removed)", r)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(r.Record), &m); err != nil {
			t.Errorf("rejected record is not JSON: %v", err)
		}
	}
	st, _ := e.svc.EventsStatus(context.Background(), "acme")
	dlp := st[3]
	// The last bounce's time is readable: the checkpoint passes it.
	if dlp.Rejected != 1 || dlp.Records != 4 || dlp.Events != 1 || !dlp.Through.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("got dlp checkpoint %+v", dlp)
	}
	// The next pull re-reads the overlap: the record without a readable
	// time cannot be told apart, the fake serves it on every pull.
	e.clock.Add(15 * time.Minute)
	if res := e.pull("acme"); res.Rejected != 1 || res.Events != 0 {
		t.Errorf("second pull: got %+v, want only the timeless record set aside again", res)
	}
}

func TestEventRetention(t *testing.T) {
	e := newEvEnv(t)
	e.create("acme", &plugin.EventSettings{Enabled: true, RetentionDays: 10})
	e.mc.add(plugin.LogURL,
		evClick("a@example.com", "Malware", "block", evNow.AddDate(0, 0, -6), 1),
		evClick("b@example.com", "Malware", "block", evNow.AddDate(0, 0, -1), 2),
	)
	if got := e.pull("acme").Events; got != 2 {
		t.Fatalf("got %d events, want 2", got)
	}
	e.clock.Add(5 * 24 * time.Hour)
	res := e.pull("acme")
	if res.Pruned != 1 {
		t.Errorf("pruned %d, want 1", res.Pruned)
	}
	evs := e.allEvents("acme")
	if len(evs) != 1 || evs[0].User != "b@example.com" {
		t.Errorf("got %+v", evs)
	}
}

func putGrades(t *testing.T, e *evEnv, name string, users ...plugin.UserGrade) {
	t.Helper()
	if err := e.st.PutSnapshot(context.Background(), plugin.Snapshot{Configuration: name, TakenAt: evNow, Users: users}); err != nil {
		t.Fatal(err)
	}
}

func scoresByUID(t *testing.T, e *evEnv) map[string]plugin.ScoredRecord {
	t.Helper()
	recs, err := e.svc.FetchScores(context.Background(), "acme", nil)
	if err != nil {
		t.Fatalf("FetchScores: %v", err)
	}
	m := map[string]plugin.ScoredRecord{}
	for _, r := range recs {
		m[r.UID] = r
	}
	return m
}

func scoringEnv(t *testing.T) *evEnv {
	e := newEvEnv(t)
	e.create("acme", &plugin.EventSettings{Enabled: true, Scoring: true, LookbackDays: 60, HalfLife: plugin.Duration(720 * time.Hour)})
	putGrades(t, e, "acme",
		plugin.UserGrade{Email: "Alice@Example.com", Risk: "B", Name: "Alice", Department: "Sales", Knowledge: "C"},
		plugin.UserGrade{Email: "bob@example.com", Risk: "A"},
		plugin.UserGrade{Email: "carol@example.com", Risk: "F"},
	)
	e.mc.add(plugin.LogURL,
		evClick("alice@example.com", "Malware", "block", evNow, 1),                             // 120, fresh
		evClick("alice@example.com", "Phishing & Fraud", "warn", evNow.Add(-720*time.Hour), 2), // 100, one half-life old
		evClick("carol@example.com", "Phishing & Fraud", "warn", evNow, 3),
		evClick("dave@example.com", "Botnets", "warn", evNow, 4), // no grade
	)
	e.pull("acme")
	return e
}

func TestEventScoring(t *testing.T) {
	e := scoringEnv(t)
	got := scoresByUID(t, e)
	for uid, want := range map[string][2]int{ // {score, grade score}
		"alice@example.com": {430, 600}, // 600 - 120 - 50
		"bob@example.com":   {800, 800},
		"carol@example.com": {1, 1}, // never below 1
	} {
		if r := got[uid]; r.Score != want[0] || r.GradeScore != want[1] {
			t.Errorf("%s: got score %d grade score %d, want %v", uid, r.Score, r.GradeScore, want)
		}
	}
	if _, ok := got["dave@example.com"]; ok {
		t.Errorf("a user without a grade was scored")
	}
	// One half-life later, with no pull in between: contributions halve.
	e.clock.Add(720 * time.Hour)
	if r := scoresByUID(t, e)["alice@example.com"]; r.Score != 515 {
		t.Errorf("after a half-life got %d, want 515", r.Score)
	}
	// A rule turned off and another reweighted count at once.
	cfg := evConfig("acme", &plugin.EventSettings{Enabled: true, Scoring: true, LookbackDays: 60, HalfLife: plugin.Duration(720 * time.Hour),
		Rules: map[string]plugin.RuleSettings{"clicked_malware": {Enabled: ptrTo(false)}, "clicked_phishing": {Weight: ptrTo(200.0)}}})
	if _, err := e.svc.UpdateConfiguration(context.Background(), "admin", "acme", cfg); err != nil {
		t.Fatal(err)
	}
	if r := scoresByUID(t, e)["alice@example.com"]; r.Score != 550 { // 600 - 200/4
		t.Errorf("after reweighting got %d, want 550", r.Score)
	}
	// Scoring off: the grade score.
	cfg.Events.Scoring = false
	if _, err := e.svc.UpdateConfiguration(context.Background(), "admin", "acme", cfg); err != nil {
		t.Fatal(err)
	}
	if r := scoresByUID(t, e)["alice@example.com"]; r.Score != 600 {
		t.Errorf("scoring off: got %d, want 600", r.Score)
	}
}

func TestUserDetail(t *testing.T) {
	e := scoringEnv(t)
	ctx := context.Background()
	d, err := e.svc.UserDetail(ctx, "acme", "<ALICE@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	if d.UID != "alice@example.com" || d.Grade != "B" || d.GradeScore != 600 || d.Score != 430 || d.Name != "Alice" {
		t.Errorf("got %+v", d)
	}
	if len(d.Events) != 2 {
		t.Fatalf("got %d events, want 2", len(d.Events))
	}
	first, second := d.Events[0], d.Events[1]
	if first.Rule != "clicked_malware" || first.Weight != 120 || first.Contribution != 120 || first.Evidence["url"] == "" {
		t.Errorf("got first %+v", first)
	}
	if second.Rule != "clicked_phishing" || second.Weight != 100 || second.Contribution != 50 {
		t.Errorf("got second %+v", second)
	}
	if _, ok := first.Evidence["subject"]; ok {
		t.Errorf("subject in evidence")
	}
	// Events without a grade: explained, not scored.
	d, err = e.svc.UserDetail(ctx, "acme", "dave@example.com")
	if err != nil || d.Grade != "" || d.Score != 0 || len(d.Events) != 1 || d.Events[0].Contribution != 120 {
		t.Errorf("dave: got %+v, %v", d, err)
	}
	// A grade without events.
	d, err = e.svc.UserDetail(ctx, "acme", "bob@example.com")
	if err != nil || d.Score != 800 || len(d.Events) != 0 || d.Events == nil {
		t.Errorf("bob: got %+v, %v", d, err)
	}
	_, err = e.svc.UserDetail(ctx, "acme", "nobody@example.com")
	wantCode(t, err, plugin.ENOTFOUND)
	_, err = e.svc.UserDetail(ctx, "nope", "alice@example.com")
	wantCode(t, err, plugin.ENOTFOUND)
}

func TestTargets(t *testing.T) {
	e := newEvEnv(t)
	e.create("acme", &plugin.EventSettings{Enabled: true, LookbackDays: 60, Rules: map[string]plugin.RuleSettings{"clicked_spam": {Enabled: ptrTo(false)}}})
	for i, r := range []struct {
		user string
		ago  time.Duration
	}{
		{"one@example.com", time.Hour}, {"one@example.com", 2 * time.Hour}, {"one@example.com", 3 * 24 * time.Hour},
		{"two@example.com", 30 * time.Minute}, {"three@example.com", 40 * 24 * time.Hour},
	} {
		e.mc.add(plugin.LogURL, evClick(r.user, "Phishing & Fraud", "block", evNow.Add(-r.ago), i))
	}
	e.mc.add(plugin.LogURL, evClick("four@example.com", "Malware", "block", evNow, 99))
	e.pull("acme")
	ctx := context.Background()
	got, err := e.svc.Targets(ctx, "acme", "clicked_phishing", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rule != "clicked_phishing" || got.Since != "30d" || len(got.Users) != 2 {
		t.Fatalf("got %+v", got)
	}
	if u := got.Users[0]; u.UID != "one@example.com" || u.Count != 3 || !u.LastAt.Equal(evNow.Add(-time.Hour)) {
		t.Errorf("got first %+v", u)
	}
	if u := got.Users[1]; u.UID != "two@example.com" || u.Count != 1 {
		t.Errorf("got second %+v", u)
	}
	got, _ = e.svc.Targets(ctx, "acme", "clicked_phishing", 60*24*time.Hour)
	if len(got.Users) != 3 || got.Since != "60d" {
		t.Errorf("60d: got %+v", got)
	}
	got, err = e.svc.Targets(ctx, "acme", "clicked_spam", 0) // disabled rules still exist
	if err != nil || len(got.Users) != 0 || got.Users == nil {
		t.Errorf("disabled rule: got %+v, %v", got, err)
	}
	for _, tc := range []struct {
		rule  string
		since time.Duration
	}{{"clicked_everything", 0}, {"malicious_url_sent", 0}, {"", 0}, {"clicked_phishing", -time.Hour}} {
		_, err := e.svc.Targets(ctx, "acme", tc.rule, tc.since)
		wantCode(t, err, plugin.EINVALID)
	}
	_, err = e.svc.Targets(ctx, "nope", "clicked_phishing", 0)
	wantCode(t, err, plugin.ENOTFOUND)
}

func TestEventsListing(t *testing.T) {
	e := newEvEnv(t)
	e.create("acme", &plugin.EventSettings{Enabled: true})
	for i := 0; i < 7; i++ {
		e.mc.add(plugin.LogURL, evClick("pat@example.com", "Malware", "block", evNow.Add(-time.Duration(i)*time.Hour), i))
	}
	e.mc.add(plugin.LogDLP, evDLP("sam@example.com", "block", evNow.Add(-time.Hour), 1))
	e.pull("acme")
	ctx := context.Background()
	page, next, err := e.svc.Events(ctx, "acme", plugin.EventFilter{User: "<PAT@example.com>", Limit: 3})
	if err != nil || len(page) != 3 || next == "" || !page[0].At.After(page[1].At) {
		t.Fatalf("got %d events, next %q, %v", len(page), next, err)
	}
	rest, next2, err := e.svc.Events(ctx, "acme", plugin.EventFilter{User: "pat@example.com", Limit: 10, Cursor: next})
	if err != nil || len(rest) != 4 || next2 != "" {
		t.Errorf("second page: %d events, next %q, %v", len(rest), next2, err)
	}
	all, _, _ := e.svc.Events(ctx, "acme", plugin.EventFilter{Limit: 5000})
	if len(all) != 8 {
		t.Errorf("got %d events, want 8", len(all))
	}
	dlp, _, _ := e.svc.Events(ctx, "acme", plugin.EventFilter{Rule: "sensitive_data_exposure"})
	if len(dlp) != 1 || dlp[0].Evidence["policy"] != "Confidential" {
		t.Errorf("got %+v", dlp)
	}
	_, _, err = e.svc.Events(ctx, "nope", plugin.EventFilter{})
	wantCode(t, err, plugin.ENOTFOUND)
}

func TestPullEventsAsync(t *testing.T) {
	e := newEvEnv(t)
	e.create("acme", &plugin.EventSettings{Enabled: true})
	e.create("off", nil)
	ctx := context.Background()
	wantCode(t, e.svc.PullEvents(ctx, "nope"), plugin.ENOTFOUND)
	err := e.svc.PullEvents(ctx, "off")
	wantCode(t, err, plugin.EINVALID)
	if !strings.Contains(plugin.ErrorMessage(err), "events are not enabled for this configuration") {
		t.Errorf("got message %q", plugin.ErrorMessage(err))
	}
	e.mc.add(plugin.LogURL, evClick("a@example.com", "Malware", "block", evNow.Add(-time.Hour), 1))
	if err := e.svc.PullEvents(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		st, _ := e.svc.EventsStatus(ctx, "acme")
		return len(st) == 4 && !st[3].LastPull.IsZero()
	})
	if n := len(e.allEvents("acme")); n != 1 {
		t.Errorf("got %d events", n)
	}
	_, err = e.svc.EventsStatus(ctx, "nope")
	wantCode(t, err, plugin.ENOTFOUND)
}

// A pull asked for while one runs is queued (once) and runs when the
// running one ends; EventsPullState shows both and WaitEventsIdle waits
// for them.
func TestPullEventsWhileRunning(t *testing.T) {
	e := newEvEnv(t)
	e.create("acme", &plugin.EventSettings{Enabled: true})
	ctx := context.Background()
	if st, err := e.svc.EventsPullState(ctx, "acme"); err != nil || st != (plugin.EventsPullState{}) {
		t.Fatalf("before any pull: got %+v, %v", st, err)
	}
	_, err := e.svc.EventsPullState(ctx, "nope")
	wantCode(t, err, plugin.ENOTFOUND)

	entered, release := e.mc.hold()
	defer release()
	e.mc.add(plugin.LogURL, evClick("a@example.com", "Malware", "block", evNow.Add(-time.Hour), 1))
	if err := e.svc.PullEvents(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	st, _ := e.svc.EventsPullState(ctx, "acme")
	if !st.Running || st.Queued || !st.StartedAt.Equal(evNow) || !st.FinishedAt.IsZero() || st.Pulls != 0 {
		t.Errorf("after PullEvents: got %+v, want running", st)
	}
	<-entered // the pull is reading the URL log
	// Two more requests while it runs: one follow-up is queued.
	for i := 0; i < 2; i++ {
		if err := e.svc.PullEvents(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
	}
	st, _ = e.svc.EventsPullState(ctx, "acme")
	if !st.Running || !st.Queued || st.Pulls != 0 {
		t.Errorf("during the pull: got %+v, want running and queued", st)
	}
	// Waiting gives up with the caller's context while the pull runs.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := e.svc.WaitEventsIdle(short, "acme"); err == nil {
		t.Errorf("WaitEventsIdle returned while a pull ran")
	}
	e.clock.Add(time.Minute)
	release()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	st, err = e.svc.WaitEventsIdle(wctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if st.Running || st.Queued || st.Pulls != 2 || st.Error != "" || !st.FinishedAt.Equal(evNow.Add(time.Minute)) {
		t.Errorf("after both pulls: got %+v, want 2 pulls finished", st)
	}
	if n := e.mc.queryCount(plugin.LogURL); n != 2 {
		t.Errorf("got %d reads of the URL log, want 2 (the pull and one follow-up)", n)
	}
	if n := len(e.allEvents("acme")); n != 1 {
		t.Errorf("got %d events, want 1", n)
	}
	// A pull that fails says so.
	e.mc.add(plugin.LogAttachment, evAttachment("b@example.com", "c@example.com", "inbound", evNow.Add(-time.Hour), 2))
	e.mc.failAfterPages(1) // the URL page, then the attachment log fails
	if err := e.svc.PullEvents(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if st, err = e.svc.WaitEventsIdle(wctx, "acme"); err != nil || st.Pulls != 3 || !strings.Contains(st.Error, "503") {
		t.Errorf("after a failed pull: got %+v, %v", st, err)
	}
	e.svc.Close()
	if err := e.svc.PullEvents(ctx, "acme"); plugin.ErrorCode(err) != plugin.EUNAVAILABLE {
		t.Errorf("PullEvents after Close: got %v, want unavailable", err)
	}
	if st, _ := e.svc.EventsPullState(ctx, "acme"); st.Running || st.Queued {
		t.Errorf("after a refused pull: got %+v", st)
	}
}

// waitFor polls cond (a pull runs in the background) for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEventLoops(t *testing.T) {
	e := newEvEnv(t)
	e.create("acme", &plugin.EventSettings{Enabled: true})
	e.create("quiet", &plugin.EventSettings{Enabled: false})
	e.mc.add(plugin.LogURL, evClick("a@example.com", "Malware", "block", evNow.Add(-time.Hour), 1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	loops := plugin.EventLoops(e.svc)
	if len(loops) != 1 || loops["acme"] != 15*time.Minute {
		t.Fatalf("got loops %v", loops)
	}
	// The loop pulls at once.
	waitFor(t, func() bool { return len(e.allEvents("acme")) == 1 })

	// A new interval restarts the loop; disabling stops it; enabling starts one.
	upd := func(name string, ev *plugin.EventSettings) {
		t.Helper()
		if _, err := e.svc.UpdateConfiguration(ctx, "admin", name, evConfig(name, ev)); err != nil {
			t.Fatal(err)
		}
	}
	upd("acme", &plugin.EventSettings{Enabled: true, Interval: plugin.Duration(time.Hour)})
	if got := plugin.EventLoops(e.svc)["acme"]; got != time.Hour {
		t.Errorf("got interval %v, want 1h", got)
	}
	upd("quiet", &plugin.EventSettings{Enabled: true, Interval: plugin.Duration(2 * time.Minute)})
	upd("acme", &plugin.EventSettings{Enabled: false})
	loops = plugin.EventLoops(e.svc)
	if len(loops) != 1 || loops["quiet"] != 2*time.Minute {
		t.Errorf("got loops %v", loops)
	}
	if err := e.svc.DeleteConfiguration(ctx, "admin", "quiet"); err != nil {
		t.Fatal(err)
	}
	if loops := plugin.EventLoops(e.svc); len(loops) != 0 {
		t.Errorf("got loops %v after delete", loops)
	}
	done := make(chan struct{})
	go func() { e.svc.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	wantCode(t, e.svc.PullEvents(context.Background(), "acme"), plugin.EINVALID) // acme has events off now
}

// hookRecv is an httptest webhook receiver.
type hookRecv struct {
	mu       sync.Mutex
	srv      *httptest.Server
	bodies   [][]byte
	headers  []http.Header
	statuses []int // answered in order; 200 once exhausted
}

func newHookRecv(t *testing.T) *hookRecv {
	h := &hookRecv{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, b)
		h.headers = append(h.headers, r.Header.Clone())
		status := 200
		if len(h.statuses) > 0 {
			status, h.statuses = h.statuses[0], h.statuses[1:]
		}
		h.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookRecv) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bodies)
}

const nudgeSecret = "nudge-secret-s3cr3t"

func TestNudges(t *testing.T) {
	recv := newHookRecv(t)
	e := newEvEnv(t)
	hookURL := recv.srv.URL + "/hook/T0KEN123"
	e.create("acme", &plugin.EventSettings{Enabled: true, NudgeWebhook: &plugin.Webhook{URL: hookURL, Secret: nudgeSecret}})
	e.mc.add(plugin.LogURL,
		evClick("alice@example.com", "Phishing & Fraud", "warn", evNow.Add(-3*time.Hour), 1),
		evClick("alice@example.com", "Phishing & Fraud", "block", evNow.Add(-2*time.Hour), 2), // same rule, same day
		evClick("alice@example.com", "Malware", "block", evNow.Add(-time.Hour), 3),
		evClick("carol@example.com", "Phishing & Fraud", "warn", evNow.Add(-3*24*time.Hour), 4), // too old to nudge
	)
	e.mc.add(plugin.LogImpersonation, evImpersonation("bob@example.com", evNow.Add(-time.Hour), 5, "internal_user_name")) // nudge off
	res := e.pull("acme")
	if res.Nudges != 2 || recv.count() != 2 {
		t.Fatalf("got %d nudges (%d received), want 2", res.Nudges, recv.count())
	}
	rules := map[string]bool{}
	for i, body := range recv.bodies {
		h := recv.headers[i]
		ts, sig := h.Get("X-URE-Timestamp"), h.Get("X-URE-Signature")
		if !plugin.VerifyWebhook(nudgeSecret, body, ts, sig, evNow) || !strings.HasPrefix(sig, "sha256=") {
			t.Errorf("bad signature %q", sig)
		}
		if n, _ := strconv.ParseInt(ts, 10, 64); n != evNow.Unix() {
			t.Errorf("got timestamp %q", ts)
		}
		// The signature covers the timestamp: the same body and signature
		// under another timestamp do not verify.
		later := strconv.FormatInt(evNow.Unix()+60, 10)
		if plugin.VerifyWebhook(nudgeSecret, body, later, sig, evNow) {
			t.Errorf("signature verified under another timestamp")
		}
		if h.Get("Content-Type") != "application/json" {
			t.Errorf("got content type %q", h.Get("Content-Type"))
		}
		var m struct {
			Type, Configuration, User, Rule, Title string
			At                                     time.Time
			Evidence                               map[string]string
		}
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		if m.Type != "nudge" || m.Configuration != "acme" || m.User != "alice@example.com" || m.Title == "" || m.At.IsZero() || m.Evidence["url"] == "" {
			t.Errorf("got nudge %+v", m)
		}
		if strings.Contains(string(body), "secret subject") {
			t.Errorf("message content in a nudge")
		}
		rules[m.Rule] = true
	}
	if !rules["clicked_phishing"] || !rules["clicked_malware"] {
		t.Errorf("got rules %v", rules)
	}
	// Re-reading the overlap sends nothing again.
	e.clock.Add(15 * time.Minute)
	if res := e.pull("acme"); res.Nudges != 0 || recv.count() != 2 {
		t.Errorf("re-read sent %d more nudges", recv.count()-2)
	}
	// The next day, the same rule nudges again.
	e.clock.Add(24 * time.Hour)
	e.mc.add(plugin.LogURL, evClick("alice@example.com", "Phishing & Fraud", "warn", evNow.Add(24*time.Hour), 6))
	if res := e.pull("acme"); res.Nudges != 1 {
		t.Errorf("next day: got %d nudges, want 1", res.Nudges)
	}
	entries, err := e.svc.Audit(context.Background(), plugin.AuditFilter{Action: plugin.AuditNudge})
	if err != nil || len(entries) != 3 {
		t.Fatalf("got %d audit entries, %v", len(entries), err)
	}
	for _, a := range entries {
		b, _ := json.Marshal(a)
		if a.Outcome != "success" || a.Target != "acme" || strings.Contains(string(b), nudgeSecret) || strings.Contains(string(b), "T0KEN123") {
			t.Errorf("got audit entry %s", b)
		}
	}
}

// nudgeAudit returns the events.nudge audit entries as "outcome user"
// strings, in order.
func nudgeAudit(t *testing.T, e *evEnv) []string {
	t.Helper()
	entries, err := e.svc.Audit(context.Background(), plugin.AuditFilter{Action: plugin.AuditNudge})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(entries))
	for _, a := range entries {
		out = append(out, a.Outcome+" "+a.Detail["user"])
	}
	return out
}

// A failed nudge is audited and retried on the next pull, and the pull's
// other nudges are deferred to it, not dropped.
func TestNudgeDeliveryFailure(t *testing.T) {
	recv := newHookRecv(t)
	recv.statuses = []int{500, 502, 503}
	e := newEvEnv(t)
	var mu sync.Mutex
	var waits []time.Duration
	plugin.SetWebhookSleep(e.svc, func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return nil
	})
	e.create("acme", &plugin.EventSettings{Enabled: true, NudgeWebhook: &plugin.Webhook{URL: recv.srv.URL, Secret: nudgeSecret}})
	e.mc.add(plugin.LogURL,
		evClick("alice@example.com", "Malware", "block", evNow.Add(-time.Hour), 1),
		evClick("bob@example.com", "Malware", "block", evNow.Add(-time.Hour+time.Minute), 2),
	)
	res := e.pull("acme")
	if res.Nudges != 0 || recv.count() != 3 {
		t.Errorf("got %d nudges, %d attempts; want 0 and 3 (then the rest deferred)", res.Nudges, recv.count())
	}
	if len(waits) != 2 || waits[0] < time.Second || waits[1] < 2*time.Second || waits[1] > 3*time.Second {
		t.Errorf("got waits %v, want ~1s then ~2s", waits)
	}
	entries, _ := e.svc.Audit(context.Background(), plugin.AuditFilter{Action: plugin.AuditNudge})
	if len(entries) != 2 || entries[0].Outcome != "failure" || !strings.Contains(entries[0].Detail["error"], "3 attempts") ||
		entries[0].Detail["retry"] != "true" || entries[1].Outcome != "skipped" || entries[1].Detail["user"] != "bob@example.com" {
		t.Errorf("got audit %+v", entries)
	}
	// The receiver is back: the next pull delivers both, once each.
	e.clock.Add(15 * time.Minute)
	if res := e.pull("acme"); res.Nudges != 2 || recv.count() != 5 {
		t.Fatalf("retry pull: got %d nudges, %d requests; want 2 and 5", res.Nudges, recv.count())
	}
	users := map[string]bool{}
	for _, b := range recv.bodies[3:] {
		var m struct{ User, Rule string }
		if err := json.Unmarshal(b, &m); err != nil || m.Rule != "clicked_malware" {
			t.Errorf("got retried nudge %s (%v)", b, err)
		}
		users[m.User] = true
	}
	if !users["alice@example.com"] || !users["bob@example.com"] {
		t.Errorf("retried nudges went to %v", users)
	}
	want := []string{"failure alice@example.com", "skipped bob@example.com", "success alice@example.com", "success bob@example.com"}
	if got := nudgeAudit(t, e); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got audit %v, want %v", got, want)
	}
	// Nothing is pending any more: a third pull sends nothing.
	e.clock.Add(15 * time.Minute)
	if res := e.pull("acme"); res.Nudges != 0 || recv.count() != 5 {
		t.Errorf("third pull: got %d nudges, %d requests", res.Nudges, recv.count())
	}
}

// A nudge the receiver refuses (4xx) is not retried; one that keeps
// failing is given up once its event is too old to nudge about. Both are
// audited as failures.
func TestNudgeGivenUp(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		recv := newHookRecv(t)
		recv.statuses = []int{410}
		e := newEvEnv(t)
		e.create("acme", &plugin.EventSettings{Enabled: true, NudgeWebhook: &plugin.Webhook{URL: recv.srv.URL, Secret: nudgeSecret}})
		e.mc.add(plugin.LogURL,
			evClick("alice@example.com", "Malware", "block", evNow.Add(-time.Hour), 1),
			evClick("bob@example.com", "Malware", "block", evNow.Add(-time.Hour+time.Minute), 2),
		)
		// A 4xx does not stop the pull's other nudges: the receiver is up.
		if res := e.pull("acme"); res.Nudges != 1 || recv.count() != 2 {
			t.Errorf("got %d nudges, %d requests; want 1 and 2", res.Nudges, recv.count())
		}
		e.clock.Add(15 * time.Minute)
		if res := e.pull("acme"); res.Nudges != 0 || recv.count() != 2 {
			t.Errorf("refused nudge retried: %d nudges, %d requests", res.Nudges, recv.count())
		}
		want := []string{"failure alice@example.com", "success bob@example.com"}
		if got := nudgeAudit(t, e); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("got audit %v, want %v", got, want)
		}
	})
	t.Run("expired", func(t *testing.T) {
		recv := newHookRecv(t)
		recv.statuses = []int{503, 503, 503, 503, 503, 503}
		e := newEvEnv(t)
		e.create("acme", &plugin.EventSettings{Enabled: true, NudgeWebhook: &plugin.Webhook{URL: recv.srv.URL, Secret: nudgeSecret}})
		e.mc.add(plugin.LogURL, evClick("alice@example.com", "Malware", "block", evNow.Add(-time.Hour), 1))
		e.pull("acme")
		e.clock.Add(15 * time.Minute)
		e.pull("acme") // second try fails too
		if recv.count() != 6 {
			t.Fatalf("got %d requests, want 6 (two pulls' tries)", recv.count())
		}
		e.clock.Add(48 * time.Hour)
		if res := e.pull("acme"); res.Nudges != 0 || recv.count() != 6 {
			t.Errorf("an expired nudge was sent: %d nudges, %d requests", res.Nudges, recv.count())
		}
		want := []string{"failure alice@example.com", "failure alice@example.com", "failure alice@example.com"}
		got := nudgeAudit(t, e)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("got audit %v, want %v", got, want)
		}
		entries, _ := e.svc.Audit(context.Background(), plugin.AuditFilter{Action: plugin.AuditNudge})
		if last := entries[2]; last.Detail["retry"] != "" || last.Detail["tries"] != "2" || !strings.Contains(last.Detail["error"], "given up") {
			t.Errorf("got final audit %+v", last)
		}
		e.clock.Add(15 * time.Minute)
		e.pull("acme")
		if got := nudgeAudit(t, e); len(got) != 3 {
			t.Errorf("given-up nudge still pending: audit %v", got)
		}
	})
}

func TestSendWebhook(t *testing.T) {
	e := newEvEnv(t)
	ctx := context.Background()
	recv := newHookRecv(t)
	recv.statuses = []int{400}
	w := plugin.Webhook{URL: recv.srv.URL + "/x?token=T0KEN123", Secret: nudgeSecret}
	err := plugin.SendWebhook(ctx, e.svc, w, map[string]string{"a": "b"})
	wantCode(t, err, plugin.EINVALID)
	if recv.count() != 1 {
		t.Errorf("a 4xx was retried: %d attempts", recv.count())
	}
	if strings.Contains(err.Error(), "T0KEN123") || strings.Contains(err.Error(), nudgeSecret) {
		t.Errorf("error leaks: %v", err)
	}
	// Unreachable: three attempts, an error without the URL's token.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	err = plugin.SendWebhook(ctx, e.svc, plugin.Webhook{URL: dead.URL + "/p/T0KEN123", Secret: nudgeSecret}, 1)
	wantCode(t, err, plugin.EUNAVAILABLE)
	if strings.Contains(err.Error(), "T0KEN123") || !strings.Contains(err.Error(), "3 attempts") {
		t.Errorf("got %v", err)
	}
	// A custom sender is used when configured, with retries around it.
	calls := 0
	opts := e.opts
	opts.Webhooks = senderFunc(func(ctx context.Context, w plugin.Webhook, body []byte) error {
		calls++
		if calls < 3 {
			return errors.New("flaky")
		}
		return nil
	})
	svc := plugin.NewService(opts)
	plugin.SetWebhookSleep(svc, func(context.Context, time.Duration) error { return nil })
	t.Cleanup(func() { svc.Close() })
	if err := plugin.SendWebhook(ctx, svc, w, 1); err != nil || calls != 3 {
		t.Errorf("got %v after %d calls", err, calls)
	}
	// The signature is HMAC-SHA256 of "<timestamp>.<body>" in hex.
	const body = "The quick brown fox jumps over the lazy dog"
	const sig = "sha256=2f658d6aef4f246e91cd741bbcded7479e9605f9d41c9e248122a117e0e1765b"
	if got := plugin.SignWebhook("key", "1700000000", []byte(body)); got != sig {
		t.Errorf("got %s, want %s", got, sig)
	}
}

func TestVerifyWebhook(t *testing.T) {
	const body = "The quick brown fox jumps over the lazy dog"
	const sig = "sha256=2f658d6aef4f246e91cd741bbcded7479e9605f9d41c9e248122a117e0e1765b"
	at := time.Unix(1700000000, 0)
	tests := []struct {
		name, secret, body, ts, sig string
		now                         time.Time
		want                        bool
	}{
		{"valid", "key", body, "1700000000", sig, at, true},
		{"clock a little ahead", "key", body, "1700000000", sig, at.Add(plugin.WebhookTolerance), true},
		{"clock a little behind", "key", body, "1700000000", sig, at.Add(-plugin.WebhookTolerance), true},
		{"replayed later", "key", body, "1700000000", sig, at.Add(plugin.WebhookTolerance + time.Second), false},
		{"from the future", "key", body, "1700000000", sig, at.Add(-plugin.WebhookTolerance - time.Second), false},
		{"other timestamp", "key", body, "1700000001", sig, at, false},
		{"timestamp not decimal", "key", body, "+1700000000", sig, at, false},
		{"no timestamp", "key", body, "", sig, at, false},
		{"other body", "key", body + ".", "1700000000", sig, at, false},
		{"other secret", "kez", body, "1700000000", sig, at, false},
		{"no prefix", "key", body, "1700000000", strings.TrimPrefix(sig, "sha256="), at, false},
		{"no signature", "key", body, "1700000000", "", at, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := plugin.VerifyWebhook(tt.secret, []byte(tt.body), tt.ts, tt.sig, tt.now); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

type senderFunc func(ctx context.Context, w plugin.Webhook, body []byte) error

func (f senderFunc) Send(ctx context.Context, w plugin.Webhook, body []byte) error {
	return f(ctx, w, body)
}
