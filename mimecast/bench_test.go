package mimecast_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
)

// gradePages builds the pages of a get-safe-score-details pull once, so
// the handler costs next to nothing and the benchmark measures the client.
func gradePages(users, pageSize int) [][]byte {
	grades := []string{"A", "B", "C", "D", "F"}
	var pages [][]byte
	for start, p := 0, 0; start < users; start, p = start+pageSize, p+1 {
		var b strings.Builder
		next := ""
		if start+pageSize < users {
			next = fmt.Sprintf(`,"next":"page-%d"`, p+1)
		}
		fmt.Fprintf(&b, `{"meta":{"status":200,"pagination":{"pageSize":%d,"totalCount":%d%s}},"data":[`, pageSize, users, next)
		for i := start; i < min(start+pageSize, users); i++ {
			if i > start {
				b.WriteByte(',')
			}
			g := func(k int) string { return grades[(i*7+k)%5] }
			fmt.Fprintf(&b, `{"emailAddress":"user%06d@example.com","name":"User %06d","risk":%q,"humanError":%q,"sentiment":%q,"engagement":%q,"knowledge":%q,"department":"Dept %d","userState":"active"}`,
				i, i, g(0), g(1), g(2), g(3), g(4), i%40)
		}
		b.WriteString(`],"fail":[]}`)
		pages = append(pages, []byte(b.String()))
	}
	return pages
}

func BenchmarkSafeScores100k(b *testing.B) {
	const users, pageSize = 100_000, 500
	pages := gradePages(users, pageSize)
	var calls atomic.Int64
	srv := newServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		// The token sits at a fixed place; avoid decoding the body.
		buf := make([]byte, 256)
		n, _ := r.Body.Read(buf)
		p := 0
		if i := strings.Index(string(buf[:n]), `"pageToken":"page-`); i >= 0 {
			rest := string(buf[i+len(`"pageToken":"page-`) : n])
			p, _ = strconv.Atoi(rest[:strings.IndexByte(rest, '"')])
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(pages[p])
	}))
	c, err := mimecast.New(mimecast.Options{BaseURL: srv.URL, AppID: testAppID, AppKey: testAppKey, AccessKey: testAccessKey, SecretKey: testSecretKey})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	pull := func() int {
		n := 0
		if err := c.EachGradePage(ctx, pageSize, func(p []plugin.UserGrade) error { n += len(p); return nil }); err != nil {
			b.Fatal(err)
		}
		return n
	}
	pull() // warm connections and pools
	calls.Store(0)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if n := pull(); n != users {
			b.Fatalf("got %d users, want %d", n, users)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	pulled := float64(b.N) * users
	b.ReportMetric(pulled/elapsed.Seconds(), "users/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/pulled, "allocs/user")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/pulled, "B/user")
	b.ReportMetric(float64(calls.Load())/float64(b.N), "calls/pull")
}
