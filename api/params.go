package api

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"mimecast-ure/plugin"
)

// maxAge bounds every "since" duration (ten years).
const maxAge = 3650 * 24 * time.Hour

// queryTime reads an optional RFC 3339 query parameter.
func queryTime(c *gin.Context, key string) (time.Time, error) {
	v := c.Query(key)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, plugin.FieldError(key, "must be an RFC 3339 time such as 2025-01-31T00:00:00Z")
	}
	return t, nil
}

// queryLimit reads the optional limit parameter: 1..max, def when absent.
func queryLimit(c *gin.Context, def, max int) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, plugin.FieldError("limit", "must be a whole number from 1 to %d", max)
	}
	return n, nil
}

// parseSince reads a "since" parameter: an RFC 3339 time, or an age such
// as 30d or 72h counted back from now.
func parseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := parseAge(v)
	if err != nil {
		return time.Time{}, plugin.FieldError("since", "must be an RFC 3339 time or an age such as 30d or 72h")
	}
	return now.Add(-d), nil
}

// parseAge reads an age: a whole number of days ("30d") or a Go duration
// ("72h"), positive and at most ten years.
func parseAge(v string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 1 || days > int(maxAge/(24*time.Hour)) {
			return 0, errors.New("must be an age such as 30d or 72h, at most 3650d")
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, errors.New("must be an age such as 30d or 72h")
		}
	}
	if d <= 0 || d > maxAge {
		return 0, errors.New("must be positive and at most 3650d")
	}
	return d, nil
}
