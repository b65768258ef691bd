package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"mimecast-ure/internal/mimecasttest"
)

// BenchmarkPlatformCycle5000 is the headline comparison with today's public
// plugin (5,302 Mimecast calls and 64 s for the same work): a tenant of
// 5,000 users, 10 ms per Mimecast call; one op = fetch-records (the first
// grade pull of a new configuration), fetch-scores for everyone, and add
// 100 users to a new group. It reports Mimecast calls per op.
func BenchmarkPlatformCycle5000(b *testing.B) {
	e := startEnv(b, mimecasttest.Options{Users: 5000, Seed: 3, Latency: 10 * time.Millisecond})
	var records []map[string]string
	for _, u := range e.emu.Users()[:100] {
		records = append(records, map[string]string{"uid": u.Email})
	}
	var calls int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("bench%d", i)
		b.StopTimer()
		e.want("POST", "/api/v1/configurations", testAdminToken, demoConfigBody(e, name), 201, nil)
		e.emu.ResetStats()
		b.StartTimer()
		base := "/api/v1/configurations/" + name
		e.want("POST", base+"/fetch-records", testAdminToken, nil, 200, nil)
		e.want("POST", base+"/fetch-scores", testAdminToken, map[string]any{"records": []any{}}, 200, nil)
		body := map[string]any{"records": records, "action": map[string]any{"value": "add",
			"parameters": map[string]string{"group": "create", "name": "Risky " + name}}}
		raw := e.want("POST", base+"/execute-action", testAdminToken, body, 200, nil)
		if n := strings.Count(string(raw), `"done"`); n != 100 {
			b.Fatalf("execute-action: %d done", n)
		}
		calls += e.emu.Stats()["total"]
	}
	b.ReportMetric(float64(calls)/float64(b.N), "mimecast-calls/op")
}
