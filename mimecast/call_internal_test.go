package mimecast

import (
	"net/http"
	"testing"
	"time"
)

func TestResetWaitNeverOverflows(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		reset, retryAfter string
		want              time.Duration
	}{
		{"1500", "", 1500 * time.Millisecond},
		{"Inf", "", maxHeaderWait},
		{"9.3e12", "", maxHeaderWait},
		{"1e300", "", maxHeaderWait},
		{"", "99999999999999", maxHeaderWait},
		{"", "2", 2 * time.Second},
		{"500", "3", 3 * time.Second},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.reset != "" {
			h.Set("X-RateLimit-Reset", tt.reset)
		}
		if tt.retryAfter != "" {
			h.Set("Retry-After", tt.retryAfter)
		}
		got, ok := resetWait(h, now)
		if !ok || got != tt.want || got < 0 {
			t.Errorf("reset %q retry-after %q: %v %v, want %v", tt.reset, tt.retryAfter, got, ok, tt.want)
		}
	}
}
