package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"mimecast-ure/scoring"
)

// Audit actions of the configuration operations.
const (
	AuditConfigCreate = "configuration.create"
	AuditConfigUpdate = "configuration.update"
	AuditConfigDelete = "configuration.delete"
)

// Audit outcomes of host operations that are not per-user actions.
const (
	AuditOK     = "ok"
	AuditFailed = "failed"
)

// prepare applies defaults and checks everything that needs no network:
// the fields, the score table and, when events are configured and a
// detector is wired, the rules. Errors are EINVALID naming the field.
// Then, with controls enabled, it resolves every target and scope group
// against Okta and Mimecast (checkControlGroups): a missing group is
// EINVALID naming the field, an unreachable or refusing service its own
// error, so nothing is saved unverified.
func (s *Service) prepare(ctx context.Context, c Configuration) (Configuration, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return c, err
	}
	if _, err := scoring.NewTable(c.Score.Band, c.Score.Mapping); err != nil {
		return c, scoreError(err)
	}
	if s.opts.Detector != nil && c.Events != nil {
		if _, err := s.opts.Detector(c.Events, c.Controls != nil && c.Controls.Enabled); err != nil {
			var pe *Error
			if errors.As(err, &pe) {
				return c, err
			}
			return c, FieldError("events", "%s", err.Error())
		}
	}
	// Building the Okta client parses the private key and makes no call, so
	// a bad key is refused here, with the field named, not at the first run.
	var okta Okta
	if s.opts.Okta != nil && c.Controls != nil && c.Controls.Okta != nil {
		var err error
		if okta, err = s.opts.Okta(*c.Controls.Okta); err != nil {
			if ErrorCode(err) == EINVALID {
				return c, err
			}
			return c, FieldError("controls.okta", "%s", ErrorMessage(err))
		}
	}
	// The group checks wait on Okta and Mimecast: bound them so a slow or
	// rate-limited upstream cannot hold a configuration change for minutes.
	gctx, cancel := context.WithTimeout(ctx, controlCheckTimeout)
	defer cancel()
	if err := s.checkControlGroups(gctx, c, okta); err != nil {
		return c, err
	}
	return c, nil
}

// controlCheckTimeout bounds the upstream group checks of a save.
const controlCheckTimeout = 30 * time.Second

// CreateConfiguration validates and stores a new configuration, starts its
// sync loop and returns it with secrets masked. EINVALID naming the field,
// ECONFLICT if the name exists.
func (s *Service) CreateConfiguration(ctx context.Context, actor string, c Configuration) (Configuration, error) {
	c.Name = strings.TrimSpace(c.Name)
	// A new configuration has nothing to keep: a masked secret is a missing one.
	c = c.KeepMasked(Configuration{})
	c, err := s.prepare(ctx, c)
	if err == nil {
		now := s.now().UTC()
		c.CreatedAt, c.UpdatedAt = now, now
		err = s.store.CreateConfiguration(ctx, c)
	}
	s.auditConfig(ctx, actor, AuditConfigCreate, c.Name, err, map[string]string{"sections": strings.Join(sections(c), ",")})
	if err != nil {
		return Configuration{}, err
	}
	s.forget(c.Name, true)
	s.eventsConfigChanged(c.Name)
	s.startLoop(c, true)
	return c.Redacted(), nil
}

// UpdateConfiguration replaces the named configuration (the path name wins
// over the body's), keeping every secret sent as Masked, restarts its sync
// loop and returns it with secrets masked. ENOTFOUND, EINVALID.
func (s *Service) UpdateConfiguration(ctx context.Context, actor, name string, c Configuration) (Configuration, error) {
	// One change at a time per configuration: read, check (which may wait
	// on upstreams) and write must not interleave with another PUT or a
	// DELETE, or the last write would merge secrets from a stale read.
	unlock := s.host.lockKey("config\x00" + name)
	defer unlock()
	stored, err := s.store.Configuration(ctx, name)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			s.auditConfig(ctx, actor, AuditConfigUpdate, name, err, nil)
		}
		return Configuration{}, err
	}
	c.Name = name
	if err := c.CheckKeptSecrets(stored.WithDefaults()); err != nil {
		s.auditConfig(ctx, actor, AuditConfigUpdate, name, err, nil)
		return Configuration{}, err
	}
	c = c.KeepMasked(stored)
	c, err = s.prepare(ctx, c)
	var detail map[string]string
	if err == nil {
		c.CreatedAt, c.UpdatedAt = stored.CreatedAt, s.now().UTC()
		detail = map[string]string{"changed": strings.Join(changedSections(stored.WithDefaults(), c), ",")}
		err = s.store.UpdateConfiguration(ctx, c)
	}
	s.auditConfig(ctx, actor, AuditConfigUpdate, name, err, detail)
	if err != nil {
		return Configuration{}, err
	}
	sameTenant := sameMimecast(stored.WithDefaults().Mimecast, c.Mimecast)
	// A new tenant or new credentials: the old snapshot stays served until
	// the immediate pull replaces it.
	if sameTenant {
		s.host.dropGroups(name)
	} else {
		s.forget(name, false)
		s.dropClient(name)
	}
	s.eventsConfigChanged(name)
	s.startLoop(c, !sameTenant)
	return c.Redacted(), nil
}

// GetConfiguration returns one configuration with secrets masked. ENOTFOUND.
func (s *Service) GetConfiguration(ctx context.Context, name string) (Configuration, error) {
	c, err := s.store.Configuration(ctx, name)
	if err != nil {
		return Configuration{}, err
	}
	return c.WithDefaults().Redacted(), nil
}

// ListConfigurations returns every configuration, sorted by name, secrets masked.
func (s *Service) ListConfigurations(ctx context.Context) ([]Configuration, error) {
	cs, err := s.store.Configurations(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Configuration, len(cs))
	for i, c := range cs {
		out[i] = c.WithDefaults().Redacted()
	}
	return out, nil
}

// DeleteConfiguration removes the configuration and everything kept for
// it, and stops its loops. ENOTFOUND.
func (s *Service) DeleteConfiguration(ctx context.Context, actor, name string) error {
	unlock := s.host.lockKey("config\x00" + name)
	defer unlock()
	err := s.store.DeleteConfiguration(ctx, name)
	s.auditConfig(ctx, actor, AuditConfigDelete, name, err, nil)
	if err != nil {
		return err
	}
	if l := s.stopLoopNoWait(name); l != nil {
		<-l.done
	}
	s.forget(name, true)
	s.dropClient(name)
	s.eventsConfigChanged(name)
	return nil
}

// ValidateConfiguration checks the stored credentials against Mimecast
// (get-account) and that the account has Awareness Training. Every failure
// is an answer with a message a person can act on; only a missing
// configuration is an error (ENOTFOUND).
func (s *Service) ValidateConfiguration(ctx context.Context, name string) (ValidationResult, error) {
	cfg, err := s.configuration(ctx, name)
	if err != nil {
		return ValidationResult{}, err
	}
	mc, err := s.opts.Mimecast(cfg.Mimecast) // fresh: validation presents the credentials
	if err != nil {
		return ValidationResult{Success: false, Message: "the Mimecast settings cannot be used: " + ErrorMessage(err)}, nil
	}
	acct, err := mc.Account(ctx)
	if err != nil {
		s.log.Info().Err(err).Str("configuration", name).Msg("validation: get-account failed")
		return ValidationResult{Success: false, Message: accountFailure(cfg, err)}, nil
	}
	if !acct.HasAwareness() {
		return ValidationResult{Success: false, Message: "the account has no Awareness Training package (" + AwarenessPackage +
			" or Engage Core [1124] in get-account packages); ask Mimecast to enable Awareness Training for " + accountLabel(acct) +
			" or use another account's keys"}, nil
	}
	return ValidationResult{Success: true, Message: "connected to " + accountLabel(acct) + "; Awareness Training is available"}, nil
}

func accountLabel(a Account) string {
	switch {
	case a.Name != "" && a.Code != "":
		return a.Name + " (" + a.Code + ")"
	case a.Name != "":
		return a.Name
	case a.Code != "":
		return a.Code
	}
	return "the Mimecast account"
}

// accountFailure words a failed get-account for the person who configured
// it. The client's messages already say what Mimecast refused and why.
func accountFailure(cfg Configuration, err error) string {
	msg := ErrorMessage(err)
	switch ErrorCode(err) {
	case EUPSTREAMAUTH:
		// The client's message names the cause and the fix (bad keys,
		// expired binding, missing permission).
		return msg
	case EUNAUTHORIZED, EFORBIDDEN:
		return "Mimecast refused the credentials: " + msg
	case ERATELIMITED:
		return "Mimecast is rate limiting these keys: " + msg + "; try again later"
	case EUNAVAILABLE:
		return msg + "; check base_url and the network"
	case EINVALID:
		return "Mimecast rejected the request: " + msg
	}
	return "could not check the account: " + msg
}

// auditConfig records one configuration change; detail never holds a secret.
func (s *Service) auditConfig(ctx context.Context, actor, action, name string, err error, detail map[string]string) {
	e := AuditEntry{Actor: actor, Action: action, Target: name, Outcome: AuditOK, Detail: map[string]string{}}
	for k, v := range detail {
		if v != "" {
			e.Detail[k] = v
		}
	}
	if err != nil {
		e.Outcome = AuditFailed
		e.Detail["error"] = ErrorMessage(err)
	}
	if len(e.Detail) == 0 {
		e.Detail = nil
	}
	_ = s.audit(ctx, e)
}

// sections names the optional parts a configuration has.
func sections(c Configuration) []string {
	out := []string{"mimecast", "score"}
	if c.Events != nil {
		out = append(out, "events")
	}
	if c.Controls != nil {
		out = append(out, "controls")
	}
	return out
}

// changedSections names the parts of a configuration an update changed;
// "secrets" when any secret value changed (never which value).
func changedSections(old, cur Configuration) []string {
	o, n := old.Redacted(), cur.Redacted()
	var out []string
	cmp := func(name string, a, b any) {
		x, _ := json.Marshal(a)
		y, _ := json.Marshal(b)
		if !bytes.Equal(x, y) {
			out = append(out, name)
		}
	}
	cmp("sync_interval", o.SyncInterval, n.SyncInterval)
	cmp("mimecast", o.Mimecast, n.Mimecast)
	cmp("score", o.Score, n.Score)
	cmp("events", o.Events, n.Events)
	cmp("controls", o.Controls, n.Controls)
	if !slices.Equal(old.Secrets(), cur.Secrets()) {
		out = append(out, "secrets")
	}
	return out
}

// sameMimecast reports whether two settings reach the same tenant with the
// same credentials (page and batch sizes do not matter).
func sameMimecast(a, b MimecastSettings) bool {
	a.PageSize, b.PageSize = 0, 0
	a.BatchSize, b.BatchSize = 0, 0
	a.Timeout, b.Timeout = 0, 0
	return a == b
}
