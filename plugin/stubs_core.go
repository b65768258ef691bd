package plugin

// TEMPORARY stubs: replaced by the real implementations (each helper
// deletes the stubs it implements).

import (
	"context"
	"time"
)

type hostState struct{}

func newHostState() *hostState { return &hostState{} }

var errTODO = Errorf(EINTERNAL, "not implemented")

func (s *Service) Start(ctx context.Context) error { return nil }
func (s *Service) Close() error                    { return nil }
func (s *Service) Ready() bool                     { return true }

func (s *Service) CreateConfiguration(ctx context.Context, actor string, c Configuration) (Configuration, error) {
	return Configuration{}, errTODO
}
func (s *Service) UpdateConfiguration(ctx context.Context, actor, name string, c Configuration) (Configuration, error) {
	return Configuration{}, errTODO
}
func (s *Service) GetConfiguration(ctx context.Context, name string) (Configuration, error) {
	return Configuration{}, errTODO
}
func (s *Service) ListConfigurations(ctx context.Context) ([]Configuration, error) {
	return nil, errTODO
}
func (s *Service) DeleteConfiguration(ctx context.Context, actor, name string) error {
	return errTODO
}
func (s *Service) ValidateConfiguration(ctx context.Context, name string) (ValidationResult, error) {
	return ValidationResult{}, errTODO
}
func (s *Service) FetchRecords(ctx context.Context, name string) ([]Record, error) {
	return nil, errTODO
}
func (s *Service) FetchScores(ctx context.Context, name string, uids []string) ([]ScoredRecord, error) {
	return nil, errTODO
}
func (s *Service) Actions() []ActionOption { return nil }
func (s *Service) ActionFields(ctx context.Context, name, value string) ([]Field, error) {
	return nil, errTODO
}
func (s *Service) ValidateAction(ctx context.Context, name string, a Action) (ValidationResult, error) {
	return ValidationResult{}, errTODO
}
func (s *Service) ExecuteAction(ctx context.Context, actor, name, idempotencyKey string, uids []string, a Action) ([]ActionResult, error) {
	return nil, errTODO
}
func (s *Service) TriggerSync(ctx context.Context, name string) error { return errTODO }
func (s *Service) SyncStatus(ctx context.Context, name string) (SyncStatus, error) {
	return SyncStatus{}, errTODO
}

var _ = time.Now

// configuration returns a configuration with secrets in clear and
// defaults applied (for events and controls code).
func (s *Service) configuration(ctx context.Context, name string) (Configuration, error) {
	return Configuration{}, errTODO
}

// lookupUser finds uid (any case) in the configuration's current grade
// snapshot (pulling once if there is none yet) and returns the record and
// its grade-only score; ok is false when the user is unknown or the grade
// has no score.
func (s *Service) lookupUser(ctx context.Context, cfg Configuration, uid string) (u UserGrade, gradeScore int, ok bool, err error) {
	return UserGrade{}, 0, false, errTODO
}
