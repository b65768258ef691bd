package mimecasttest

import (
	"net/http"
	"strconv"
	"time"
)

// SetFaults replaces the injected faults (the zero Faults clears them).
// BindingExpireAfter starts counting from this call.
func (s *Server) SetFaults(f Faults) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if f.ErrorStatus == 0 {
		f.ErrorStatus = http.StatusServiceUnavailable
	}
	if f.RateLimitResetMS <= 0 {
		f.RateLimitResetMS = DefaultRateLimitResetMS
	}
	s.faults = f
	s.bindingLeft = f.BindingExpireAfter
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() { s.SetFaults(Faults{}) }

// Faults returns the faults in effect, with "next N" counters as left now.
func (s *Server) Faults() Faults {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.faults
}

type faultDecision struct {
	delay          time.Duration
	bindingExpired bool
	failStatus     int
	rateLimited    bool
	resetMS        int
	truncate       bool
	abort          bool
}

// decideFaults consumes the counters that apply to this call. It runs after
// authentication and before the endpoint, so refusals never apply writes.
func (s *Server) decideFaults(path string, hmacCall bool) faultDecision {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	f := &s.faults
	var d faultDecision
	if f.Endpoint != "" && f.Endpoint != path {
		return d
	}
	d.delay = f.Latency
	if hmacCall && f.BindingExpireAfter > 0 {
		if s.bindingLeft <= 0 {
			d.bindingExpired = true
			return d
		}
		s.bindingLeft--
	}
	if f.SlowNext > 0 {
		f.SlowNext--
		d.delay += f.SlowBy
	}
	call := s.calls
	s.calls++
	switch {
	case f.FailNext > 0:
		f.FailNext--
		d.failStatus = f.ErrorStatus
	case f.ErrorRate > 0 && newRNGFloat(uint64(s.opts.Seed), call) < f.ErrorRate:
		d.failStatus = f.ErrorStatus
	case f.RateLimitNext > 0:
		f.RateLimitNext--
		d.rateLimited, d.resetMS = true, f.RateLimitResetMS
	case f.TruncateNext > 0:
		f.TruncateNext--
		d.truncate = true
	case f.AbortNext > 0:
		f.AbortNext--
		d.abort = true
	}
	return d
}

func newRNGFloat(parts ...uint64) float64 {
	r := newRNG(append([]uint64{0xfa17}, parts...)...)
	return r.float()
}

// ---- rate limit: one token bucket per endpoint ----

type bucket struct {
	tokens int
	last   time.Time
}

type bucketState struct {
	limit, remaining int
	resetMS          int64
}

// limitFor is the bucket configuration of one endpoint.
func (s *Server) limitFor(path string) RateLimit {
	if rl, ok := s.opts.EndpointRateLimits[path]; ok {
		return rl
	}
	return s.opts.RateLimit
}

// refill adds the calls earned since last; caller holds fmu.
func (s *Server) refill(path string, now time.Time) *bucket {
	rl := s.limitFor(path)
	b, ok := s.buckets[path]
	if !ok {
		b = &bucket{tokens: rl.Capacity, last: now}
		s.buckets[path] = b
	}
	if b.tokens >= rl.Capacity {
		b.last = now
		return b
	}
	if n := int(now.Sub(b.last) / rl.Refill); n > 0 {
		b.tokens = min(rl.Capacity, b.tokens+n)
		b.last = b.last.Add(time.Duration(n) * rl.Refill)
		if b.tokens >= rl.Capacity {
			b.last = now
		}
	}
	return b
}

func (s *Server) state(path string, b *bucket, now time.Time) bucketState {
	rl := s.limitFor(path)
	st := bucketState{limit: rl.Capacity, remaining: b.tokens}
	if b.tokens < rl.Capacity {
		wait := rl.Refill - now.Sub(b.last)
		st.resetMS = int64((wait + time.Millisecond - 1) / time.Millisecond)
	}
	return st
}

func (s *Server) nominal() bucketState {
	return bucketState{limit: 1000, remaining: 1000}
}

func (s *Server) peekBucket(path string) bucketState {
	if s.limitFor(path).Capacity <= 0 {
		return s.nominal()
	}
	if _, known := endpoints[path]; !known && path != PathOAuthToken {
		return s.nominal()
	}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	now := s.opts.Now()
	return s.state(path, s.refill(path, now), now)
}

// takeBucket spends one call; ok is false (and nothing spent) when empty.
func (s *Server) takeBucket(path string) (bucketState, bool) {
	if s.limitFor(path).Capacity <= 0 {
		return s.nominal(), true
	}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	now := s.opts.Now()
	b := s.refill(path, now)
	if b.tokens <= 0 {
		return s.state(path, b, now), false
	}
	b.tokens--
	return s.state(path, b, now), true
}

func (s *Server) setRateHeaders(h http.Header, st bucketState) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(st.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(st.remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(st.resetMS, 10))
}
