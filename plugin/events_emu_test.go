package plugin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mimecast-ure/detect"
	"mimecast-ure/internal/mimecasttest"
	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
	"mimecast-ure/store"
)

var evEmuKinds = map[plugin.LogKind]string{
	plugin.LogURL:           mimecasttest.KindURL,
	plugin.LogAttachment:    mimecasttest.KindAttachment,
	plugin.LogImpersonation: mimecasttest.KindImpersonation,
	plugin.LogDLP:           mimecasttest.KindDLP,
}

// evEmu is an evEnv whose Mimecast is the emulator behind the real client.
type evEmu struct {
	*evEnv
	emu *mimecasttest.Server
	srv *httptest.Server

	mu sync.Mutex
	// onLogRequest runs before the emulator serves a log request; n counts
	// that log's requests from 1.
	onLogRequest func(path string, n int)
	calls        map[string]int
}

func newEvEmu(tb testing.TB, volume, pageSize int) *evEmu {
	tb.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	vol := map[string]int{}
	for _, k := range evEmuKinds {
		vol[k] = volume
	}
	x := &evEmu{emu: mimecasttest.New(mimecasttest.Options{
		Users: 500, Seed: 11, LogVolume: vol, LogEnd: now.Add(-time.Minute), LogWindow: 6 * 24 * time.Hour, PageCap: 500,
	}), calls: map[string]int{}}
	x.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x.mu.Lock()
		x.calls[r.URL.Path]++
		n, f := x.calls[r.URL.Path], x.onLogRequest
		x.mu.Unlock()
		if f != nil {
			f(r.URL.Path, n)
		}
		x.emu.ServeHTTP(w, r)
	}))
	tb.Cleanup(x.srv.Close)
	st, err := store.Open(filepath.Join(tb.TempDir(), "ev.db"), store.Options{MasterKey: evMasterKey, Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatalf("store.Open: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	e := &evEnv{tb: tb, st: st, clock: &evClock{t: now}}
	e.opts = plugin.ServiceOptions{
		Store: st,
		Mimecast: mimecast.Factory(mimecast.Options{
			MaxAttempts: 3,
			Sleep:       func(ctx context.Context, d time.Duration) error { return ctx.Err() },
			Jitter:      func(time.Duration) time.Duration { return 0 },
		}),
		Detector: detect.New,
		Logger:   zerolog.Nop(),
		Now:      e.clock.Now,
	}
	e.svc = e.newService()
	x.evEnv = e
	cfg := plugin.Configuration{
		Name: "acme",
		Mimecast: plugin.MimecastSettings{
			BaseURL: x.srv.URL, Auth: plugin.AuthLegacy,
			AppID: mimecasttest.DefaultAppID, AppKey: mimecasttest.DefaultAppKey,
			AccessKey: mimecasttest.DefaultAccessKey, SecretKey: mimecasttest.DefaultSecretKey,
			PageSize: pageSize,
		},
		Events: &plugin.EventSettings{Enabled: true},
	}
	if _, err := e.svc.CreateConfiguration(context.Background(), "admin", cfg); err != nil {
		tb.Fatalf("CreateConfiguration: %v", err)
	}
	return x
}

// expected runs the detector over every emulator record the first pull
// reads and returns the event ids and the number of unreadable records.
func (x *evEmu) expected(tb testing.TB) (map[string]bool, int) {
	tb.Helper()
	d, err := detect.New(nil, false)
	if err != nil {
		tb.Fatal(err)
	}
	now := x.clock.Now()
	ids, bad := map[string]bool{}, 0
	for kind, k := range evEmuKinds {
		for _, r := range x.emu.LogRecords(k, now.AddDate(0, 0, -7), now) {
			evs, err := d.Detect(kind, plugin.LogRecord(r))
			if err != nil {
				bad++
				continue
			}
			for _, e := range evs {
				ids[e.ID] = true
			}
		}
	}
	return ids, bad
}

func TestEventPullEmulatorManyPages(t *testing.T) {
	x := newEvEmu(t, 1000, 100)
	res := x.pull("acme")
	wantIDs, wantBad := x.expected(t)
	if res.Records != 4000 || res.Pages < 40 {
		t.Errorf("got %+v, want 4000 records over at least 40 pages", res)
	}
	if len(wantIDs) == 0 {
		t.Fatal("the emulator produced no events")
	}
	got := eventIDs(x.allEvents("acme"))
	if len(got) != len(wantIDs) || res.Events != len(wantIDs) || res.Rejected != wantBad {
		t.Errorf("got %d events (%d new), %d rejected; want %d events, %d rejected", len(got), res.Events, res.Rejected, len(wantIDs), wantBad)
	}
	rules := map[string]int{}
	for id, e := range got {
		if !wantIDs[id] {
			t.Fatalf("unexpected event %+v", e)
		}
		rules[e.Rule]++
	}
	t.Logf("events by rule: %v (rejected %d)", rules, res.Rejected)
	// A second pull re-reads only the overlap and adds nothing.
	x.clock.Add(time.Minute)
	if res := x.pull("acme"); res.Events != 0 || res.Records >= 4000 {
		t.Errorf("second pull: %+v", res)
	}
}

func TestEventPullEmulatorRestartMidPull(t *testing.T) {
	clean := newEvEmu(t, 800, 100)
	clean.pull("acme")
	want := eventIDs(clean.allEvents("acme"))

	x := newEvEmu(t, 800, 100)
	x.mu.Lock()
	x.onLogRequest = func(path string, n int) {
		if path == mimecasttest.PathAttachmentLogs && n == 7 {
			// Every attempt of this page request fails: the pull stops here.
			x.emu.SetFaults(mimecasttest.Faults{Endpoint: path, FailNext: 3, ErrorStatus: 503})
		}
	}
	x.mu.Unlock()
	if _, err := plugin.PullEventsNow(context.Background(), x.svc, "acme"); err == nil {
		t.Fatal("the failing pull reported no error")
	}
	st, _ := x.svc.EventsStatus(context.Background(), "acme")
	if st[1].Error == "" || st[1].Records != 600 {
		t.Fatalf("attachment checkpoint after the fault: %+v", st[1])
	}
	partial := len(x.allEvents("acme"))

	x.svc.Close() // "crash" and restart on the same store
	x.svc = x.newService()
	x.clock.Add(time.Minute)
	if _, err := plugin.PullEventsNow(context.Background(), x.svc, "acme"); err != nil {
		t.Fatalf("resumed pull: %v", err)
	}
	got := eventIDs(x.allEvents("acme"))
	if len(got) != len(want) || partial >= len(want) {
		t.Fatalf("got %d events after resume (%d before), want %d", len(got), partial, len(want))
	}
	for id := range want {
		if _, ok := got[id]; !ok {
			t.Fatalf("event %s lost", id)
		}
	}
	st, _ = x.svc.EventsStatus(context.Background(), "acme")
	counted := 0
	for _, cp := range st {
		counted += cp.Events
		if cp.Error != "" {
			t.Errorf("%s: error %q after resume", cp.Log, cp.Error)
		}
	}
	if counted != len(want) {
		t.Errorf("checkpoints count %d events, want %d (no duplicates)", counted, len(want))
	}
}

func TestEventPullEmulatorAddedRecords(t *testing.T) {
	x := newEvEmu(t, 0, 100)
	now := x.clock.Now()
	x.emu.AddLogRecords(mimecasttest.KindURL, map[string]any(evClick("late@example.com", "Botnets", "warn", now.Add(-time.Hour), 1)))
	x.emu.AddLogRecords(mimecasttest.KindImpersonation, map[string]any(evImpersonation("imp@example.com", now.Add(-time.Hour), 2,
		"similar_internal_domain", "internal_user_name", "targeted_threat_dictionary")))
	if res := x.pull("acme"); res.Events != 4 {
		t.Fatalf("got %+v, want 4 events", res)
	}
}

// BenchmarkEventPullMillion pulls 1,000,000 records (250,000 per log) from
// the emulator through the real client into a fresh bbolt store, and
// reports records per second and the peak Go heap.
func BenchmarkEventPullMillion(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		x := newEvEmu(b, 250_000, 500)
		runtime.GC()
		var peak atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ms runtime.MemStats
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		start := time.Now()
		b.StartTimer()
		res, err := plugin.PullEventsNow(context.Background(), x.svc, "acme")
		b.StopTimer()
		elapsed := time.Since(start)
		close(stop)
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}
		if res.Records != 1_000_000 {
			b.Fatalf("pulled %d records", res.Records)
		}
		b.ReportMetric(float64(res.Records)/elapsed.Seconds(), "records/s")
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(res.Events), "events")
		b.ReportMetric(elapsed.Seconds(), "s/pull")
		x.svc.Close()
	}
}

// BenchmarkFetchScoresWithEvents scores 10,000 graded users of whom 5,000
// have events (50,000 events in all) from the per-configuration cache of
// decayed sums: one map lookup per user, no store reads.
func BenchmarkFetchScoresWithEvents(b *testing.B) {
	e := newEvEnv(b)
	e.create("acme", &plugin.EventSettings{Enabled: true, Scoring: true})
	users := make([]plugin.UserGrade, 10_000)
	for i := range users {
		users[i] = plugin.UserGrade{Email: fmt.Sprintf("user%05d@example.com", i), Risk: string("ABCDF"[i%5])}
	}
	if err := e.st.PutSnapshot(context.Background(), plugin.Snapshot{Configuration: "acme", TakenAt: evNow, Users: users}); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 50_000; i++ {
		at := evNow.Add(-time.Duration(i) * 10 * time.Second)
		e.mc.add(plugin.LogURL, evClick(fmt.Sprintf("user%05d@example.com", i%5000), "Phishing & Fraud", "warn", at, i))
	}
	if res := e.pull("acme"); res.Events != 50_000 {
		b.Fatalf("stored %d events", res.Events)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		recs, err := e.svc.FetchScores(ctx, "acme", nil)
		if err != nil || len(recs) != 10_000 {
			b.Fatalf("got %d records, %v", len(recs), err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*10_000)/b.Elapsed().Seconds(), "users/s")
}
