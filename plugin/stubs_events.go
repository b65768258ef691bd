package plugin

// TEMPORARY stubs: replaced by events.go.

import (
	"context"
	"time"
)

type eventState struct{}

func newEventState() *eventState { return &eventState{} }

func (s *Service) PullEvents(ctx context.Context, name string) error { return errTODO }
func (s *Service) EventsStatus(ctx context.Context, name string) ([]Checkpoint, error) {
	return nil, errTODO
}
func (s *Service) Events(ctx context.Context, name string, f EventFilter) ([]RiskEvent, string, error) {
	return nil, "", errTODO
}
func (s *Service) UserDetail(ctx context.Context, name, uid string) (UserDetail, error) {
	return UserDetail{}, errTODO
}
func (s *Service) Targets(ctx context.Context, name, rule string, since time.Duration) (Targets, error) {
	return Targets{}, errTODO
}
