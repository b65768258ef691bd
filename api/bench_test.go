package api_test

import "testing"

// BenchmarkRequest measures one authenticated request through the whole
// stack (access log, throttle check, token lookup, role check, handler,
// real store) and one refused one.
func BenchmarkRequest(b *testing.B) {
	e := newEnv(b, envOptions{authLimit: 1 << 30})
	e.mustCreate("acme")
	b.Run("get-configuration", func(b *testing.B) {
		for b.Loop() {
			if w := e.doT(b, "viewer", "GET", "/api/v1/configurations/acme", nil, nil); w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
	b.Run("unauthorized", func(b *testing.B) {
		for b.Loop() {
			if w := e.doT(b, "raw:Bearer mcu_wrong", "GET", "/api/v1/configurations/acme", nil, nil); w.Code != 401 {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}
