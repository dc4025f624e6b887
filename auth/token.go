// Package auth owns who may do what: API tokens today; accounts, sessions,
// the OIDC provider and staff roles as they arrive.
package auth

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/property"
)

// Roles a token or staff member can hold, from most to least powerful.
const (
	RoleOwner     = "owner"
	RoleAdmin     = "admin"
	RoleDeveloper = "developer"
	RoleMarketer  = "marketer"
	RoleSupport   = "support"
)

// Token is an API token. Only the SHA-256 of its secret is stored.
type Token struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Hash       string     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// Store is what the token rules need from an engine.
type Store interface {
	CreateToken(ctx context.Context, t *Token) error
	TokenByHash(ctx context.Context, hash string) (*Token, error)
	ListTokens(ctx context.Context) ([]*Token, error)
	RevokeToken(ctx context.Context, id string, at time.Time) error
	CountTokens(ctx context.Context) (int64, error)
}

// Service issues and checks API tokens.
type Service struct {
	store Store
	read  Store
	clock onramp.Clock
	log   *slog.Logger
}

// NewService returns a token Service writing through store and checking
// tokens through read (which may be the same).
func NewService(store, read Store, clock onramp.Clock, log *slog.Logger) *Service {
	return &Service{store: store, read: read, clock: clock, log: log}
}

// NewToken is a freshly made token with its secret, shown once.
type NewToken struct {
	*Token
	Secret string `json:"token"`
}

// CreateToken makes a token with the given role.
func (s *Service) CreateToken(ctx context.Context, name, role string) (*NewToken, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return nil, onramp.Errorf(onramp.EINVALID, "token name must be 1 to 100 characters")
	}
	if !validRole(role) {
		return nil, onramp.Errorf(onramp.EINVALID, "role must be one of owner, admin, developer, marketer, support")
	}
	secret := onramp.NewSecret("ort")
	t := &Token{ID: onramp.NewID("tok"), Name: name, Role: role, Hash: property.HashSecret(secret), CreatedAt: s.clock.Now()}
	if err := s.store.CreateToken(ctx, t); err != nil {
		return nil, fmt.Errorf("auth: create token: %w", err)
	}
	return &NewToken{Token: t, Secret: secret}, nil
}

// FirstStart makes the owner token when no token exists yet, and returns it
// (nil when tokens exist). Two nodes starting at once may both make one;
// both are valid owner tokens.
func (s *Service) FirstStart(ctx context.Context) (*NewToken, error) {
	n, err := s.store.CountTokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: first start: %w", err)
	}
	if n > 0 {
		return nil, nil
	}
	return s.CreateToken(ctx, "owner (first start)", RoleOwner)
}

// Authenticate returns the live token for secret.
func (s *Service) Authenticate(ctx context.Context, secret string) (*Token, error) {
	bad := onramp.Errorf(onramp.EUNAUTHORIZED, "Unknown or revoked API token.")
	if !strings.HasPrefix(secret, "ort_") || len(secret) > 200 {
		return nil, bad
	}
	t, err := s.read.TokenByHash(ctx, property.HashSecret(secret))
	if err != nil {
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return nil, bad
		}
		return nil, fmt.Errorf("auth: authenticate: %w", err)
	}
	if t.RevokedAt != nil {
		return nil, bad
	}
	return t, nil
}

// List returns all tokens (without secrets).
func (s *Service) List(ctx context.Context) ([]*Token, error) { return s.store.ListTokens(ctx) }

// Get returns a token (without its secret) by id.
func (s *Service) Get(ctx context.Context, id string) (*Token, error) {
	ts, err := s.read.ListTokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: get token: %w", err)
	}
	for _, t := range ts {
		if t.ID == id {
			return t, nil
		}
	}
	return nil, onramp.Errorf(onramp.ENOTFOUND, "No token %q.", id)
}

// Revoke stops a token from working.
func (s *Service) Revoke(ctx context.Context, id string) error {
	return s.store.RevokeToken(ctx, id, s.clock.Now())
}

func validRole(r string) bool {
	switch r {
	case RoleOwner, RoleAdmin, RoleDeveloper, RoleMarketer, RoleSupport:
		return true
	}
	return false
}

// Permission names an action the API guards.
type Permission string

const (
	ReadPeople       Permission = "people:read"
	WritePeople      Permission = "people:write"
	ManageProperties Permission = "properties:manage"
	ReadProperties   Permission = "properties:read"
	ManageTokens     Permission = "tokens:manage"
	ReadAudit        Permission = "audit:read"
	// ManageAuthSettings covers how people sign in: upstream identity
	// providers and their client secrets, and whether staff need a second
	// factor (changing that one is for owners alone, a rule of
	// RequireStaffMFA).
	ManageAuthSettings Permission = "auth:settings"
	// ManageStaff covers who works in the console and with which role
	// (admins may not touch owners, a rule of SetStaff and RemoveStaff).
	ManageStaff Permission = "staff:manage"
	// RevokeSessions is ending other people's sessions.
	RevokeSessions Permission = "sessions:revoke"
	// ExportPeople is taking everyone's data away in one file (exports of
	// people and events). Apart from people:read because reading a profile
	// to help one person is not copying all of them: support may do the
	// first, not the second.
	ExportPeople Permission = "people:export"
)

// AllPermissions lists every Permission, so that a caller can be told what
// its role may do (the console's who-am-I shows only what the role may
// use). A new Permission is added here too.
var AllPermissions = []Permission{ReadPeople, WritePeople, ExportPeople, ManageProperties, ReadProperties, ManageTokens, ReadAudit, ManageAuthSettings, ManageStaff, RevokeSessions}

// PermissionsOf lists the permissions role holds, in AllPermissions order.
func PermissionsOf(role string) []Permission {
	out := []Permission{}
	for _, p := range AllPermissions {
		if Allows(role, p) {
			out = append(out, p)
		}
	}
	return out
}

// Allows reports whether role may do p. Least privilege: support reads
// people and ends their sessions, marketers change people, developers run
// properties, admins and owners everything (the audit log, tokens, staff and
// sign-in settings are theirs alone: the log shows every person's sign-ins,
// and a sign-in provider decides who can become whom).
func Allows(role string, p Permission) bool {
	switch role {
	case RoleOwner, RoleAdmin:
		return true
	case RoleDeveloper:
		return p != ManageTokens && p != ReadAudit && p != ManageAuthSettings && p != ManageStaff && p != RevokeSessions
	case RoleMarketer:
		return p == ReadPeople || p == WritePeople || p == ReadProperties || p == ExportPeople
	case RoleSupport:
		return p == ReadPeople || p == ReadProperties || p == RevokeSessions
	}
	return false
}
