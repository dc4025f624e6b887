package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// This file implements auth.OAuthStore. Lists are JSON arrays in TEXT;
// times are microseconds, 0 meaning absent where the column is NOT NULL.

type scanner interface{ Scan(...any) error }

func listJSON(ss []string) string {
	b, _ := json.Marshal(nonNil(ss))
	return string(b)
}

func listOf(s string) ([]string, error) {
	out := []string{}
	if s == "" {
		return out, nil
	}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// lists decodes several JSON list columns at once.
func lists(pairs ...any) error {
	for i := 0; i < len(pairs); i += 2 {
		l, err := listOf(pairs[i].(string))
		if err != nil {
			return err
		}
		*pairs[i+1].(*[]string) = l
	}
	return nil
}

// --- clients ---

const clientCols = `id, property_id, secret_hash, first_party, redirect_uris, post_logout_redirect_uris, backchannel_logout_uri, grant_types, claims, id_token_lifetime_s, created_at, updated_at`

func scanClient(sc scanner) (*auth.Client, error) {
	var c auth.Client
	var secret sql.NullString
	var redirects, postLogout, grants, claims string
	var lifetime, created, updated int64
	if err := sc.Scan(&c.ID, &c.PropertyID, &secret, &c.FirstParty, &redirects, &postLogout, &c.BackchannelLogoutURI, &grants, &claims, &lifetime, &created, &updated); err != nil {
		return nil, err
	}
	if err := lists(redirects, &c.RedirectURIs, postLogout, &c.PostLogoutRedirectURIs, grants, &c.GrantTypes); err != nil {
		return nil, fmt.Errorf("client lists: %w", err)
	}
	if err := json.Unmarshal([]byte(claims), &c.Claims); err != nil {
		return nil, fmt.Errorf("client claims: %w", err)
	}
	if len(c.Claims) == 0 {
		c.Claims = nil
	}
	c.SecretHash = secret.String
	c.IDTokenLifetime = time.Duration(lifetime) * time.Second
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &c, nil
}

func clientArgs(c *auth.Client) []any {
	claims := []byte("{}")
	if len(c.Claims) > 0 {
		claims, _ = json.Marshal(c.Claims)
	}
	return []any{c.ID, c.PropertyID, nullString(c.SecretHash), c.FirstParty, listJSON(c.RedirectURIs), listJSON(c.PostLogoutRedirectURIs),
		c.BackchannelLogoutURI, listJSON(c.GrantTypes), string(claims), int64(c.IDTokenLifetime / time.Second), micros(c.CreatedAt), micros(c.UpdatedAt)}
}

func (q *Queries) CreateClient(ctx context.Context, c *auth.Client) error {
	_, err := q.x.ExecContext(ctx, `INSERT INTO oauth_clients (`+clientCols+`) VALUES (`+placeholders(12)+`)`, clientArgs(c)...)
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "A client with id %q exists already.", c.ID)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create client: %w", err)
	}
	return nil
}

func (q *Queries) UpdateClient(ctx context.Context, c *auth.Client) error {
	args := clientArgs(c)
	res, err := q.x.ExecContext(ctx, `UPDATE oauth_clients SET property_id = ?, secret_hash = ?, first_party = ?, redirect_uris = ?, post_logout_redirect_uris = ?,
		backchannel_logout_uri = ?, grant_types = ?, claims = ?, id_token_lifetime_s = ?, created_at = ?, updated_at = ? WHERE id = ?`, append(args[1:], c.ID)...)
	if err != nil {
		return fmt.Errorf("sqlite: update client: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("client")
	}
	return nil
}

func (q *Queries) ClientByID(ctx context.Context, id string) (*auth.Client, error) {
	c, err := scanClient(q.queryRowHot(ctx, `SELECT `+clientCols+` FROM oauth_clients WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, notFound("client")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: client: %w", err)
	}
	return c, nil
}

func (q *Queries) ClientsOfProperty(ctx context.Context, propertyID string) ([]*auth.Client, error) {
	rows, err := q.x.QueryContext(ctx, `SELECT `+clientCols+` FROM oauth_clients WHERE property_id = ? ORDER BY created_at, id`, propertyID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: clients: %w", err)
	}
	defer rows.Close()
	out := []*auth.Client{}
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: clients: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// --- auth requests ---

const authRequestCols = `id, client_id, redirect_uri, scopes, state, nonce, response_type, response_mode, code_challenge, code_challenge_method,
	prompt, max_age, ui_locales, login_hint, hint_subject, anonymous_id, session_id, subject, auth_time, amr, done,
	code_hash, code_expires_at, code_used_at, created_at, expires_at`

func scanAuthRequest(sc scanner) (*auth.AuthRequest, error) {
	var r auth.AuthRequest
	var scopes, prompt, amr string
	var maxAge sql.NullInt64
	var codeHash sql.NullString
	var authTime, codeExpires, created, expires int64
	var codeUsed sql.NullInt64
	if err := sc.Scan(&r.ID, &r.ClientID, &r.RedirectURI, &scopes, &r.State, &r.Nonce, &r.ResponseType, &r.ResponseMode, &r.CodeChallenge, &r.CodeChallengeMethod,
		&prompt, &maxAge, &r.UILocales, &r.LoginHint, &r.HintSubject, &r.AnonymousID, &r.SessionID, &r.Subject, &authTime, &amr, &r.Done,
		&codeHash, &codeExpires, &codeUsed, &created, &expires); err != nil {
		return nil, err
	}
	if err := lists(scopes, &r.Scopes, prompt, &r.Prompt, amr, &r.AMR); err != nil {
		return nil, fmt.Errorf("auth request lists: %w", err)
	}
	if maxAge.Valid {
		r.MaxAge = &maxAge.Int64
	}
	r.CodeHash = codeHash.String
	r.AuthTime, r.CodeExpiresAt, r.CodeUsedAt = fromMicros(authTime), fromMicros(codeExpires), timePtr(codeUsed)
	r.CreatedAt, r.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &r, nil
}

func (q *Queries) CreateAuthRequest(ctx context.Context, r *auth.AuthRequest) error {
	var maxAge any
	if r.MaxAge != nil {
		maxAge = *r.MaxAge
	}
	_, err := q.execHot(ctx, `INSERT INTO auth_requests (`+authRequestCols+`) VALUES (`+placeholders(26)+`)`,
		r.ID, r.ClientID, r.RedirectURI, listJSON(r.Scopes), r.State, r.Nonce, r.ResponseType, r.ResponseMode, r.CodeChallenge, r.CodeChallengeMethod,
		listJSON(r.Prompt), maxAge, r.UILocales, r.LoginHint, r.HintSubject, r.AnonymousID, r.SessionID, r.Subject, micros(r.AuthTime), listJSON(r.AMR), r.Done,
		nullString(r.CodeHash), micros(r.CodeExpiresAt), nullMicros(r.CodeUsedAt), micros(r.CreatedAt), micros(r.ExpiresAt))
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "An auth request with id %q exists already.", r.ID)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create auth request: %w", err)
	}
	return nil
}

func (q *Queries) authRequestWhere(ctx context.Context, where string, arg any) (*auth.AuthRequest, error) {
	r, err := scanAuthRequest(q.queryRowHot(ctx, `SELECT `+authRequestCols+` FROM auth_requests WHERE `+where, arg))
	if err == sql.ErrNoRows {
		return nil, notFound("auth request")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: auth request: %w", err)
	}
	return r, nil
}

func (q *Queries) AuthRequestByID(ctx context.Context, id string) (*auth.AuthRequest, error) {
	return q.authRequestWhere(ctx, `id = ?`, id)
}

func (q *Queries) AuthRequestByCodeHash(ctx context.Context, hash string) (*auth.AuthRequest, error) {
	return q.authRequestWhere(ctx, `code_hash = ?`, hash)
}

// changed runs a compare-and-set statement and reports whether it matched.
func (q *Queries) changed(ctx context.Context, what, query string, args ...any) (bool, error) {
	res, err := q.execHot(ctx, query, args...)
	if err != nil {
		return false, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return n > 0, nil
}

func (q *Queries) FinishAuthRequest(ctx context.Context, id string, d auth.AuthRequestDone) (bool, error) {
	return q.changed(ctx, "finish auth request", `UPDATE auth_requests SET subject = ?, session_id = ?, auth_time = ?, amr = ?, done = 1 WHERE id = ? AND done = 0`,
		d.Subject, d.SessionID, micros(d.AuthTime), listJSON(d.AMR), id)
}

func (q *Queries) SetAuthCode(ctx context.Context, id, codeHash string, expires time.Time) (bool, error) {
	ok, err := q.changed(ctx, "set auth code", `UPDATE auth_requests SET code_hash = ?, code_expires_at = ? WHERE id = ? AND done = 1 AND code_hash IS NULL`,
		codeHash, micros(expires), id)
	if isUnique(err) {
		return false, onramp.Errorf(onramp.ECONFLICT, "The code is in use.")
	}
	return ok, err
}

func (q *Queries) UseAuthCode(ctx context.Context, codeHash string, at time.Time) (bool, error) {
	return q.changed(ctx, "use auth code", `UPDATE auth_requests SET code_used_at = ? WHERE code_hash = ? AND code_used_at IS NULL`, micros(at), codeHash)
}

// --- access tokens ---

const accessTokenCols = `id, client_id, subject, session_id, refresh_family_id, auth_request_id, scopes, audience, created_at, expires_at, revoked_at`

func scanAccessToken(sc scanner) (*auth.AccessToken, error) {
	var t auth.AccessToken
	var scopes, audience string
	var created, expires int64
	var revoked sql.NullInt64
	if err := sc.Scan(&t.ID, &t.ClientID, &t.Subject, &t.SessionID, &t.RefreshFamilyID, &t.AuthRequestID, &scopes, &audience, &created, &expires, &revoked); err != nil {
		return nil, err
	}
	if err := lists(scopes, &t.Scopes, audience, &t.Audience); err != nil {
		return nil, fmt.Errorf("access token lists: %w", err)
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = fromMicros(created), fromMicros(expires), timePtr(revoked)
	return &t, nil
}

func (q *Queries) CreateAccessToken(ctx context.Context, t *auth.AccessToken) error {
	_, err := q.execHot(ctx, `INSERT INTO access_tokens (`+accessTokenCols+`) VALUES (`+placeholders(11)+`)`,
		t.ID, t.ClientID, t.Subject, t.SessionID, t.RefreshFamilyID, t.AuthRequestID, listJSON(t.Scopes), listJSON(t.Audience),
		micros(t.CreatedAt), micros(t.ExpiresAt), nullMicros(t.RevokedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create access token: %w", err)
	}
	return nil
}

func (q *Queries) AccessTokenByID(ctx context.Context, id string) (*auth.AccessToken, error) {
	t, err := scanAccessToken(q.queryRowHot(ctx, `SELECT `+accessTokenCols+` FROM access_tokens WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, notFound("access token")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: access token: %w", err)
	}
	return t, nil
}

func (q *Queries) RevokeAccessToken(ctx context.Context, id string, at time.Time) (bool, error) {
	return q.changed(ctx, "revoke access token", `UPDATE access_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, micros(at), id)
}

// revokeAccessWhere revokes the live access tokens matching where and
// returns their ids.
func (q *Queries) revokeAccessWhere(ctx context.Context, at time.Time, where string, args ...any) ([]string, error) {
	rows, err := q.x.QueryContext(ctx, `UPDATE access_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND (`+where+`) RETURNING id`, append([]any{micros(at)}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func (q *Queries) RevokeAuthRequestTokens(ctx context.Context, authRequestID string, r auth.Revocation) ([]string, error) {
	if _, err := q.x.ExecContext(ctx, `UPDATE refresh_families SET revoked_at = ?, revoked_reason = ? WHERE auth_request_id = ? AND revoked_at IS NULL`,
		micros(r.At), r.Reason, authRequestID); err != nil {
		return nil, fmt.Errorf("sqlite: revoke auth request tokens: %w", err)
	}
	ids, err := q.revokeAccessWhere(ctx, r.At, `auth_request_id = ?`, authRequestID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: revoke auth request tokens: %w", err)
	}
	return ids, nil
}

func (q *Queries) RevokeSessionTokens(ctx context.Context, sessionID string, r auth.Revocation) ([]string, error) {
	if sessionID == "" {
		return []string{}, nil
	}
	if _, err := q.x.ExecContext(ctx, `UPDATE refresh_families SET revoked_at = ?, revoked_reason = ? WHERE session_id = ? AND revoked_at IS NULL`,
		micros(r.At), r.Reason, sessionID); err != nil {
		return nil, fmt.Errorf("sqlite: revoke session tokens: %w", err)
	}
	ids, err := q.revokeAccessWhere(ctx, r.At, `session_id = ?`, sessionID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: revoke session tokens: %w", err)
	}
	return ids, nil
}

// --- refresh families and tokens ---

const familyCols = `id, client_id, subject, session_id, auth_request_id, scopes, amr, auth_time, created_at, idle_expires_at, expires_at, revoked_at, revoked_reason`

func scanFamily(sc scanner) (*auth.RefreshFamily, error) {
	var f auth.RefreshFamily
	var scopes, amr string
	var authTime, created, idle, expires int64
	var revoked sql.NullInt64
	if err := sc.Scan(&f.ID, &f.ClientID, &f.Subject, &f.SessionID, &f.AuthRequestID, &scopes, &amr, &authTime, &created, &idle, &expires, &revoked, &f.RevokedReason); err != nil {
		return nil, err
	}
	if err := lists(scopes, &f.Scopes, amr, &f.AMR); err != nil {
		return nil, fmt.Errorf("refresh family lists: %w", err)
	}
	f.AuthTime, f.CreatedAt, f.IdleExpiresAt, f.ExpiresAt = fromMicros(authTime), fromMicros(created), fromMicros(idle), fromMicros(expires)
	f.RevokedAt = timePtr(revoked)
	return &f, nil
}

func (q *Queries) CreateRefreshFamily(ctx context.Context, f *auth.RefreshFamily) error {
	_, err := q.execHot(ctx, `INSERT INTO refresh_families (`+familyCols+`) VALUES (`+placeholders(13)+`)`,
		f.ID, f.ClientID, f.Subject, f.SessionID, f.AuthRequestID, listJSON(f.Scopes), listJSON(f.AMR), micros(f.AuthTime),
		micros(f.CreatedAt), micros(f.IdleExpiresAt), micros(f.ExpiresAt), nullMicros(f.RevokedAt), f.RevokedReason)
	if err != nil {
		return fmt.Errorf("sqlite: create refresh family: %w", err)
	}
	return nil
}

func (q *Queries) RefreshFamilyByID(ctx context.Context, id string) (*auth.RefreshFamily, error) {
	f, err := scanFamily(q.queryRowHot(ctx, `SELECT `+familyCols+` FROM refresh_families WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, notFound("refresh family")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: refresh family: %w", err)
	}
	return f, nil
}

func (q *Queries) TouchRefreshFamily(ctx context.Context, id string, idleExpires time.Time) error {
	res, err := q.execHot(ctx, `UPDATE refresh_families SET idle_expires_at = ? WHERE id = ?`, micros(idleExpires), id)
	if err != nil {
		return fmt.Errorf("sqlite: touch refresh family: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("refresh family")
	}
	return nil
}

func (q *Queries) RevokeRefreshFamily(ctx context.Context, id string, r auth.Revocation) ([]string, error) {
	if _, err := q.x.ExecContext(ctx, `UPDATE refresh_families SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL`,
		micros(r.At), r.Reason, id); err != nil {
		return nil, fmt.Errorf("sqlite: revoke refresh family: %w", err)
	}
	ids, err := q.revokeAccessWhere(ctx, r.At, `refresh_family_id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: revoke refresh family: %w", err)
	}
	return ids, nil
}

func (q *Queries) CreateRefreshToken(ctx context.Context, t *auth.RefreshToken) error {
	_, err := q.execHot(ctx, `INSERT INTO refresh_tokens (token_hash, family_id, generation, created_at, used_at) VALUES (?, ?, ?, ?, ?)`,
		t.TokenHash, t.FamilyID, t.Generation, micros(t.CreatedAt), nullMicros(t.UsedAt))
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "The refresh token was rotated already.")
	}
	if err != nil {
		return fmt.Errorf("sqlite: create refresh token: %w", err)
	}
	return nil
}

func (q *Queries) RefreshTokenByHash(ctx context.Context, hash string) (*auth.RefreshToken, error) {
	var t auth.RefreshToken
	var created int64
	var used sql.NullInt64
	err := q.queryRowHot(ctx, `SELECT token_hash, family_id, generation, created_at, used_at FROM refresh_tokens WHERE token_hash = ?`, hash).
		Scan(&t.TokenHash, &t.FamilyID, &t.Generation, &created, &used)
	if err == sql.ErrNoRows {
		return nil, notFound("refresh token")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: refresh token: %w", err)
	}
	t.CreatedAt, t.UsedAt = fromMicros(created), timePtr(used)
	return &t, nil
}

func (q *Queries) UseRefreshToken(ctx context.Context, hash string, at time.Time) (bool, error) {
	return q.changed(ctx, "use refresh token", `UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL`, micros(at), hash)
}

// --- signing keys ---

const signingKeyCols = `kid, alg, private_key, public_jwk, created_at, active_from, retire_at, expires_at`

func (q *Queries) InsertSigningKey(ctx context.Context, k *auth.SigningKey) (bool, error) {
	return q.changed(ctx, "insert signing key", `INSERT INTO signing_keys (`+signingKeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (active_from) DO NOTHING`,
		k.KID, k.Alg, k.PrivateKey, string(k.PublicJWK), micros(k.CreatedAt), micros(k.ActiveFrom), micros(k.RetireAt), micros(k.ExpiresAt))
}

func (q *Queries) UpdateSigningKey(ctx context.Context, k *auth.SigningKey) error {
	res, err := q.x.ExecContext(ctx, `UPDATE signing_keys SET active_from = ?, retire_at = ?, expires_at = ? WHERE kid = ?`,
		micros(k.ActiveFrom), micros(k.RetireAt), micros(k.ExpiresAt), k.KID)
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "Another key becomes active at that time.")
	}
	if err != nil {
		return fmt.Errorf("sqlite: update signing key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("signing key")
	}
	return nil
}

func (q *Queries) SigningKeys(ctx context.Context, now time.Time) ([]*auth.SigningKey, error) {
	rows, err := q.x.QueryContext(ctx, `SELECT `+signingKeyCols+` FROM signing_keys WHERE expires_at > ? ORDER BY active_from, kid`, micros(now))
	if err != nil {
		return nil, fmt.Errorf("sqlite: signing keys: %w", err)
	}
	defer rows.Close()
	out := []*auth.SigningKey{}
	for rows.Next() {
		var k auth.SigningKey
		var jwk string
		var created, active, retire, expires int64
		if err := rows.Scan(&k.KID, &k.Alg, &k.PrivateKey, &jwk, &created, &active, &retire, &expires); err != nil {
			return nil, fmt.Errorf("sqlite: signing keys: %w", err)
		}
		k.PublicJWK = json.RawMessage(jwk)
		k.CreatedAt, k.ActiveFrom, k.RetireAt, k.ExpiresAt = fromMicros(created), fromMicros(active), fromMicros(retire), fromMicros(expires)
		out = append(out, &k)
	}
	return out, rows.Err()
}

// --- consents ---

func (q *Queries) PutConsent(ctx context.Context, c *auth.Consent) error {
	_, err := q.x.ExecContext(ctx, `INSERT INTO consents (subject, client_id, scopes, granted_at, revoked_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (subject, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at, revoked_at = excluded.revoked_at`,
		c.Subject, c.ClientID, listJSON(c.Scopes), micros(c.GrantedAt), nullMicros(c.RevokedAt))
	if err != nil {
		return fmt.Errorf("sqlite: put consent: %w", err)
	}
	return nil
}

func (q *Queries) ConsentOf(ctx context.Context, subject, clientID string) (*auth.Consent, error) {
	var c auth.Consent
	var scopes string
	var granted int64
	var revoked sql.NullInt64
	err := q.x.QueryRowContext(ctx, `SELECT subject, client_id, scopes, granted_at, revoked_at FROM consents WHERE subject = ? AND client_id = ?`, subject, clientID).
		Scan(&c.Subject, &c.ClientID, &scopes, &granted, &revoked)
	if err == sql.ErrNoRows {
		return nil, notFound("consent")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: consent: %w", err)
	}
	if c.Scopes, err = listOf(scopes); err != nil {
		return nil, fmt.Errorf("sqlite: consent: %w", err)
	}
	c.GrantedAt, c.RevokedAt = fromMicros(granted), timePtr(revoked)
	return &c, nil
}

// --- upkeep ---

func (q *Queries) PruneOAuth(ctx context.Context, cutoff time.Time) error {
	c := micros(cutoff)
	for _, stmt := range []string{
		`DELETE FROM auth_requests WHERE expires_at < ?`,
		`DELETE FROM access_tokens WHERE expires_at < ?`,
		`DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM refresh_families WHERE expires_at < ?)`,
		`DELETE FROM refresh_families WHERE expires_at < ?`,
		`DELETE FROM signing_keys WHERE expires_at < ?`,
	} {
		if _, err := q.x.ExecContext(ctx, stmt, c); err != nil {
			return fmt.Errorf("sqlite: prune oauth: %w", err)
		}
	}
	return nil
}

func (q *Queries) EraseOAuth(ctx context.Context, subjects []string) error {
	return chunk(subjects, 500, func(ss []string) error {
		args := make([]any, len(ss))
		for i, s := range ss {
			args[i] = s
		}
		in := `(` + placeholders(len(ss)) + `)`
		for _, stmt := range []string{
			`DELETE FROM auth_requests WHERE subject IN ` + in,
			`DELETE FROM access_tokens WHERE subject IN ` + in,
			`DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM refresh_families WHERE subject IN ` + in + `)`,
			`DELETE FROM refresh_families WHERE subject IN ` + in,
			`DELETE FROM consents WHERE subject IN ` + in,
		} {
			if _, err := q.x.ExecContext(ctx, stmt, args...); err != nil {
				return fmt.Errorf("sqlite: erase oauth: %w", err)
			}
		}
		return nil
	})
}
