package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// This file implements auth.OAuthStore. Lists are text[]; absent times are
// NULL.

// changed runs a compare-and-set statement and reports whether it matched.
func (q *Queries) changed(ctx context.Context, what, sql string, args ...any) (bool, error) {
	tag, err := q.x.Exec(ctx, sql, args...)
	if err != nil {
		return false, fmt.Errorf("postgres: %s: %w", what, err)
	}
	return tag.RowsAffected() > 0, nil
}

// collectOne collects exactly one row, mapping no row to ENOTFOUND.
func collectOne[T any](rows pgx.Rows, err error, what string, scan pgx.RowToFunc[T]) (T, error) {
	var zero T
	if err != nil {
		return zero, fmt.Errorf("postgres: %s: %w", what, err)
	}
	v, err := pgx.CollectExactlyOneRow(rows, scan)
	if err == pgx.ErrNoRows {
		return zero, notFound(what)
	}
	if err != nil {
		return zero, fmt.Errorf("postgres: %s: %w", what, err)
	}
	return v, nil
}

// --- clients ---

const clientCols = `id, property_id, secret_hash, first_party, redirect_uris, post_logout_redirect_uris, backchannel_logout_uri, grant_types, claims, id_token_lifetime_s, created_at, updated_at`

func scanClient(row pgx.CollectableRow) (*auth.Client, error) {
	var c auth.Client
	var secret pgtype.Text
	var lifetime int32
	var created, updated pgtype.Timestamptz
	if err := row.Scan(&c.ID, &c.PropertyID, &secret, &c.FirstParty, &c.RedirectURIs, &c.PostLogoutRedirectURIs, &c.BackchannelLogoutURI,
		&c.GrantTypes, &c.Claims, &lifetime, &created, &updated); err != nil {
		return nil, err
	}
	c.RedirectURIs, c.PostLogoutRedirectURIs, c.GrantTypes = nonNil(c.RedirectURIs), nonNil(c.PostLogoutRedirectURIs), nonNil(c.GrantTypes)
	if len(c.Claims) == 0 {
		c.Claims = nil
	}
	c.SecretHash = secret.String
	c.IDTokenLifetime = time.Duration(lifetime) * time.Second
	c.CreatedAt, c.UpdatedAt = fromTS(created), fromTS(updated)
	return &c, nil
}

func clientArgs(c *auth.Client) []any {
	claims := c.Claims
	if claims == nil {
		claims = map[string]string{}
	}
	return []any{c.ID, c.PropertyID, nullText(c.SecretHash), c.FirstParty, nonNil(c.RedirectURIs), nonNil(c.PostLogoutRedirectURIs),
		c.BackchannelLogoutURI, nonNil(c.GrantTypes), claims, int32(c.IDTokenLifetime / time.Second), ts(c.CreatedAt), ts(c.UpdatedAt)}
}

func (q *Queries) CreateClient(ctx context.Context, c *auth.Client) error {
	_, err := q.x.Exec(ctx, `INSERT INTO oauth_clients (`+clientCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, clientArgs(c)...)
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "A client with id %q exists already.", c.ID)
	}
	if err != nil {
		return fmt.Errorf("postgres: create client: %w", err)
	}
	return nil
}

func (q *Queries) UpdateClient(ctx context.Context, c *auth.Client) error {
	tag, err := q.x.Exec(ctx, `UPDATE oauth_clients SET property_id = $2, secret_hash = $3, first_party = $4, redirect_uris = $5, post_logout_redirect_uris = $6,
		backchannel_logout_uri = $7, grant_types = $8, claims = $9, id_token_lifetime_s = $10, created_at = $11, updated_at = $12 WHERE id = $1`, clientArgs(c)...)
	if err != nil {
		return fmt.Errorf("postgres: update client: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("client")
	}
	return nil
}

func (q *Queries) ClientByID(ctx context.Context, id string) (*auth.Client, error) {
	rows, err := q.x.Query(ctx, `SELECT `+clientCols+` FROM oauth_clients WHERE id = $1`, id)
	return collectOne(rows, err, "client", scanClient)
}

func (q *Queries) ClientsOfProperty(ctx context.Context, propertyID string) ([]*auth.Client, error) {
	rows, err := q.x.Query(ctx, `SELECT `+clientCols+` FROM oauth_clients WHERE property_id = $1 ORDER BY created_at, id`, propertyID)
	if err != nil {
		return nil, fmt.Errorf("postgres: clients: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanClient)
	if err != nil {
		return nil, fmt.Errorf("postgres: clients: %w", err)
	}
	return nonNilSlice(out), nil
}

// --- auth requests ---

const authRequestCols = `id, client_id, redirect_uri, scopes, state, nonce, response_type, response_mode, code_challenge, code_challenge_method,
	prompt, max_age, ui_locales, login_hint, hint_subject, anonymous_id, session_id, subject, auth_time, amr, done,
	code_hash, code_expires_at, code_used_at, created_at, expires_at`

func scanAuthRequest(row pgx.CollectableRow) (*auth.AuthRequest, error) {
	var r auth.AuthRequest
	var codeHash pgtype.Text
	var authTime, codeExpires, codeUsed, created, expires pgtype.Timestamptz
	if err := row.Scan(&r.ID, &r.ClientID, &r.RedirectURI, &r.Scopes, &r.State, &r.Nonce, &r.ResponseType, &r.ResponseMode, &r.CodeChallenge, &r.CodeChallengeMethod,
		&r.Prompt, &r.MaxAge, &r.UILocales, &r.LoginHint, &r.HintSubject, &r.AnonymousID, &r.SessionID, &r.Subject, &authTime, &r.AMR, &r.Done,
		&codeHash, &codeExpires, &codeUsed, &created, &expires); err != nil {
		return nil, err
	}
	r.Scopes, r.Prompt, r.AMR = nonNil(r.Scopes), nonNil(r.Prompt), nonNil(r.AMR)
	r.CodeHash = codeHash.String
	r.AuthTime, r.CodeExpiresAt, r.CodeUsedAt = fromTS(authTime), fromTS(codeExpires), ptrTS(codeUsed)
	r.CreatedAt, r.ExpiresAt = fromTS(created), fromTS(expires)
	return &r, nil
}

func (q *Queries) CreateAuthRequest(ctx context.Context, r *auth.AuthRequest) error {
	_, err := q.x.Exec(ctx, `INSERT INTO auth_requests (`+authRequestCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
		$14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)`,
		r.ID, r.ClientID, r.RedirectURI, nonNil(r.Scopes), r.State, r.Nonce, r.ResponseType, r.ResponseMode, r.CodeChallenge, r.CodeChallengeMethod,
		nonNil(r.Prompt), r.MaxAge, r.UILocales, r.LoginHint, r.HintSubject, r.AnonymousID, r.SessionID, r.Subject, ts(r.AuthTime), nonNil(r.AMR), r.Done,
		nullText(r.CodeHash), ts(r.CodeExpiresAt), tsPtr(r.CodeUsedAt), ts(r.CreatedAt), ts(r.ExpiresAt))
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "An auth request with id %q exists already.", r.ID)
	}
	if err != nil {
		return fmt.Errorf("postgres: create auth request: %w", err)
	}
	return nil
}

func (q *Queries) AuthRequestByID(ctx context.Context, id string) (*auth.AuthRequest, error) {
	rows, err := q.x.Query(ctx, `SELECT `+authRequestCols+` FROM auth_requests WHERE id = $1`, id)
	return collectOne(rows, err, "auth request", scanAuthRequest)
}

func (q *Queries) AuthRequestByCodeHash(ctx context.Context, hash string) (*auth.AuthRequest, error) {
	rows, err := q.x.Query(ctx, `SELECT `+authRequestCols+` FROM auth_requests WHERE code_hash = $1`, hash)
	return collectOne(rows, err, "auth request", scanAuthRequest)
}

func (q *Queries) FinishAuthRequest(ctx context.Context, id string, d auth.AuthRequestDone) (bool, error) {
	return q.changed(ctx, "finish auth request", `UPDATE auth_requests SET subject = $1, session_id = $2, auth_time = $3, amr = $4, done = true WHERE id = $5 AND NOT done`,
		d.Subject, d.SessionID, ts(d.AuthTime), nonNil(d.AMR), id)
}

func (q *Queries) SetAuthCode(ctx context.Context, id, codeHash string, expires time.Time) (bool, error) {
	ok, err := q.changed(ctx, "set auth code", `UPDATE auth_requests SET code_hash = $1, code_expires_at = $2 WHERE id = $3 AND done AND code_hash IS NULL`,
		codeHash, ts(expires), id)
	if isUnique(err) {
		return false, onramp.Errorf(onramp.ECONFLICT, "The code is in use.")
	}
	return ok, err
}

func (q *Queries) UseAuthCode(ctx context.Context, codeHash string, at time.Time) (bool, error) {
	return q.changed(ctx, "use auth code", `UPDATE auth_requests SET code_used_at = $1 WHERE code_hash = $2 AND code_used_at IS NULL`, ts(at), codeHash)
}

// --- access tokens ---

const accessTokenCols = `id, client_id, subject, session_id, refresh_family_id, auth_request_id, scopes, audience, created_at, expires_at, revoked_at`

func scanAccessToken(row pgx.CollectableRow) (*auth.AccessToken, error) {
	var t auth.AccessToken
	var created, expires, revoked pgtype.Timestamptz
	if err := row.Scan(&t.ID, &t.ClientID, &t.Subject, &t.SessionID, &t.RefreshFamilyID, &t.AuthRequestID, &t.Scopes, &t.Audience, &created, &expires, &revoked); err != nil {
		return nil, err
	}
	t.Scopes, t.Audience = nonNil(t.Scopes), nonNil(t.Audience)
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = fromTS(created), fromTS(expires), ptrTS(revoked)
	return &t, nil
}

func (q *Queries) CreateAccessToken(ctx context.Context, t *auth.AccessToken) error {
	_, err := q.x.Exec(ctx, `INSERT INTO access_tokens (`+accessTokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		t.ID, t.ClientID, t.Subject, t.SessionID, t.RefreshFamilyID, t.AuthRequestID, nonNil(t.Scopes), nonNil(t.Audience),
		ts(t.CreatedAt), ts(t.ExpiresAt), tsPtr(t.RevokedAt))
	if err != nil {
		return fmt.Errorf("postgres: create access token: %w", err)
	}
	return nil
}

func (q *Queries) AccessTokenByID(ctx context.Context, id string) (*auth.AccessToken, error) {
	rows, err := q.x.Query(ctx, `SELECT `+accessTokenCols+` FROM access_tokens WHERE id = $1`, id)
	return collectOne(rows, err, "access token", scanAccessToken)
}

func (q *Queries) RevokeAccessToken(ctx context.Context, id string, at time.Time) (bool, error) {
	return q.changed(ctx, "revoke access token", `UPDATE access_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, ts(at), id)
}

// revokeTokens revokes the live families matching familyWhere and the live
// access tokens matching accessWhere (both over $2), in one transaction,
// and returns the access tokens' ids.
func (q *Queries) revokeTokens(ctx context.Context, what, familyWhere, accessWhere string, key string, r auth.Revocation) ([]string, error) {
	var ids []string
	err := q.inTx(ctx, func(x querier) error {
		if _, err := x.Exec(ctx, `UPDATE refresh_families SET revoked_at = $1, revoked_reason = $3 WHERE revoked_at IS NULL AND `+familyWhere, ts(r.At), key, r.Reason); err != nil {
			return err
		}
		rows, err := x.Query(ctx, `UPDATE access_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND `+accessWhere+` RETURNING id`, ts(r.At), key)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	return nonNilSlice(ids), nil
}

func (q *Queries) RevokeAuthRequestTokens(ctx context.Context, authRequestID string, r auth.Revocation) ([]string, error) {
	return q.revokeTokens(ctx, "revoke auth request tokens", `auth_request_id = $2`, `auth_request_id = $2`, authRequestID, r)
}

func (q *Queries) RevokeSessionTokens(ctx context.Context, sessionID string, r auth.Revocation) ([]string, error) {
	if sessionID == "" {
		return []string{}, nil
	}
	return q.revokeTokens(ctx, "revoke session tokens", `session_id = $2`, `session_id = $2`, sessionID, r)
}

// --- refresh families and tokens ---

const familyCols = `id, client_id, subject, session_id, auth_request_id, scopes, amr, auth_time, created_at, idle_expires_at, expires_at, revoked_at, revoked_reason`

func scanFamily(row pgx.CollectableRow) (*auth.RefreshFamily, error) {
	var f auth.RefreshFamily
	var authTime, created, idle, expires, revoked pgtype.Timestamptz
	if err := row.Scan(&f.ID, &f.ClientID, &f.Subject, &f.SessionID, &f.AuthRequestID, &f.Scopes, &f.AMR, &authTime, &created, &idle, &expires, &revoked, &f.RevokedReason); err != nil {
		return nil, err
	}
	f.Scopes, f.AMR = nonNil(f.Scopes), nonNil(f.AMR)
	f.AuthTime, f.CreatedAt, f.IdleExpiresAt, f.ExpiresAt = fromTS(authTime), fromTS(created), fromTS(idle), fromTS(expires)
	f.RevokedAt = ptrTS(revoked)
	return &f, nil
}

func (q *Queries) CreateRefreshFamily(ctx context.Context, f *auth.RefreshFamily) error {
	_, err := q.x.Exec(ctx, `INSERT INTO refresh_families (`+familyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		f.ID, f.ClientID, f.Subject, f.SessionID, f.AuthRequestID, nonNil(f.Scopes), nonNil(f.AMR), ts(f.AuthTime),
		ts(f.CreatedAt), ts(f.IdleExpiresAt), ts(f.ExpiresAt), tsPtr(f.RevokedAt), f.RevokedReason)
	if err != nil {
		return fmt.Errorf("postgres: create refresh family: %w", err)
	}
	return nil
}

func (q *Queries) RefreshFamilyByID(ctx context.Context, id string) (*auth.RefreshFamily, error) {
	rows, err := q.x.Query(ctx, `SELECT `+familyCols+` FROM refresh_families WHERE id = $1`, id)
	return collectOne(rows, err, "refresh family", scanFamily)
}

func (q *Queries) TouchRefreshFamily(ctx context.Context, id string, idleExpires time.Time) error {
	tag, err := q.x.Exec(ctx, `UPDATE refresh_families SET idle_expires_at = $1 WHERE id = $2`, ts(idleExpires), id)
	if err != nil {
		return fmt.Errorf("postgres: touch refresh family: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("refresh family")
	}
	return nil
}

func (q *Queries) RevokeRefreshFamily(ctx context.Context, id string, r auth.Revocation) ([]string, error) {
	return q.revokeTokens(ctx, "revoke refresh family", `id = $2`, `refresh_family_id = $2`, id, r)
}

func (q *Queries) CreateRefreshToken(ctx context.Context, t *auth.RefreshToken) error {
	_, err := q.x.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, family_id, generation, created_at, used_at) VALUES ($1, $2, $3, $4, $5)`,
		t.TokenHash, t.FamilyID, t.Generation, ts(t.CreatedAt), tsPtr(t.UsedAt))
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "The refresh token was rotated already.")
	}
	if err != nil {
		return fmt.Errorf("postgres: create refresh token: %w", err)
	}
	return nil
}

func (q *Queries) RefreshTokenByHash(ctx context.Context, hash string) (*auth.RefreshToken, error) {
	rows, err := q.x.Query(ctx, `SELECT token_hash, family_id, generation, created_at, used_at FROM refresh_tokens WHERE token_hash = $1`, hash)
	return collectOne(rows, err, "refresh token", func(row pgx.CollectableRow) (*auth.RefreshToken, error) {
		var t auth.RefreshToken
		var created, used pgtype.Timestamptz
		if err := row.Scan(&t.TokenHash, &t.FamilyID, &t.Generation, &created, &used); err != nil {
			return nil, err
		}
		t.CreatedAt, t.UsedAt = fromTS(created), ptrTS(used)
		return &t, nil
	})
}

func (q *Queries) UseRefreshToken(ctx context.Context, hash string, at time.Time) (bool, error) {
	return q.changed(ctx, "use refresh token", `UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL`, ts(at), hash)
}

// --- signing keys ---

const signingKeyCols = `kid, alg, private_key, public_jwk, created_at, active_from, retire_at, expires_at`

func (q *Queries) InsertSigningKey(ctx context.Context, k *auth.SigningKey) (bool, error) {
	return q.changed(ctx, "insert signing key", `INSERT INTO signing_keys (`+signingKeyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (active_from) DO NOTHING`,
		k.KID, k.Alg, k.PrivateKey, string(k.PublicJWK), ts(k.CreatedAt), ts(k.ActiveFrom), ts(k.RetireAt), ts(k.ExpiresAt))
}

func (q *Queries) UpdateSigningKey(ctx context.Context, k *auth.SigningKey) error {
	tag, err := q.x.Exec(ctx, `UPDATE signing_keys SET active_from = $1, retire_at = $2, expires_at = $3 WHERE kid = $4`,
		ts(k.ActiveFrom), ts(k.RetireAt), ts(k.ExpiresAt), k.KID)
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "Another key becomes active at that time.")
	}
	if err != nil {
		return fmt.Errorf("postgres: update signing key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("signing key")
	}
	return nil
}

func (q *Queries) SigningKeys(ctx context.Context, now time.Time) ([]*auth.SigningKey, error) {
	rows, err := q.x.Query(ctx, `SELECT `+signingKeyCols+` FROM signing_keys WHERE expires_at > $1 ORDER BY active_from, kid`, ts(now))
	if err != nil {
		return nil, fmt.Errorf("postgres: signing keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*auth.SigningKey, error) {
		var k auth.SigningKey
		var jwk []byte
		var created, active, retire, expires pgtype.Timestamptz
		if err := row.Scan(&k.KID, &k.Alg, &k.PrivateKey, &jwk, &created, &active, &retire, &expires); err != nil {
			return nil, err
		}
		k.PublicJWK = json.RawMessage(jwk)
		k.CreatedAt, k.ActiveFrom, k.RetireAt, k.ExpiresAt = fromTS(created), fromTS(active), fromTS(retire), fromTS(expires)
		return &k, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: signing keys: %w", err)
	}
	return nonNilSlice(out), nil
}

// --- consents ---

func (q *Queries) PutConsent(ctx context.Context, c *auth.Consent) error {
	_, err := q.x.Exec(ctx, `INSERT INTO consents (subject, client_id, scopes, granted_at, revoked_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (subject, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at, revoked_at = excluded.revoked_at`,
		c.Subject, c.ClientID, nonNil(c.Scopes), ts(c.GrantedAt), tsPtr(c.RevokedAt))
	if err != nil {
		return fmt.Errorf("postgres: put consent: %w", err)
	}
	return nil
}

func (q *Queries) ConsentOf(ctx context.Context, subject, clientID string) (*auth.Consent, error) {
	rows, err := q.x.Query(ctx, `SELECT subject, client_id, scopes, granted_at, revoked_at FROM consents WHERE subject = $1 AND client_id = $2`, subject, clientID)
	return collectOne(rows, err, "consent", func(row pgx.CollectableRow) (*auth.Consent, error) {
		var c auth.Consent
		var granted, revoked pgtype.Timestamptz
		if err := row.Scan(&c.Subject, &c.ClientID, &c.Scopes, &granted, &revoked); err != nil {
			return nil, err
		}
		c.Scopes = nonNil(c.Scopes)
		c.GrantedAt, c.RevokedAt = fromTS(granted), ptrTS(revoked)
		return &c, nil
	})
}

// --- upkeep ---

func (q *Queries) PruneOAuth(ctx context.Context, cutoff time.Time) error {
	err := q.inTx(ctx, func(x querier) error {
		for _, stmt := range []string{
			`DELETE FROM auth_requests WHERE expires_at < $1`,
			`DELETE FROM access_tokens WHERE expires_at < $1`,
			`DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM refresh_families WHERE expires_at < $1)`,
			`DELETE FROM refresh_families WHERE expires_at < $1`,
			`DELETE FROM signing_keys WHERE expires_at < $1`,
		} {
			if _, err := x.Exec(ctx, stmt, ts(cutoff)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: prune oauth: %w", err)
	}
	return nil
}

func (q *Queries) EraseOAuth(ctx context.Context, subjects []string) error {
	err := q.inTx(ctx, func(x querier) error {
		for _, stmt := range []string{
			`DELETE FROM auth_requests WHERE subject = ANY($1)`,
			`DELETE FROM access_tokens WHERE subject = ANY($1)`,
			`DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM refresh_families WHERE subject = ANY($1))`,
			`DELETE FROM refresh_families WHERE subject = ANY($1)`,
			`DELETE FROM consents WHERE subject = ANY($1)`,
		} {
			if _, err := x.Exec(ctx, stmt, nonNil(subjects)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: erase oauth: %w", err)
	}
	return nil
}
