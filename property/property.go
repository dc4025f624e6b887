// Package property owns the company's web properties (website, community,
// event portal, product app): their names, allowed origins and keys.
//
// The write key is public (it sits in every page's HTML) and only lets a
// caller send events. The secret key reads data server-side; Onramp keeps
// only its SHA-256 hash, which is enough for a 256-bit random secret.
package property

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/onramp-dev/onramp"
)

// Property is one web property.
type Property struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Origins []string `json:"origins"`
	// Theme is how the hosted sign-in pages look for the property's
	// clients; the zero Theme leaves Onramp's own look.
	Theme     Theme     `json:"theme"`
	WriteKey  string    `json:"write_key"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// SecretKeyHash is hex SHA-256 of the secret key.
	SecretKeyHash string `json:"-"`
}

// AllowsOrigin reports whether a browser on origin may call Onramp for this
// property. Origins match exactly (scheme, host and port).
func (p *Property) AllowsOrigin(origin string) bool {
	for _, o := range p.Origins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// Store is what the property rules need from an engine.
type Store interface {
	CreateProperty(ctx context.Context, p *Property) error
	UpdateProperty(ctx context.Context, p *Property) error
	PropertyByID(ctx context.Context, id string) (*Property, error)
	PropertyByName(ctx context.Context, name string) (*Property, error)
	PropertyByWriteKey(ctx context.Context, key string) (*Property, error)
	PropertyBySecretHash(ctx context.Context, hash string) (*Property, error)
	ListProperties(ctx context.Context) ([]*Property, error)
}

// Service holds the property rules and a short-lived cache of write keys,
// which every ingest request looks up.
type Service struct {
	store Store // writes, and reads that must see them
	read  Store // hot-path lookups; on SQLite a reader that never waits for the writer
	clock onramp.Clock
	log   *slog.Logger

	mu    sync.Mutex
	cache map[string]cachedProperty
	// CacheTTL bounds how long another node may accept a revoked write
	// key. Revocation on this node takes effect at once.
	CacheTTL time.Duration
}

type cachedProperty struct {
	p  *Property
	at time.Time
}

// NewService returns a Service that writes through store and looks keys up
// through read (which may be the same).
func NewService(store, read Store, clock onramp.Clock, log *slog.Logger) *Service {
	return &Service{store: store, read: read, clock: clock, log: log, cache: map[string]cachedProperty{}, CacheTTL: 5 * time.Second}
}

// CreateParams describes a new property.
type CreateParams struct {
	Name    string
	Origins []string
	Theme   Theme
}

// Created is a new property with its secret key, shown this once.
type Created struct {
	*Property
	SecretKey string `json:"secret_key,omitempty"`
}

// Create adds a property with fresh keys.
func (s *Service) Create(ctx context.Context, p CreateParams) (*Created, error) {
	return s.CreateIn(ctx, s.store, p)
}

// CreateIn is Create writing through st, so that a caller can make the
// property in a transaction together with what belongs to it (auth makes
// the property's OAuth client in the same transaction).
func (s *Service) CreateIn(ctx context.Context, st Store, p CreateParams) (*Created, error) {
	name := strings.TrimSpace(p.Name)
	if err := validName(name); err != nil {
		return nil, err
	}
	origins, err := NormalizeOrigins(p.Origins)
	if err != nil {
		return nil, err
	}
	theme, err := NormalizeTheme(p.Theme)
	if err != nil {
		return nil, err
	}
	if existing, err := st.PropertyByName(ctx, name); err == nil && existing != nil {
		return nil, onramp.Errorf(onramp.ECONFLICT, "A property named %q exists already.", name)
	} else if err != nil && onramp.ErrorCode(err) != onramp.ENOTFOUND {
		return nil, fmt.Errorf("property: create: %w", err)
	}
	now := s.clock.Now()
	secret := onramp.NewSecret("sk")
	prop := &Property{
		ID:            onramp.NewID("prp"),
		Name:          name,
		Origins:       origins,
		Theme:         theme,
		WriteKey:      onramp.NewSecret("wk"),
		SecretKeyHash: HashSecret(secret),
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	if err := st.CreateProperty(ctx, prop); err != nil {
		return nil, fmt.Errorf("property: create: %w", err)
	}
	return &Created{Property: prop, SecretKey: secret}, nil
}

// UpdateParams changes a property; nil fields stay as they are. A Theme
// replaces the whole theme (the zero Theme removes it).
type UpdateParams struct {
	ID      string
	Name    *string
	Origins []string
	Theme   *Theme
}

// Update changes a property's name, origins or theme.
func (s *Service) Update(ctx context.Context, p UpdateParams) (*Property, error) {
	prop, err := s.Get(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	if p.Name != nil {
		name := strings.TrimSpace(*p.Name)
		if err := validName(name); err != nil {
			return nil, err
		}
		prop.Name = name
	}
	if p.Origins != nil {
		if prop.Origins, err = NormalizeOrigins(p.Origins); err != nil {
			return nil, err
		}
	}
	if p.Theme != nil {
		if prop.Theme, err = NormalizeTheme(*p.Theme); err != nil {
			return nil, err
		}
	}
	prop.UpdatedAt = s.clock.Now()
	if err := s.store.UpdateProperty(ctx, prop); err != nil {
		return nil, fmt.Errorf("property: update: %w", err)
	}
	s.forget(prop.WriteKey)
	return prop, nil
}

// Key names one of a property's keys.
type Key string

const (
	WriteKey  Key = "write"
	SecretKey Key = "secret"
)

// RevokeKey replaces one key of the property with a new one; the old one
// stops working at once on this node and within CacheTTL on others. It
// returns the property and, for the secret key, the new secret.
func (s *Service) RevokeKey(ctx context.Context, id string, which Key) (*Created, error) {
	prop, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	out := &Created{Property: prop}
	old := prop.WriteKey
	switch which {
	case WriteKey:
		prop.WriteKey = onramp.NewSecret("wk")
	case SecretKey:
		s.forget("secret:" + prop.SecretKeyHash)
		out.SecretKey = onramp.NewSecret("sk")
		prop.SecretKeyHash = HashSecret(out.SecretKey)
	default:
		return nil, onramp.Errorf(onramp.EINVALID, "key must be %q or %q", WriteKey, SecretKey)
	}
	prop.UpdatedAt = s.clock.Now()
	if err := s.store.UpdateProperty(ctx, prop); err != nil {
		return nil, fmt.Errorf("property: revoke key: %w", err)
	}
	s.forget(old)
	return out, nil
}

// Get returns a property by id or name.
func (s *Service) Get(ctx context.Context, idOrName string) (*Property, error) {
	p, err := s.store.PropertyByID(ctx, idOrName)
	if onramp.ErrorCode(err) == onramp.ENOTFOUND {
		p, err = s.store.PropertyByName(ctx, idOrName)
	}
	if err != nil {
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return nil, onramp.Errorf(onramp.ENOTFOUND, "No property %q.", idOrName)
		}
		return nil, fmt.Errorf("property: get: %w", err)
	}
	return p, nil
}

// List returns every property.
func (s *Service) List(ctx context.Context) ([]*Property, error) {
	return s.read.ListProperties(ctx)
}

var errBadWriteKey = onramp.Errorf(onramp.EUNAUTHORIZED, "Unknown or revoked write key.")

// ByWriteKey authenticates a write key. It is on every ingest request, so
// it is served from memory for CacheTTL.
func (s *Service) ByWriteKey(ctx context.Context, key string) (*Property, error) {
	if key == "" || len(key) > 200 {
		return nil, errBadWriteKey
	}
	now := time.Now()
	s.mu.Lock()
	c, ok := s.cache[key]
	s.mu.Unlock()
	if ok && now.Sub(c.at) < s.CacheTTL {
		if c.p == nil {
			return nil, errBadWriteKey
		}
		return c.p, nil
	}
	p, err := s.read.PropertyByWriteKey(ctx, key)
	if err != nil && onramp.ErrorCode(err) != onramp.ENOTFOUND {
		return nil, fmt.Errorf("property: write key: %w", err)
	}
	s.mu.Lock()
	if len(s.cache) > 10000 {
		// A flood of random keys must not grow memory without bound.
		s.cache = map[string]cachedProperty{}
	}
	s.cache[key] = cachedProperty{p: p, at: now}
	s.mu.Unlock()
	if p == nil {
		return nil, errBadWriteKey
	}
	return p, nil
}

// BySecretKey authenticates a secret key. Like write keys, good answers
// are served from memory for CacheTTL (keyed by the hash, so the cache
// holds no secret).
func (s *Service) BySecretKey(ctx context.Context, secret string) (*Property, error) {
	bad := onramp.Errorf(onramp.EUNAUTHORIZED, "Unknown or revoked secret key.")
	if !strings.HasPrefix(secret, "sk_") || len(secret) > 200 {
		return nil, bad
	}
	h := HashSecret(secret)
	now := time.Now()
	s.mu.Lock()
	c, ok := s.cache["secret:"+h]
	s.mu.Unlock()
	if ok && c.p != nil && now.Sub(c.at) < s.CacheTTL && c.p.SecretKeyHash == h {
		return c.p, nil
	}
	p, err := s.read.PropertyBySecretHash(ctx, h)
	if err != nil {
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return nil, bad
		}
		return nil, fmt.Errorf("property: secret key: %w", err)
	}
	// The lookup was by hash; compare again in constant time so a partial
	// index match can never pass.
	if subtle.ConstantTimeCompare([]byte(p.SecretKeyHash), []byte(h)) != 1 {
		return nil, bad
	}
	s.mu.Lock()
	if len(s.cache) > 10000 {
		s.cache = map[string]cachedProperty{}
	}
	s.cache["secret:"+h] = cachedProperty{p: p, at: now}
	s.mu.Unlock()
	return p, nil
}

func (s *Service) forget(writeKey string) {
	s.mu.Lock()
	delete(s.cache, writeKey)
	s.mu.Unlock()
}

// HashSecret returns the hex SHA-256 of a high-entropy secret.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func validName(name string) error {
	if name == "" || len(name) > 100 {
		return onramp.Errorf(onramp.EINVALID, "name must be 1 to 100 characters")
	}
	if strings.HasPrefix(name, "prp_") {
		// Commands find a property by id or name; a name shaped like an id
		// could make them pick the wrong one.
		return onramp.Errorf(onramp.EINVALID, "name must not start with prp_ (that is how property ids look)")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return onramp.Errorf(onramp.EINVALID, "name must not contain control characters")
		}
	}
	return nil
}

// NormalizeOrigins checks that each origin is scheme://host[:port] with no
// path, and returns them lower-cased without duplicates. "*" allows every
// origin and is meant for development only.
func NormalizeOrigins(in []string) ([]string, error) {
	seen := map[string]bool{}
	out := []string{}
	for _, o := range in {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o != "*" {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
				return nil, onramp.Errorf(onramp.EINVALID, "origin %q must look like https://www.example.com (scheme, host, optional port, nothing else)", o)
			}
			o = strings.ToLower(u.Scheme + "://" + u.Host)
		}
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out, nil
}
