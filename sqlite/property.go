package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/property"
)

const propertyCols = `id, name, origins, write_key, secret_key_hash, created_at, updated_at, theme`

func scanProperty(sc interface{ Scan(...any) error }) (*property.Property, error) {
	var p property.Property
	var origins, theme string
	var c, u int64
	if err := sc.Scan(&p.ID, &p.Name, &origins, &p.WriteKey, &p.SecretKeyHash, &c, &u, &theme); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(origins), &p.Origins); err != nil {
		return nil, fmt.Errorf("origins: %w", err)
	}
	if err := json.Unmarshal([]byte(theme), &p.Theme); err != nil {
		return nil, fmt.Errorf("theme: %w", err)
	}
	p.CreatedAt, p.UpdatedAt = fromMicros(c), fromMicros(u)
	return &p, nil
}

func (q *Queries) propertyWhere(ctx context.Context, where string, arg any) (*property.Property, error) {
	p, err := scanProperty(q.queryRowHot(ctx, `SELECT `+propertyCols+` FROM properties WHERE `+where, arg))
	if err == sql.ErrNoRows {
		return nil, notFound("property")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: property: %w", err)
	}
	return p, nil
}

func (q *Queries) CreateProperty(ctx context.Context, p *property.Property) error {
	origins, _ := json.Marshal(nonNil(p.Origins))
	theme, _ := json.Marshal(p.Theme)
	_, err := q.x.ExecContext(ctx, `INSERT INTO properties (`+propertyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.Name, string(origins), p.WriteKey, p.SecretKeyHash, micros(p.CreatedAt), micros(p.UpdatedAt), string(theme))
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "A property named %q exists already.", p.Name)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create property: %w", err)
	}
	return nil
}

func (q *Queries) UpdateProperty(ctx context.Context, p *property.Property) error {
	origins, _ := json.Marshal(nonNil(p.Origins))
	theme, _ := json.Marshal(p.Theme)
	res, err := q.x.ExecContext(ctx, `UPDATE properties SET name = ?, origins = ?, write_key = ?, secret_key_hash = ?, updated_at = ?, theme = ? WHERE id = ?`,
		p.Name, string(origins), p.WriteKey, p.SecretKeyHash, micros(p.UpdatedAt), string(theme), p.ID)
	if isUnique(err) {
		return onramp.Errorf(onramp.ECONFLICT, "A property named %q exists already.", p.Name)
	}
	if err != nil {
		return fmt.Errorf("sqlite: update property: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("property")
	}
	return nil
}

func (q *Queries) PropertyByID(ctx context.Context, id string) (*property.Property, error) {
	return q.propertyWhere(ctx, `id = ?`, id)
}

func (q *Queries) PropertyByName(ctx context.Context, name string) (*property.Property, error) {
	return q.propertyWhere(ctx, `name = ?`, name)
}

func (q *Queries) PropertyByWriteKey(ctx context.Context, key string) (*property.Property, error) {
	return q.propertyWhere(ctx, `write_key = ?`, key)
}

func (q *Queries) PropertyBySecretHash(ctx context.Context, hash string) (*property.Property, error) {
	return q.propertyWhere(ctx, `secret_key_hash = ?`, hash)
}

func (q *Queries) ListProperties(ctx context.Context) ([]*property.Property, error) {
	rows, err := q.x.QueryContext(ctx, `SELECT `+propertyCols+` FROM properties ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: properties: %w", err)
	}
	defer rows.Close()
	out := []*property.Property{}
	for rows.Next() {
		p, err := scanProperty(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: properties: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

const tokenCols = `id, name, role, hash, created_at, revoked_at, last_used_at`

func scanToken(sc interface{ Scan(...any) error }) (*auth.Token, error) {
	var t auth.Token
	var c int64
	var revoked, used sql.NullInt64
	if err := sc.Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &c, &revoked, &used); err != nil {
		return nil, err
	}
	t.CreatedAt, t.RevokedAt, t.LastUsedAt = fromMicros(c), timePtr(revoked), timePtr(used)
	return &t, nil
}

func (q *Queries) CreateToken(ctx context.Context, t *auth.Token) error {
	_, err := q.x.ExecContext(ctx, `INSERT INTO api_tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, t.Role, t.Hash, micros(t.CreatedAt), nullMicros(t.RevokedAt), nullMicros(t.LastUsedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create token: %w", err)
	}
	return nil
}

func (q *Queries) TokenByHash(ctx context.Context, hash string) (*auth.Token, error) {
	t, err := scanToken(q.queryRowHot(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = ?`, hash))
	if err == sql.ErrNoRows {
		return nil, notFound("token")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: token: %w", err)
	}
	return t, nil
}

func (q *Queries) ListTokens(ctx context.Context) ([]*auth.Token, error) {
	rows, err := q.x.QueryContext(ctx, `SELECT `+tokenCols+` FROM api_tokens ORDER BY created_at`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: tokens: %w", err)
	}
	defer rows.Close()
	out := []*auth.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (q *Queries) RevokeToken(ctx context.Context, id string, at time.Time) error {
	res, err := q.x.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, micros(at), id)
	if err != nil {
		return fmt.Errorf("sqlite: revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("live token")
	}
	return nil
}

func (q *Queries) CountTokens(ctx context.Context) (int64, error) {
	var n int64
	err := q.x.QueryRowContext(ctx, `SELECT count(*) FROM api_tokens`).Scan(&n)
	return n, err
}
