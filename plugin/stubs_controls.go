package plugin

// TEMPORARY stubs: replaced by controls.go.

import "context"

type controlState struct{}

func newControlState() *controlState { return &controlState{} }

func (s *Service) ValidateControls(ctx context.Context, name string) (ControlsValidation, error) {
	return ControlsValidation{}, errTODO
}
func (s *Service) ControlsStatus(ctx context.Context, name string) (ControlsStatus, error) {
	return ControlsStatus{}, errTODO
}

// controlsOnEvents acts on a stored page of events for cfg's controls
// (called by the event pull after each saved page). Idempotent per
// (event type, user).
func (s *Service) controlsOnEvents(ctx context.Context, cfg Configuration, events []RiskEvent) {}
