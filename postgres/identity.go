package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/onramp-dev/onramp/identity"
)

const personCols = `id, root_id, COALESCE(merged_into, ''), COALESCE(user_id, ''), traits, created_at, updated_at, last_seen_at`

func scanPerson(row pgx.CollectableRow) (*identity.Person, error) {
	var p identity.Person
	var traits []byte
	var c, u, l pgtype.Timestamptz
	if err := row.Scan(&p.ID, &p.RootID, &p.MergedInto, &p.UserID, &traits, &c, &u, &l); err != nil {
		return nil, err
	}
	p.Traits = json.RawMessage(traits)
	p.CreatedAt, p.UpdatedAt, p.LastSeenAt = fromTS(c), fromTS(u), fromTS(l)
	return &p, nil
}

func (q *Queries) queryPersons(ctx context.Context, query string, args ...any) ([]*identity.Person, error) {
	rows, err := q.x.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: persons: %w", err)
	}
	ps, err := pgx.CollectRows(rows, scanPerson)
	if err != nil {
		return nil, fmt.Errorf("postgres: persons: %w", err)
	}
	return ps, nil
}

// keyArrays splits keys into the two arrays that unnest pairs up again,
// without repeats.
func keyArrays(keys []identity.Key) (types, values []string) {
	seen := make(map[identity.Key]bool, len(keys))
	types, values = make([]string, 0, len(keys)), make([]string, 0, len(keys))
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			types, values = append(types, k.Type), append(values, k.Value)
		}
	}
	return types, values
}

func scanIdentifier(row pgx.CollectableRow) (*identity.Identifier, error) {
	var id identity.Identifier
	var at pgtype.Timestamptz
	if err := row.Scan(&id.Type, &id.Value, &id.PersonID, &id.Verified, &at); err != nil {
		return nil, err
	}
	id.FirstSeenAt = fromTS(at)
	return &id, nil
}

func (q *Queries) FindIdentifiers(ctx context.Context, keys []identity.Key) ([]*identity.Identifier, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	types, values := keyArrays(keys)
	rows, err := q.x.Query(ctx, `SELECT i.type, i.value, i.person_id, i.verified, i.first_seen_at
		FROM unnest($1::text[], $2::text[]) AS k(type, value)
		JOIN identifiers i ON i.type = k.type AND i.value = k.value`, types, values)
	if err != nil {
		return nil, fmt.Errorf("postgres: find identifiers: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanIdentifier)
	if err != nil {
		return nil, fmt.Errorf("postgres: find identifiers: %w", err)
	}
	return out, nil
}

func (q *Queries) PersonsByID(ctx context.Context, ids []string) ([]*identity.Person, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return q.queryPersons(ctx, `SELECT `+personCols+` FROM persons WHERE id = ANY($1)`, dedupe(ids))
}

// CountPersonsByID counts how many of ids are stored persons
// (events.PersonCounter): an index-only probe, where PersonsByID would
// fetch and decode every row.
func (q *Queries) CountPersonsByID(ctx context.Context, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var n int
	if err := q.x.QueryRow(ctx, `SELECT count(*) FROM persons WHERE id = ANY($1)`, dedupe(ids)).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count persons: %w", err)
	}
	return n, nil
}

// personArrays are the columns of persons, one array each, for unnest.
type personArrays struct {
	id, root, merged, user, traits, name []string
	created, updated, seen               []pgtype.Timestamptz
}

func toPersonArrays(ps []*identity.Person) personArrays {
	a := personArrays{}
	for _, p := range ps {
		a.id = append(a.id, p.ID)
		a.root = append(a.root, p.RootID)
		a.merged = append(a.merged, p.MergedInto)
		a.user = append(a.user, p.UserID)
		a.traits = append(a.traits, traitsText(p.Traits))
		a.name = append(a.name, identity.SearchName(p.Traits))
		a.created = append(a.created, ts(p.CreatedAt))
		a.updated = append(a.updated, ts(p.UpdatedAt))
		a.seen = append(a.seen, ts(p.LastSeenAt))
	}
	return a
}

func (q *Queries) CreatePersons(ctx context.Context, ps []*identity.Person) error {
	if len(ps) == 0 {
		return nil
	}
	a := toPersonArrays(ps)
	_, err := q.x.Exec(ctx, `INSERT INTO persons (id, root_id, merged_into, user_id, traits, created_at, updated_at, last_seen_at, search_name)
		SELECT id, root_id, NULLIF(merged_into, ''), NULLIF(user_id, ''), traits::jsonb, created_at, updated_at, last_seen_at, NULLIF(search_name, '')
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::text[])
			AS u(id, root_id, merged_into, user_id, traits, created_at, updated_at, last_seen_at, search_name)`,
		a.id, a.root, a.merged, a.user, a.traits, a.created, a.updated, a.seen, a.name)
	if err != nil {
		return fmt.Errorf("postgres: create persons: %w", err)
	}
	return nil
}

func (q *Queries) UpdatePersons(ctx context.Context, ps []*identity.Person) error {
	if len(ps) == 0 {
		return nil
	}
	a := toPersonArrays(ps)
	_, err := q.x.Exec(ctx, `UPDATE persons p SET root_id = u.root_id, merged_into = NULLIF(u.merged_into, ''), user_id = NULLIF(u.user_id, ''),
			traits = u.traits::jsonb, updated_at = u.updated_at, last_seen_at = u.last_seen_at, search_name = NULLIF(u.search_name, '')
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::text[])
			AS u(id, root_id, merged_into, user_id, traits, updated_at, last_seen_at, search_name)
		WHERE p.id = u.id`,
		a.id, a.root, a.merged, a.user, a.traits, a.updated, a.seen, a.name)
	if err != nil {
		return fmt.Errorf("postgres: update persons: %w", err)
	}
	return nil
}

func (q *Queries) TouchPersons(ctx context.Context, ps []*identity.Person) error {
	if len(ps) == 0 {
		return nil
	}
	ids, updated, seen := make([]string, len(ps)), make([]pgtype.Timestamptz, len(ps)), make([]pgtype.Timestamptz, len(ps))
	for i, p := range ps {
		ids[i], updated[i], seen[i] = p.ID, ts(p.UpdatedAt), ts(p.LastSeenAt)
	}
	_, err := q.x.Exec(ctx, `UPDATE persons p SET updated_at = u.updated_at, last_seen_at = u.last_seen_at
		FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS u(id, updated_at, last_seen_at)
		WHERE p.id = u.id`, ids, updated, seen)
	if err != nil {
		return fmt.Errorf("postgres: touch persons: %w", err)
	}
	return nil
}

func (q *Queries) AddIdentifiers(ctx context.Context, ids []*identity.Identifier) error {
	if len(ids) == 0 {
		return nil
	}
	n := len(ids)
	types, values, persons := make([]string, n), make([]string, n), make([]string, n)
	verified, seen := make([]bool, n), make([]pgtype.Timestamptz, n)
	for i, id := range ids {
		types[i], values[i], persons[i], verified[i], seen[i] = id.Type, id.Value, id.PersonID, id.Verified, ts(id.FirstSeenAt)
	}
	_, err := q.x.Exec(ctx, `INSERT INTO identifiers (type, value, person_id, verified, first_seen_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::timestamptz[])`,
		types, values, persons, verified, seen)
	if err != nil {
		return fmt.Errorf("postgres: add identifiers: %w", err)
	}
	return nil
}

func (q *Queries) SetVerified(ctx context.Context, keys []identity.Key) error {
	for _, k := range keys {
		if _, err := q.x.Exec(ctx, `UPDATE identifiers SET verified = true WHERE type = $1 AND value = $2`, k.Type, k.Value); err != nil {
			return fmt.Errorf("postgres: set verified: %w", err)
		}
	}
	return nil
}

func (q *Queries) IdentifiersOf(ctx context.Context, personIDs []string) ([]*identity.Identifier, error) {
	if len(personIDs) == 0 {
		return nil, nil
	}
	rows, err := q.x.Query(ctx, `SELECT type, value, person_id, verified, first_seen_at FROM identifiers
		WHERE person_id = ANY($1) ORDER BY first_seen_at, type, value`, dedupe(personIDs))
	if err != nil {
		return nil, fmt.Errorf("postgres: identifiers of: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanIdentifier)
	if err != nil {
		return nil, fmt.Errorf("postgres: identifiers of: %w", err)
	}
	return out, nil
}

func (q *Queries) TreeOfKey(ctx context.Context, k identity.Key) (string, []string, error) {
	rows, err := q.x.Query(ctx, `SELECT p.root_id, m.id FROM identifiers i JOIN persons p ON p.id = i.person_id JOIN persons m ON m.root_id = p.root_id
		WHERE i.type = $1 AND i.value = $2 ORDER BY m.id`, k.Type, k.Value)
	if err != nil {
		return "", nil, fmt.Errorf("postgres: tree of key: %w", err)
	}
	var root string
	members, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var id string
		err := r.Scan(&root, &id)
		return id, err
	})
	if err != nil {
		return "", nil, fmt.Errorf("postgres: tree of key: %w", err)
	}
	return root, members, nil
}

func (q *Queries) PersonsWithRoot(ctx context.Context, rootID string) ([]string, error) {
	rows, err := q.x.Query(ctx, `SELECT id FROM persons WHERE root_id = $1 ORDER BY id`, rootID)
	if err != nil {
		return nil, fmt.Errorf("postgres: persons with root: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: persons with root: %w", err)
	}
	return ids, nil
}

func (q *Queries) SetRoot(ctx context.Context, ids []string, root string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := q.x.Exec(ctx, `UPDATE persons SET root_id = $1 WHERE id = ANY($2)`, root, ids); err != nil {
		return fmt.Errorf("postgres: set root: %w", err)
	}
	return nil
}

func (q *Queries) DeletePersons(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	for _, db := range []*DB{q.db, q.home} {
		if db != nil {
			db.pairs.Clear()
		}
	}
	return q.inTx(ctx, func(x querier) error {
		for _, stmt := range []string{
			`DELETE FROM events WHERE person_id = ANY($1)`,
			`DELETE FROM person_properties WHERE person_id = ANY($1)`,
			`DELETE FROM identifiers WHERE person_id = ANY($1)`,
			`DELETE FROM merges WHERE from_id = ANY($1) OR into_id = ANY($1)`,
			`DELETE FROM conflicts WHERE person_ids && $1::text[]`,
			`DELETE FROM persons WHERE id = ANY($1)`,
		} {
			if _, err := x.Exec(ctx, stmt, ids); err != nil {
				return fmt.Errorf("postgres: delete persons: %w", err)
			}
		}
		return nil
	})
}

func (q *Queries) CountPersons(ctx context.Context) (int64, error) {
	var n int64
	if err := q.x.QueryRow(ctx, `SELECT count(*) FROM persons WHERE root_id = id`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count persons: %w", err)
	}
	return n, nil
}

func (q *Queries) InsertMerge(ctx context.Context, m *identity.Merge) error {
	_, err := q.x.Exec(ctx, `INSERT INTO merges (id, from_id, into_id, reason, message_id, actor, traits_added, created_at, undone_at, undone_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		m.ID, m.FromID, m.IntoID, m.Reason, nullText(m.MessageID), nullText(m.Actor), nonNil(m.TraitsAdded), ts(m.CreatedAt), tsPtr(m.UndoneAt), nullText(m.UndoneBy))
	if err != nil {
		return fmt.Errorf("postgres: insert merge: %w", err)
	}
	return nil
}

const mergeCols = `id, from_id, into_id, reason, COALESCE(message_id, ''), COALESCE(actor, ''), traits_added, created_at, undone_at, COALESCE(undone_by, '')`

func scanMerge(row pgx.CollectableRow) (*identity.Merge, error) {
	var m identity.Merge
	var created, undone pgtype.Timestamptz
	if err := row.Scan(&m.ID, &m.FromID, &m.IntoID, &m.Reason, &m.MessageID, &m.Actor, &m.TraitsAdded, &created, &undone, &m.UndoneBy); err != nil {
		return nil, err
	}
	m.CreatedAt, m.UndoneAt = fromTS(created), ptrTS(undone)
	return &m, nil
}

func (q *Queries) MergeByID(ctx context.Context, id string) (*identity.Merge, error) {
	rows, err := q.x.Query(ctx, `SELECT `+mergeCols+` FROM merges WHERE id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: merge: %w", err)
	}
	m, err := pgx.CollectExactlyOneRow(rows, scanMerge)
	if err == pgx.ErrNoRows {
		return nil, notFound("merge")
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: merge: %w", err)
	}
	return m, nil
}

func (q *Queries) UpdateMerge(ctx context.Context, m *identity.Merge) error {
	if _, err := q.x.Exec(ctx, `UPDATE merges SET undone_at = $1, undone_by = $2 WHERE id = $3`, tsPtr(m.UndoneAt), nullText(m.UndoneBy), m.ID); err != nil {
		return fmt.Errorf("postgres: update merge: %w", err)
	}
	return nil
}

func (q *Queries) MergesOf(ctx context.Context, ids []string) ([]*identity.Merge, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := q.x.Query(ctx, `SELECT `+mergeCols+` FROM merges WHERE from_id = ANY($1) OR into_id = ANY($1) ORDER BY created_at DESC, id DESC`, dedupe(ids))
	if err != nil {
		return nil, fmt.Errorf("postgres: merges: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanMerge)
	if err != nil {
		return nil, fmt.Errorf("postgres: merges: %w", err)
	}
	return out, nil
}

func (q *Queries) InsertConflicts(ctx context.Context, cs []*identity.Conflict) error {
	if len(cs) == 0 {
		return nil
	}
	// Rare (a human must look at each), so a batch of plain INSERTs: unnest
	// cannot carry one array per row.
	b := &pgx.Batch{}
	for _, c := range cs {
		keys, err := json.Marshal(c.Keys)
		if err != nil {
			return fmt.Errorf("postgres: insert conflict: %w", err)
		}
		b.Queue(`INSERT INTO conflicts (id, person_ids, keys, reason, message_id, created_at) VALUES ($1, $2, $3::jsonb, $4, $5, $6)`,
			c.ID, nonNil(c.PersonIDs), string(keys), c.Reason, nullText(c.MessageID), ts(c.CreatedAt))
	}
	return q.inTx(ctx, func(x querier) error {
		if err := x.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("postgres: insert conflict: %w", err)
		}
		return nil
	})
}

func (q *Queries) ListConflicts(ctx context.Context, n int) ([]*identity.Conflict, error) {
	rows, err := q.x.Query(ctx, `SELECT id, person_ids, keys, reason, COALESCE(message_id, ''), created_at FROM conflicts ORDER BY created_at DESC, id DESC LIMIT $1`, limit(n))
	if err != nil {
		return nil, fmt.Errorf("postgres: conflicts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*identity.Conflict, error) {
		var c identity.Conflict
		var keys []byte
		var at pgtype.Timestamptz
		if err := row.Scan(&c.ID, &c.PersonIDs, &keys, &c.Reason, &c.MessageID, &at); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(keys, &c.Keys); err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		c.CreatedAt = fromTS(at)
		return &c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: conflicts: %w", err)
	}
	return out, nil
}

func (q *Queries) AddSuppressions(ctx context.Context, keys []identity.Key, at time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	types, values := keyArrays(keys)
	_, err := q.x.Exec(ctx, `INSERT INTO suppressions (type, value, created_at)
		SELECT type, value, $3 FROM unnest($1::text[], $2::text[]) AS k(type, value) ON CONFLICT DO NOTHING`, types, values, ts(at))
	if err != nil {
		return fmt.Errorf("postgres: suppress: %w", err)
	}
	return nil
}

func (q *Queries) RemoveSuppressions(ctx context.Context, keys []identity.Key) error {
	if len(keys) == 0 {
		return nil
	}
	types, values := keyArrays(keys)
	_, err := q.x.Exec(ctx, `DELETE FROM suppressions s USING unnest($1::text[], $2::text[]) AS k(type, value)
		WHERE s.type = k.type AND s.value = k.value`, types, values)
	if err != nil {
		return fmt.Errorf("postgres: unsuppress: %w", err)
	}
	return nil
}

func (q *Queries) Suppressed(ctx context.Context, keys []identity.Key) ([]identity.Key, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	// Nearly always empty: one cheap probe instead of sending every key of
	// an ingest group (9 ms a group of 3,000 events).
	var exists bool
	if err := q.x.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM suppressions)`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("postgres: suppressed: %w", err)
	}
	if !exists {
		return nil, nil
	}
	types, values := keyArrays(keys)
	rows, err := q.x.Query(ctx, `SELECT s.type, s.value FROM unnest($1::text[], $2::text[]) AS k(type, value)
		JOIN suppressions s ON s.type = k.type AND s.value = k.value`, types, values)
	if err != nil {
		return nil, fmt.Errorf("postgres: suppressed: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (identity.Key, error) {
		var k identity.Key
		err := row.Scan(&k.Type, &k.Value)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: suppressed: %w", err)
	}
	return out, nil
}

func traitsText(t json.RawMessage) string {
	if len(t) == 0 {
		return "{}"
	}
	return string(stripNUL(t))
}
