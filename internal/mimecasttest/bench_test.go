package mimecasttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// benchCall drives the handler in-process (no sockets) with a signed request.
func benchCall(b *testing.B, s *Server, path string, payload map[string]any, n int) []byte {
	raw, _ := json.Marshal(payload)
	date := s.opts.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05") + " UTC"
	reqID := fmt.Sprintf("bench-%d-%d", n, time.Now().UnixNano())
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(raw))
	req.Header.Set("x-mc-app-id", DefaultAppID)
	req.Header.Set("x-mc-date", date)
	req.Header.Set("x-mc-req-id", reqID)
	req.Header.Set("Authorization", "MC "+DefaultAccessKey+":"+localSign(DefaultSecretKey, DefaultAppKey, date, reqID, path))
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != 200 {
		b.Fatalf("%s: status %d %s", path, w.Code, w.Body.Bytes())
	}
	return w.Body.Bytes()
}

func nextToken(b *testing.B, raw []byte) string {
	var env struct {
		Meta struct {
			Pagination struct {
				Next string `json:"next"`
			} `json:"pagination"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		b.Fatal(err)
	}
	return env.Meta.Pagination.Next
}

// BenchmarkSafeScorePage serves one page of 500 users out of 100,000.
func BenchmarkSafeScorePage(b *testing.B) {
	s := New(Options{Users: 100_000})
	b.ResetTimer()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		benchCall(b, s, PathSafeScoreDetails, body(500, ""), i)
	}
}

// BenchmarkLogPage serves one page of 500 generated URL records out of 1,000,000.
func BenchmarkLogPage(b *testing.B) {
	for _, kind := range []string{KindURL, KindAttachment, KindImpersonation, KindDLP} {
		b.Run(kind, func(b *testing.B) {
			s := New(Options{Users: 1000, LogVolume: map[string]int{kind: 1_000_000}})
			start, end := s.LogWindow()
			item := map[string]any{"from": start.Format(time.RFC3339), "to": end.Format(time.RFC3339)}
			b.ResetTimer()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				benchCall(b, s, logPaths[kind], body(500, "", item), i)
			}
		})
	}
}

// BenchmarkPullAllUsers walks 100,000 users by 500.
func BenchmarkPullAllUsers(b *testing.B) {
	s := New(Options{Users: 100_000})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tok, pages := "", 0
		for {
			raw := benchCall(b, s, PathSafeScoreDetails, body(500, tok), pages)
			pages++
			if tok = nextToken(b, raw); tok == "" {
				break
			}
		}
		if pages != 200 {
			b.Fatalf("pages = %d", pages)
		}
	}
}

// BenchmarkPullMillionLogs walks 1,000,000 generated URL records by 500,
// token-only paging, in-process.
func BenchmarkPullMillionLogs(b *testing.B) {
	const n = 1_000_000
	s := New(Options{Users: 10_000, LogVolume: map[string]int{KindURL: n}})
	start, end := s.LogWindow()
	item := map[string]any{"from": start.Format(time.RFC3339), "to": end.Format(time.RFC3339), "oldestFirst": true}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tok, pages := "", 0
		for {
			p := body(500, tok, item)
			if tok != "" {
				p = map[string]any{"meta": page(500, tok)}
			}
			raw := benchCall(b, s, PathURLLogs, p, pages)
			pages++
			if tok = nextToken(b, raw); tok == "" {
				break
			}
		}
		if pages != n/500 {
			b.Fatalf("pages = %d, want %d", pages, n/500)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
