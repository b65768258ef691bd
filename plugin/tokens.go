package plugin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Token limits and formats.
const (
	// TokenPrefix starts every generated token value so a leaked one is
	// recognisable (secret scanners, logs).
	TokenPrefix = "mcu_"
	// MaxTokenLifetime bounds expires_in.
	MaxTokenLifetime = 365 * 24 * time.Hour
	// MinTokenValueLength is the shortest value EnsureAdminToken accepts
	// from the operator (URE_ADMIN_TOKEN).
	MinTokenValueLength = 16
	// BootstrapAdminName names the admin token created on first start.
	BootstrapAdminName = "bootstrap-admin"
	// touchEvery limits last-use writes to one per token per interval, so
	// authenticating stays a read on the hot path.
	touchEvery = time.Minute
)

// Audit actions for tokens and authentication.
const (
	AuditTokenCreate = "token.create"
	AuditTokenRevoke = "token.revoke"
	AuditAuthFailure = "auth.failure"
)

// errBadCredentials is the one answer for every failed authentication.
var errBadCredentials = Errorf(EUNAUTHORIZED, "invalid credentials")

// HashToken returns the SHA-256 hex of a token value, the only form in
// which a token is stored.
func HashToken(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:])
}

// NewTokenValue returns a fresh random token value: TokenPrefix followed by
// 32 random bytes in unpadded base64url.
func NewTokenValue() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token value: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func newTokenID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token id: %w", err)
	}
	return "tok_" + hex.EncodeToString(b[:]), nil
}

// validate checks a token request and returns it normalized.
func (r TokenRequest) validate() (TokenRequest, error) {
	r.Name = strings.TrimSpace(r.Name)
	r.Owner = strings.TrimSpace(r.Owner)
	if r.Name == "" || len(r.Name) > 128 {
		return r, FieldError("name", "is required, at most 128 characters")
	}
	if r.Owner == "" {
		return r, FieldError("owner", "is required: the person or system accountable for the token")
	}
	if len(r.Owner) > 256 {
		return r, FieldError("owner", "must be at most 256 characters")
	}
	if r.Role.Rank() == 0 {
		return r, FieldError("role", "must be viewer, operator or admin")
	}
	if d := time.Duration(r.ExpiresIn); d < 0 || d > MaxTokenLifetime {
		return r, FieldError("expires_in", "must be between 0 (never) and %s", MaxTokenLifetime)
	} else if d > 0 && d < time.Minute {
		return r, FieldError("expires_in", "must be at least 1m when set")
	}
	seen := make(map[string]bool, len(r.Configurations))
	var cfgs []string
	for _, c := range r.Configurations {
		if !nameRE.MatchString(c) {
			return r, FieldError("configurations", "%q is not a configuration name", c)
		}
		if !seen[c] {
			seen[c] = true
			cfgs = append(cfgs, c)
		}
	}
	r.Configurations = cfgs
	return r, nil
}

// CreateToken creates an API token and returns it with its value, which is
// shown this once: only its hash is stored. EINVALID names the bad field.
func (s *Service) CreateToken(ctx context.Context, actor string, req TokenRequest) (Token, string, error) {
	req, err := req.validate()
	if err != nil {
		return Token{}, "", err
	}
	value, err := NewTokenValue()
	if err != nil {
		return Token{}, "", err
	}
	return s.createToken(ctx, actor, req, value)
}

func (s *Service) createToken(ctx context.Context, actor string, req TokenRequest, value string) (Token, string, error) {
	id, err := newTokenID()
	if err != nil {
		return Token{}, "", err
	}
	now := s.now().UTC()
	t := Token{
		ID:             id,
		Name:           req.Name,
		Owner:          req.Owner,
		Role:           req.Role,
		Hash:           HashToken(value),
		CreatedAt:      now,
		Configurations: req.Configurations,
	}
	if req.ExpiresIn > 0 {
		t.ExpiresAt = now.Add(time.Duration(req.ExpiresIn))
	}
	detail := map[string]string{"name": t.Name, "owner": t.Owner, "role": string(t.Role)}
	if len(t.Configurations) > 0 {
		detail["configurations"] = strings.Join(t.Configurations, ",")
	}
	if !t.ExpiresAt.IsZero() {
		detail["expires_at"] = t.ExpiresAt.Format(time.RFC3339)
	}
	if err := s.store.CreateToken(ctx, t); err != nil {
		_ = s.audit(ctx, AuditEntry{Actor: actor, Action: AuditTokenCreate, Target: t.ID, Outcome: "failed", Detail: detail})
		return Token{}, "", fmt.Errorf("create token %s: %w", t.ID, err)
	}
	if err := s.audit(ctx, AuditEntry{Actor: actor, Action: AuditTokenCreate, Target: t.ID, Outcome: "ok", Detail: detail}); err != nil {
		return Token{}, "", fmt.Errorf("audit token %s: %w", t.ID, err)
	}
	s.log.Info().Str("token_id", t.ID).Str("role", string(t.Role)).Str("actor", actor).Msg("token created")
	t.Hash = ""
	return t, value, nil
}

// ListTokens returns every token, revoked ones included, without hashes.
func (s *Service) ListTokens(ctx context.Context) ([]Token, error) {
	ts, err := s.store.Tokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out := make([]Token, 0, len(ts))
	for _, t := range ts {
		t.Hash = ""
		out = append(out, t)
	}
	return out, nil
}

// RevokeToken revokes a token by id; ENOTFOUND if there is none.
func (s *Service) RevokeToken(ctx context.Context, actor, id string) error {
	err := s.store.RevokeToken(ctx, id, s.now().UTC())
	outcome := "ok"
	if err != nil {
		outcome = "failed"
	}
	if ErrorCode(err) != ENOTFOUND {
		if aerr := s.audit(ctx, AuditEntry{Actor: actor, Action: AuditTokenRevoke, Target: id, Outcome: outcome}); aerr != nil && err == nil {
			return fmt.Errorf("audit revoke token %s: %w", id, aerr)
		}
	}
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	s.log.Info().Str("token_id", id).Str("actor", actor).Msg("token revoked")
	return nil
}

// Authenticate returns the token for a presented value; EUNAUTHORIZED with
// the one message "invalid credentials" for any unknown, malformed,
// expired or revoked value.
//
// Every value, well formed or not, is hashed and looked up so that the
// answer takes about the same time whatever was wrong with it, and the
// stored hash is compared in constant time.
func (s *Service) Authenticate(ctx context.Context, value string) (Token, error) {
	h := HashToken(value)
	t, err := s.store.TokenByHash(ctx, h)
	switch {
	case ErrorCode(err) == ENOTFOUND:
		subtle.ConstantTimeCompare([]byte(h), []byte(h))
		return Token{}, errBadCredentials
	case err != nil:
		return Token{}, fmt.Errorf("authenticate: %w", err)
	}
	now := s.now()
	ok := subtle.ConstantTimeCompare([]byte(t.Hash), []byte(h)) == 1
	ok = ok && value != "" && t.RevokedAt.IsZero() && t.Role.Rank() > 0
	ok = ok && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
	if !ok {
		return Token{}, errBadCredentials
	}
	if now.Sub(t.LastUsedAt) >= touchEvery {
		if err := s.store.TouchToken(context.WithoutCancel(ctx), t.ID, now.UTC()); err != nil {
			s.log.Warn().Err(err).Str("token_id", t.ID).Msg("token last-use not recorded")
		} else {
			t.LastUsedAt = now.UTC()
		}
	}
	t.Hash = ""
	return t, nil
}

// RecordAuthFailure audits one failed authentication from a client
// address. detail carries why and where (never token material).
func (s *Service) RecordAuthFailure(ctx context.Context, addr string, detail map[string]string) error {
	return s.audit(ctx, AuditEntry{Actor: addr, Action: AuditAuthFailure, Target: "api", Outcome: "denied", Detail: detail})
}

// EnsureAdminToken creates an admin token when none exists: with value if
// non-empty, else a generated one. It returns the value and true when it
// created one.
func (s *Service) EnsureAdminToken(ctx context.Context, value string) (string, bool, error) {
	ts, err := s.store.Tokens(ctx)
	if err != nil {
		return "", false, fmt.Errorf("ensure admin token: %w", err)
	}
	now := s.now()
	for _, t := range ts {
		if t.Role == RoleAdmin && t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt)) && len(t.Configurations) == 0 {
			return "", false, nil
		}
	}
	if value == "" {
		if value, err = NewTokenValue(); err != nil {
			return "", false, err
		}
	} else {
		if len(value) < MinTokenValueLength || strings.TrimSpace(value) != value {
			return "", false, Errorf(EINVALID, "the admin token must be at least %d characters without surrounding spaces", MinTokenValueLength)
		}
		_, err := s.store.TokenByHash(ctx, HashToken(value))
		switch {
		case err == nil:
			// The value belongs to a revoked, expired or restricted token:
			// never revive it.
			return "", false, Errorf(ECONFLICT, "the admin token value was used before; choose a new one")
		case ErrorCode(err) != ENOTFOUND:
			return "", false, fmt.Errorf("ensure admin token: %w", err)
		}
	}
	req := TokenRequest{Name: BootstrapAdminName, Owner: "system", Role: RoleAdmin}
	if _, _, err := s.createToken(ctx, "system", req, value); err != nil {
		return "", false, err
	}
	return value, true, nil
}
