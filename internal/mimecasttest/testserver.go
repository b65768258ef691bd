package mimecasttest

import (
	"net/http/httptest"
	"testing"
)

// NewTestServer starts the emulator on an httptest server, stops it with
// tb.Cleanup, and returns it; its base URL is s.URL().
func NewTestServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := New(opts)
	ts := httptest.NewServer(s)
	tb.Cleanup(ts.Close)
	s.url = ts.URL
	return s
}
