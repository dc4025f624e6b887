package oidcop

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/onramp-dev/onramp/auth"
)

// storeAuthRequest stores an authorization request op has validated:
// /oauth/authorize's way in, and the headless API's.
func (p *Provider) storeAuthRequest(ctx context.Context, req *oidc.AuthRequest, hintSubject, anonymousID string) (*auth.AuthRequest, error) {
	r := &auth.AuthRequest{
		ClientID: req.ClientID, RedirectURI: req.RedirectURI, Scopes: req.Scopes, State: req.State, Nonce: req.Nonce,
		ResponseType: string(req.ResponseType), ResponseMode: string(req.ResponseMode),
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: string(req.CodeChallengeMethod),
		Prompt: req.Prompt, UILocales: req.UILocales.String(), LoginHint: req.LoginHint, HintSubject: hintSubject,
		AnonymousID: anonymousID,
	}
	if req.MaxAge != nil {
		age := int64(*req.MaxAge)
		r.MaxAge = &age
	}
	return p.oauth.CreateAuthRequest(ctx, r)
}

// CreateAuthRequest checks /oauth/authorize's parameters as op does for
// /oauth/authorize itself (op's decoder, then op.ValidateAuthRequestClient:
// exact redirect URI, response type, scopes, PKCE method, prompt) and
// stores the request through the same rules (auth.OAuth.CreateAuthRequest:
// S256 only, PKCE for public clients). The headless API starts its flows
// with it, so a site signing people in with its own forms gets no more
// leeway than one sending them to the hosted pages. Refusals are
// onramp errors carrying the OAuth error code.
func (p *Provider) CreateAuthRequest(ctx context.Context, params url.Values, anonymousID string) (*auth.AuthRequest, error) {
	req := new(oidc.AuthRequest)
	if err := p.op.Decoder().Decode(req, params); err != nil {
		return nil, auth.OAuthErrorf(auth.OAuthInvalidRequest, "The authorization parameters could not be read.")
	}
	switch {
	case req.RequestParam != "":
		return nil, auth.OAuthErrorf(auth.OAuthInvalidRequest, "Request objects are not supported.")
	case req.ClientID == "":
		return nil, auth.OAuthErrorf(auth.OAuthInvalidRequest, "client_id is missing.")
	case req.RedirectURI == "":
		return nil, auth.OAuthErrorf(auth.OAuthInvalidRequest, "redirect_uri is missing.")
	}
	c, err := p.oauth.Client(ctx, req.ClientID)
	if err != nil {
		if auth.OAuthErrorCode(err) != "" {
			return nil, auth.OAuthErrorf(auth.OAuthInvalidRequest, "Unknown client_id.")
		}
		return nil, err
	}
	ctx = op.ContextWithIssuer(ctx, p.issuer)
	hint, err := op.ValidateAuthRequestClient(ctx, req, p.client(c), p.op.IDTokenHintVerifier(ctx))
	if err != nil {
		return nil, fromOIDC(err)
	}
	return p.storeAuthRequest(ctx, req, hint, anonymousID)
}

// fromOIDC turns op's validation error into an onramp error with the same
// OAuth code and description; anything else stays an internal error.
func fromOIDC(err error) error {
	var oe *oidc.Error
	if !errors.As(err, &oe) || oe.ErrorType == oidc.ServerError {
		return fmt.Errorf("oidcop: validate auth request: %w", err)
	}
	return auth.OAuthErrorf(string(oe.ErrorType), "%s", oe.Description)
}
