package oidcop

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// storage is op.Storage over auth.OAuth: each method translates op's
// types to the service's and the service's errors to OAuth errors. No rule
// lives here.
type storage struct {
	p *Provider
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.ClientCredentialsStorage       = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanTerminateSessionFromRequest = (*storage)(nil)
)

// oidcError turns a service error into the OAuth error op answers with.
// Client-safe messages only: internal errors become server_error with the
// cause as parent, which op logs and does not show.
func oidcError(err error) error {
	if err == nil {
		return nil
	}
	msg := onramp.ErrorMessage(err)
	switch auth.OAuthErrorCode(err) {
	case auth.OAuthInvalidRequest:
		return oidc.ErrInvalidRequest().WithDescription("%s", msg)
	case auth.OAuthInvalidGrant:
		return oidc.ErrInvalidGrant().WithDescription("%s", msg)
	case auth.OAuthInvalidClient:
		return oidc.ErrInvalidClient().WithDescription("%s", msg)
	case auth.OAuthUnauthorizedClient:
		return oidc.ErrUnauthorizedClient().WithDescription("%s", msg)
	case auth.OAuthInvalidScope:
		return oidc.ErrInvalidScope().WithDescription("%s", msg)
	case auth.OAuthConsentRequired:
		return errConsentRequired().WithDescription("%s", msg)
	}
	switch onramp.ErrorCode(err) {
	case onramp.ENOTFOUND, onramp.EINVALID, onramp.ECONFLICT:
		return oidc.ErrInvalidRequest().WithDescription("%s", msg)
	case onramp.EUNAUTHORIZED, onramp.EFORBIDDEN:
		return oidc.ErrAccessDenied().WithDescription("%s", msg)
	}
	return oidc.ErrServerError().WithParent(err)
}

// --- auth requests ---

func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, hintSubject string) (op.AuthRequest, error) {
	r, err := s.p.storeAuthRequest(ctx, req, hintSubject, anonymousIDFrom(ctx))
	if err != nil {
		return nil, oidcError(err)
	}
	return authRequest{r}, nil
}

// AuthRequestByID answers op's callback. When the provider knows the
// browser's session, a finished request only counts as done for the
// browser that finished it: another browser holding the callback URL
// gets "not done", not a code.
func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	r, err := s.p.oauth.AuthRequest(ctx, id)
	if err != nil {
		return nil, oidcError(err)
	}
	if r.Done && s.p.sessionOf != nil {
		if sid, ok := ctx.Value(sessionKey{}).(string); !ok || sid != r.SessionID {
			r.Done = false
		}
	}
	return authRequest{r}, nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	r, err := s.p.oauth.AuthRequestByCode(ctx, code)
	if err != nil {
		return nil, oidcError(err)
	}
	return authRequest{r}, nil
}

func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	return oidcError(s.p.oauth.SaveCode(ctx, id, code))
}

// DeleteAuthRequest keeps the row: it expires on its own, and until then a
// replayed code is still recognised.
func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }

// --- tokens ---

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	var is *auth.Issued
	var err error
	switch r := req.(type) {
	case authRequest:
		is, err = s.p.oauth.IssueTokens(ctx, auth.IssueParams{ClientID: r.r.ClientID, AuthRequest: r.r})
	case *clientRequest:
		is, err = s.p.oauth.IssueClientToken(ctx, auth.ClientTokenParams{ClientID: r.clientID, Scopes: r.scopes})
	default:
		return "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	if err != nil {
		return "", time.Time{}, oidcError(err)
	}
	return is.AccessToken.ID, is.AccessToken.ExpiresAt, nil
}

func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	var is *auth.Issued
	var err error
	switch r := req.(type) {
	case authRequest:
		is, err = s.p.oauth.IssueTokens(ctx, auth.IssueParams{ClientID: r.r.ClientID, AuthRequest: r.r, Refresh: true})
	case *refreshRequest:
		is, err = s.p.oauth.RotateRefresh(ctx, auth.RotateParams{ClientID: r.f.ClientID, Token: current, Scopes: r.scopes})
	default:
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	if err != nil {
		return "", "", time.Time{}, oidcError(err)
	}
	return is.AccessToken.ID, is.RefreshToken, is.AccessToken.ExpiresAt, nil
}

func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	g, err := s.p.oauth.RefreshGrant(ctx, token)
	if err != nil {
		return nil, oidcError(err)
	}
	return &refreshRequest{f: g.Family, scopes: slices.Clone(g.Family.Scopes)}, nil
}

// RevokeToken gets an access token's id (op decrypted it) or a refresh
// token as it was sent.
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, _, clientID string) *oidc.Error {
	err := s.p.oauth.RevokeToken(ctx, auth.RevokeTokenParams{ClientID: clientID, Token: tokenOrID})
	if err == nil {
		return nil
	}
	var oe *oidc.Error
	if errors.As(oidcError(err), &oe) {
		return oe
	}
	return oidc.ErrServerError()
}

func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	sub, err := s.p.oauth.RefreshTokenInfo(ctx, clientID, token)
	if errors.Is(err, auth.ErrNotRefreshToken) {
		return "", "", op.ErrInvalidRefreshToken
	}
	if err != nil {
		return "", "", err
	}
	// The token itself names it for RevokeToken.
	return sub, token, nil
}

// TerminateSession is not used: TerminateSessionFromRequest replaces it.
func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

// --- keys ---

func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	k, err := s.p.oauth.SigningKey(ctx)
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return signingKey{k}, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) {
	ks, err := s.p.oauth.KeySet(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]op.Key, len(ks))
	for i, k := range ks {
		out[i] = publicKey{kid: k.KID, alg: k.Alg, pub: k.Public}
	}
	return out, nil
}

// --- clients ---

// GetClientByClientID answers an unknown client with a plain error (op
// makes it invalid_client) and only a store failure with server_error.
func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.p.oauth.Client(ctx, id)
	if err != nil {
		if auth.OAuthErrorCode(err) != "" {
			return nil, errors.New(onramp.ErrorMessage(err))
		}
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return s.p.client(c), nil
}

func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	if _, err := s.p.oauth.AuthenticateClient(ctx, id, secret); err != nil {
		if auth.OAuthErrorCode(err) != "" {
			return errors.New(onramp.ErrorMessage(err))
		}
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

func (s *storage) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	c, err := s.p.oauth.AuthenticateClient(ctx, id, secret)
	if err != nil {
		if auth.OAuthErrorCode(err) != "" {
			return nil, errors.New(onramp.ErrorMessage(err))
		}
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return s.p.client(c), nil
}

func (s *storage) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	return &clientRequest{clientID: id, scopes: scopes}, nil
}

// --- claims ---

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does
// the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token: sub, sid, and the standard
// claims of the scopes op passes (none in the code flow, where they go to
// userinfo; the account is then not read at all).
func (s *storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	info.Subject = req.GetSubject()
	if sr, ok := req.(sessionRequest); ok && sr.sessionID() != "" {
		info.AppendClaims("sid", sr.sessionID())
	}
	scopes = slices.DeleteFunc(slices.Clone(scopes), func(sc string) bool { return sc == auth.ScopeTraits })
	if !slices.ContainsFunc(scopes, func(sc string) bool {
		return sc == auth.ScopeProfile || sc == auth.ScopeEmail || sc == auth.ScopePhone
	}) {
		return nil
	}
	return s.p.fillClaims(ctx, info, req.GetClientID(), req.GetSubject(), scopes)
}

func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, err := s.p.oauth.UserinfoToken(ctx, tokenID, subject)
	if err != nil {
		return oidcError(err)
	}
	info.Subject = t.Subject
	return s.p.fillClaims(ctx, info, t.ClientID, t.Subject, t.Scopes)
}

// SetIntrospectionFromToken answers only about the token itself: no
// person claims, so that introspection stays a cached lookup.
func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, err := s.p.oauth.Introspect(ctx, auth.IntrospectParams{TokenID: tokenID, Subject: subject, Caller: clientID})
	if err != nil {
		return err
	}
	resp.Scope = t.Scopes
	resp.ClientID = t.ClientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(t.ExpiresAt)
	resp.IssuedAt = oidc.FromTime(t.CreatedAt)
	resp.NotBefore = oidc.FromTime(t.CreatedAt)
	resp.Subject = t.Subject
	resp.Audience = t.Audience
	resp.Issuer = s.p.oauth.Issuer()
	resp.JWTID = t.ID
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

var errNoJWTProfile = errors.New("oidcop: the JWT profile grant is not offered")

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNoJWTProfile
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errNoJWTProfile
}

func (s *storage) Health(ctx context.Context) error {
	if s.p.ping == nil {
		return nil
	}
	return s.p.ping(ctx)
}

// --- end session ---

// TerminateSessionFromRequest ends a session only when the request proves
// which one: a valid id_token_hint (op verified its signature and issuer,
// and that it names the client_id given). Without one nothing ends here,
// against logout CSRF: the browser goes to the logout page, which asks.
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	if req.IDTokenHintClaims == nil {
		return s.p.logoutConfirmURL(ctx, req), nil
	}
	sub, sid := req.IDTokenHintClaims.Subject, req.IDTokenHintClaims.SessionID
	if sid != "" {
		live, err := s.p.accounts.SessionActive(ctx, sid, sub)
		if err != nil {
			return "", fmt.Errorf("oidcop: end session: %w", err)
		}
		if live {
			if err := s.p.accounts.EndSession(ctx, EndSession{Subject: sub, SessionID: sid, ClientID: req.ClientID, Info: requestInfoFrom(ctx)}); err != nil {
				return "", fmt.Errorf("oidcop: end session: %w", err)
			}
		}
		if err := s.p.oauth.RevokeSessionTokens(ctx, sid, "signed out"); err != nil {
			return "", err
		}
	}
	if strings.TrimSpace(req.RedirectURI) == "" {
		return s.p.loggedOutPath, nil
	}
	return req.RedirectURI, nil
}
