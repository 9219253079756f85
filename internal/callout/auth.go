package callout

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// tokenPrefix marks Callout's API tokens so that a leaked one is easy to
// recognise in logs and secret scanners.
const tokenPrefix = "co_"

// HashToken returns the hash under which a token is stored; the token itself
// is never kept.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateToken makes a new API token for user in lab and returns it; only its
// hash is stored, so it can be shown once.
func (s *Service) CreateToken(ctx context.Context, labID int64, user string, role Role, departments ...string) (string, error) {
	user = strings.TrimSpace(user)
	if user == "" || len(user) > 200 {
		return "", Errorf(KindInvalid, "a token needs a user name of at most 200 bytes")
	}
	if err := CheckLine("the token's user name", user); err != nil {
		return "", err
	}
	for _, d := range departments {
		if err := checkText("department", d); err != nil {
			return "", err
		}
	}
	if _, err := ParseRole(string(role)); err != nil {
		return "", err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	if err := s.Store.CreateToken(ctx, Token{LabID: labID, User: user, Role: role, Departments: departments, Hash: HashToken(token)}); err != nil {
		return "", err
	}
	return token, nil
}

// Authenticate returns who holds token.
func (s *Service) Authenticate(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, Errorf(KindUnauthorized, "send an API token: Authorization: Bearer <token>")
	}
	return s.Store.Principal(ctx, HashToken(token))
}

// Replay returns the answer stored under the caller's idempotency key, or nil.
// The key is checked here, where every idempotent request starts: it is
// looked up and stored as text, so it follows the single-line rules.
func (s *Service) Replay(ctx context.Context, p Principal, key string) (*StoredResponse, error) {
	if err := CheckLine("Idempotency-Key", key); err != nil {
		return nil, err
	}
	return s.Store.Replay(ctx, p.LabID, key)
}

// CreateLab creates a lab with the given settings and returns its id.
func (s *Service) CreateLab(ctx context.Context, set Settings) (int64, error) {
	set.Name = strings.TrimSpace(set.Name)
	set = WithDefaults(set)
	if err := ValidateSettings(set); err != nil {
		return 0, err
	}
	return s.Store.CreateLab(ctx, set)
}
