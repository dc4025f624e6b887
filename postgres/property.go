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
	"github.com/onramp-dev/onramp/property"
)

const propertyCols = `id, name, origins, write_key, secret_key_hash, created_at, updated_at, theme`

func scanProperty(row pgx.CollectableRow) (*property.Property, error) {
	var p property.Property
	var c, u pgtype.Timestamptz
	var theme []byte
	if err := row.Scan(&p.ID, &p.Name, &p.Origins, &p.WriteKey, &p.SecretKeyHash, &c, &u, &theme); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(theme, &p.Theme); err != nil {
		return nil, fmt.Errorf("theme: %w", err)
	}
	p.Origins = nonNil(p.Origins)
	p.CreatedAt, p.UpdatedAt = fromTS(c), fromTS(u)
	return &p, nil
}

func (q *Queries) propertyWhere(ctx context.Context, where string, arg any) (*property.Property, error) {
	rows, err := q.x.Query(ctx, `SELECT `+propertyCols+` FROM properties WHERE `+where, arg)
	if err != nil {
		return nil, fmt.Errorf("postgres: property: %w", err)
	}
	p, err := pgx.CollectExactlyOneRow(rows, scanProperty)
	if err == pgx.ErrNoRows {
		return nil, notFound("property")
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: property: %w", err)
	}
	return p, nil
}

func (q *Queries) CreateProperty(ctx context.Context, p *property.Property) error {
	theme, _ := json.Marshal(p.Theme)
	_, err := q.x.Exec(ctx, `INSERT INTO properties (`+propertyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		p.ID, p.Name, nonNil(p.Origins), p.WriteKey, p.SecretKeyHash, ts(p.CreatedAt), ts(p.UpdatedAt), string(theme))
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "A property named %q exists already.", p.Name)
	}
	if err != nil {
		return fmt.Errorf("postgres: create property: %w", err)
	}
	return nil
}

func (q *Queries) UpdateProperty(ctx context.Context, p *property.Property) error {
	theme, _ := json.Marshal(p.Theme)
	tag, err := q.x.Exec(ctx, `UPDATE properties SET name = $1, origins = $2, write_key = $3, secret_key_hash = $4, updated_at = $5, theme = $6 WHERE id = $7`,
		p.Name, nonNil(p.Origins), p.WriteKey, p.SecretKeyHash, ts(p.UpdatedAt), string(theme), p.ID)
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "A property named %q exists already.", p.Name)
	}
	if err != nil {
		return fmt.Errorf("postgres: update property: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("property")
	}
	return nil
}

func (q *Queries) PropertyByID(ctx context.Context, id string) (*property.Property, error) {
	return q.propertyWhere(ctx, `id = $1`, id)
}

func (q *Queries) PropertyByName(ctx context.Context, name string) (*property.Property, error) {
	return q.propertyWhere(ctx, `name = $1`, name)
}

func (q *Queries) PropertyByWriteKey(ctx context.Context, key string) (*property.Property, error) {
	return q.propertyWhere(ctx, `write_key = $1`, key)
}

func (q *Queries) PropertyBySecretHash(ctx context.Context, hash string) (*property.Property, error) {
	return q.propertyWhere(ctx, `secret_key_hash = $1`, hash)
}

func (q *Queries) ListProperties(ctx context.Context) ([]*property.Property, error) {
	rows, err := q.x.Query(ctx, `SELECT `+propertyCols+` FROM properties ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("postgres: properties: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanProperty)
	if err != nil {
		return nil, fmt.Errorf("postgres: properties: %w", err)
	}
	return nonNilSlice(out), nil
}

const tokenCols = `id, name, role, hash, created_at, revoked_at, last_used_at`

func scanToken(row pgx.CollectableRow) (*auth.Token, error) {
	var t auth.Token
	var c, revoked, used pgtype.Timestamptz
	if err := row.Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &c, &revoked, &used); err != nil {
		return nil, err
	}
	t.CreatedAt, t.RevokedAt, t.LastUsedAt = fromTS(c), ptrTS(revoked), ptrTS(used)
	return &t, nil
}

func (q *Queries) CreateToken(ctx context.Context, t *auth.Token) error {
	_, err := q.x.Exec(ctx, `INSERT INTO api_tokens (`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		t.ID, t.Name, t.Role, t.Hash, ts(t.CreatedAt), tsPtr(t.RevokedAt), tsPtr(t.LastUsedAt))
	if err != nil {
		return fmt.Errorf("postgres: create token: %w", err)
	}
	return nil
}

func (q *Queries) TokenByHash(ctx context.Context, hash string) (*auth.Token, error) {
	rows, err := q.x.Query(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = $1`, hash)
	if err != nil {
		return nil, fmt.Errorf("postgres: token: %w", err)
	}
	t, err := pgx.CollectExactlyOneRow(rows, scanToken)
	if err == pgx.ErrNoRows {
		return nil, notFound("token")
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: token: %w", err)
	}
	return t, nil
}

func (q *Queries) ListTokens(ctx context.Context) ([]*auth.Token, error) {
	rows, err := q.x.Query(ctx, `SELECT `+tokenCols+` FROM api_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanToken)
	if err != nil {
		return nil, fmt.Errorf("postgres: tokens: %w", err)
	}
	return nonNilSlice(out), nil
}

func (q *Queries) RevokeToken(ctx context.Context, id string, at time.Time) error {
	tag, err := q.x.Exec(ctx, `UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, ts(at), id)
	if err != nil {
		return fmt.Errorf("postgres: revoke token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("live token")
	}
	return nil
}

func (q *Queries) CountTokens(ctx context.Context) (int64, error) {
	var n int64
	if err := q.x.QueryRow(ctx, `SELECT count(*) FROM api_tokens`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count tokens: %w", err)
	}
	return n, nil
}

// nonNilSlice keeps lists that SQLite returns as empty (not nil) the same
// here, so JSON answers say [] rather than null.
func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
