package store

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"mimecast-ure/plugin"
)

// makeEvents returns n events one minute apart ending at end, spread over
// three users and two rules.
func makeEvents(n int, end time.Time) []plugin.RiskEvent {
	out := make([]plugin.RiskEvent, n)
	for i := range out {
		out[i] = plugin.RiskEvent{
			ID: fmt.Sprintf("ev%05d", i), Rule: []string{"clicked_phishing", "malware_blocked"}[i%2],
			User: fmt.Sprintf("User%d@Acme.com", i%3), At: end.Add(-time.Duration(n-1-i) * time.Minute),
			MessageID: fmt.Sprintf("<m%d@x>", i), Log: plugin.LogURL, Weight: 10,
			Evidence: map[string]string{"url": "https://bad.example/" + fmt.Sprint(i)},
		}
	}
	return out
}

func ids(evs []plugin.RiskEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func TestSaveLogPage(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	mustCreate(t, s, "acme")
	now := clk.Now()
	evs := makeEvents(10, now)
	cp := plugin.Checkpoint{Log: plugin.LogURL, Through: now, LastPull: now, Records: 12, Events: 10, Rejected: 2}
	rej := []plugin.Rejected{{Log: plugin.LogURL, At: now, Reason: "no user", Record: "{}"}, {Log: plugin.LogURL, At: now, Reason: "bad time", Record: "{}"}}
	added, err := s.SaveLogPage(ctx, "acme", append(evs[:6:6], evs[0]), rej, cp)
	if err != nil || added != 6 {
		t.Fatalf("SaveLogPage = %d, %v; want 6 (duplicate in page skipped)", added, err)
	}
	added, err = s.SaveLogPage(ctx, "acme", evs, nil, cp)
	if err != nil || added != 4 {
		t.Fatalf("SaveLogPage again = %d, %v; want 4 new", added, err)
	}
	got, err := s.Checkpoint(ctx, "acme", plugin.LogURL)
	if err != nil || !got.Through.Equal(now) || got.Records != 12 {
		t.Errorf("Checkpoint = %+v, %v", got, err)
	}
	if got, err := s.Checkpoint(ctx, "acme", plugin.LogDLP); err != nil || got.Log != plugin.LogDLP || !got.Through.IsZero() {
		t.Errorf("Checkpoint of an unpulled log = %+v, %v; want zero with Log", got, err)
	}
	cp.Error = "boom"
	if err := s.PutCheckpoint(ctx, "acme", cp); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Checkpoint(ctx, "acme", plugin.LogURL); got.Error != "boom" {
		t.Errorf("PutCheckpoint not stored: %+v", got)
	}
	wantCode(t, s.PutCheckpoint(ctx, "acme", plugin.Checkpoint{}), plugin.EINVALID)

	// A failing page stores nothing: events, rejected and checkpoint together.
	bad := append(makeEvents(3, now.Add(time.Hour)), plugin.RiskEvent{Rule: "no id"})
	for i := range bad[:3] {
		bad[i].ID = "new" + bad[i].ID
	}
	if _, err := s.SaveLogPage(ctx, "acme", bad, rej, plugin.Checkpoint{Log: plugin.LogURL, Through: now.Add(time.Hour)}); err == nil {
		t.Fatalf("SaveLogPage with an event without id succeeded")
	}
	all, _, _ := s.Events(ctx, "acme", plugin.EventFilter{Limit: 100})
	if len(all) != 10 {
		t.Errorf("after a failed page: %d events, want 10", len(all))
	}
	if got, _ := s.Checkpoint(ctx, "acme", plugin.LogURL); !got.Through.Equal(now) {
		t.Errorf("failed page moved the checkpoint to %v", got.Through)
	}
	if r, _ := s.Rejected(ctx, "acme", 0); len(r) != 2 {
		t.Errorf("after a failed page: %d rejected, want 2", len(r))
	}
	// Stored events come back normalized and intact.
	e := all[0]
	if e.ID != "ev00009" || e.User != "user0@acme.com" || e.Evidence["url"] != "https://bad.example/9" || !e.At.Equal(now) || e.Weight != 10 {
		t.Errorf("newest event = %+v", e)
	}
}

func TestEventsQueries(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	mustCreate(t, s, "acme")
	now := clk.Now()
	evs := makeEvents(12, now) // ev00000 oldest ... ev00011 newest
	// Two events at the same instant order by id, descending.
	evs = append(evs, plugin.RiskEvent{ID: "ev00011b", Rule: "clicked_phishing", User: "user2@acme.com", At: now, Log: plugin.LogURL})
	if _, err := s.SaveLogPage(ctx, "acme", evs, nil, plugin.Checkpoint{Log: plugin.LogURL}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    plugin.EventFilter
		want []string
	}{
		{"all newest first", plugin.EventFilter{Limit: 5}, []string{"ev00011b", "ev00011", "ev00010", "ev00009", "ev00008"}},
		{"user", plugin.EventFilter{User: " USER1@acme.com "}, []string{"ev00010", "ev00007", "ev00004", "ev00001"}},
		{"rule", plugin.EventFilter{Rule: "malware_blocked", Limit: 3}, []string{"ev00011", "ev00009", "ev00007"}},
		{"user and rule", plugin.EventFilter{User: "user0@acme.com", Rule: "clicked_phishing"}, []string{"ev00006", "ev00000"}},
		{"since", plugin.EventFilter{Since: now.Add(-2 * time.Minute)}, []string{"ev00011b", "ev00011", "ev00010", "ev00009"}},
		{"since and user", plugin.EventFilter{User: "user2@acme.com", Since: now.Add(-3 * time.Minute)}, []string{"ev00011b", "ev00011", "ev00008"}},
		{"unknown user", plugin.EventFilter{User: "nobody@acme.com"}, []string{}},
		{"unknown rule", plugin.EventFilter{Rule: "nope"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := s.Events(ctx, "acme", tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(ids(got)) != fmt.Sprint(tt.want) {
				t.Errorf("ids = %v, want %v", ids(got), tt.want)
			}
		})
	}
	if got, _, _ := s.Events(ctx, "acme", plugin.EventFilter{}); len(got) != 13 {
		t.Errorf("default limit returned %d, want all 13", len(got))
	}
	_, _, err := s.Events(ctx, "acme", plugin.EventFilter{Cursor: "!!"})
	wantCode(t, err, plugin.EINVALID)
}

func TestEventsSinceOutOfRange(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	mustCreate(t, s, "acme")
	if _, err := s.SaveLogPage(ctx, "acme", makeEvents(5, clk.Now()), nil, plugin.Checkpoint{Log: plugin.LogURL}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		since time.Time
		f     plugin.EventFilter
		want  int
	}{
		{"2300", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), plugin.EventFilter{}, 0},
		{"9999", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), plugin.EventFilter{}, 0},
		{"2300 by user", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), plugin.EventFilter{User: "user1@acme.com"}, 0},
		{"1500", time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC), plugin.EventFilter{}, 5},
		{"year 2", time.Date(2, 1, 1, 0, 0, 0, 0, time.UTC), plugin.EventFilter{}, 5},
		{"1500 by rule", time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC), plugin.EventFilter{Rule: "clicked_phishing"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			f.Since = tt.since
			got, _, err := s.Events(ctx, "acme", f)
			if err != nil || len(got) != tt.want {
				t.Errorf("Events(since %v) = %d events, %v; want %d", tt.since, len(got), err, tt.want)
			}
		})
	}
	// Pruning before a time past the range removes everything, before
	// one under it nothing.
	if n, err := s.PruneEvents(ctx, "acme", time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil || n != 0 {
		t.Errorf("PruneEvents(1000) = %d, %v; want 0", n, err)
	}
	if n, err := s.PruneEvents(ctx, "acme", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil || n != 5 {
		t.Errorf("PruneEvents(3000) = %d, %v; want 5", n, err)
	}
}

func TestTimeBitsClamped(t *testing.T) {
	times := []time.Time{
		{}, time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), minIndexTime, minIndexTime.Add(time.Nanosecond),
		time.Unix(0, 0), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), maxIndexTime.Add(-time.Nanosecond),
		maxIndexTime, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		if a, b := timeBits(times[i-1]), timeBits(times[i]); a > b {
			t.Errorf("timeBits(%v) = %d > timeBits(%v) = %d; want the order of the times", times[i-1], a, times[i], b)
		}
	}
	if got := timeBits(time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)); got != math.MaxUint64 {
		t.Errorf("timeBits(2300) = %d, want the maximum", got)
	}
	if got := timeBits(time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC)); got != 0 {
		t.Errorf("timeBits(1500) = %d, want 0", got)
	}
}

func TestEventsPaging(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	mustCreate(t, s, "acme")
	evs := makeEvents(23, clk.Now())
	if _, err := s.SaveLogPage(ctx, "acme", evs, nil, plugin.Checkpoint{Log: plugin.LogURL}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []plugin.EventFilter{
		{Limit: 5}, {Limit: 23}, {Limit: 1}, {User: "user1@acme.com", Limit: 3}, {Rule: "clicked_phishing", Limit: 4},
		{User: "user0@acme.com", Rule: "malware_blocked", Limit: 1},
	} {
		t.Run(fmt.Sprintf("%s/%s/%d", f.User, f.Rule, f.Limit), func(t *testing.T) {
			want, _, err := s.Events(ctx, "acme", plugin.EventFilter{User: f.User, Rule: f.Rule, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			var got []plugin.RiskEvent
			pages := 0
			for {
				page, next, err := s.Events(ctx, "acme", f)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				got = append(got, page...)
				if next == "" {
					break
				}
				if len(page) != f.Limit {
					t.Errorf("page %d has %d events and a next cursor", pages, len(page))
				}
				f.Cursor = next
				if pages > 30 {
					t.Fatal("paging does not end")
				}
			}
			if fmt.Sprint(ids(got)) != fmt.Sprint(ids(want)) {
				t.Errorf("paged ids = %v, want %v", ids(got), ids(want))
			}
			if wantPages := max(1, (len(want)+f.Limit-1)/f.Limit); pages != wantPages {
				t.Errorf("%d pages, want %d", pages, wantPages)
			}
		})
	}
}

func TestUserEventsAndPrune(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	mustCreate(t, s, "acme")
	now := clk.Now()
	if got, err := s.UserEvents(ctx, "acme", "user1@acme.com"); err != nil || len(got) != 0 {
		t.Errorf("UserEvents before any = %v, %v", got, err)
	}
	if _, err := s.SaveLogPage(ctx, "acme", makeEvents(9, now), nil, plugin.Checkpoint{Log: plugin.LogURL}); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserEvents(ctx, "acme", "<User1@ACME.com>")
	if err != nil || fmt.Sprint(ids(got)) != "[ev00007 ev00004 ev00001]" {
		t.Errorf("UserEvents = %v, %v", ids(got), err)
	}
	n, err := s.PruneEvents(ctx, "acme", now.Add(-4*time.Minute)) // removes ev00000..ev00003
	if err != nil || n != 4 {
		t.Fatalf("PruneEvents = %d, %v; want 4", n, err)
	}
	got, _ = s.UserEvents(ctx, "acme", "user1@acme.com")
	if fmt.Sprint(ids(got)) != "[ev00007 ev00004]" {
		t.Errorf("UserEvents after prune = %v", ids(got))
	}
	if got, _, _ := s.Events(ctx, "acme", plugin.EventFilter{Rule: "malware_blocked"}); fmt.Sprint(ids(got)) != "[ev00007 ev00005]" {
		t.Errorf("rule index after prune = %v", ids(got))
	}
	if n, _ := s.PruneEvents(ctx, "acme", now.Add(-4*time.Minute)); n != 0 {
		t.Errorf("second prune removed %d", n)
	}
	// A pruned id can be stored again (it is new once more).
	if added, _ := s.SaveLogPage(ctx, "acme", makeEvents(9, now), nil, plugin.Checkpoint{Log: plugin.LogURL}); added != 4 {
		t.Errorf("re-save after prune added %d, want 4", added)
	}
}

func TestRejectedCapped(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	mustCreate(t, s, "acme")
	page := make([]plugin.Rejected, 300)
	for round := range 4 {
		for i := range page {
			page[i] = plugin.Rejected{Log: plugin.LogDLP, At: clk.Now(), Reason: fmt.Sprintf("r%d-%d", round, i)}
		}
		if _, err := s.SaveLogPage(ctx, "acme", nil, page, plugin.Checkpoint{Log: plugin.LogDLP}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.Rejected(ctx, "acme", 0)
	if err != nil || len(all) != maxRejected {
		t.Fatalf("Rejected(0) = %d, %v; want %d", len(all), err, maxRejected)
	}
	if all[0].Reason != "r3-299" || all[len(all)-1].Reason != "r0-200" {
		t.Errorf("Rejected range %s .. %s, want r3-299 .. r0-200", all[0].Reason, all[len(all)-1].Reason)
	}
	if few, _ := s.Rejected(ctx, "acme", 2); len(few) != 2 || few[1].Reason != "r3-298" {
		t.Errorf("Rejected(2) = %+v", few)
	}
}

func BenchmarkSaveLogPage500(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	base := time.Now()
	page := 0
	b.ReportAllocs()
	for b.Loop() {
		evs := makeEvents(500, base.Add(time.Duration(page)*500*time.Minute))
		for i := range evs {
			evs[i].ID = fmt.Sprintf("p%d-%d", page, i)
			evs[i].User = fmt.Sprintf("user%d@acme.com", (page*500+i)%5000)
		}
		page++
		if _, err := s.SaveLogPage(ctx, "acme", evs, nil, plugin.Checkpoint{Log: plugin.LogURL}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkEventsUserPage(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	now := time.Now()
	for p := range 40 {
		evs := makeEvents(500, now.Add(-time.Duration(p)*500*time.Minute))
		for i := range evs {
			evs[i].ID = fmt.Sprintf("p%d-%d", p, i)
			evs[i].User = fmt.Sprintf("user%d@acme.com", i%500)
		}
		if _, err := s.SaveLogPage(ctx, "acme", evs, nil, plugin.Checkpoint{Log: plugin.LogURL}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.UserEvents(ctx, "acme", "user7@acme.com")
		if err != nil || len(got) != 40 {
			b.Fatal(len(got), err)
		}
	}
}
