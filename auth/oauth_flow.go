package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/property"
)

// This file holds the OAuth flows: auth requests, codes, token issue,
// refresh rotation with reuse detection, revocation and the checks behind
// introspection and userinfo.

// Scopes the provider knows. Others are dropped from requests.
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
	ScopePhone         = "phone"
	ScopeOfflineAccess = "offline_access"
	// ScopeTraits gives a client the custom claims it maps from traits.
	ScopeTraits = "onramp:traits"
)

// SupportedScopes lists the scopes an auth request may ask for.
var SupportedScopes = []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopePhone, ScopeOfflineAccess, ScopeTraits}

// personScopes only make sense for a person, never a client acting for
// itself.
var personScopes = []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopePhone, ScopeOfflineAccess, ScopeTraits}

const (
	codeChallengeS256 = "S256"
	maxParamLen       = 2000
)

// --- auth requests ---

// CreateAuthRequest checks and stores an /oauth/authorize request. It owns
// the rules op does not enforce strictly enough: the redirect URI matches a
// registered one exactly, PKCE is S256 only (plain is refused, a method
// without a challenge too), and public clients must send a challenge.
func (o *OAuth) CreateAuthRequest(ctx context.Context, r *AuthRequest) (*AuthRequest, error) {
	c, err := o.Client(ctx, r.ClientID)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(c.RedirectURIs, r.RedirectURI) {
		return nil, oauthErrorf(OAuthInvalidRequest, "The redirect_uri is not registered for this client.")
	}
	if r.ResponseType != "code" {
		return nil, oauthErrorf(OAuthInvalidRequest, "Only response_type=code is supported.")
	}
	if err := checkPKCE(c, r.CodeChallenge, r.CodeChallengeMethod); err != nil {
		return nil, err
	}
	for _, v := range []string{r.State, r.Nonce, r.LoginHint, r.UILocales, r.AnonymousID} {
		if len(v) > maxParamLen {
			return nil, oauthErrorf(OAuthInvalidRequest, "A parameter is longer than %d characters.", maxParamLen)
		}
	}
	r.Scopes = slices.DeleteFunc(slices.Clone(r.Scopes), func(s string) bool { return !slices.Contains(SupportedScopes, s) })
	slices.Sort(r.Scopes)
	r.Scopes = slices.Compact(r.Scopes)
	if r.MaxAge != nil && *r.MaxAge < 0 {
		return nil, oauthErrorf(OAuthInvalidRequest, "max_age must not be negative.")
	}
	now := o.clock.Now()
	r.ID, r.CreatedAt, r.ExpiresAt = onramp.NewID("arq"), now, now.Add(o.life.AuthRequest)
	r.Done, r.Subject, r.SessionID, r.AuthTime, r.AMR = false, "", "", time.Time{}, nil
	r.CodeHash, r.CodeExpiresAt, r.CodeUsedAt = "", time.Time{}, nil
	if err := o.tx(ctx, func(st OAuthTxStore) error { return st.CreateAuthRequest(ctx, r) }); err != nil {
		return nil, fmt.Errorf("auth: create auth request: %w", err)
	}
	return r, nil
}

// checkPKCE enforces S256-only PKCE (RFC 7636; RFC 9700 §2.1.1): plain
// gives nothing against a stolen authorization request, and a public
// client without PKCE has no proof at all that the code is its own.
func checkPKCE(c *Client, challenge, method string) error {
	switch {
	case challenge == "" && method != "":
		return oauthErrorf(OAuthInvalidRequest, "code_challenge_method without a code_challenge.")
	case challenge == "" && c.Public():
		return oauthErrorf(OAuthInvalidRequest, "Public clients must use PKCE (code_challenge with code_challenge_method=S256).")
	case challenge == "":
		return nil
	case method != codeChallengeS256:
		return oauthErrorf(OAuthInvalidRequest, "Only code_challenge_method=S256 is supported.")
	}
	// An S256 challenge is the base64url SHA-256 of the verifier: 43
	// characters without padding.
	if len(challenge) != 43 || strings.Trim(challenge, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return oauthErrorf(OAuthInvalidRequest, "The code_challenge is not an S256 challenge.")
	}
	return nil
}

var errNoAuthRequest = onramp.Errorf(onramp.ENOTFOUND, "No such sign-in request, or it expired.")

// AuthRequest returns a request that has not expired.
func (o *OAuth) AuthRequest(ctx context.Context, id string) (*AuthRequest, error) {
	if !strings.HasPrefix(id, "arq_") || len(id) > 100 {
		return nil, errNoAuthRequest
	}
	r, err := o.read.AuthRequestByID(ctx, id)
	if err != nil {
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return nil, errNoAuthRequest
		}
		return nil, fmt.Errorf("auth: auth request: %w", err)
	}
	if !o.clock.Now().Before(r.ExpiresAt) {
		return nil, errNoAuthRequest
	}
	return r, nil
}

// FinishAuthRequestParams is what the sign-in page knows once a person
// proved who they are.
type FinishAuthRequestParams struct {
	ID        string
	Subject   string
	SessionID string
	AuthTime  time.Time // zero: now
	AMR       []string
}

// OAuthConsentRequired is the error code (OIDC Core §3.1.2.6) of a sign-in
// that cannot finish because the person has not consented yet.
const OAuthConsentRequired = "consent_required"

// FinishAuthRequest marks a request signed in. A request is finished once:
// a second call (another tab, a replayed form) is refused. A client that
// is not first-party gets nothing before the person consented to its
// scopes (GrantConsent), whatever the sign-in page forgot.
func (o *OAuth) FinishAuthRequest(ctx context.Context, p FinishAuthRequestParams) (*AuthRequest, error) {
	if p.Subject == "" {
		return nil, onramp.Errorf(onramp.EINVALID, "A finished sign-in request needs a subject.")
	}
	r, err := o.AuthRequest(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	need, err := o.ConsentRequired(ctx, ConsentParams{Subject: p.Subject, ClientID: r.ClientID, Scopes: r.Scopes})
	if err != nil {
		return nil, err
	}
	if need {
		e := onramp.Errorf(onramp.EFORBIDDEN, "The person has not consented to this client's scopes yet.")
		e.Detail = oauthError(OAuthConsentRequired)
		return nil, e
	}
	if p.AuthTime.IsZero() {
		p.AuthTime = o.clock.Now()
	}
	d := AuthRequestDone{Subject: p.Subject, SessionID: p.SessionID, AuthTime: p.AuthTime, AMR: p.AMR}
	var ok bool
	err = o.tx(ctx, func(st OAuthTxStore) (err error) {
		ok, err = st.FinishAuthRequest(ctx, p.ID, d)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("auth: finish auth request: %w", err)
	}
	if !ok {
		return nil, onramp.Errorf(onramp.ECONFLICT, "This sign-in request is finished already.")
	}
	r.Subject, r.SessionID, r.AuthTime, r.AMR, r.Done = d.Subject, d.SessionID, d.AuthTime, d.AMR, true
	o.record(ctx, OAuthEvent{Action: "oauth.authorized", Outcome: OutcomeSuccess, Subject: r.Subject, ClientID: r.ClientID, SessionID: r.SessionID,
		Detail: map[string]any{"scopes": r.Scopes}})
	return r, nil
}

// SaveCode stores the code issued for a finished request. A request gets
// one code, ever: reloading the callback cannot mint a second one.
func (o *OAuth) SaveCode(ctx context.Context, requestID, code string) error {
	var ok bool
	err := o.tx(ctx, func(st OAuthTxStore) (err error) {
		ok, err = st.SetAuthCode(ctx, requestID, property.HashSecret(code), o.clock.Now().Add(o.life.Code))
		return err
	})
	if err != nil {
		return fmt.Errorf("auth: save code: %w", err)
	}
	if !ok {
		return oauthErrorf(OAuthInvalidRequest, "This sign-in request already issued its code, or is not finished.")
	}
	return nil
}

var errBadAuthCode = oauthErrorf(OAuthInvalidGrant, "The code is invalid, expired or used.")

// AuthRequestByCode returns the finished request a code was issued for. A
// code presented after it was redeemed is a replay: someone else may hold
// it, so every token the first redemption produced is revoked.
func (o *OAuth) AuthRequestByCode(ctx context.Context, code string) (*AuthRequest, error) {
	if code == "" || len(code) > 4000 {
		return nil, errBadAuthCode
	}
	r, err := o.read.AuthRequestByCodeHash(ctx, property.HashSecret(code))
	if err != nil {
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return nil, errBadAuthCode
		}
		return nil, fmt.Errorf("auth: auth request by code: %w", err)
	}
	if r.CodeUsedAt != nil {
		if err := o.revokeReplayed(ctx, r); err != nil {
			return nil, err
		}
		return nil, errBadAuthCode
	}
	if !r.Done || !o.clock.Now().Before(r.CodeExpiresAt) {
		return nil, errBadAuthCode
	}
	return r, nil
}

// revokeReplayed revokes what the code of r produced.
func (o *OAuth) revokeReplayed(ctx context.Context, r *AuthRequest) error {
	var ids []string
	err := o.tx(ctx, func(st OAuthTxStore) (err error) {
		ids, err = st.RevokeAuthRequestTokens(ctx, r.ID, Revocation{At: o.clock.Now(), Reason: "code replay"})
		return err
	})
	if err != nil {
		return fmt.Errorf("auth: revoke after code replay: %w", err)
	}
	o.tokens.forget(ids...)
	o.log.WarnContext(ctx, "oauth: authorization code replayed; its tokens are revoked", "auth_request", r.ID, "client", r.ClientID, "tokens_revoked", len(ids))
	o.record(ctx, OAuthEvent{Action: "oauth.code_replayed", Outcome: OutcomeDenied, Subject: r.Subject, ClientID: r.ClientID, SessionID: r.SessionID,
		Detail: map[string]any{"tokens_revoked": len(ids)}})
	return nil
}

// CheckPostLogoutRedirect returns uri if it is one of the client's
// registered post-logout redirect URIs, exactly. A logout page that got
// the URI from a query string must ask this before redirecting there.
func (o *OAuth) CheckPostLogoutRedirect(ctx context.Context, clientID, uri string) (string, error) {
	c, err := o.Client(ctx, clientID)
	if err != nil {
		return "", err
	}
	if !slices.Contains(c.PostLogoutRedirectURIs, uri) {
		return "", oauthErrorf(OAuthInvalidRequest, "The post_logout_redirect_uri is not registered for this client.")
	}
	return uri, nil
}

// --- tokens ---

// IssueParams redeems a code.
type IssueParams struct {
	// ClientID is the authenticated client; it must be the request's.
	ClientID string
	// AuthRequest is the request AuthRequestByCode found for the code.
	AuthRequest *AuthRequest
	// Refresh adds a refresh token (the request has offline_access and the
	// client may refresh).
	Refresh bool
}

// Issued is what a grant produced.
type Issued struct {
	AccessToken *AccessToken
	// RefreshToken is the new refresh token, shown this once; empty when
	// none was issued.
	RefreshToken string
	// Family is the refresh family the tokens belong to, if any.
	Family *RefreshFamily
}

// IssueTokens redeems a code: in one transaction it marks the code used
// and writes the tokens, so that of two redemptions racing, exactly one
// gets tokens. The loser, like any later replay, revokes the winner's.
func (o *OAuth) IssueTokens(ctx context.Context, p IssueParams) (*Issued, error) {
	r := p.AuthRequest
	if r == nil || !r.Done || r.ClientID != p.ClientID || r.CodeHash == "" {
		return nil, errBadAuthCode
	}
	var out *Issued
	replayed := false
	err := o.groupTx(ctx, func(st OAuthTxStore) error {
		now := o.clock.Now()
		out, replayed = nil, false
		won, err := st.UseAuthCode(ctx, r.CodeHash, now)
		if err != nil {
			return err
		}
		if !won {
			replayed = true
			return nil
		}
		out = &Issued{}
		if p.Refresh {
			if out.Family, out.RefreshToken, err = o.newFamily(ctx, st, r, now); err != nil {
				return err
			}
		}
		out.AccessToken = o.newAccessToken(r.ClientID, r.Subject, r.Scopes, now)
		out.AccessToken.SessionID, out.AccessToken.AuthRequestID = r.SessionID, r.ID
		if out.Family != nil {
			out.AccessToken.RefreshFamilyID, out.AccessToken.SessionID = out.Family.ID, out.Family.SessionID
		}
		return st.CreateAccessToken(ctx, out.AccessToken)
	})
	if err != nil {
		return nil, fmt.Errorf("auth: issue tokens: %w", err)
	}
	if replayed {
		if err := o.revokeReplayed(ctx, r); err != nil {
			return nil, err
		}
		return nil, errBadAuthCode
	}
	return out, nil
}

// newFamily starts a refresh family for the code of r and writes its first
// token. A family granted offline_access is not bound to the session: that
// is what offline access means, so signing out does not end it.
func (o *OAuth) newFamily(ctx context.Context, st OAuthStore, r *AuthRequest, now time.Time) (*RefreshFamily, string, error) {
	f := &RefreshFamily{
		ID: onramp.NewID("rtf"), ClientID: r.ClientID, Subject: r.Subject, AuthRequestID: r.ID,
		Scopes: r.Scopes, AMR: r.AMR, AuthTime: r.AuthTime, CreatedAt: now,
		IdleExpiresAt: now.Add(o.life.RefreshIdle), ExpiresAt: now.Add(o.life.RefreshMax),
	}
	if !slices.Contains(r.Scopes, ScopeOfflineAccess) {
		f.SessionID = r.SessionID
	}
	if err := st.CreateRefreshFamily(ctx, f); err != nil {
		return nil, "", err
	}
	secret := onramp.NewSecret("rt")
	if err := st.CreateRefreshToken(ctx, &RefreshToken{TokenHash: property.HashSecret(secret), FamilyID: f.ID, CreatedAt: now}); err != nil {
		return nil, "", err
	}
	return f, secret, nil
}

func (o *OAuth) newAccessToken(clientID, subject string, scopes []string, now time.Time) *AccessToken {
	return &AccessToken{
		ID: onramp.NewID("atk"), ClientID: clientID, Subject: subject, Scopes: scopes, Audience: []string{clientID},
		CreatedAt: now, ExpiresAt: now.Add(o.life.AccessToken),
	}
}

// ClientTokenParams asks for a client-credentials token.
type ClientTokenParams struct {
	ClientID string // authenticated
	Scopes   []string
}

// IssueClientToken issues an access token to a confidential client acting
// for itself (client credentials): its subject is the client. Scopes that
// only make sense for a person are dropped.
func (o *OAuth) IssueClientToken(ctx context.Context, p ClientTokenParams) (*Issued, error) {
	c, err := o.Client(ctx, p.ClientID)
	if err != nil {
		return nil, err
	}
	if c.Public() || !slices.Contains(c.GrantTypes, GrantClientCredentials) {
		return nil, oauthErrorf(OAuthUnauthorizedClient, "This client may not use client credentials.")
	}
	scopes := slices.DeleteFunc(slices.Clone(p.Scopes), func(s string) bool { return s == "" || slices.Contains(personScopes, s) })
	t := o.newAccessToken(c.ID, c.ID, scopes, o.clock.Now())
	if err := o.groupTx(ctx, func(st OAuthTxStore) error { return st.CreateAccessToken(ctx, t) }); err != nil {
		return nil, fmt.Errorf("auth: client token: %w", err)
	}
	return &Issued{AccessToken: t}, nil
}

// --- refresh ---

var errBadRefresh = oauthErrorf(OAuthInvalidGrant, "The refresh token is invalid, expired or revoked.")

// RefreshGrant is a refresh token that may be rotated, with its family.
type RefreshGrant struct {
	Family     *RefreshFamily
	Generation int
}

// RefreshGrant checks a presented refresh token. A used one is a reuse:
// the token was copied (or the client is broken), so its whole family and
// every access token minted from it are revoked.
func (o *OAuth) RefreshGrant(ctx context.Context, token string) (*RefreshGrant, error) {
	if !strings.HasPrefix(token, "rt_") || len(token) > 200 {
		return nil, errBadRefresh
	}
	rt, err := o.read.RefreshTokenByHash(ctx, property.HashSecret(token))
	if err != nil {
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return nil, errBadRefresh
		}
		return nil, fmt.Errorf("auth: refresh grant: %w", err)
	}
	f, err := o.read.RefreshFamilyByID(ctx, rt.FamilyID)
	if err != nil {
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return nil, errBadRefresh
		}
		return nil, fmt.Errorf("auth: refresh grant: %w", err)
	}
	if rt.UsedAt != nil {
		if err := o.revokeReused(ctx, f); err != nil {
			return nil, err
		}
		return nil, errBadRefresh
	}
	if err := o.familyLive(f); err != nil {
		return nil, err
	}
	return &RefreshGrant{Family: f, Generation: rt.Generation}, nil
}

func (o *OAuth) familyLive(f *RefreshFamily) error {
	now := o.clock.Now()
	if f.RevokedAt != nil || !now.Before(f.ExpiresAt) || !now.Before(f.IdleExpiresAt) {
		return errBadRefresh
	}
	return nil
}

// revokeReused revokes a family after one of its used tokens came back.
func (o *OAuth) revokeReused(ctx context.Context, f *RefreshFamily) error {
	ids, err := o.revokeFamily(ctx, f.ID, "refresh token reuse")
	if err != nil {
		return err
	}
	o.log.WarnContext(ctx, "oauth: refresh token reused; its family is revoked", "family", f.ID, "client", f.ClientID, "subject", f.Subject, "tokens_revoked", len(ids))
	o.record(ctx, OAuthEvent{Action: "auth.refresh_token_reused", Outcome: OutcomeDenied, Subject: f.Subject, ClientID: f.ClientID,
		Detail: map[string]any{"tokens_revoked": len(ids)}, Timeline: "auth.refresh_token_reused"})
	return nil
}

func (o *OAuth) revokeFamily(ctx context.Context, id, reason string) ([]string, error) {
	var ids []string
	err := o.tx(ctx, func(st OAuthTxStore) (err error) {
		ids, err = st.RevokeRefreshFamily(ctx, id, Revocation{At: o.clock.Now(), Reason: reason})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("auth: revoke refresh family: %w", err)
	}
	o.tokens.forget(ids...)
	return ids, nil
}

// RotateParams rotates a refresh token.
type RotateParams struct {
	ClientID string // authenticated
	Token    string
	// Scopes narrows the new access token to a subset of the family's;
	// empty keeps them all.
	Scopes []string
}

// RotateRefresh uses up a refresh token and issues its successor and a new
// access token, in one transaction. Of two callers presenting the same
// token, one rotates it; the other is a reuse and revokes the family.
func (o *OAuth) RotateRefresh(ctx context.Context, p RotateParams) (*Issued, error) {
	hash := property.HashSecret(p.Token)
	var out *Issued
	var reused *RefreshFamily
	// refused is a client error found before anything was written: the
	// transaction (shared with other requests) still commits.
	var refused error
	err := o.groupTx(ctx, func(st OAuthTxStore) error {
		now := o.clock.Now()
		out, reused, refused = nil, nil, nil
		rt, err := st.RefreshTokenByHash(ctx, hash)
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			refused = errBadRefresh
			return nil
		}
		if err != nil {
			return err
		}
		f, err := st.RefreshFamilyByID(ctx, rt.FamilyID)
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			refused = errBadRefresh
			return nil
		}
		if err != nil {
			return err
		}
		if refused = o.checkRotation(f, p); refused != nil {
			return nil
		}
		scopes := f.Scopes
		if len(p.Scopes) > 0 {
			scopes = p.Scopes
		}
		won, err := st.UseRefreshToken(ctx, hash, now)
		if err != nil {
			return err
		}
		if !won {
			reused = f
			return nil
		}
		secret := onramp.NewSecret("rt")
		if err := st.CreateRefreshToken(ctx, &RefreshToken{TokenHash: property.HashSecret(secret), FamilyID: f.ID, Generation: rt.Generation + 1, CreatedAt: now}); err != nil {
			return err
		}
		f.IdleExpiresAt = now.Add(o.life.RefreshIdle)
		if f.IdleExpiresAt.After(f.ExpiresAt) {
			f.IdleExpiresAt = f.ExpiresAt
		}
		if err := st.TouchRefreshFamily(ctx, f.ID, f.IdleExpiresAt); err != nil {
			return err
		}
		at := o.newAccessToken(f.ClientID, f.Subject, scopes, now)
		at.SessionID, at.RefreshFamilyID, at.AuthRequestID = f.SessionID, f.ID, f.AuthRequestID
		out = &Issued{AccessToken: at, RefreshToken: secret, Family: f}
		return st.CreateAccessToken(ctx, at)
	})
	if err != nil {
		return nil, fmt.Errorf("auth: rotate refresh token: %w", err)
	}
	if refused != nil {
		return nil, refused
	}
	if reused != nil {
		if err := o.revokeReused(ctx, reused); err != nil {
			return nil, err
		}
		return nil, errBadRefresh
	}
	return out, nil
}

// checkRotation refuses a rotation by another client, of a dead family, or
// asking for scopes the family was not granted.
func (o *OAuth) checkRotation(f *RefreshFamily, p RotateParams) error {
	if f.ClientID != p.ClientID {
		return oauthErrorf(OAuthInvalidGrant, "The refresh token was issued to another client.")
	}
	if err := o.familyLive(f); err != nil {
		return err
	}
	for _, s := range p.Scopes {
		if !slices.Contains(f.Scopes, s) {
			return oauthErrorf(OAuthInvalidScope, "The scope %q was not granted.", s)
		}
	}
	return nil
}

// ErrNotRefreshToken answers RefreshTokenInfo for anything that is not a
// live refresh token of the client.
var ErrNotRefreshToken = errors.New("auth: not a refresh token")

// RefreshTokenInfo returns the subject of a refresh token issued to the
// client, for revocation.
func (o *OAuth) RefreshTokenInfo(ctx context.Context, clientID, token string) (string, error) {
	if !strings.HasPrefix(token, "rt_") || len(token) > 200 {
		return "", ErrNotRefreshToken
	}
	rt, err := o.read.RefreshTokenByHash(ctx, property.HashSecret(token))
	if err != nil {
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return "", ErrNotRefreshToken
		}
		return "", fmt.Errorf("auth: refresh token info: %w", err)
	}
	f, err := o.read.RefreshFamilyByID(ctx, rt.FamilyID)
	if err != nil {
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return "", ErrNotRefreshToken
		}
		return "", fmt.Errorf("auth: refresh token info: %w", err)
	}
	if f.ClientID != clientID {
		return "", ErrNotRefreshToken
	}
	return f.Subject, nil
}

// --- access tokens, revocation, introspection ---

var errInactive = onramp.Errorf(onramp.EUNAUTHORIZED, "The access token is not active.")

// AccessToken returns a live access token (not revoked, not expired).
// Rows are served from memory for a few seconds: introspection and
// userinfo ask for the same token again and again.
func (o *OAuth) AccessToken(ctx context.Context, id string) (*AccessToken, error) {
	t, ok := o.tokens.get(id)
	if !ok {
		if !strings.HasPrefix(id, "atk_") || len(id) > 100 {
			return nil, errInactive
		}
		var err error
		t, err = o.read.AccessTokenByID(ctx, id)
		if err != nil {
			if onramp.ErrorCode(err) == onramp.ENOTFOUND {
				return nil, errInactive
			}
			return nil, fmt.Errorf("auth: access token: %w", err)
		}
		o.tokens.put(id, t)
	}
	if t.RevokedAt != nil || !o.clock.Now().Before(t.ExpiresAt) {
		return nil, errInactive
	}
	return t, nil
}

// IntrospectParams names a decrypted access token and who asks about it.
type IntrospectParams struct {
	TokenID string
	Subject string
	// Caller is the authenticated client asking.
	Caller string
}

// Introspect returns the token if it is live and the caller may know it:
// it was issued to the caller or names the caller in its audience. To
// anyone else the token is simply inactive.
func (o *OAuth) Introspect(ctx context.Context, p IntrospectParams) (*AccessToken, error) {
	t, err := o.AccessToken(ctx, p.TokenID)
	if err != nil {
		return nil, err
	}
	if t.Subject != p.Subject || (t.ClientID != p.Caller && !slices.Contains(t.Audience, p.Caller)) {
		return nil, errInactive
	}
	return t, nil
}

// UserinfoToken returns the token if it may read userinfo: live, of a
// person (not a client acting for itself), granted openid.
func (o *OAuth) UserinfoToken(ctx context.Context, tokenID, subject string) (*AccessToken, error) {
	t, err := o.AccessToken(ctx, tokenID)
	if err != nil {
		return nil, err
	}
	if t.Subject != subject || t.Subject == t.ClientID || !slices.Contains(t.Scopes, ScopeOpenID) {
		return nil, errInactive
	}
	return t, nil
}

// RevokeTokenParams revokes one token of a client (RFC 7009).
type RevokeTokenParams struct {
	ClientID string // authenticated
	// Token is an access token id (atk_…) or a refresh token (rt_…).
	Token string
}

// RevokeToken revokes an access token, or a refresh token with its whole
// family. Unknown tokens are no error (RFC 7009 §2.2); another client's
// token is.
func (o *OAuth) RevokeToken(ctx context.Context, p RevokeTokenParams) error {
	notYours := oauthErrorf(OAuthUnauthorizedClient, "The token was not issued to this client.")
	switch {
	case strings.HasPrefix(p.Token, "atk_"):
		t, err := o.read.AccessTokenByID(ctx, p.Token)
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return nil
		}
		if err != nil {
			return fmt.Errorf("auth: revoke token: %w", err)
		}
		if t.ClientID != p.ClientID {
			return notYours
		}
		err = o.tx(ctx, func(st OAuthTxStore) error {
			_, err := st.RevokeAccessToken(ctx, t.ID, o.clock.Now())
			return err
		})
		if err != nil {
			return fmt.Errorf("auth: revoke token: %w", err)
		}
		o.tokens.forget(t.ID)
	case strings.HasPrefix(p.Token, "rt_"):
		rt, err := o.read.RefreshTokenByHash(ctx, property.HashSecret(p.Token))
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return nil
		}
		if err != nil {
			return fmt.Errorf("auth: revoke token: %w", err)
		}
		f, err := o.read.RefreshFamilyByID(ctx, rt.FamilyID)
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return nil
		}
		if err != nil {
			return fmt.Errorf("auth: revoke token: %w", err)
		}
		if f.ClientID != p.ClientID {
			return notYours
		}
		if _, err := o.revokeFamily(ctx, f.ID, "revoked by client"); err != nil {
			return err
		}
	}
	return nil
}

// RevokeSessionTokens revokes the tokens bound to a session that ended
// (sign-out, end_session, staff revocation). offline_access families live
// on.
func (o *OAuth) RevokeSessionTokens(ctx context.Context, sessionID, reason string) error {
	if sessionID == "" {
		return nil
	}
	var ids []string
	err := o.tx(ctx, func(st OAuthTxStore) (err error) {
		ids, err = st.RevokeSessionTokens(ctx, sessionID, Revocation{At: o.clock.Now(), Reason: reason})
		return err
	})
	if err != nil {
		return fmt.Errorf("auth: revoke session tokens: %w", err)
	}
	o.tokens.forget(ids...)
	return nil
}

// Prune deletes what expired more than a day ago. Auth requests are kept a
// day past their expiry so that a replayed code is still recognised.
func (o *OAuth) Prune(ctx context.Context) error {
	cutoff := o.clock.Now().Add(-24 * time.Hour)
	if err := o.tx(ctx, func(st OAuthTxStore) error { return st.PruneOAuth(ctx, cutoff) }); err != nil {
		return fmt.Errorf("auth: prune: %w", err)
	}
	return nil
}
