// Package oidcop is Onramp's OpenID Connect provider: zitadel's op
// (a certified implementation of the protocol) over auth.OAuth, which holds
// every rule. It serves /.well-known/openid-configuration and the endpoints
// under /oauth/ that the discovery document names. Signing in is not here:
// op sends browsers to the hosted sign-in page, which calls
// FinishAuthRequest once the person is known.
package oidcop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/property"
)

// Accounts is what the provider needs from the accounts part. The server
// implements it over the account store; it is small so that tests can
// implement it over a real identity store.
type Accounts interface {
	// Claimant returns what the claims of a subject are made from: the
	// person's traits and identifiers. An onramp.ENOTFOUND error when no
	// account has the subject.
	Claimant(ctx context.Context, subject string) (*auth.Claimant, error)
	// SessionActive reports whether a session is live (not revoked, not
	// expired) and belongs to subject.
	SessionActive(ctx context.Context, sessionID, subject string) (bool, error)
	// EndSession ends a session a relying party asked to end with a valid
	// id_token_hint naming it. ctx is the request's, so an implementation
	// can insist that it is the browser's own session. It queues the
	// back-channel logouts of the session's other clients.
	EndSession(ctx context.Context, e EndSession) error
}

// EndSession names the session /oauth/end_session ends.
type EndSession struct {
	Subject   string
	SessionID string
	ClientID  string // the client whose id_token_hint it was
	// Info is the logout request's IP and user agent, for the audit log.
	Info auth.RequestInfo
}

// Config wires a Provider.
type Config struct {
	OAuth      *auth.OAuth
	Properties *property.Service // their origins may call the endpoints (CORS)
	Accounts   Accounts
	Log        *slog.Logger
	// CryptoKey encrypts the opaque access tokens and the codes (AES-GCM);
	// every node needs the same one. CryptoKeyID names it inside tokens.
	CryptoKey   [32]byte
	CryptoKeyID string
	// Pages of the hosted sign-in, relative to the issuer.
	LoginPath     string // default /auth/sign-in
	LogoutPath    string // default /auth/logout: confirms a logout without id_token_hint
	LoggedOutPath string // default /auth/logged-out
	// SessionOf, if set, returns the id of the browser's session from a
	// request (its cookie). op's callback then hands a code only to the
	// browser that signed the request in.
	SessionOf func(*http.Request) string
	// RequestInfo, if set, answers a request's client IP and user agent
	// (the server knows which proxies to trust); by default the peer
	// address and the User-Agent header.
	RequestInfo func(*http.Request) auth.RequestInfo
	// Ping, if set, is the provider's health check.
	Ping func(ctx context.Context) error
}

// Provider is the OpenID Connect provider, an http.Handler for /oauth/
// and /.well-known/openid-configuration.
type Provider struct {
	op       *op.Provider
	oauth    *auth.OAuth
	props    *property.Service
	accounts Accounts
	log      *slog.Logger
	issuer   string

	loginPath, logoutPath, loggedOutPath string

	sessionOf   func(*http.Request) string
	requestInfo func(*http.Request) auth.RequestInfo
	ping        func(context.Context) error
	origins     originCache
	people      claimantCache
	crypto      *cachedCrypto
	// direct answers introspection and userinfo in the common case
	// without op's request decoding and JSON round trips (fastpath.go);
	// tests turn it off to compare with op's own answers.
	direct bool
}

// Endpoints, relative to the issuer (docs/design/auth.md §4).
const (
	AuthorizePath  = "/oauth/authorize"
	CallbackPath   = AuthorizePath + "/callback"
	TokenPath      = "/oauth/token"
	UserinfoPath   = "/oauth/userinfo"
	IntrospectPath = "/oauth/introspect"
	RevokePath     = "/oauth/revoke"
	EndSessionPath = "/oauth/end_session"
	KeysPath       = "/oauth/keys"
)

// New builds the provider.
func New(cfg Config) (*Provider, error) {
	if cfg.OAuth == nil || cfg.Properties == nil || cfg.Accounts == nil || cfg.Log == nil {
		return nil, errors.New("oidcop: Config needs OAuth, Properties, Accounts and Log")
	}
	if cfg.CryptoKey == ([32]byte{}) {
		return nil, errors.New("oidcop: Config needs a CryptoKey")
	}
	p := &Provider{
		oauth: cfg.OAuth, props: cfg.Properties, accounts: cfg.Accounts, log: cfg.Log, issuer: cfg.OAuth.Issuer(),
		loginPath: orDefault(cfg.LoginPath, "/auth/sign-in"), logoutPath: orDefault(cfg.LogoutPath, "/auth/logout"),
		loggedOutPath: orDefault(cfg.LoggedOutPath, "/auth/logged-out"),
		sessionOf:     cfg.SessionOf, requestInfo: cfg.RequestInfo, ping: cfg.Ping,
	}
	if p.requestInfo == nil {
		p.requestInfo = peerInfo
	}
	p.origins.props = cfg.Properties
	p.crypto, p.direct = newCachedCrypto(cfg.CryptoKey, cfg.CryptoKeyID), true
	config := &op.Config{
		CryptoKey: cfg.CryptoKey, CryptoKeyId: cfg.CryptoKeyID,
		DefaultLogoutRedirectURI: p.loggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedUILocales:       []language.Tag{language.English, language.German},
		SupportedScopes:          auth.SupportedScopes,
		SupportedClaims: []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "amr", "azp", "sid", "at_hash", "c_hash",
			"name", "given_name", "family_name", "picture", "locale", "preferred_username", "website",
			"email", "email_verified", "phone_number", "phone_number_verified"},
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
	}
	opts := []op.Option{
		op.WithCustomEndpoints(op.NewEndpoint(AuthorizePath[1:]), op.NewEndpoint(TokenPath[1:]), op.NewEndpoint(UserinfoPath[1:]),
			op.NewEndpoint(RevokePath[1:]), op.NewEndpoint(EndSessionPath[1:]), op.NewEndpoint(KeysPath[1:])),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint(IntrospectPath[1:])),
		// op routes a device endpoint whatever the storage offers; under
		// /oauth/ it answers unsupported (discovery no longer names it).
		op.WithCustomDeviceAuthorizationEndpoint(op.NewEndpoint("oauth/device_authorization")),
		op.WithCORSOptions(&cors.Options{
			// op's default allows every origin with credentials. Only the
			// properties' origins may call, and never with cookies: the
			// endpoints a browser calls take tokens, not the session.
			AllowOriginFunc:  p.origins.allowed,
			AllowCredentials: false,
			AllowedHeaders:   []string{"Accept", "Accept-Language", "Authorization", "Content-Type", "X-Requested-With"},
			AllowedMethods:   []string{http.MethodGet, http.MethodHead, http.MethodPost},
			ExposedHeaders:   []string{"Location", "Content-Length"},
			MaxAge:           600,
		}),
		op.WithHttpInterceptors(p.intercept),
		op.WithCrypto(p.crypto),
	}
	if strings.HasPrefix(p.issuer, "http://") {
		opts = append(opts, op.WithAllowInsecure())
	}
	var err error
	if p.op, err = op.NewProvider(config, &storage{p: p}, op.StaticIssuer(p.issuer), opts...); err != nil {
		return nil, fmt.Errorf("oidcop: %w", err)
	}
	return p, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// discovery serves op's discovery document trimmed to what Onramp
// accepts. op v3.52 writes some lists whatever its configuration says:
// response types id_token and "id_token token", the implicit and
// jwt-bearer grants, a device endpoint, and RS256 private_key_jwt for
// introspection and revocation; op.Config has no switch for them, and
// relying parties (openid-client, go-oidc) choose flows from this
// document, so it must name only what works: the code flow with PKCE,
// refresh tokens, client credentials, and client secrets.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	d := op.CreateDiscoveryConfig(r.Context(), p.op, p.op.Storage())
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials}
	d.DeviceAuthorizationEndpoint = ""
	// No request objects and no private_key_jwt: no algorithms for them.
	d.RequestObjectSigningAlgValuesSupported = nil
	d.TokenEndpointAuthSigningAlgValuesSupported = nil
	d.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	d.RevocationEndpointAuthSigningAlgValuesSupported = nil
	d.TokenEndpointAuthMethodsSupported = slices.DeleteFunc(d.TokenEndpointAuthMethodsSupported, isPrivateKeyJWT)
	d.IntrospectionEndpointAuthMethodsSupported = slices.DeleteFunc(d.IntrospectionEndpointAuthMethodsSupported, isPrivateKeyJWT)
	d.RevocationEndpointAuthMethodsSupported = slices.DeleteFunc(d.RevocationEndpointAuthMethodsSupported, isPrivateKeyJWT)
	op.Discover(w, d)
}

func isPrivateKeyJWT(m oidc.AuthMethod) bool { return m == oidc.AuthMethodPrivateKeyJWT }

// ServeHTTP serves the provider's endpoints.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.op.ServeHTTP(w, r) }

func (p *Provider) client(c *auth.Client) *client {
	return &client{c: c, loginPath: p.loginPath, idTokens: p.oauth.Lifetimes().IDToken}
}

// --- what the sign-in page calls ---

// SessionGrant is what the sign-in page knows once a person proved who
// they are.
type SessionGrant struct {
	Subject   string
	SessionID string
	AuthTime  time.Time
	AMR       []string
}

// FinishAuthRequest marks the request signed in by g and redirects (303)
// to op's callback, which answers the relying party with a code. On error
// nothing is written to w: the page shows it.
func (p *Provider) FinishAuthRequest(ctx context.Context, w http.ResponseWriter, r *http.Request, authRequestID string, g SessionGrant) error {
	_, err := p.oauth.FinishAuthRequest(ctx, auth.FinishAuthRequestParams{
		ID: authRequestID, Subject: g.Subject, SessionID: g.SessionID, AuthTime: g.AuthTime, AMR: g.AMR,
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, p.CallbackURL(authRequestID), http.StatusSeeOther)
	return nil
}

// CallbackURL is where a finished request goes to get its code.
func (p *Provider) CallbackURL(authRequestID string) string {
	return op.AuthCallbackURL(p.op)(op.ContextWithIssuer(context.Background(), p.issuer), authRequestID)
}

// Failure is why a sign-in ends without a code.
type Failure string

// Failures the sign-in page may answer a relying party with (OIDC Core
// §3.1.2.6).
const (
	LoginRequired       Failure = "login_required"       // prompt=none and no usable session
	ConsentRequired     Failure = "consent_required"     // prompt=none and consent missing
	InteractionRequired Failure = "interaction_required" // prompt=none and something else to ask
	AccessDenied        Failure = "access_denied"        // the person declined
)

// FailAuthRequest answers the relying party with an error at its
// (registered, exactly matched) redirect URI, with its state.
func (p *Provider) FailAuthRequest(ctx context.Context, w http.ResponseWriter, r *http.Request, authRequestID string, f Failure) error {
	ar, err := p.oauth.AuthRequest(ctx, authRequestID)
	if err != nil {
		return err
	}
	var e *oidc.Error
	switch f {
	case LoginRequired:
		e = oidc.ErrLoginRequired()
	case InteractionRequired:
		e = oidc.ErrInteractionRequired()
	case ConsentRequired:
		e = errConsentRequired()
	default:
		e = oidc.ErrAccessDenied()
	}
	op.AuthRequestError(w, r, authRequest{ar}, e, p.op)
	return nil
}

// errConsentRequired is OIDC Core's consent_required, which op has no
// constructor for.
func errConsentRequired() *oidc.Error { return &oidc.Error{ErrorType: "consent_required"} }

// --- context carried from the request to storage ---

type (
	anonymousIDKey struct{}
	sessionKey     struct{}
	endSessionKey  struct{}
)

// peerInfo is the default RequestInfo: the peer address and User-Agent.
func peerInfo(r *http.Request) auth.RequestInfo {
	ip := r.RemoteAddr
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	ua := r.UserAgent()
	if len(ua) > 400 {
		ua = ua[:400]
	}
	return auth.RequestInfo{IP: ip, UserAgent: ua}
}

func requestInfoFrom(ctx context.Context) auth.RequestInfo { return auth.RequestInfoFrom(ctx) }

// endSessionParams are /oauth/end_session's parameters as sent, for the
// logout page's link: op hands storage the redirect URI with the state
// already merged in.
type endSessionParams struct{ redirectURI, state string }

// intercept copies what storage needs from the request into its context:
// the anonymous id the SDK adds to sign-in links (so that the sign-up can
// stitch earlier browsing after proof), the browser's session, and the
// end_session parameters. It also lets the key set be cached.
func (p *Provider) intercept(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		switch r.URL.Path {
		case AuthorizePath:
			if aid := r.URL.Query().Get("onramp_aid"); aid != "" && len(aid) <= 200 {
				ctx = context.WithValue(ctx, anonymousIDKey{}, aid)
			}
		case KeysPath:
			// Relying parties may cache the key set: keys are published a
			// day before they sign (auth/keys.go).
			w.Header().Set("Cache-Control", "public, max-age=300")
		case oidc.DiscoveryEndpoint:
			p.discovery(w, r)
			return
		case IntrospectPath:
			if p.direct && p.introspect(w, r) || p.refuseIntrospection(w, r) {
				return
			}
		case UserinfoPath:
			if p.direct && p.userinfo(w, r) {
				return
			}
		case EndSessionPath:
			if err := r.ParseForm(); err == nil {
				ctx = context.WithValue(ctx, endSessionKey{}, endSessionParams{redirectURI: r.Form.Get("post_logout_redirect_uri"), state: r.Form.Get("state")})
			}
			// The logout's audit entry names where it came from.
			ctx = auth.WithRequestInfo(ctx, p.requestInfo(r))
		case TokenPath:
			// So do a replayed code's and a reused refresh token's.
			ctx = auth.WithRequestInfo(ctx, p.requestInfo(r))
		}
		if p.sessionOf != nil {
			if sid := p.sessionOf(r); sid != "" {
				ctx = context.WithValue(ctx, sessionKey{}, sid)
			}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func anonymousIDFrom(ctx context.Context) string {
	s, _ := ctx.Value(anonymousIDKey{}).(string)
	return s
}

// logoutConfirmURL sends a logout without id_token_hint to the logout
// page, which asks the person before ending anything. The redirect URI is
// passed on only when op matched it against the client's; the page checks
// it again (auth.OAuth.CheckPostLogoutRedirect), since it reads it from a
// query string.
func (p *Provider) logoutConfirmURL(ctx context.Context, req *op.EndSessionRequest) string {
	q := url.Values{}
	if req.ClientID != "" {
		q.Set("client_id", req.ClientID)
		if es, ok := ctx.Value(endSessionKey{}).(endSessionParams); ok && es.redirectURI != "" && req.RedirectURI != p.loggedOutPath {
			q.Set("post_logout_redirect_uri", es.redirectURI)
			if es.state != "" {
				q.Set("state", es.state)
			}
		}
	}
	if len(q) == 0 {
		return p.logoutPath
	}
	return p.logoutPath + "?" + q.Encode()
}

// --- claims ---

// fillClaims puts the claims the scopes grant into info.
func (p *Provider) fillClaims(ctx context.Context, info *oidc.UserInfo, clientID, subject string, scopes []string) error {
	claims, err := p.claims(ctx, clientID, subject, scopes)
	if err != nil {
		return err
	}
	// Extra claims are marshalled next to the typed fields, which are left
	// empty, so every claim is written exactly as the rules made it.
	for k, v := range claims {
		info.AppendClaims(k, v)
	}
	return nil
}

// claims are the claims the scopes grant, as op errors.
func (p *Provider) claims(ctx context.Context, clientID, subject string, scopes []string) (map[string]any, error) {
	c, err := p.oauth.Client(ctx, clientID)
	if err != nil {
		return nil, oidcError(err)
	}
	person, err := p.people.get(ctx, p.accounts, subject)
	if err != nil {
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return nil, oidc.ErrAccessDenied().WithDescription("The account no longer exists.")
		}
		return nil, oidc.ErrServerError().WithParent(err)
	}
	claims, err := p.oauth.Claims(auth.ClaimsParams{Client: c, Scopes: scopes, Person: person})
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return claims, nil
}

// claimantCache keeps what claims are made of for a few seconds: a
// relying party that calls userinfo on every page view would otherwise
// read the account and the person each time. A trait change reaches
// userinfo within claimantTTL.
type claimantCache struct {
	mu sync.Mutex
	m  map[string]cachedClaimant
}

type cachedClaimant struct {
	c  *auth.Claimant
	at time.Time
}

const claimantTTL = 5 * time.Second

func (c *claimantCache) get(ctx context.Context, a Accounts, subject string) (*auth.Claimant, error) {
	c.mu.Lock()
	e, ok := c.m[subject]
	c.mu.Unlock()
	if ok && time.Since(e.at) < claimantTTL {
		return e.c, nil
	}
	cl, err := a.Claimant(ctx, subject)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= 100_000 {
		c.m = map[string]cachedClaimant{}
	}
	c.m[subject] = cachedClaimant{c: cl, at: time.Now()}
	c.mu.Unlock()
	return cl, nil
}

// --- CORS ---

// originCache holds the properties' origins for a few seconds: every CORS
// request asks.
type originCache struct {
	props *property.Service
	mu    sync.Mutex
	at    time.Time
	list  []*property.Property
}

func (c *originCache) allowed(origin string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > 5*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ps, err := c.props.List(ctx)
		cancel()
		if err != nil {
			return false
		}
		c.list, c.at = ps, time.Now()
	}
	for _, p := range c.list {
		if p.AllowsOrigin(origin) {
			return true
		}
	}
	return false
}
