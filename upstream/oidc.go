package upstream

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/onramp-dev/onramp/auth"
)

// oidcClient is an OpenID Connect provider after discovery.
type oidcClient struct {
	p        *auth.UpstreamProvider
	hc       *http.Client
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	// tenantIssuer, for Microsoft's multi-tenant endpoints, is the issuer
	// template whose {tenantid} each token's tid fills in.
	tenantIssuer string
}

// msTenantIssuer is the issuer Microsoft's multi-tenant discovery
// documents name, a template rather than an issuer.
const msTenantIssuer = "https://login.microsoftonline.com/{tenantid}/v2.0"

func discover(ctx context.Context, hc *http.Client, p *auth.UpstreamProvider) (*oidcClient, error) {
	dctx := oidc.ClientContext(ctx, hc)
	c := &oidcClient{p: p, hc: hc}
	if p.MultiTenant() {
		// The document at …/common/v2.0 names the issuer
		// …/{tenantid}/v2.0: accept that for discovery, and check each
		// token's iss against its own tid below instead.
		c.tenantIssuer = msTenantIssuer
		dctx = oidc.InsecureIssuerURLContext(dctx, msTenantIssuer)
	}
	provider, err := oidc.NewProvider(dctx, p.Issuer)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, fmt.Errorf("%s: discovery names issuer %q, not %q: %w", p.Name, mismatch.Discovered, mismatch.Provided, err)
		}
		return nil, unavailable(p, "discovery", err)
	}
	c.provider = provider
	// The key set is fetched with the same client (ClientContext above),
	// in the background context go-oidc keeps for it.
	c.verifier = provider.Verifier(&oidc.Config{ClientID: p.ClientID, SkipIssuerCheck: c.tenantIssuer != ""})
	return c, nil
}

func (c *oidcClient) config(redirectURI string) *oauth2.Config {
	return &oauth2.Config{ClientID: c.p.ClientID, ClientSecret: c.p.ClientSecret, Endpoint: c.provider.Endpoint(), RedirectURL: redirectURI, Scopes: c.p.Scopes}
}

func (c *oidcClient) AuthCodeURL(r auth.UpstreamAuthRequest) string {
	return c.config(r.RedirectURI).AuthCodeURL(r.State, oauth2.S256ChallengeOption(r.Verifier), oidc.Nonce(r.Nonce))
}

// idClaims are the claims Onramp reads. email_verified is decoded loosely:
// some providers send it as a string.
type idClaims struct {
	Subject           string `json:"sub"`
	Issuer            string `json:"iss"`
	Email             string `json:"email"`
	EmailVerified     any    `json:"email_verified"`
	Name              string `json:"name"`
	PreferredUsername string `json:"preferred_username"`
	TenantID          string `json:"tid"`
}

func truthy(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	}
	return false
}

func (c *oidcClient) Exchange(ctx context.Context, x auth.UpstreamExchange) (*auth.UpstreamIdentity, error) {
	ctx = oidc.ClientContext(ctx, c.hc)
	tok, err := c.config(x.RedirectURI).Exchange(ctx, x.Code, oauth2.VerifierOption(x.Verifier))
	if err != nil {
		return nil, exchangeError(c.p, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, refused(c.p, "token answer", errors.New("no id_token"))
	}
	idt, err := c.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, refused(c.p, "id token", err)
	}
	// The nonce binds the token to the request this flow made: a token
	// obtained for another request (an attacker's) is refused.
	if idt.Nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(x.Nonce)) != 1 {
		return nil, refused(c.p, "id token", errors.New("nonce does not match the request's"))
	}
	var cl idClaims
	if err := idt.Claims(&cl); err != nil {
		return nil, refused(c.p, "id token claims", err)
	}
	if c.tenantIssuer != "" {
		// Multi-tenant: go-oidc skipped the issuer check; the token must
		// name the issuer of the tenant it says it comes from.
		if cl.TenantID == "" || cl.Issuer != strings.Replace(c.tenantIssuer, "{tenantid}", cl.TenantID, 1) {
			return nil, refused(c.p, "id token", fmt.Errorf("issuer %q is not the issuer of tenant %q", cl.Issuer, cl.TenantID))
		}
	}
	who := &auth.UpstreamIdentity{Subject: idt.Subject, Email: cl.Email, EmailVerified: truthy(cl.EmailVerified), Name: cl.Name}
	if who.Email == "" && c.provider.UserInfoEndpoint() != "" {
		// Many providers (Onramp itself among them) put the profile
		// claims in userinfo rather than the ID token.
		if err := c.userinfo(ctx, tok, who); err != nil {
			return nil, err
		}
	}
	if who.Email == "" && c.p.Preset == auth.PresetMicrosoft && strings.Contains(cl.PreferredUsername, "@") {
		// Often the only address a Microsoft account names. It proves
		// nothing (Microsoft is never trusted): Onramp's code will.
		who.Email = cl.PreferredUsername
	}
	return who, nil
}

func (c *oidcClient) userinfo(ctx context.Context, tok *oauth2.Token, who *auth.UpstreamIdentity) error {
	ui, err := c.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return unavailable(c.p, "userinfo", err)
	}
	// OpenID Connect Core 5.3.2: the userinfo sub must be the ID token's.
	if ui.Subject != who.Subject {
		return refused(c.p, "userinfo", fmt.Errorf("sub %q is not the id token's %q", ui.Subject, who.Subject))
	}
	var cl idClaims
	if err := ui.Claims(&cl); err != nil {
		return refused(c.p, "userinfo claims", err)
	}
	who.Email, who.EmailVerified = ui.Email, ui.EmailVerified || truthy(cl.EmailVerified)
	if who.Name == "" {
		who.Name = cl.Name
	}
	return nil
}
