package plugin

import "context"

// ControlsOnEvents exposes controlsOnEvents to package plugin_test.
func ControlsOnEvents(ctx context.Context, s *Service, cfg Configuration, events []RiskEvent) {
	s.controlsOnEvents(ctx, cfg, events)
}
