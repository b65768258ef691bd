package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mimecast-ure/internal/mimecasttest"
	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
	"mimecast-ure/store"
)

// The benchmarks in this file measure the server alone: the Mimecast
// emulator runs in a child process (this test binary re-executed with
// envHelperEmulator set, see TestMain), so its tenant (~80 MiB for 100,000
// users) is not in the heap being measured.

// envHelperEmulator makes the re-executed test binary serve the emulator.
const envHelperEmulator = "URE_BENCH_HELPER_EMULATOR"

// TestMain runs the tests, or, in a child process the sync benchmarks
// start with envHelperEmulator=1 and the emulator's flags after "--",
// serves `mimecast-ure emulator` until killed.
func TestMain(m *testing.M) {
	if os.Getenv(envHelperEmulator) != "1" {
		os.Exit(m.Run())
	}
	flag.Parse()
	// No URE_* from the environment: the flags given are the whole setup.
	if err := runEmulator(context.Background(), flag.Args(), func(string) string { return "" }, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// childEmulator is the emulator running in a child process.
type childEmulator struct {
	URL string
	cmd *exec.Cmd
}

// startChildEmulator starts the emulator in a child process with args
// (emulator flags; --addr 127.0.0.1:0 is added) and stops it at cleanup.
func startChildEmulator(b *testing.B, args ...string) *childEmulator {
	b.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), envHelperEmulator+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start emulator process: %v", err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			if _, u, ok := strings.Cut(sc.Text(), "listening on "); ok && !sent {
				urls <- strings.TrimSpace(u)
				sent = true
			}
		}
		if !sent {
			close(urls)
		}
	}()
	select {
	case u, ok := <-urls:
		if !ok {
			b.Fatal("emulator process exited before listening")
		}
		return &childEmulator{URL: u, cmd: cmd}
	case <-time.After(2 * time.Minute):
		b.Fatal("emulator process did not start within 2 minutes")
	}
	return nil
}

// Stats returns the child's call counters (GET /_emulator/stats).
func (c *childEmulator) Stats(b *testing.B) map[string]int {
	b.Helper()
	res, err := http.Get(c.URL + mimecasttest.PathStats)
	if err != nil {
		b.Fatalf("emulator stats: %v", err)
	}
	defer res.Body.Close()
	var m map[string]int
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		b.Fatalf("emulator stats: %v", err)
	}
	return m
}

// ResetStats zeroes the child's counters.
func (c *childEmulator) ResetStats(b *testing.B) {
	b.Helper()
	res, err := http.Post(c.URL+mimecasttest.PathStatsReset, "application/json", nil)
	if err != nil {
		b.Fatalf("emulator stats reset: %v", err)
	}
	res.Body.Close()
}

// RSSPeakKiB is the child's VmHWM.
func (c *childEmulator) RSSPeakKiB() int64 {
	return procStatusKiB(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid), "VmHWM")
}

// benchServer is the real server stack (startApp) with a fresh data
// directory and no logging.
type benchServer struct {
	b    *testing.B
	url  string
	data string
}

// DBMiB is the size of the bbolt file (mmapped whole: the pages touched
// count in this process's RSS as file-backed memory).
func (s *benchServer) DBMiB() float64 {
	fi, err := os.Stat(store.FilePath(s.data))
	if err != nil {
		return 0
	}
	return float64(fi.Size()) / (1 << 20)
}

func startBenchServer(b *testing.B) *benchServer {
	b.Helper()
	env := map[string]string{"URE_ADMIN_TOKEN": testAdminToken, "URE_MASTER_KEY": testMasterKey}
	cfg := serverConfig{Addr: "127.0.0.1:0", Data: b.TempDir(), ShutdownWait: 30 * time.Second,
		MaxBodyBytes: 10 << 20, AuthFailLimit: 1000, AuthFailWindow: time.Minute, LogLevel: "error"}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := startApp(ctx, cfg, func(k string) string { return env[k] }, zerolog.Nop(), mimecast.Options{})
	if err != nil {
		cancel()
		b.Fatalf("startApp: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Serve: %v", err)
		}
	})
	return &benchServer{b: b, url: a.URL, data: cfg.Data}
}

// do sends a request as admin and decodes a 2xx answer into out; any
// other status fails the benchmark.
func (s *benchServer) do(method, path string, body any, want int, out any) {
	s.b.Helper()
	status, raw := sendJSON(s.b, s.url, method, path, testAdminToken, body)
	if status != want {
		s.b.Fatalf("%s %s: status %d, want %d: %.500s", method, path, status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			s.b.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
}

// benchConfig is a configuration of the child emulator's tenant.
func benchConfig(name, emuURL string, events map[string]any) map[string]any {
	c := map[string]any{
		"name": name, "sync_interval": "24h",
		"mimecast": map[string]any{
			"base_url": emuURL, "auth": "legacy", "page_size": 500,
			"app_id": mimecasttest.DefaultAppID, "app_key": mimecasttest.DefaultAppKey,
			"access_key": mimecasttest.DefaultAccessKey, "secret_key": mimecasttest.DefaultSecretKey,
		},
	}
	if events != nil {
		c["events"] = events
	}
	return c
}

// memSampler samples this process's Go heap every few milliseconds.
type memSampler struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	samples []metrics.Sample

	startObjects, peakObjects uint64 // heap objects (≈ HeapAlloc)
	peakInuse                 uint64 // objects + unused spans (≈ HeapInuse)
	startLive, peakLive       uint64 // live heap after each GC
	startAllocs, endAllocs    uint64 // cumulative bytes allocated
	startRSSKiB               int64
	rssReset                  bool
	startAnonKiB, peakAnonKiB int64 // RssAnon: heap, stacks, runtime (no mmapped file)
	ticks                     int
}

const (
	mHeapObjects = "/memory/classes/heap/objects:bytes"
	mHeapUnused  = "/memory/classes/heap/unused:bytes"
	mAllocBytes  = "/gc/heap/allocs:bytes"
	mHeapLive    = "/gc/heap/live:bytes" // marked live by the last GC
)

// startMemSampler collects garbage, resets the peak RSS (when the kernel
// lets us) and starts sampling.
func startMemSampler() *memSampler {
	runtime.GC()
	runtime.GC()
	m := &memSampler{stop: make(chan struct{}), done: make(chan struct{}),
		samples: []metrics.Sample{{Name: mHeapObjects}, {Name: mHeapUnused}, {Name: mAllocBytes}, {Name: mHeapLive}}}
	// Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+).
	m.rssReset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	m.startRSSKiB = procStatusKiB("/proc/self/status", "VmRSS")
	m.startAnonKiB = procStatusKiB("/proc/self/status", "RssAnon")
	m.peakAnonKiB = m.startAnonKiB
	metrics.Read(m.samples)
	m.startObjects = m.samples[0].Value.Uint64()
	m.startAllocs = m.samples[2].Value.Uint64()
	m.startLive = m.samples[3].Value.Uint64()
	m.peakLive = m.startLive
	m.peakObjects = m.startObjects
	m.peakInuse = m.startObjects + m.samples[1].Value.Uint64()
	go m.run()
	return m
}

func (m *memSampler) run() {
	defer close(m.done)
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		m.sample()
	}
}

func (m *memSampler) sample() {
	m.mu.Lock()
	defer m.mu.Unlock()
	metrics.Read(m.samples)
	obj, unused := m.samples[0].Value.Uint64(), m.samples[1].Value.Uint64()
	m.peakObjects = max(m.peakObjects, obj)
	m.peakInuse = max(m.peakInuse, obj+unused)
	m.endAllocs = m.samples[2].Value.Uint64()
	m.peakLive = max(m.peakLive, m.samples[3].Value.Uint64())
	// RssAnon every 10 ms: reading /proc costs more than metrics.Read.
	if m.ticks++; m.ticks%5 == 0 {
		m.peakAnonKiB = max(m.peakAnonKiB, procStatusKiB("/proc/self/status", "RssAnon"))
	}
}

// Stop ends sampling (one last sample included).
func (m *memSampler) Stop() {
	close(m.stop)
	<-m.done
	m.ticks = 4
	m.sample()
}

// peaks keeps, per metric, the largest value seen over a benchmark's ops
// (the first op, on a cold heap, is usually the largest).
type peaks map[string]float64

func (p peaks) add(name string, v float64) {
	if old, ok := p[name]; !ok || v > old {
		p[name] = v
	}
}

// report reports every metric of p to b.
func (p peaks) report(b *testing.B) {
	for k, v := range p {
		b.ReportMetric(v, k)
	}
}

// collect adds the sampler's numbers to p with the given metric prefix.
func (m *memSampler) collect(p peaks, prefix string) {
	const mib = 1 << 20
	p.add(prefix+"heap-inuse-peak-MiB", float64(m.peakInuse)/mib)
	p.add(prefix+"heap-alloc-peak-delta-MiB", float64(m.peakObjects-m.startObjects)/mib)
	p.add(prefix+"allocated-MiB", float64(m.endAllocs-m.startAllocs)/mib)
	p.add(prefix+"heap-live-peak-MiB", float64(m.peakLive)/mib)
	p.add(prefix+"heap-live-start-MiB", float64(m.startLive)/mib)
	p.add(prefix+"rss-anon-peak-delta-MiB", float64(m.peakAnonKiB-m.startAnonKiB)/1024)
	hwm := procStatusKiB("/proc/self/status", "VmHWM")
	if m.rssReset && hwm > 0 {
		// Includes bbolt's mmapped file pages that were touched.
		p.add(prefix+"rss-peak-delta-MiB", float64(hwm-m.startRSSKiB)/1024)
	} else if hwm > 0 {
		// Could not reset the high-water mark: it covers the whole process life.
		p.add(prefix+"rss-peak-process-MiB", float64(hwm)/1024)
	}
}

// procStatusKiB reads one "Name:   1234 kB" line of a /proc status file
// (0 when unreadable).
func procStatusKiB(path, field string) int64 {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkFullSync100k is the developers' target: a full sync of 100,000
// users in about ⌈100,000 ÷ 500⌉ = 200 Mimecast round trips with peak
// memory under 100 MiB. The emulator runs in a child process; one op =
// create a configuration (its first grade pull starts at once), wait until
// GET /sync says ok, then fetch-records (all 100,000 records). It reports
// the sync's wall time, Mimecast calls, this process's peak heap during
// the sync and during fetch-records, and the peak RSS growth.
func BenchmarkFullSync100k(b *testing.B) {
	const users = 100000
	emu := startChildEmulator(b, "--users", strconv.Itoa(users), "--seed", "5", "--logs", "1")
	srv := startBenchServer(b)
	var syncWall, fetchWall time.Duration
	var calls, pages int
	pk := peaks{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		name := fmt.Sprintf("sync%d", i)
		emu.ResetStats(b)
		b.StartTimer()
		m := startMemSampler()
		t0 := time.Now()
		srv.do("POST", "/api/v1/configurations", benchConfig(name, emu.URL, nil), 201, nil)
		st := waitSync(b, srv, name)
		syncWall += time.Since(t0)
		m.Stop()
		if st.State != "ok" || st.Users != users {
			b.Fatalf("sync status %+v, want ok with %d users", st, users)
		}
		calls += emu.Stats(b)["total"]
		m.collect(pk, "sync-")
		pages = st.Pages

		m = startMemSampler()
		t1 := time.Now()
		var recs struct {
			Records []json.RawMessage `json:"records"`
		}
		srv.do("POST", "/api/v1/configurations/"+name+"/fetch-records", nil, 200, &recs)
		fetchWall += time.Since(t1)
		m.Stop()
		if len(recs.Records) != users {
			b.Fatalf("fetch-records: %d records, want %d", len(recs.Records), users)
		}
		m.collect(pk, "fetch-")
		b.StopTimer()
		srv.do("DELETE", "/api/v1/configurations/"+name, nil, 204, nil)
		b.StartTimer()
	}
	pk.report(b)
	b.ReportMetric(float64(pages), "pages")
	b.ReportMetric(srv.DBMiB(), "db-file-MiB")
	b.ReportMetric(syncWall.Seconds()/float64(b.N), "sync-s/op")
	b.ReportMetric(fetchWall.Seconds()/float64(b.N), "fetch-records-s/op")
	b.ReportMetric(float64(calls)/float64(b.N), "mimecast-calls/op")
	b.ReportMetric(float64(emu.RSSPeakKiB())/1024, "emulator-rss-MiB")
}

// waitSync polls GET /sync until the configuration's sync has finished.
func waitSync(b *testing.B, srv *benchServer, name string) plugin.SyncStatus {
	b.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		var st plugin.SyncStatus
		srv.do("GET", "/api/v1/configurations/"+name+"/sync", nil, 200, &st)
		if st.State == plugin.SyncOK || st.State == plugin.SyncFailed {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatalf("sync of %s did not finish in 10 minutes", name)
	return plugin.SyncStatus{}
}

// BenchmarkEventPull1M pulls 1,000,000 security log records (250,000 per
// log, spread over the 7-day lookback) through the real server: one op =
// create a configuration with events on (its first pull starts at once)
// and wait until every log's checkpoint has reached the newest record. It
// reports records/s, Mimecast calls and this process's peak heap.
func BenchmarkEventPull1M(b *testing.B) {
	const perKind = 250000
	emu := startChildEmulator(b, "--users", "2000", "--seed", "9", "--logs", strconv.Itoa(perKind), "--log-window", "144h")
	srv := startBenchServer(b)
	var wall time.Duration
	var calls, records int
	pk := peaks{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		name := fmt.Sprintf("events%d", i)
		emu.ResetStats(b)
		b.StartTimer()
		m := startMemSampler()
		t0 := time.Now()
		events := map[string]any{"enabled": true, "interval": "24h", "lookback_days": 7, "scoring": true}
		srv.do("POST", "/api/v1/configurations", benchConfig(name, emu.URL, events), 201, nil)
		n := waitEvents(b, srv, name, t0)
		wall += time.Since(t0)
		m.Stop()
		records += n
		calls += emu.Stats(b)["total"]
		m.collect(pk, "")
		b.StopTimer()
		srv.do("DELETE", "/api/v1/configurations/"+name, nil, 204, nil)
		b.StartTimer()
	}
	pk.report(b)
	b.ReportMetric(float64(records)/wall.Seconds(), "records/s")
	b.ReportMetric(srv.DBMiB(), "db-file-MiB")
	b.ReportMetric(float64(records)/float64(b.N), "records/op")
	b.ReportMetric(float64(calls)/float64(b.N), "mimecast-calls/op")
}

// waitEvents polls GET events/pull until each of the four logs has read
// up to the newest record (within a minute of start) without error and
// the counts stopped moving; it returns the records read.
func waitEvents(b *testing.B, srv *benchServer, name string, start time.Time) int {
	b.Helper()
	deadline := time.Now().Add(15 * time.Minute)
	last := -1
	for time.Now().Before(deadline) {
		var st struct {
			Logs []plugin.Checkpoint `json:"logs"`
		}
		srv.do("GET", "/api/v1/configurations/"+name+"/events/pull", nil, 200, &st)
		total, done := 0, len(st.Logs) == len(plugin.LogKinds)
		for _, cp := range st.Logs {
			if cp.Error != "" {
				b.Fatalf("%s log: %s", cp.Log, cp.Error)
			}
			total += cp.Records
			if cp.Through.Before(start.Add(-time.Minute)) {
				done = false
			}
		}
		if done && total == last {
			return total
		}
		last = total
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("event pull of %s did not finish in 15 minutes", name)
	return 0
}
