package plugin

import "context"

// ControlsOnEvents exposes controlsOnEvents to package plugin_test.
func ControlsOnEvents(ctx context.Context, s *Service, cfg Configuration, events []RiskEvent) {
	s.controlsOnEvents(ctx, cfg, events)
}

// SetMaxPendingControls lowers the bound of the controls' retry list.
func SetMaxPendingControls(s *Service, n int) {
	s.ctrls.mu.Lock()
	defer s.ctrls.mu.Unlock()
	s.ctrls.maxPending = n
}
