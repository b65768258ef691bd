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

// startEvents starts the per-configuration event pull loops (called by Start).
func (s *Service) startEvents(ctx context.Context) {}

// stopEvents stops them and waits (called by Close).
func (s *Service) stopEvents() {}

// eventsConfigChanged tells the event loops a configuration was created,
// updated or deleted (called by the configuration operations).
func (s *Service) eventsConfigChanged(name string) {}

// applyEventScores lowers each record's Score by its user's decayed events
// when cfg.Events.Scoring is on, keeping the grade-only score in GradeScore.
func (s *Service) applyEventScores(ctx context.Context, cfg Configuration, recs []ScoredRecord) ([]ScoredRecord, error) {
	return recs, nil
}

// sendWebhook POSTs payload as JSON to w, signed with HMAC-SHA256 of the
// body under w.Secret (header X-URE-Signature: sha256=<hex>), retrying with
// backoff. Used by nudges (events) and notifications (controls).
func (s *Service) sendWebhook(ctx context.Context, w Webhook, payload any) error { return nil }
