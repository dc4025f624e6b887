package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/onramp-dev/onramp/identity"
)

// SearchPersons walks an index in the sort's order (persons_last_seen or
// persons_created) from the cursor and keeps the rows that pass the
// filters; a search text first narrows the candidates to the owners of
// matching identifiers and names, found through their own indexes.
func (q *Queries) SearchPersons(ctx context.Context, pq identity.PersonQuery) ([]*identity.FoundPerson, error) {
	where := []string{"p.root_id = p.id"}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	// drive is set when a filter names few enough people that fetching
	// and sorting them beats walking the sort's index (see below).
	drive := false
	if s := strings.TrimSpace(pq.Search); s != "" {
		from, to := identity.NameSearchRange(s)
		// Identifiers belong to the person that first carried them, which
		// may since have been merged: the hit is that person's root.
		owners := `SELECT o.root_id FROM persons o WHERE o.id IN (
				SELECT i.person_id FROM identifiers i WHERE i.value = ` + arg(s) + `
				UNION ALL SELECT i.person_id FROM identifiers i WHERE i.type = 'email' AND i.value >= ` + arg(from) + ` AND i.value < ` + arg(to) + `
				UNION ALL SELECT ` + arg(s) + `)`
		// As on SQLite: a name prefix shared by many is tested down the
		// sort's index, a rare one drives the query.
		var n int
		if err := q.x.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM persons WHERE search_name >= $1 AND search_name < $2 LIMIT $3) AS m`, from, to, identity.TraitDriveLimit).Scan(&n); err != nil {
			return nil, fmt.Errorf("postgres: search persons: %w", err)
		}
		if n < identity.TraitDriveLimit {
			drive = true
			// An array, not IN: believing in a few hundred roots, the
			// planner would hash the candidates and scan every root to
			// probe them (40 ms); an array of ids can only be fetched by
			// the primary key.
			where = append(where, `p.id = ANY (ARRAY(`+owners+` UNION ALL SELECT n.id FROM persons n WHERE n.search_name >= `+arg(from)+` AND n.search_name < `+arg(to)+`))`)
		} else {
			where = append(where, `(p.search_name >= `+arg(from)+` AND p.search_name < `+arg(to)+` OR p.id IN (`+owners+`))`)
		}
	}
	if pq.TraitKey != "" {
		// As on SQLite: few matches drive the query, many are probed down
		// the sort's index (the planner's estimates know keys and values
		// apart, not which value goes with which key).
		switch n, err := q.traitMatches(ctx, pq.TraitKey, pq.TraitValue); {
		case err != nil:
			return nil, err
		case n >= 0 && n < identity.TraitDriveLimit:
			drive = true
			where = append(where, `p.id IN (SELECT t.person_id FROM person_traits t WHERE t.key = `+arg(pq.TraitKey)+` AND t.value = `+arg(pq.TraitValue)+`)`)
		default:
			// Common (or unindexed) values: read each person's traits down
			// the sort's index. An EXISTS on person_traits here would be
			// planned as a hash of every match.
			where = append(where, `p.traits ->> `+arg(pq.TraitKey)+` = `+arg(pq.TraitValue))
		}
	}
	if !pq.SeenAfter.IsZero() {
		where = append(where, `p.last_seen_at >= `+arg(ts(pq.SeenAfter)))
	}
	if !pq.SeenBefore.IsZero() {
		where = append(where, `p.last_seen_at < `+arg(ts(pq.SeenBefore)))
	}
	if pq.PropertyID != "" {
		// One EXISTS through persons_root, not the root's own row first as
		// on SQLite: the planner turns an OR of EXISTS into a hash of every
		// person_properties row of the property (30 ms a query).
		where = append(where, `EXISTS (SELECT 1 FROM persons m JOIN person_properties pp ON pp.person_id = m.id AND pp.property_id = `+arg(pq.PropertyID)+` WHERE m.root_id = p.id)`)
	}
	// has_account is kept on the root's row (migration 0010); with it
	// the planner walks persons_account_last_seen or _created.
	switch pq.HasAccount {
	case identity.WithAccount:
		where = append(where, `p.has_account`)
	case identity.WithoutAccount:
		where = append(where, `NOT p.has_account`)
	}
	col, dir, cmp := "p.last_seen_at", "DESC", "<"
	if pq.Sort.ByFirstSeen() {
		col = "p.created_at"
	}
	if pq.Sort.Ascending() {
		dir, cmp = "ASC", ">"
	}
	if pq.After != nil {
		where = append(where, `(`+col+`, p.id) `+cmp+` (`+arg(ts(pq.After.At))+`, `+arg(pq.After.ID)+`)`)
	}
	orderBy := col
	if drive {
		// The planner misjudges root_id = id (it guesses a few hundred
		// roots among any number of persons) and would walk the sort's
		// index testing each person against the few candidates. Ordering
		// by an expression no index has makes it fetch the candidates and
		// sort them, which is what the count above chose.
		orderBy = col + ` + interval '0 seconds'`
	}
	lim := arg(limit(pq.Limit))
	if !drive {
		// The same misjudgement, the other way: with a filter it has no
		// statistics for (a trait's value), it expects a handful of rows
		// among its few hundred roots, that the walk would never fill the
		// page, and fetches every root to sort them (40 ms, where the walk
		// takes 1). A limit it cannot read at planning (a sub-select)
		// keeps it on the sort's index. Generic plans did so already;
		// this is for the custom plans of each connection's first runs.
		lim = `(SELECT ` + lim + `::bigint)`
	}
	rows, err := q.x.Query(ctx, `SELECT p.id, p.root_id, COALESCE(p.merged_into, ''), COALESCE(p.user_id, ''), p.traits, p.created_at, p.updated_at, p.last_seen_at, p.has_account
		FROM persons p WHERE `+strings.Join(where, " AND ")+` ORDER BY `+orderBy+` `+dir+`, p.id `+dir+` LIMIT `+lim, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: search persons: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*identity.FoundPerson, error) {
		var p identity.Person
		var f identity.FoundPerson
		var traits []byte
		var c, u, l pgtype.Timestamptz
		if err := row.Scan(&p.ID, &p.RootID, &p.MergedInto, &p.UserID, &traits, &c, &u, &l, &f.HasAccount); err != nil {
			return nil, err
		}
		p.Traits = traits
		p.CreatedAt, p.UpdatedAt, p.LastSeenAt = fromTS(c), fromTS(u), fromTS(l)
		f.Person = &p
		return &f, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: search persons: %w", err)
	}
	return out, nil
}

// traitMatches counts the persons with the trait, up to
// identity.TraitDriveLimit; -1 when the index does not hold it.
func (q *Queries) traitMatches(ctx context.Context, key, value string) (int, error) {
	if !identity.IndexedTrait(key, value) {
		return -1, nil
	}
	var n int
	if err := q.x.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM person_traits WHERE key = $1 AND value = $2 LIMIT $3) AS m`, key, value, identity.TraitDriveLimit).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: search persons: %w", err)
	}
	return n, nil
}

func (q *Queries) PersonsPerDay(ctx context.Context, since time.Time) ([]identity.DayCount, error) {
	return q.perDay(ctx, `SELECT date_trunc('day', created_at, 'UTC'), count(*) FROM persons WHERE created_at >= $1 AND root_id = id GROUP BY 1 ORDER BY 1`, since)
}

func (q *Queries) AccountsPerDay(ctx context.Context, since time.Time) ([]identity.DayCount, error) {
	return q.perDay(ctx, `SELECT date_trunc('day', created_at, 'UTC'), count(*) FROM accounts WHERE created_at >= $1 GROUP BY 1 ORDER BY 1`, since)
}

func (q *Queries) perDay(ctx context.Context, query string, since time.Time) ([]identity.DayCount, error) {
	rows, err := q.x.Query(ctx, query, ts(since))
	if err != nil {
		return nil, fmt.Errorf("postgres: per day: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (identity.DayCount, error) {
		var d identity.DayCount
		var day pgtype.Timestamptz
		err := row.Scan(&day, &d.Count)
		d.Day = fromTS(day)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: per day: %w", err)
	}
	if out == nil {
		out = []identity.DayCount{}
	}
	return out, nil
}
