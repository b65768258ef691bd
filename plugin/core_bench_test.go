package plugin_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mimecast-ure/internal/mimecasttest"
	"mimecast-ure/plugin"
)

// heapSampler records the peak HeapInuse, and the peak live heap as of
// the last GC (runtime/metrics /gc/heap/live:bytes), while it runs.
type heapSampler struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	peak     atomic.Uint64
	peakLive atomic.Uint64
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > h.peak.Load() {
				h.peak.Store(ms.HeapInuse)
			}
			if l := liveHeap(); l > h.peakLive.Load() {
				h.peakLive.Store(l)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) done() uint64 {
	close(h.stop)
	h.wg.Wait()
	return h.peak.Load()
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkGradeSync100k measures one full grade sync of 100,000 users
// from the emulator (500 per page): time, Mimecast calls, and the peak
// heap above what the emulator and the previous snapshot already hold
// (HeapInuse sampled every 5 ms, so garbage not yet collected counts; run
// with GOGC=25 to see a figure closer to the live working set).
func BenchmarkGradeSync100k(b *testing.B) {
	const users = 100_000
	e := newCoreEnv(b, mimecasttest.Options{Users: users, Seed: 1})
	ctx := context.Background()
	// The first pull establishes a snapshot; each iteration replaces it.
	before := heapInuse()
	if _, err := e.svc.FetchRecords(ctx, "acme"); err != nil {
		b.Fatal(err)
	}
	index := heapInuse() - before
	e.emu.ResetStats()
	base := heapInuse()
	baseLive := liveHeap()
	var peak, peakLive uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := sampleHeap()
		if err := e.svc.TriggerSync(ctx, "acme"); err != nil {
			b.Fatal(err)
		}
		st := e.waitSync(e.svc, "acme")
		peak = max(peak, h.done())
		peakLive = max(peakLive, h.peakLive.Load())
		if st.State != plugin.SyncOK || st.Users != users {
			b.Fatalf("status %+v", st)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(e.emu.Calls(mimecasttest.PathSafeScoreDetails))/float64(b.N), "mimecast-calls/op")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peak-min(peak, base))/(1<<20), "peak-over-baseline-MiB")
	b.ReportMetric(float64(base)/(1<<20), "baseline-heap-MiB")
	b.ReportMetric(float64(peakLive-min(peakLive, baseLive))/(1<<20), "peak-live-over-baseline-MiB")
	b.ReportMetric(float64(index)/(1<<20), "snapshot-in-memory-MiB")
}

// BenchmarkFetchScores10k scores 10,000 named users of a 100,000-user
// snapshot.
func BenchmarkFetchScores10k(b *testing.B) {
	e := newCoreEnv(b, mimecasttest.Options{Users: 100_000, Seed: 2})
	ctx := context.Background()
	recs, err := e.svc.FetchRecords(ctx, "acme")
	if err != nil {
		b.Fatal(err)
	}
	uids := make([]string, 0, 10_000)
	for i := 0; i < 10_000; i++ {
		uids = append(uids, recs[i*10].UID)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := e.svc.FetchScores(ctx, "acme", uids)
		if err != nil || len(got) < 9_000 {
			b.Fatalf("%d records, %v", len(got), err)
		}
	}
}

// BenchmarkExecuteAdd10k adds 10,000 users to a new group with 20 ms of
// emulator latency per call: time and Mimecast calls per execution.
func BenchmarkExecuteAdd10k(b *testing.B) {
	for _, batch := range []int{10, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			e := newCoreEnv(b, mimecasttest.Options{Users: 10_000, Seed: 3})
			ctx := context.Background()
			c := e.cfg
			c.Mimecast.BatchSize = batch
			if _, err := e.svc.UpdateConfiguration(ctx, "admin", "acme", c); err != nil {
				b.Fatal(err)
			}
			users := make([]string, 0, 10_000)
			for _, u := range e.emu.Users() {
				users = append(users, u.Email)
			}
			e.emu.SetFaults(mimecasttest.Faults{Latency: 20 * time.Millisecond})
			e.emu.ResetStats()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// A new group each time, so every op really adds 10,000 users.
				a := plugin.Action{Value: "add", Parameters: map[string]string{"group": "create", "name": fmt.Sprintf("Bench %d", i)}}
				res, err := e.svc.ExecuteAction(ctx, "op", "acme", "", users, a)
				if err != nil || len(res) != len(users) {
					b.Fatalf("%d results, %v", len(res), err)
				}
				for _, r := range res {
					if r.Status != plugin.Done {
						b.Fatalf("not done: %+v", r)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(e.emu.Stats()["total"])/float64(b.N), "mimecast-calls/op")
		})
	}
}
