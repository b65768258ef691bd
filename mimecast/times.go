package mimecast

import (
	"fmt"
	"strings"
	"time"
)

// TimeLayout is how Mimecast writes dates in log records and expects them in
// from/to filters, e.g. 2024-11-17T17:02:30+0000.
const TimeLayout = "2006-01-02T15:04:05-0700"

// FormatTime formats t for a Mimecast request filter, in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime parses a Mimecast date: TimeLayout first, then RFC 3339 (with or
// without fractional seconds), which some tenants and clients use.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(TimeLayout, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	// 2024-11-17T17:02:30.123+0000
	if t, err := time.Parse("2006-01-02T15:04:05.999999999-0700", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("mimecast: %q is not a date in the layout 2006-01-02T15:04:05-0700 or RFC 3339", s)
}
