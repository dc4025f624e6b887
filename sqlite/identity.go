package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/onramp-dev/onramp/identity"
)

const personCols = `id, root_id, COALESCE(merged_into, ''), COALESCE(user_id, ''), traits, created_at, updated_at, last_seen_at`

func scanPerson(sc interface{ Scan(...any) error }) (*identity.Person, error) {
	var p identity.Person
	var traits string
	var c, u, l int64
	if err := sc.Scan(&p.ID, &p.RootID, &p.MergedInto, &p.UserID, &traits, &c, &u, &l); err != nil {
		return nil, err
	}
	p.Traits = json.RawMessage(traits)
	p.CreatedAt, p.UpdatedAt, p.LastSeenAt = fromMicros(c), fromMicros(u), fromMicros(l)
	return &p, nil
}

func (q *Queries) queryPersons(ctx context.Context, query string, args ...any) ([]*identity.Person, error) {
	rows, err := q.queryHot(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: persons: %w", err)
	}
	defer rows.Close()
	var out []*identity.Person
	for rows.Next() {
		p, err := scanPerson(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: persons: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (q *Queries) FindIdentifiers(ctx context.Context, keys []identity.Key) ([]*identity.Identifier, error) {
	if len(keys) == 1 {
		// The read path (Profile API, lookups) asks for one key: a plain
		// primary-key probe, without the VALUES list.
		rows, err := q.queryHot(ctx, `SELECT type, value, person_id, verified, first_seen_at FROM identifiers WHERE type = ? AND value = ?`, keys[0].Type, keys[0].Value)
		if err != nil {
			return nil, fmt.Errorf("sqlite: find identifier: %w", err)
		}
		return scanIdentifiers(rows)
	}
	var out []*identity.Identifier
	err := chunk(keys, 512, func(ks []identity.Key) error {
		args := make([]any, 0, 2*len(ks))
		for _, k := range ks {
			args = append(args, k.Type, k.Value)
		}
		n := padded(len(ks))
		args = padArgs(args, 2, n)
		rows, err := q.queryHot(ctx, `SELECT type, value, person_id, verified, first_seen_at FROM identifiers WHERE (type, value) IN (VALUES `+strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ")+`)`, args...)
		if err != nil {
			return err
		}
		found, err := scanIdentifiers(rows)
		out = append(out, found...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: find identifiers: %w", err)
	}
	return out, nil
}

func (q *Queries) PersonsByID(ctx context.Context, ids []string) ([]*identity.Person, error) {
	if len(ids) == 1 {
		return q.queryPersons(ctx, `SELECT `+personCols+` FROM persons WHERE id = ?`, ids[0])
	}
	var out []*identity.Person
	err := chunk(ids, 512, func(ids []string) error {
		n := padded(len(ids))
		ps, err := q.queryPersons(ctx, `SELECT `+personCols+` FROM persons WHERE id IN (`+placeholders(n)+`)`, padArgs(anys(ids), 1, n)...)
		out = append(out, ps...)
		return err
	})
	return out, err
}

func (q *Queries) CreatePersons(ctx context.Context, ps []*identity.Person) error {
	return chunk(ps, 100, func(ps []*identity.Person) error {
		args := make([]any, 0, 9*len(ps))
		for _, p := range ps {
			args = append(args, p.ID, p.RootID, nullString(p.MergedInto), nullString(p.UserID), traitsText(p.Traits), micros(p.CreatedAt), micros(p.UpdatedAt), micros(p.LastSeenAt),
				nullString(identity.SearchName(p.Traits)))
		}
		_, err := q.execHot(ctx, `INSERT INTO persons (id, root_id, merged_into, user_id, traits, created_at, updated_at, last_seen_at, search_name) VALUES `+rowsOf(len(ps), 9), args...)
		if err != nil {
			return fmt.Errorf("sqlite: create persons: %w", err)
		}
		return nil
	})
}

// UpdatePersons writes many persons with one UPDATE … FROM (VALUES …) per
// chunk. The row list is padded with copies of its last row, so a few
// statement texts serve every size (a repeated identical row changes
// nothing).
func (q *Queries) UpdatePersons(ctx context.Context, ps []*identity.Person) error {
	return chunk(ps, 128, func(ps []*identity.Person) error {
		n := padded(len(ps))
		args := make([]any, 0, 8*n)
		for _, p := range ps {
			args = append(args, p.ID, p.RootID, nullString(p.MergedInto), nullString(p.UserID), traitsText(p.Traits), micros(p.UpdatedAt), micros(p.LastSeenAt),
				nullString(identity.SearchName(p.Traits)))
		}
		args = padArgs(args, 8, n)
		_, err := q.execHot(ctx, `UPDATE persons SET root_id = v.column2, merged_into = v.column3, user_id = v.column4, traits = v.column5, updated_at = v.column6, last_seen_at = v.column7,
				search_name = v.column8
			FROM (VALUES `+rowsOf(n, 8)+`) AS v WHERE persons.id = v.column1`, args...)
		if err != nil {
			return fmt.Errorf("sqlite: update persons: %w", err)
		}
		return nil
	})
}

func (q *Queries) TouchPersons(ctx context.Context, ps []*identity.Person) error {
	return chunk(ps, 256, func(ps []*identity.Person) error {
		n := padded(len(ps))
		args := make([]any, 0, 3*n)
		for _, p := range ps {
			args = append(args, p.ID, micros(p.UpdatedAt), micros(p.LastSeenAt))
		}
		args = padArgs(args, 3, n)
		_, err := q.execHot(ctx, `UPDATE persons SET updated_at = v.column2, last_seen_at = v.column3
			FROM (VALUES `+rowsOf(n, 3)+`) AS v WHERE persons.id = v.column1`, args...)
		if err != nil {
			return fmt.Errorf("sqlite: touch persons: %w", err)
		}
		return nil
	})
}

func (q *Queries) AddIdentifiers(ctx context.Context, ids []*identity.Identifier) error {
	return chunk(ids, 200, func(ids []*identity.Identifier) error {
		args := make([]any, 0, 5*len(ids))
		for _, id := range ids {
			args = append(args, id.Type, id.Value, id.PersonID, id.Verified, micros(id.FirstSeenAt))
		}
		_, err := q.execHot(ctx, `INSERT INTO identifiers (type, value, person_id, verified, first_seen_at) VALUES `+rowsOf(len(ids), 5), args...)
		if err != nil {
			return fmt.Errorf("sqlite: add identifiers: %w", err)
		}
		return nil
	})
}

func (q *Queries) SetVerified(ctx context.Context, keys []identity.Key) error {
	for _, k := range keys {
		if _, err := q.x.ExecContext(ctx, `UPDATE identifiers SET verified = 1 WHERE type = ? AND value = ?`, k.Type, k.Value); err != nil {
			return fmt.Errorf("sqlite: set verified: %w", err)
		}
	}
	return nil
}

func (q *Queries) IdentifiersOf(ctx context.Context, personIDs []string) ([]*identity.Identifier, error) {
	var out []*identity.Identifier
	err := chunk(personIDs, 500, func(ids []string) error {
		n := padded(len(ids))
		rows, err := q.queryHot(ctx, `SELECT type, value, person_id, verified, first_seen_at FROM identifiers WHERE person_id IN (`+placeholders(n)+`) ORDER BY first_seen_at, type, value`, padArgs(anys(ids), 1, n)...)
		if err != nil {
			return err
		}
		found, err := scanIdentifiers(rows)
		out = append(out, found...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: identifiers of: %w", err)
	}
	return out, nil
}

func scanIdentifiers(rows *sql.Rows) ([]*identity.Identifier, error) {
	defer rows.Close()
	var out []*identity.Identifier
	for rows.Next() {
		var id identity.Identifier
		var at int64
		if err := rows.Scan(&id.Type, &id.Value, &id.PersonID, &id.Verified, &at); err != nil {
			return out, err
		}
		id.FirstSeenAt = fromMicros(at)
		out = append(out, &id)
	}
	return out, rows.Err()
}

func (q *Queries) PersonsWithRoot(ctx context.Context, rootID string) ([]string, error) {
	rows, err := q.queryHot(ctx, `SELECT id FROM persons WHERE root_id = ? ORDER BY id`, rootID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: persons with root: %w", err)
	}
	return scanStrings(rows)
}

func (q *Queries) TreeOfKey(ctx context.Context, k identity.Key) (string, []string, error) {
	rows, err := q.queryHot(ctx, `SELECT p.root_id, m.id FROM identifiers i JOIN persons p ON p.id = i.person_id JOIN persons m ON m.root_id = p.root_id
		WHERE i.type = ? AND i.value = ? ORDER BY m.id`, k.Type, k.Value)
	if err != nil {
		return "", nil, fmt.Errorf("sqlite: tree of key: %w", err)
	}
	defer rows.Close()
	var root string
	var members []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&root, &id); err != nil {
			return "", nil, fmt.Errorf("sqlite: tree of key: %w", err)
		}
		members = append(members, id)
	}
	if err := rows.Err(); err != nil {
		return "", nil, fmt.Errorf("sqlite: tree of key: %w", err)
	}
	return root, members, nil
}

func (q *Queries) SetRoot(ctx context.Context, ids []string, root string) error {
	return chunk(ids, 500, func(ids []string) error {
		_, err := q.x.ExecContext(ctx, `UPDATE persons SET root_id = ? WHERE id IN (`+placeholders(len(ids))+`)`, append([]any{root}, anys(ids)...)...)
		if err != nil {
			return fmt.Errorf("sqlite: set root: %w", err)
		}
		return nil
	})
}

func (q *Queries) DeletePersons(ctx context.Context, ids []string) error {
	q.forgetPairs()
	q.forgetTimeline(ids)
	return chunk(ids, 500, func(ids []string) error {
		in := `(` + placeholders(len(ids)) + `)`
		args := anys(ids)
		for _, stmt := range []string{
			// Their events are the timeline table's, and those after
			// indexed_through that may not be in it yet.
			`DELETE FROM events WHERE seq IN (SELECT seq FROM timeline WHERE person_id IN ` + in + `)`,
			`DELETE FROM events WHERE seq > (SELECT indexed_through FROM timeline_state WHERE id = 1) AND person_id IN ` + in,
			`DELETE FROM timeline WHERE person_id IN ` + in,
			`DELETE FROM person_properties WHERE person_id IN ` + in,
			`DELETE FROM identifiers WHERE person_id IN ` + in,
			`DELETE FROM merges WHERE from_id IN ` + in,
			`DELETE FROM merges WHERE into_id IN ` + in,
			`DELETE FROM conflicts WHERE EXISTS (SELECT 1 FROM json_each(conflicts.person_ids) WHERE json_each.value IN ` + in + `)`,
			`DELETE FROM persons WHERE id IN ` + in,
		} {
			if _, err := q.x.ExecContext(ctx, stmt, args...); err != nil {
				return fmt.Errorf("sqlite: delete persons: %w", err)
			}
		}
		return nil
	})
}

func (q *Queries) CountPersons(ctx context.Context) (int64, error) {
	var n int64
	err := q.x.QueryRowContext(ctx, `SELECT count(*) FROM persons WHERE root_id = id`).Scan(&n)
	return n, err
}

func (q *Queries) InsertMerge(ctx context.Context, m *identity.Merge) error {
	added, _ := json.Marshal(nonNil(m.TraitsAdded))
	_, err := q.x.ExecContext(ctx, `INSERT INTO merges (id, from_id, into_id, reason, message_id, actor, traits_added, created_at, undone_at, undone_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.FromID, m.IntoID, m.Reason, nullString(m.MessageID), nullString(m.Actor), string(added), micros(m.CreatedAt), nullMicros(m.UndoneAt), nullString(m.UndoneBy))
	if err != nil {
		return fmt.Errorf("sqlite: insert merge: %w", err)
	}
	return nil
}

const mergeCols = `id, from_id, into_id, reason, COALESCE(message_id, ''), COALESCE(actor, ''), traits_added, created_at, undone_at, COALESCE(undone_by, '')`

func scanMerge(sc interface{ Scan(...any) error }) (*identity.Merge, error) {
	var m identity.Merge
	var added string
	var created int64
	var undone sql.NullInt64
	if err := sc.Scan(&m.ID, &m.FromID, &m.IntoID, &m.Reason, &m.MessageID, &m.Actor, &added, &created, &undone, &m.UndoneBy); err != nil {
		return nil, err
	}
	_ = json.Unmarshal([]byte(added), &m.TraitsAdded)
	m.CreatedAt, m.UndoneAt = fromMicros(created), timePtr(undone)
	return &m, nil
}

func (q *Queries) MergeByID(ctx context.Context, id string) (*identity.Merge, error) {
	m, err := scanMerge(q.x.QueryRowContext(ctx, `SELECT `+mergeCols+` FROM merges WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, notFound("merge")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: merge: %w", err)
	}
	return m, nil
}

func (q *Queries) UpdateMerge(ctx context.Context, m *identity.Merge) error {
	_, err := q.x.ExecContext(ctx, `UPDATE merges SET undone_at = ?, undone_by = ? WHERE id = ?`, nullMicros(m.UndoneAt), nullString(m.UndoneBy), m.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update merge: %w", err)
	}
	return nil
}

func (q *Queries) MergesOf(ctx context.Context, ids []string) ([]*identity.Merge, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	in := placeholders(len(ids))
	rows, err := q.x.QueryContext(ctx, `SELECT `+mergeCols+` FROM merges WHERE from_id IN (`+in+`) OR into_id IN (`+in+`) ORDER BY created_at DESC, id DESC`, append(anys(ids), anys(ids)...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: merges: %w", err)
	}
	defer rows.Close()
	var out []*identity.Merge
	for rows.Next() {
		m, err := scanMerge(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: merges: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (q *Queries) InsertConflicts(ctx context.Context, cs []*identity.Conflict) error {
	for _, c := range cs {
		pids, _ := json.Marshal(c.PersonIDs)
		keys, _ := json.Marshal(c.Keys)
		_, err := q.x.ExecContext(ctx, `INSERT INTO conflicts (id, person_ids, keys, reason, message_id, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			c.ID, string(pids), string(keys), c.Reason, nullString(c.MessageID), micros(c.CreatedAt))
		if err != nil {
			return fmt.Errorf("sqlite: insert conflict: %w", err)
		}
	}
	return nil
}

func (q *Queries) ListConflicts(ctx context.Context, limit int) ([]*identity.Conflict, error) {
	rows, err := q.x.QueryContext(ctx, `SELECT id, person_ids, keys, reason, COALESCE(message_id, ''), created_at FROM conflicts ORDER BY created_at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: conflicts: %w", err)
	}
	defer rows.Close()
	var out []*identity.Conflict
	for rows.Next() {
		var c identity.Conflict
		var pids, keys string
		var at int64
		if err := rows.Scan(&c.ID, &pids, &keys, &c.Reason, &c.MessageID, &at); err != nil {
			return nil, fmt.Errorf("sqlite: conflicts: %w", err)
		}
		_ = json.Unmarshal([]byte(pids), &c.PersonIDs)
		_ = json.Unmarshal([]byte(keys), &c.Keys)
		c.CreatedAt = fromMicros(at)
		out = append(out, &c)
	}
	return out, rows.Err()
}

func (q *Queries) AddSuppressions(ctx context.Context, keys []identity.Key, at time.Time) error {
	for _, k := range keys {
		if _, err := q.x.ExecContext(ctx, `INSERT INTO suppressions (type, value, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, k.Type, k.Value, micros(at)); err != nil {
			return fmt.Errorf("sqlite: suppress: %w", err)
		}
	}
	return nil
}

func (q *Queries) RemoveSuppressions(ctx context.Context, keys []identity.Key) error {
	for _, k := range keys {
		if _, err := q.x.ExecContext(ctx, `DELETE FROM suppressions WHERE type = ? AND value = ?`, k.Type, k.Value); err != nil {
			return fmt.Errorf("sqlite: unsuppress: %w", err)
		}
	}
	return nil
}

func (q *Queries) Suppressed(ctx context.Context, keys []identity.Key) ([]identity.Key, error) {
	var exists int
	// Nearly always empty: one cheap probe saves the big IN query.
	if err := q.x.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM suppressions)`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("sqlite: suppressed: %w", err)
	}
	if exists == 0 {
		return nil, nil
	}
	var out []identity.Key
	err := chunk(keys, 400, func(ks []identity.Key) error {
		args := make([]any, 0, 2*len(ks))
		for _, k := range ks {
			args = append(args, k.Type, k.Value)
		}
		rows, err := q.x.QueryContext(ctx, `SELECT type, value FROM suppressions WHERE (type, value) IN (VALUES `+strings.TrimSuffix(strings.Repeat("(?, ?), ", len(ks)), ", ")+`)`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k identity.Key
			if err := rows.Scan(&k.Type, &k.Value); err != nil {
				return err
			}
			out = append(out, k)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: suppressed: %w", err)
	}
	return out, nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func traitsText(t json.RawMessage) string {
	if len(t) == 0 {
		return "{}"
	}
	return string(t)
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// rowsOf returns "(?, …), (?, …)" for n rows of cols values.
func rowsOf(n, cols int) string {
	row := "(" + placeholders(cols) + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

// jsonPath makes a JSON path for a top-level trait key, quoted so any key
// (dots, spaces) addresses exactly that key.
func jsonPath(key string) string {
	b, _ := json.Marshal(key)
	return "$." + string(b)
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
