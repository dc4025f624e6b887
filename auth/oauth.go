package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/property"
)

// This file holds the OAuth service: its configuration, the client rules
// and the node-local caches that keep the token endpoint, introspection and
// userinfo cheap. The flows (auth requests, codes, tokens, refresh,
// revocation) are in oauth_flow.go, claims and consent in claims.go and
// signing keys in keys.go. The protocol itself is spoken by oidcop, which
// calls these methods.

// OAuthTxStore is what one OAuth transaction may touch: the OAuth tables
// and, so that a property and its default client are made together, the
// properties.
type OAuthTxStore interface {
	OAuthStore
	property.Store
}

// OAuthConfig wires an OAuth service.
type OAuthConfig struct {
	// Read serves hot lookups (on SQLite a reader that never waits for
	// the writer); it must see what InTx committed.
	Read OAuthStore
	// InTx runs fn in one write transaction.
	InTx func(ctx context.Context, fn func(OAuthTxStore) error) error
	// IsRetryable, if set, names transaction errors after which the
	// transaction is run again (a Postgres serialization failure when two
	// requests redeem one code).
	IsRetryable func(error) bool
	// Properties makes the property in CreateProperty.
	Properties *property.Service
	Clock      onramp.Clock
	Log        *slog.Logger
	// Issuer is the public URL, the iss of every token.
	Issuer string
	// KeyEncryptionKey, if set (32 bytes), seals the private halves of
	// signing keys with AES-256-GCM, so a copy of the database alone cannot
	// sign tokens.
	KeyEncryptionKey []byte
	// Lifetimes; zero values take the defaults below.
	Lifetimes Lifetimes
}

// Lifetimes bound how long OAuth artefacts live.
type Lifetimes struct {
	AuthRequest time.Duration // from /authorize to the code: 30 minutes
	Code        time.Duration // 60 seconds
	AccessToken time.Duration // 1 hour
	IDToken     time.Duration // 1 hour, unless the client sets its own
	RefreshIdle time.Duration // a refresh family unused this long dies: 30 days
	RefreshMax  time.Duration // and at this age whatever happens: 90 days
}

func (l Lifetimes) withDefaults() Lifetimes {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.AuthRequest, 30*time.Minute)
	def(&l.Code, time.Minute)
	def(&l.AccessToken, time.Hour)
	def(&l.IDToken, time.Hour)
	def(&l.RefreshIdle, 30*24*time.Hour)
	def(&l.RefreshMax, 90*24*time.Hour)
	return l
}

// Cache lifetimes. A change on this node takes effect at once (the node
// forgets its entry); other nodes see it within these.
const (
	clientCacheTTL = 5 * time.Second
	tokenCacheTTL  = 10 * time.Second
	keySetCacheTTL = 60 * time.Second
	cacheMaxItems  = 100_000
)

// OAuth holds the rules of the OAuth 2.0 / OpenID Connect provider.
type OAuth struct {
	read        OAuthStore
	inTx        func(ctx context.Context, fn func(OAuthTxStore) error) error
	isRetryable func(error) bool
	props       *property.Service
	clock       onramp.Clock
	log         *slog.Logger
	issuer      string
	kek         []byte
	life        Lifetimes

	clients ttlCache[*Client]
	tokens  ttlCache[*AccessToken]
	keys    keyCache
	group   txGroup[OAuthTxStore]

	recorder oauthRecorder
}

// NewOAuth checks cfg and returns the service.
func NewOAuth(cfg OAuthConfig) (*OAuth, error) {
	if cfg.Read == nil || cfg.InTx == nil || cfg.Clock == nil || cfg.Log == nil {
		return nil, errors.New("auth: OAuthConfig needs Read, InTx, Clock and Log")
	}
	if cfg.Issuer == "" {
		return nil, errors.New("auth: OAuthConfig needs the Issuer")
	}
	if len(cfg.KeyEncryptionKey) != 0 && len(cfg.KeyEncryptionKey) != 32 {
		return nil, errors.New("auth: the key encryption key must be 32 bytes")
	}
	retry := cfg.IsRetryable
	if retry == nil {
		retry = func(error) bool { return false }
	}
	return &OAuth{
		read: cfg.Read, inTx: cfg.InTx, isRetryable: retry, props: cfg.Properties,
		clock: cfg.Clock, log: cfg.Log, issuer: strings.TrimRight(cfg.Issuer, "/"), kek: cfg.KeyEncryptionKey,
		life:    cfg.Lifetimes.withDefaults(),
		clients: newTTLCache[*Client](clientCacheTTL),
		tokens:  newTTLCache[*AccessToken](tokenCacheTTL),
	}, nil
}

// Issuer is the issuer URL the service signs tokens for.
func (o *OAuth) Issuer() string { return o.issuer }

// Lifetimes returns the lifetimes in force.
func (o *OAuth) Lifetimes() Lifetimes { return o.life }

// tx runs fn in a transaction, again when the engine calls the failure a
// race that a retry resolves (the retry then sees the winner's writes).
func (o *OAuth) tx(ctx context.Context, fn func(OAuthTxStore) error) error {
	var err error
	for attempt := range 5 {
		if err = o.inTx(ctx, fn); err == nil || !o.isRetryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	return err
}

// --- errors ---

// OAuth error codes (RFC 6749 §5.2, RFC 7009, OIDC Core §3.1.2.6) carried by
// the errors of this service, so that oidcop answers the right one.
const (
	OAuthInvalidRequest     = "invalid_request"
	OAuthInvalidClient      = "invalid_client"
	OAuthInvalidGrant       = "invalid_grant"
	OAuthUnauthorizedClient = "unauthorized_client"
	OAuthInvalidScope       = "invalid_scope"
)

// oauthError is the Detail of an *onramp.Error that has an OAuth meaning.
type oauthError string

func oauthErrorf(oauthCode, format string, args ...any) *onramp.Error {
	code := onramp.EINVALID
	if oauthCode == OAuthInvalidClient {
		code = onramp.EUNAUTHORIZED
	}
	e := onramp.Errorf(code, format, args...)
	e.Detail = oauthError(oauthCode)
	return e
}

// OAuthErrorf is an error with an OAuth meaning, for an adapter that finds
// one while speaking the protocol itself (oidcop checking authorization
// parameters for the headless API).
func OAuthErrorf(oauthCode, format string, args ...any) *onramp.Error {
	return oauthErrorf(oauthCode, format, args...)
}

// OAuthErrorCode returns the OAuth error code of err ("invalid_grant", …),
// or "" when err has none (a server fault, or a plain not-found).
func OAuthErrorCode(err error) string {
	var e *onramp.Error
	if errors.As(err, &e) {
		if c, ok := e.Detail.(oauthError); ok {
			return string(c)
		}
	}
	return ""
}

// --- clients ---

// ClientParams describes a property's client.
type ClientParams struct {
	PropertyID   string
	RedirectURIs []string
	// Public makes a client without a secret (a single-page or mobile app):
	// it must use PKCE and cannot use client credentials.
	Public bool
	// FirstParty skips the consent screen.
	FirstParty             bool
	PostLogoutRedirectURIs []string
	BackchannelLogoutURI   string
	// Claims maps custom claim names to trait paths, given out under the
	// scope onramp:traits.
	Claims map[string]string
}

// NewClient is a client made just now, with its secret shown this once
// (empty for a public client).
type NewClient struct {
	*Client
	Secret string `json:"client_secret,omitempty"`
}

// newClient validates p and builds the client and its secret.
func (o *OAuth) newClient(p ClientParams) (*NewClient, error) {
	c := &Client{
		ID: onramp.NewID("cli"), PropertyID: p.PropertyID, FirstParty: p.FirstParty,
		GrantTypes: []string{GrantAuthorizationCode, GrantRefreshToken},
	}
	if err := o.setClientFields(c, p); err != nil {
		return nil, err
	}
	out := &NewClient{Client: c}
	if !p.Public {
		out.Secret = onramp.NewSecret("cs")
		c.SecretHash = property.HashSecret(out.Secret)
		c.GrantTypes = append(c.GrantTypes, GrantClientCredentials)
	}
	c.CreatedAt = o.clock.Now()
	c.UpdatedAt = c.CreatedAt
	return out, nil
}

// setClientFields validates and copies the URIs and claims of p into c.
func (o *OAuth) setClientFields(c *Client, p ClientParams) error {
	var err error
	if c.RedirectURIs, err = checkURIs("redirect URI", p.RedirectURIs); err != nil {
		return err
	}
	if c.PostLogoutRedirectURIs, err = checkURIs("post-logout redirect URI", p.PostLogoutRedirectURIs); err != nil {
		return err
	}
	c.BackchannelLogoutURI = strings.TrimSpace(p.BackchannelLogoutURI)
	if c.BackchannelLogoutURI != "" {
		if err := ValidateRedirectURI(c.BackchannelLogoutURI); err != nil {
			return onramp.Errorf(onramp.EINVALID, "back-channel logout URI: %s", onramp.ErrorMessage(err))
		}
	}
	if err := checkClaimNames(p.Claims); err != nil {
		return err
	}
	c.Claims = nil
	if len(p.Claims) > 0 {
		c.Claims = make(map[string]string, len(p.Claims))
		for k, v := range p.Claims {
			c.Claims[k] = v
		}
	}
	return nil
}

func checkURIs(what string, in []string) ([]string, error) {
	out := []string{}
	for _, u := range in {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		if err := ValidateRedirectURI(u); err != nil {
			return nil, onramp.Errorf(onramp.EINVALID, "%s %s", what, onramp.ErrorMessage(err))
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	if len(out) > 20 {
		return nil, onramp.Errorf(onramp.EINVALID, "at most 20 of each kind of URI")
	}
	return out, nil
}

// ValidateRedirectURI checks a URI a client registers: absolute https, or
// http only for the loopback hosts (localhost, *.localhost, 127.0.0.1,
// [::1]), which browsers treat as secure contexts; no fragment, no userinfo,
// no wildcard. Registered URIs are then matched exactly, byte for byte, so
// what is stored must be exactly what clients will send.
func ValidateRedirectURI(raw string) error {
	bad := func(why string) error { return onramp.Errorf(onramp.EINVALID, "%q %s", raw, why) }
	if len(raw) > 2000 {
		return bad("is longer than 2000 characters")
	}
	if strings.ContainsAny(raw, "*#\\ \t\r\n") {
		return bad("must not contain a wildcard, a fragment (#), a backslash or spaces")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		return bad("must be an absolute URL such as https://app.example.com/callback")
	}
	if u.User != nil {
		return bad("must not contain a user name or password")
	}
	if u.Host == "" || u.Hostname() == "" {
		return bad("must name a host")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return bad("must use https (http is only for localhost, *.localhost, 127.0.0.1 and [::1])")
	}
	return bad("must use https")
}

func isLoopbackHost(h string) bool {
	h = strings.ToLower(h)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
}

// CreateClient adds a client to an existing property.
func (o *OAuth) CreateClient(ctx context.Context, p ClientParams) (*NewClient, error) {
	nc, err := o.newClient(p)
	if err != nil {
		return nil, err
	}
	err = o.tx(ctx, func(st OAuthTxStore) error {
		if _, err := st.PropertyByID(ctx, p.PropertyID); err != nil {
			return err
		}
		return st.CreateClient(ctx, nc.Client)
	})
	if err != nil {
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return nil, onramp.Errorf(onramp.ENOTFOUND, "No property %q.", p.PropertyID)
		}
		return nil, fmt.Errorf("auth: create client: %w", err)
	}
	return nc, nil
}

// CreatePropertyParams describes a property and its default client.
type CreatePropertyParams struct {
	Property property.CreateParams
	Client   ClientParams // PropertyID is filled in
}

// PropertyCreated is a new property with its secret key and its default
// client with the client's secret, both shown this once.
type PropertyCreated struct {
	*property.Created
	Client *NewClient `json:"client"`
}

// CreateProperty makes a property and its default OAuth client in one
// transaction: a property is never left without its client.
func (o *OAuth) CreateProperty(ctx context.Context, p CreatePropertyParams) (*PropertyCreated, error) {
	if o.props == nil {
		return nil, errors.New("auth: OAuthConfig.Properties is not set")
	}
	// The client is checked before anything is written, so a bad redirect
	// URI leaves no property behind.
	nc, err := o.newClient(p.Client)
	if err != nil {
		return nil, err
	}
	var out *PropertyCreated
	err = o.tx(ctx, func(st OAuthTxStore) error {
		pc, err := o.props.CreateIn(ctx, st, p.Property)
		if err != nil {
			return err
		}
		nc.PropertyID = pc.ID
		if err := st.CreateClient(ctx, nc.Client); err != nil {
			return err
		}
		out = &PropertyCreated{Created: pc, Client: nc}
		return nil
	})
	if err != nil {
		if onramp.ErrorCode(err) != onramp.EINTERNAL {
			return nil, err
		}
		return nil, fmt.Errorf("auth: create property: %w", err)
	}
	return out, nil
}

// Client returns a client, from memory when this node read it in the last
// few seconds.
func (o *OAuth) Client(ctx context.Context, id string) (*Client, error) {
	if c, ok := o.clients.get(id); ok {
		if c == nil {
			return nil, errNoClient
		}
		return c, nil
	}
	if !strings.HasPrefix(id, "cli_") || len(id) > 100 {
		return nil, errNoClient
	}
	c, err := o.read.ClientByID(ctx, id)
	if err != nil {
		if onramp.ErrorCode(err) != onramp.ENOTFOUND {
			return nil, fmt.Errorf("auth: client: %w", err)
		}
		c = nil
	}
	// Unknown ids are remembered too, so a flood of them does not reach the
	// database each time.
	o.clients.put(id, c)
	if c == nil {
		return nil, errNoClient
	}
	return c, nil
}

var errNoClient = oauthErrorf(OAuthInvalidClient, "Unknown client.")

// AuthenticateClient checks a confidential client's secret. The secret
// has 256 bits of entropy, so one SHA-256, compared in constant time, is
// enough; a slow hash here would make every token request slow.
func (o *OAuth) AuthenticateClient(ctx context.Context, id, secret string) (*Client, error) {
	c, err := o.Client(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Public() || secret == "" || len(secret) > 200 ||
		subtle.ConstantTimeCompare([]byte(property.HashSecret(secret)), []byte(c.SecretHash)) != 1 {
		return nil, oauthErrorf(OAuthInvalidClient, "Wrong client credentials.")
	}
	return c, nil
}

// ClientsOfProperty lists a property's clients.
func (o *OAuth) ClientsOfProperty(ctx context.Context, propertyID string) ([]*Client, error) {
	cs, err := o.read.ClientsOfProperty(ctx, propertyID)
	if err != nil {
		return nil, fmt.Errorf("auth: clients: %w", err)
	}
	return cs, nil
}

// UpdateClientParams changes a client; nil fields stay as they are.
type UpdateClientParams struct {
	ID                     string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	BackchannelLogoutURI   *string
	FirstParty             *bool
	Claims                 map[string]string
}

// UpdateClient changes a client's URIs, consent rule or claims.
func (o *OAuth) UpdateClient(ctx context.Context, p UpdateClientParams) (*Client, error) {
	var out *Client
	err := o.tx(ctx, func(st OAuthTxStore) (err error) {
		out, err = o.updateClientIn(ctx, st, p)
		return err
	})
	if err != nil {
		if onramp.ErrorCode(err) != onramp.EINTERNAL {
			return nil, err
		}
		return nil, fmt.Errorf("auth: update client: %w", err)
	}
	o.clients.forget(p.ID)
	return out, nil
}

// updateClientIn applies p to the client inside st, validating the
// result as a new client's fields are.
func (o *OAuth) updateClientIn(ctx context.Context, st OAuthStore, p UpdateClientParams) (*Client, error) {
	c, err := st.ClientByID(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	cp := ClientParams{RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, BackchannelLogoutURI: c.BackchannelLogoutURI, Claims: c.Claims}
	if p.RedirectURIs != nil {
		cp.RedirectURIs = p.RedirectURIs
	}
	if p.PostLogoutRedirectURIs != nil {
		cp.PostLogoutRedirectURIs = p.PostLogoutRedirectURIs
	}
	if p.BackchannelLogoutURI != nil {
		cp.BackchannelLogoutURI = *p.BackchannelLogoutURI
	}
	if p.Claims != nil {
		cp.Claims = p.Claims
	}
	if p.FirstParty != nil {
		c.FirstParty = *p.FirstParty
	}
	if err := o.setClientFields(c, cp); err != nil {
		return nil, err
	}
	c.UpdatedAt = o.clock.Now()
	if err := st.UpdateClient(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// errNoDefaultClient answers for a property that has no OAuth client
// (one made before properties had clients).
func errNoDefaultClient(propertyID string) error {
	return onramp.Errorf(onramp.ENOTFOUND, "Property %s has no OpenID Connect client.", propertyID)
}

// DefaultClient returns a property's default client: its first, the one
// CreateProperty made.
func (o *OAuth) DefaultClient(ctx context.Context, propertyID string) (*Client, error) {
	cs, err := o.read.ClientsOfProperty(ctx, propertyID)
	if err != nil {
		return nil, fmt.Errorf("auth: default client: %w", err)
	}
	if len(cs) == 0 {
		return nil, errNoDefaultClient(propertyID)
	}
	return cs[0], nil
}

// UpdatePropertyParams changes a property and its default client.
type UpdatePropertyParams struct {
	// Property.ID may be the property's id or its name.
	Property property.UpdateParams
	// Client, if set, changes the default client (its ID is ignored);
	// nil fields stay as they are.
	Client *UpdateClientParams
}

// PropertyUpdated is a property as it is after an update, with its
// default client (nil when it has none).
type PropertyUpdated struct {
	*property.Property
	Client *Client `json:"client,omitempty"`
}

// UpdateProperty changes a property and its default client in one
// transaction: a refused redirect URI leaves the name and origins as they
// were too.
func (o *OAuth) UpdateProperty(ctx context.Context, p UpdatePropertyParams) (*PropertyUpdated, error) {
	if o.props == nil {
		return nil, errors.New("auth: OAuthConfig.Properties is not set")
	}
	var out *PropertyUpdated
	err := o.tx(ctx, func(st OAuthTxStore) error {
		prop, err := o.props.UpdateIn(ctx, st, p.Property)
		if err != nil {
			return err
		}
		out = &PropertyUpdated{Property: prop}
		cs, err := st.ClientsOfProperty(ctx, prop.ID)
		if err != nil {
			return err
		}
		switch {
		case len(cs) == 0 && p.Client != nil:
			return errNoDefaultClient(prop.ID)
		case len(cs) == 0:
			return nil
		case p.Client == nil:
			out.Client = cs[0]
			return nil
		}
		cp := *p.Client
		cp.ID = cs[0].ID
		out.Client, err = o.updateClientIn(ctx, st, cp)
		return err
	})
	if err != nil {
		if onramp.ErrorCode(err) != onramp.EINTERNAL {
			return nil, err
		}
		return nil, fmt.Errorf("auth: update property: %w", err)
	}
	if out.Client != nil {
		o.clients.forget(out.Client.ID)
	}
	return out, nil
}

// RotateClientSecret gives a confidential client a new secret; the old one
// stops working at once on this node and within seconds on others.
func (o *OAuth) RotateClientSecret(ctx context.Context, id string) (*NewClient, error) {
	var out *NewClient
	err := o.tx(ctx, func(st OAuthTxStore) error {
		c, err := st.ClientByID(ctx, id)
		if err != nil {
			return err
		}
		if c.Public() {
			return onramp.Errorf(onramp.EINVALID, "Client %s is public: it has no secret.", id)
		}
		out = &NewClient{Client: c, Secret: onramp.NewSecret("cs")}
		c.SecretHash = property.HashSecret(out.Secret)
		c.UpdatedAt = o.clock.Now()
		return st.UpdateClient(ctx, c)
	})
	if err != nil {
		if onramp.ErrorCode(err) != onramp.EINTERNAL {
			return nil, err
		}
		return nil, fmt.Errorf("auth: rotate client secret: %w", err)
	}
	o.clients.forget(id)
	return out, nil
}

// --- caches ---

// ttlCache is a small node-local cache whose entries live for ttl. It is
// emptied when it grows past cacheMaxItems, so a flood of random keys
// cannot grow memory without bound.
type ttlCache[V any] struct {
	ttl time.Duration
	mu  *sync.RWMutex
	m   map[string]cacheEntry[V]
}

type cacheEntry[V any] struct {
	v  V
	at time.Time
}

func newTTLCache[V any](ttl time.Duration) ttlCache[V] {
	return ttlCache[V]{ttl: ttl, mu: &sync.RWMutex{}, m: map[string]cacheEntry[V]{}}
}

func (c ttlCache[V]) get(k string) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || time.Since(e.at) >= c.ttl {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c ttlCache[V]) put(k string, v V) {
	c.mu.Lock()
	if len(c.m) >= cacheMaxItems {
		clear(c.m)
	}
	c.m[k] = cacheEntry[V]{v: v, at: time.Now()}
	c.mu.Unlock()
}

func (c ttlCache[V]) clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

func (c ttlCache[V]) forget(ks ...string) {
	c.mu.Lock()
	for _, k := range ks {
		delete(c.m, k)
	}
	c.mu.Unlock()
}
