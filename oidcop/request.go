package oidcop

import (
	"log/slog"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/onramp-dev/onramp/auth"
)

// authRequest is an auth.AuthRequest as op sees it.
type authRequest struct{ r *auth.AuthRequest }

var (
	_ op.AuthRequest    = authRequest{}
	_ op.LogAuthRequest = authRequest{}
)

func (a authRequest) GetID() string          { return a.r.ID }
func (a authRequest) GetACR() string         { return "" }
func (a authRequest) GetAMR() []string       { return a.r.AMR }
func (a authRequest) GetAudience() []string  { return []string{a.r.ClientID} }
func (a authRequest) GetAuthTime() time.Time { return a.r.AuthTime }
func (a authRequest) GetClientID() string    { return a.r.ClientID }
func (a authRequest) GetNonce() string       { return a.r.Nonce }
func (a authRequest) GetRedirectURI() string { return a.r.RedirectURI }
func (a authRequest) GetScopes() []string    { return a.r.Scopes }
func (a authRequest) GetState() string       { return a.r.State }
func (a authRequest) GetSubject() string     { return a.r.Subject }
func (a authRequest) Done() bool             { return a.r.Done }
func (a authRequest) sessionID() string      { return a.r.SessionID }
func (a authRequest) GetResponseType() oidc.ResponseType {
	return oidc.ResponseType(a.r.ResponseType)
}

func (a authRequest) GetResponseMode() oidc.ResponseMode {
	return oidc.ResponseMode(a.r.ResponseMode)
}

func (a authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.r.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.r.CodeChallenge, Method: oidc.CodeChallengeMethod(a.r.CodeChallengeMethod)}
}

// LogValue keeps state, nonce and hints out of logs.
func (a authRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", a.r.ID), slog.String("client_id", a.r.ClientID))
}

// refreshRequest is a refresh grant as op sees it.
type refreshRequest struct {
	f      *auth.RefreshFamily
	scopes []string
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string            { return r.f.AMR }
func (r *refreshRequest) GetAudience() []string       { return []string{r.f.ClientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.f.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.f.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.f.Subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = slices.Clone(s) }
func (r *refreshRequest) sessionID() string           { return r.f.SessionID }

// clientRequest is a client-credentials grant: the client acts for
// itself, so it is also the subject.
type clientRequest struct {
	clientID string
	scopes   []string
}

var _ op.TokenRequest = (*clientRequest)(nil)

func (c *clientRequest) GetSubject() string    { return c.clientID }
func (c *clientRequest) GetAudience() []string { return []string{c.clientID} }
func (c *clientRequest) GetScopes() []string   { return c.scopes }

// sessionRequest is a request that knows the session it came from, for
// the sid claim.
type sessionRequest interface{ sessionID() string }
