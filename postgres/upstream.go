package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
)

// This file implements auth.UpstreamStore (the table of migration 0005).

const upstreamCols = `provider, upstream_sub, person_id, email, created_at, last_used_at`

func scanUpstreamLink(row pgx.CollectableRow) (*auth.UpstreamLink, error) {
	var l auth.UpstreamLink
	var c, used pgtype.Timestamptz
	if err := row.Scan(&l.Provider, &l.Subject, &l.PersonID, &l.Email, &c, &used); err != nil {
		return nil, err
	}
	l.CreatedAt, l.LastUsedAt = fromTS(c), ptrTS(used)
	return &l, nil
}

// CreateUpstreamLink does not let a taken key fail the statement: on
// Postgres that would abort the caller's whole transaction, and the rules
// may want to go on (and answer) after a conflict.
func (q *Queries) CreateUpstreamLink(ctx context.Context, l *auth.UpstreamLink) error {
	tag, err := q.x.Exec(ctx, `INSERT INTO upstream_links (`+upstreamCols+`) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
		l.Provider, l.Subject, l.PersonID, l.Email, ts(l.CreatedAt), tsPtr(l.LastUsedAt))
	if err != nil {
		return fmt.Errorf("postgres: create upstream link: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return onramp.Errorf(onramp.ECONFLICT, "This %s user is linked to an account already.", l.Provider)
	}
	return nil
}

func (q *Queries) UpstreamLink(ctx context.Context, provider, subject string) (*auth.UpstreamLink, error) {
	rows, err := q.x.Query(ctx, `SELECT `+upstreamCols+` FROM upstream_links WHERE provider = $1 AND upstream_sub = $2`, provider, subject)
	return one(rows, err, scanUpstreamLink, "upstream link")
}

// UpstreamLinksOf lists oldest first (then by provider and subject, so
// that links made in the same microsecond keep one order).
func (q *Queries) UpstreamLinksOf(ctx context.Context, personIDs []string) ([]*auth.UpstreamLink, error) {
	rows, err := q.x.Query(ctx, `SELECT `+upstreamCols+` FROM upstream_links WHERE person_id = ANY($1)
		ORDER BY created_at, provider, upstream_sub`, nonNil(personIDs))
	return all(rows, err, scanUpstreamLink, "upstream links")
}

func (q *Queries) TouchUpstreamLink(ctx context.Context, provider, subject string, at time.Time) error {
	tag, err := q.x.Exec(ctx, `UPDATE upstream_links SET last_used_at = $1 WHERE provider = $2 AND upstream_sub = $3`, ts(at), provider, subject)
	return changedOne(tag, err, "upstream link")
}

func (q *Queries) DeleteUpstreamLink(ctx context.Context, provider, subject string) error {
	tag, err := q.x.Exec(ctx, `DELETE FROM upstream_links WHERE provider = $1 AND upstream_sub = $2`, provider, subject)
	return changedOne(tag, err, "upstream link")
}
