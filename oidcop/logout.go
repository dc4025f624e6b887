package oidcop

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/onramp-dev/onramp"
)

// This file makes OpenID Connect back-channel logout tokens (Back-Channel
// Logout 1.0) and delivers them. The outbox worker calls
// SendBackchannelLogout for each client a session signed into, after the
// transaction that ended the session, and retries on error.

// BackchannelLogout names whom a logout token is for.
type BackchannelLogout struct {
	ClientID  string
	Subject   string
	SessionID string
}

// LogoutDelivery is a signed logout token and where to POST it.
type LogoutDelivery struct {
	URI   string
	Token string
}

// logoutTokenLifetime is short: the token is posted at once, and a
// relying party may refuse old ones.
const logoutTokenLifetime = 2 * time.Minute

// LogoutToken signs a logout token for the client's back-channel logout
// URI. It returns nil when the client registered none.
func (p *Provider) LogoutToken(ctx context.Context, l BackchannelLogout) (*LogoutDelivery, error) {
	c, err := p.oauth.Client(ctx, l.ClientID)
	if err != nil {
		return nil, err
	}
	if c.BackchannelLogoutURI == "" {
		return nil, nil
	}
	if l.Subject == "" && l.SessionID == "" {
		return nil, onramp.Errorf(onramp.EINVALID, "A logout token names a subject, a session or both.")
	}
	k, err := p.oauth.SigningKey(ctx)
	if err != nil {
		return nil, err
	}
	claims := oidc.NewLogoutTokenClaims(p.issuer, l.Subject, oidc.Audience{c.ID}, time.Now().Add(logoutTokenLifetime), onramp.NewID("lgt"), l.SessionID, 0)
	payload, err := json.Marshal(claims)
	if err != nil {
		return nil, fmt.Errorf("oidcop: logout token: %w", err)
	}
	// typ logout+jwt (Back-Channel Logout §2.4) keeps a logout token from
	// ever passing for an ID token.
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Alg), Key: jose.JSONWebKey{Key: k.Private, KeyID: k.KID}},
		(&jose.SignerOptions{}).WithType("logout+jwt"))
	if err != nil {
		return nil, fmt.Errorf("oidcop: logout token: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("oidcop: logout token: %w", err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("oidcop: logout token: %w", err)
	}
	return &LogoutDelivery{URI: c.BackchannelLogoutURI, Token: token}, nil
}

// SendBackchannelLogout signs a logout token and POSTs it to the client's
// back-channel logout URI. A client without one is done at once; any
// answer but 200 or 204 is an error, for the caller to retry.
func (p *Provider) SendBackchannelLogout(ctx context.Context, hc *http.Client, l BackchannelLogout) error {
	d, err := p.LogoutToken(ctx, l)
	if err != nil || d == nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URI, strings.NewReader(url.Values{"logout_token": {d.Token}}.Encode()))
	if err != nil {
		return fmt.Errorf("oidcop: back-channel logout: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("oidcop: back-channel logout to %s: %w", d.URI, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("oidcop: back-channel logout to %s: %s", d.URI, resp.Status)
	}
	return nil
}
