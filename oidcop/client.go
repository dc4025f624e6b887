package oidcop

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/onramp-dev/onramp/auth"
)

// client is an auth.Client as op sees it.
type client struct {
	c         *auth.Client
	loginPath string
	idTokens  time.Duration
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                    { return c.c.ID }
func (c *client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }

// ApplicationType is never native: op relaxes the port of loopback
// redirect URIs for native clients, and Onramp matches redirect URIs
// exactly.
func (c *client) ApplicationType() op.ApplicationType {
	if c.c.Public() {
		return op.ApplicationTypeUserAgent
	}
	return op.ApplicationTypeWeb
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.c.Public() {
		return oidc.AuthMethodNone
	}
	// Basic covers client_secret_post too: op checks the secret from the
	// form or the header the same way.
	return oidc.AuthMethodBasic
}

func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, 0, len(c.c.GrantTypes))
	for _, g := range c.c.GrantTypes {
		out = append(out, oidc.GrantType(g))
	}
	return out
}

func (c *client) LoginURL(authRequestID string) string {
	return c.loginPath + "?authRequest=" + url.QueryEscape(authRequestID)
}

// AccessTokenType is opaque: tokens stay small and revocable, and
// introspection is a cached row lookup.
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }

func (c *client) IDTokenLifetime() time.Duration {
	if c.c.IDTokenLifetime > 0 {
		return c.c.IDTokenLifetime
	}
	return c.idTokens
}

// DevMode lets op accept the http redirect URIs a client registered. op
// refuses http for public clients otherwise; Onramp only registers http
// for loopback hosts (auth.ValidateRedirectURI), and every URI still has
// to match a registered one exactly.
func (c *client) DevMode() bool {
	return slices.ContainsFunc(c.c.RedirectURIs, isHTTP) || slices.ContainsFunc(c.c.PostLogoutRedirectURIs, isHTTP)
}

func isHTTP(u string) bool { return strings.HasPrefix(u, "http://") }

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string     { return keepScopes }
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string { return keepScopes }

func keepScopes(s []string) []string { return s }

// IsScopeAllowed admits Onramp's own scope; op admits the standard ones.
func (c *client) IsScopeAllowed(scope string) bool { return scope == auth.ScopeTraits }

// IDTokenUserinfoClaimsAssertion is false: ID tokens carry sub and sid,
// the person's claims come from userinfo. That keeps the exchange from
// reading the account and ID tokens small.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
