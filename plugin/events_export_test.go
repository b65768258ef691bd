package plugin

import (
	"context"
	"time"
)

// Test hooks for package plugin_test (compiled only with the tests).

// EventPullStats is what one synchronous pull did.
type EventPullStats = pullResult

// PullEventsNow runs a pull of the configuration's logs and waits for it
// (waiting first for one already running).
func PullEventsNow(ctx context.Context, s *Service, name string) (EventPullStats, error) {
	return s.pullEventsWait(ctx, name)
}

// SetWebhookSleep replaces the wait between webhook attempts.
func SetWebhookSleep(s *Service, f func(ctx context.Context, d time.Duration) error) {
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	s.events.sleep = f
}

// SendWebhook exposes sendWebhook.
func SendWebhook(ctx context.Context, s *Service, w Webhook, payload any) error {
	return s.sendWebhook(ctx, w, payload)
}

// EventLoops returns the configurations with a running event loop and
// their intervals.
func EventLoops(s *Service) map[string]time.Duration {
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	out := map[string]time.Duration{}
	for name, l := range s.events.loops {
		out[name] = l.interval
	}
	return out
}
