package plugin

// TEMPORARY stubs: replaced by tokens.go.

import "context"

func (s *Service) CreateToken(ctx context.Context, actor string, req TokenRequest) (Token, string, error) {
	return Token{}, "", errTODO
}
func (s *Service) ListTokens(ctx context.Context) ([]Token, error)         { return nil, errTODO }
func (s *Service) RevokeToken(ctx context.Context, actor, id string) error { return errTODO }

// Authenticate returns the token for a presented value; EUNAUTHORIZED with
// the one message "invalid credentials" for any unknown, malformed,
// expired or revoked value.
func (s *Service) Authenticate(ctx context.Context, value string) (Token, error) {
	return Token{}, errTODO
}

// EnsureAdminToken creates an admin token when none exists: with value if
// non-empty, else a generated one. It returns the value and true when it
// created one.
func (s *Service) EnsureAdminToken(ctx context.Context, value string) (string, bool, error) {
	return "", false, errTODO
}
