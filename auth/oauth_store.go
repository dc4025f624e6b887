package auth

import (
	"context"
	"encoding/json"
	"time"
)

// This file holds the records of the OAuth 2.0 / OpenID Connect provider
// and the OAuthStore each engine implements for them (docs/design/auth.md
// §1). The rules that use them live in oauth.go and keys.go. As everywhere
// in auth, secrets are never stored: client secrets, codes and refresh
// tokens only as their SHA-256.

// Grant types a client may use.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Client is a property's OAuth client. A client with no SecretHash is
// public (a single-page or mobile app): it cannot keep a secret, so it
// must use PKCE and may not use client credentials.
type Client struct {
	ID                     string   `json:"id"`
	PropertyID             string   `json:"property_id"`
	SecretHash             string   `json:"-"`
	FirstParty             bool     `json:"first_party"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI   string   `json:"backchannel_logout_uri,omitempty"`
	GrantTypes             []string `json:"grant_types"`
	// Claims maps a custom claim name to the trait it is read from (a
	// dotted path such as "company.name"), given out under the scope
	// onramp:traits.
	Claims map[string]string `json:"claims,omitempty"`
	// IDTokenLifetime is how long ID tokens of this client live; zero
	// means the provider's default.
	IDTokenLifetime time.Duration `json:"id_token_lifetime,omitempty"`
	CreatedAt       time.Time     `json:"created_at"`
	UpdatedAt       time.Time     `json:"updated_at"`
}

// Public reports whether the client has no secret.
func (c *Client) Public() bool { return c.SecretHash == "" }

// MarshalJSON adds "public" to the stored fields, so that the console and
// API callers see what kind of client a property has.
func (c *Client) MarshalJSON() ([]byte, error) {
	type stored Client
	return json.Marshal(struct {
		*stored
		Public bool `json:"public"`
	}{(*stored)(c), c.Public()})
}

// AuthRequest is one /oauth/authorize request from its arrival until its
// code expires. Rows are kept after the code is used, until ExpiresAt, so
// that a replayed code is still recognised (and punished).
type AuthRequest struct {
	ID                  string   `json:"id"`
	ClientID            string   `json:"client_id"`
	RedirectURI         string   `json:"redirect_uri"`
	Scopes              []string `json:"scopes"`
	State               string   `json:"state,omitempty"`
	Nonce               string   `json:"nonce,omitempty"`
	ResponseType        string   `json:"response_type"`
	ResponseMode        string   `json:"response_mode,omitempty"`
	CodeChallenge       string   `json:"code_challenge,omitempty"`
	CodeChallengeMethod string   `json:"code_challenge_method,omitempty"`
	Prompt              []string `json:"prompt,omitempty"`
	// MaxAge is the max_age parameter in seconds; nil when absent.
	MaxAge    *int64 `json:"max_age,omitempty"`
	UILocales string `json:"ui_locales,omitempty"` // space-separated, as sent
	LoginHint string `json:"login_hint,omitempty"`
	// HintSubject is the subject of a valid id_token_hint.
	HintSubject string `json:"hint_subject,omitempty"`
	AnonymousID string `json:"anonymous_id,omitempty"`

	// Set when the person has signed in (FinishAuthRequest).
	SessionID string    `json:"session_id,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	AuthTime  time.Time `json:"auth_time"`
	AMR       []string  `json:"amr,omitempty"`
	Done      bool      `json:"done"`

	// Set when the code is issued (SetAuthCode) and redeemed (UseAuthCode).
	CodeHash      string     `json:"-"`
	CodeExpiresAt time.Time  `json:"code_expires_at"`
	CodeUsedAt    *time.Time `json:"code_used_at,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// AuthRequestDone is what signing in adds to an auth request.
type AuthRequestDone struct {
	Subject   string
	SessionID string
	AuthTime  time.Time
	AMR       []string
}

// AccessToken is an opaque access token's row; the token itself is an
// encryption of its ID and subject. Tokens minted from a code keep the
// auth request's id, and tokens minted by refresh their family's, so that
// replay and reuse can revoke them all.
type AccessToken struct {
	ID              string     `json:"id"`
	ClientID        string     `json:"client_id"`
	Subject         string     `json:"subject"`
	SessionID       string     `json:"session_id,omitempty"`
	RefreshFamilyID string     `json:"refresh_family_id,omitempty"`
	AuthRequestID   string     `json:"auth_request_id,omitempty"`
	Scopes          []string   `json:"scopes"`
	Audience        []string   `json:"audience"`
	CreatedAt       time.Time  `json:"created_at"`
	ExpiresAt       time.Time  `json:"expires_at"`
	RevokedAt       *time.Time `json:"revoked_at,omitempty"`
}

// RefreshFamily is the chain of refresh tokens that descend from one code
// exchange. Each rotation uses up one token and adds the next generation;
// presenting a used token revokes the whole family.
type RefreshFamily struct {
	ID            string     `json:"id"`
	ClientID      string     `json:"client_id"`
	Subject       string     `json:"subject"`
	SessionID     string     `json:"session_id,omitempty"` // empty for offline_access
	AuthRequestID string     `json:"auth_request_id,omitempty"`
	Scopes        []string   `json:"scopes"`
	AMR           []string   `json:"amr,omitempty"`
	AuthTime      time.Time  `json:"auth_time"`
	CreatedAt     time.Time  `json:"created_at"`
	IdleExpiresAt time.Time  `json:"idle_expires_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	RevokedReason string     `json:"revoked_reason,omitempty"`
}

// RefreshToken is one generation of a family.
type RefreshToken struct {
	TokenHash  string     `json:"-"`
	FamilyID   string     `json:"family_id"`
	Generation int        `json:"generation"`
	CreatedAt  time.Time  `json:"created_at"`
	UsedAt     *time.Time `json:"used_at,omitempty"`
}

// SigningKey is a key that signs ID and logout tokens. It is published in
// the key set from CreatedAt, signs from ActiveFrom until RetireAt, and
// stays published until ExpiresAt so that tokens it signed still verify.
type SigningKey struct {
	KID string `json:"kid"`
	Alg string `json:"alg"`
	// PrivateKey is the PKCS #8 private key as keys.go seals it (AES-GCM
	// under the key encryption key when one is configured).
	PrivateKey []byte          `json:"-"`
	PublicJWK  json.RawMessage `json:"public_jwk"`
	CreatedAt  time.Time       `json:"created_at"`
	ActiveFrom time.Time       `json:"active_from"`
	RetireAt   time.Time       `json:"retire_at"`
	ExpiresAt  time.Time       `json:"expires_at"`
}

// Consent records the scopes a person let a client that is not first-party
// have.
type Consent struct {
	Subject   string     `json:"subject"`
	ClientID  string     `json:"client_id"`
	Scopes    []string   `json:"scopes"`
	GrantedAt time.Time  `json:"granted_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Revocation says when and why tokens are revoked.
type Revocation struct {
	At     time.Time
	Reason string
}

// OAuthStore is what the OAuth rules need from an engine. Methods that find
// one thing answer an onramp.ENOTFOUND error when it does not exist.
// Methods that report a bool are compare-and-set: of two racing callers,
// exactly one gets true.
type OAuthStore interface {
	// Clients. CreateClient answers ECONFLICT when the id is taken.
	CreateClient(ctx context.Context, c *Client) error
	UpdateClient(ctx context.Context, c *Client) error
	ClientByID(ctx context.Context, id string) (*Client, error)
	ClientsOfProperty(ctx context.Context, propertyID string) ([]*Client, error)

	// Auth requests.
	CreateAuthRequest(ctx context.Context, r *AuthRequest) error
	AuthRequestByID(ctx context.Context, id string) (*AuthRequest, error)
	AuthRequestByCodeHash(ctx context.Context, hash string) (*AuthRequest, error)
	// FinishAuthRequest marks a request that is not done yet as done by d.
	FinishAuthRequest(ctx context.Context, id string, d AuthRequestDone) (bool, error)
	// SetAuthCode stores the code of a done request that has none yet.
	SetAuthCode(ctx context.Context, id, codeHash string, expires time.Time) (bool, error)
	// UseAuthCode sets code_used_at of the code if it is unset.
	UseAuthCode(ctx context.Context, codeHash string, at time.Time) (bool, error)

	// Access tokens. Revoke* methods return the ids of the access tokens
	// they revoked, so that caches can forget them.
	CreateAccessToken(ctx context.Context, t *AccessToken) error
	AccessTokenByID(ctx context.Context, id string) (*AccessToken, error)
	RevokeAccessToken(ctx context.Context, id string, at time.Time) (bool, error)
	// RevokeAuthRequestTokens revokes the families and access tokens born
	// of an auth request's code.
	RevokeAuthRequestTokens(ctx context.Context, authRequestID string, r Revocation) ([]string, error)
	// RevokeSessionTokens revokes the families and access tokens bound to a
	// session (not offline_access ones).
	RevokeSessionTokens(ctx context.Context, sessionID string, r Revocation) ([]string, error)

	// Refresh tokens.
	CreateRefreshFamily(ctx context.Context, f *RefreshFamily) error
	RefreshFamilyByID(ctx context.Context, id string) (*RefreshFamily, error)
	// TouchRefreshFamily moves idle_expires_at.
	TouchRefreshFamily(ctx context.Context, id string, idleExpires time.Time) error
	// RevokeRefreshFamily revokes the family (once: the first reason stays)
	// and every access token minted from it.
	RevokeRefreshFamily(ctx context.Context, id string, r Revocation) ([]string, error)
	// CreateRefreshToken answers ECONFLICT when the family already has the
	// generation: a token has one successor, ever.
	CreateRefreshToken(ctx context.Context, t *RefreshToken) error
	RefreshTokenByHash(ctx context.Context, hash string) (*RefreshToken, error)
	// UseRefreshToken sets used_at of the token if it is unset.
	UseRefreshToken(ctx context.Context, hash string, at time.Time) (bool, error)

	// Signing keys. InsertSigningKey does nothing and reports false when a
	// key with the same ActiveFrom exists: nodes that plan the same
	// rotation at once insert one key. SigningKeys returns the keys not
	// expired at now, oldest ActiveFrom first.
	InsertSigningKey(ctx context.Context, k *SigningKey) (bool, error)
	UpdateSigningKey(ctx context.Context, k *SigningKey) error
	SigningKeys(ctx context.Context, now time.Time) ([]*SigningKey, error)

	// Consents. PutConsent inserts or replaces.
	PutConsent(ctx context.Context, c *Consent) error
	ConsentOf(ctx context.Context, subject, clientID string) (*Consent, error)

	// PruneOAuth deletes auth requests, access tokens, refresh families
	// (with their tokens) and signing keys that expired before cutoff.
	PruneOAuth(ctx context.Context, cutoff time.Time) error
	// EraseOAuth removes every auth request, token, family and consent of
	// these subjects (privacy delete).
	EraseOAuth(ctx context.Context, subjects []string) error
}
