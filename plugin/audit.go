package plugin

import "context"

// Audit returns audit entries matching f.
func (s *Service) Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	return s.store.Audit(ctx, f)
}

// audit appends entries to the audit log, stamping the time where unset.
// A failure to audit is logged, never hidden: the error is returned so
// callers that must not act unaudited can stop.
func (s *Service) audit(ctx context.Context, entries ...AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	now := s.now().UTC()
	for i := range entries {
		if entries[i].At.IsZero() {
			entries[i].At = now
		}
	}
	if err := s.store.AppendAudit(context.WithoutCancel(ctx), entries...); err != nil {
		s.log.Error().Err(err).Int("entries", len(entries)).Msg("audit append failed")
		return err
	}
	return nil
}
