package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// This file implements auth.UpstreamStore (the table of migration 0005).

const upstreamCols = `provider, upstream_sub, person_id, email, created_at, last_used_at`

func scanUpstreamLink(sc rowScanner) (*auth.UpstreamLink, error) {
	var l auth.UpstreamLink
	var c int64
	var used sql.NullInt64
	if err := sc.Scan(&l.Provider, &l.Subject, &l.PersonID, &l.Email, &c, &used); err != nil {
		return nil, err
	}
	l.CreatedAt, l.LastUsedAt = fromMicros(c), timePtr(used)
	return &l, nil
}

// CreateUpstreamLink answers a taken key without failing the statement,
// as Postgres must (there a failed statement aborts the transaction).
func (q *Queries) CreateUpstreamLink(ctx context.Context, l *auth.UpstreamLink) error {
	res, err := q.x.ExecContext(ctx, `INSERT INTO upstream_links (`+upstreamCols+`) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		l.Provider, l.Subject, l.PersonID, l.Email, micros(l.CreatedAt), nullMicros(l.LastUsedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create upstream link: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return onramp.Errorf(onramp.ECONFLICT, "This %s user is linked to an account already.", l.Provider)
	}
	return nil
}

func (q *Queries) UpstreamLink(ctx context.Context, provider, subject string) (*auth.UpstreamLink, error) {
	return one(q.x.QueryRowContext(ctx, `SELECT `+upstreamCols+` FROM upstream_links WHERE provider = ? AND upstream_sub = ?`, provider, subject),
		scanUpstreamLink, "upstream link")
}

// UpstreamLinksOf lists oldest first (then by provider and subject, so
// that links made in the same microsecond keep one order).
func (q *Queries) UpstreamLinksOf(ctx context.Context, personIDs []string) ([]*auth.UpstreamLink, error) {
	rows, err := q.x.QueryContext(ctx, `SELECT `+upstreamCols+` FROM upstream_links WHERE person_id IN (SELECT value FROM json_each(?))
		ORDER BY created_at, provider, upstream_sub`, idsJSON(personIDs))
	return all(rows, err, scanUpstreamLink, "upstream links")
}

func (q *Queries) TouchUpstreamLink(ctx context.Context, provider, subject string, at time.Time) error {
	res, err := q.x.ExecContext(ctx, `UPDATE upstream_links SET last_used_at = ? WHERE provider = ? AND upstream_sub = ?`, micros(at), provider, subject)
	return changedOne(res, err, "upstream link")
}

func (q *Queries) DeleteUpstreamLink(ctx context.Context, provider, subject string) error {
	res, err := q.x.ExecContext(ctx, `DELETE FROM upstream_links WHERE provider = ? AND upstream_sub = ?`, provider, subject)
	return changedOne(res, err, "upstream link")
}
