package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/internal/seen"
)

const eventInsertCols = 17

// InsertEvents writes events with multi-row INSERTs and numbers them: the
// one writer makes the rowids of one statement consecutive, so the last
// rowid tells them all.
func (q *Queries) InsertEvents(ctx context.Context, evs []*events.Event) error {
	if q.db != nil {
		if err := q.prepareDedupe(ctx); err != nil {
			return err
		}
	}
	return chunk(evs, hashesPerRow, func(evs []*events.Event) error {
		args := make([]any, 0, eventInsertCols*len(evs))
		for _, e := range evs {
			args = append(args, e.PropertyID, e.MessageID, e.PersonID, e.Type, e.NameColumn(), e.UserID, e.AnonymousID, e.GroupID, e.PreviousID,
				micros(e.Timestamp), micros(e.OriginalTimestamp), micros(e.SentAt), micros(e.ReceivedAt),
				eventText(e.Properties), eventText(e.Traits), eventText(e.Context), e.IP)
		}
		res, err := q.execHot(ctx, `INSERT INTO events (property_id, message_id, person_id, type, name, user_id, anonymous_id, group_id, previous_id, ts, original_ts, sent_at, received_at, properties, traits, context, ip) VALUES `+rowsOf(len(evs), eventInsertCols), args...)
		if err != nil {
			return fmt.Errorf("sqlite: insert events: %w", err)
		}
		last, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("sqlite: insert events: %w", err)
		}
		first := last - int64(len(evs)) + 1
		for i, e := range evs {
			e.Seq = first + int64(i)
			if q.db != nil {
				q.stageTimeline(e.PersonID, e.Seq, micros(e.Timestamp))
			}
		}
		if err := q.noteMessageHashes(ctx, evs); err != nil {
			return err
		}
		return q.notePersonProperties(ctx, evs)
	})
}

// notePersonProperties records which persons have events from which
// property (the console's property filter): one row per distinct pair of
// the chunk that, inside InTx, db.pairs does not know to be stored.
func (q *Queries) notePersonProperties(ctx context.Context, evs []*events.Event) error {
	var known *seen.Set
	if q.db != nil {
		known = q.db.pairs
	}
	pairs, keys := events.NewPersonProperties(evs, known)
	if len(pairs) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(pairs))
	for _, p := range pairs {
		args = append(args, p.PersonID, p.PropertyID)
	}
	n := padded(len(pairs))
	args = padArgs(args, 2, n)
	if _, err := q.execHot(ctx, `INSERT INTO person_properties (person_id, property_id) VALUES `+rowsOf(n, 2)+` ON CONFLICT DO NOTHING`, args...); err != nil {
		return fmt.Errorf("sqlite: person properties: %w", err)
	}
	q.stagedPairs = append(q.stagedPairs, keys...)
	return nil
}

// forgetPairs clears the DB's memory of person_properties rows: the
// caller is deleting some.
func (q *Queries) forgetPairs() {
	for _, db := range []*DB{q.db, q.rdb, q.home} {
		if db != nil {
			db.pairs.Clear()
		}
	}
}

// eventText is rawText without the copy: an event's JSON fields are not
// changed once parsed, and the driver copies what it binds before the
// statement returns. (The copies were 5 % of the committer's time.)
func eventText(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func rawText(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

const eventCols = `seq, property_id, message_id, person_id, type, name, user_id, anonymous_id, group_id, previous_id, ts, original_ts, sent_at, received_at, properties, traits, context, ip`

func scanEvents(rows *sql.Rows) ([]*events.Event, error) {
	defer rows.Close()
	var out []*events.Event
	for rows.Next() {
		var e events.Event
		var name string
		var ts, ots, sent, recv int64
		var props, traits, ctx sql.NullString
		if err := rows.Scan(&e.Seq, &e.PropertyID, &e.MessageID, &e.PersonID, &e.Type, &name, &e.UserID, &e.AnonymousID, &e.GroupID, &e.PreviousID,
			&ts, &ots, &sent, &recv, &props, &traits, &ctx, &e.IP); err != nil {
			return nil, fmt.Errorf("sqlite: scan event: %w", err)
		}
		e.SetNameColumn(name)
		e.Timestamp, e.OriginalTimestamp, e.SentAt, e.ReceivedAt = fromMicros(ts), fromMicros(ots), fromMicros(sent), fromMicros(recv)
		if props.Valid {
			e.Properties = json.RawMessage(props.String)
		}
		if traits.Valid {
			e.Traits = json.RawMessage(traits.String)
		}
		if ctx.Valid {
			e.Context = json.RawMessage(ctx.String)
		}
		out = append(out, &e)
	}
	return out, rows.Err()
}

// Timeline reads each person's newest events through the timeline table
// (timeline_index.go) and merges them. One subquery per person, each with
// its own LIMIT, because "person_id IN (…) ORDER BY ts" makes SQLite read
// every event of those persons and sort them: fine for a visitor with
// twenty events, not for a customer with a hundred thousand. The events
// that may not be in the table yet come from a second arm of the same
// statement (one snapshot), which finds nothing almost always; the two
// arms are merged here rather than by an ORDER BY around them, which would
// copy every row into a sorter.
func (q *Queries) Timeline(ctx context.Context, tq events.TimelineQuery) ([]*events.Event, error) {
	if len(tq.PersonIDs) == 0 {
		return nil, nil
	}
	indexed, args := timelineSQL(tq)
	unindexed, uargs := q.unindexedSQL(tq)
	query := func(cols string) string {
		return `SELECT * FROM (` + indexed(cols) + `) UNION ALL ` + unindexed(cols)
	}
	evs, err := q.timelineRead(ctx, query, append(args, uargs...))
	if err != nil {
		return nil, err
	}
	return mergeTimelines(evs, tq.Limit), nil
}

// mergeTimelines orders the events of both arms newest first, up to
// limit. The first arm's are in order already. The second arm leaves out
// the events the table holds, so an event comes once; the compaction only
// guards that.
func mergeTimelines(all []*events.Event, limit int) []*events.Event {
	slices.SortFunc(all, func(x, y *events.Event) int {
		if c := y.Timestamp.Compare(x.Timestamp); c != 0 {
			return c
		}
		return cmp.Compare(y.Seq, x.Seq)
	})
	all = slices.CompactFunc(all, func(x, y *events.Event) bool { return x.Seq == y.Seq })
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	return all
}

// timelineSQL is the Timeline query of the timeline table, as a function
// of the columns it returns (packed or plain, timelineRead), and its
// arguments.
func timelineSQL(tq events.TimelineQuery) (query func(cols string) string, args []any) {
	persons := dedupeStrings(tq.PersonIDs)
	filter, fargs := timelineFilter(tq)
	where := strings.Join(append([]string{"person_id = ?"}, filter...), " AND ")
	// The natural join matches the timeline row to its event by all three
	// columns they share, so person_id, ts and seq need no table name.
	one := func(cols string) string {
		return `SELECT ` + cols + ` FROM timeline NATURAL JOIN events WHERE ` + where + ` ORDER BY ts DESC, seq DESC LIMIT ?`
	}
	if len(persons) == 1 {
		query, args = one, append(append([]any{persons[0]}, fargs...), tq.Limit)
	} else {
		parts := make([]string, len(persons))
		for i, p := range persons {
			parts[i] = `SELECT * FROM (` + one(eventCols) + `)`
			args = append(append(append(args, p), fargs...), tq.Limit)
		}
		union := strings.Join(parts, " UNION ALL ")
		query = func(cols string) string {
			return `SELECT ` + cols + ` FROM (` + union + `) ORDER BY ts DESC, seq DESC LIMIT ?`
		}
		args = append(args, tq.Limit)
	}
	return query, args
}

// unindexedSQL is the query of the persons' events that may lack a
// timeline row (unindexedCond), filtered as timelineSQL's, each checked
// against the table so that a reader without a backlog, which looks at
// every event after indexed_through, does not read one twice.
func (q *Queries) unindexedSQL(tq events.TimelineQuery) (query func(cols string) string, args []any) {
	persons := dedupeStrings(tq.PersonIDs)
	cond, cargs := q.unindexedCond(persons)
	filter, fargs := timelineFilter(tq)
	where := strings.Join(append([]string{`person_id IN (` + placeholders(len(persons)) + `)`, cond}, filter...), " AND ")
	args = append(append(anys(persons), cargs...), fargs...)
	// No ORDER BY: the arm finds nothing almost always, and opening a
	// sorter for nothing cost every read; Timeline sorts what it finds.
	return func(cols string) string {
		return `SELECT ` + cols + ` FROM events e WHERE ` + where +
			` AND NOT EXISTS (SELECT 1 FROM timeline t WHERE t.person_id = e.person_id AND t.ts = e.ts AND t.seq = e.seq)`
	}, args
}

// timelineFilter is a TimelineQuery's conditions beyond the person, on
// unqualified columns.
func timelineFilter(tq events.TimelineQuery) (filter []string, fargs []any) {
	if len(tq.Types) > 0 {
		filter = append(filter, `type IN (`+placeholders(len(tq.Types))+`)`)
		fargs = append(fargs, anys(tq.Types)...)
	}
	if len(tq.Names) > 0 {
		filter = append(filter, `name IN (`+placeholders(len(tq.Names))+`)`)
		fargs = append(fargs, anys(tq.Names)...)
	}
	if tq.PropertyID != "" {
		filter = append(filter, `property_id = ?`)
		fargs = append(fargs, tq.PropertyID)
	}
	if !tq.From.IsZero() {
		filter = append(filter, `ts >= ?`)
		fargs = append(fargs, micros(tq.From))
	}
	if !tq.To.IsZero() {
		filter = append(filter, `ts < ?`)
		fargs = append(fargs, micros(tq.To))
	}
	if tq.Before != nil {
		filter = append(filter, `(ts, seq) < (?, ?)`)
		fargs = append(fargs, micros(tq.Before.Timestamp), tq.Before.Seq)
	}
	return filter, fargs
}

func dedupeStrings(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func (q *Queries) EventsAfter(ctx context.Context, seq int64, limit int) ([]*events.Event, error) {
	rows, err := q.queryHot(ctx, `SELECT `+eventCols+` FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, seq, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events after: %w", err)
	}
	return scanEvents(rows)
}

func (q *Queries) CountEvents(ctx context.Context) (int64, error) {
	var n int64
	err := q.x.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&n)
	return n, err
}

func (q *Queries) InsertRejections(ctx context.Context, rs []*events.Rejection) error {
	return chunk(rs, 100, func(rs []*events.Rejection) error {
		args := make([]any, 0, 8*len(rs))
		for _, r := range rs {
			args = append(args, r.PropertyID, micros(r.ReceivedAt), r.Index, r.MessageID, r.Type, r.Code, r.Reason, r.Payload)
		}
		res, err := q.x.ExecContext(ctx, `INSERT INTO rejections (property_id, received_at, idx, message_id, type, code, reason, payload) VALUES `+rowsOf(len(rs), 8), args...)
		if err != nil {
			return fmt.Errorf("sqlite: insert rejections: %w", err)
		}
		// One writer and a multi-row INSERT: the rows got consecutive
		// rowids in input order, ending at the last one.
		last, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("sqlite: insert rejections: %w", err)
		}
		for i, r := range rs {
			r.ID = last - int64(len(rs)-1-i)
		}
		return nil
	})
}

func (q *Queries) DeleteRejectionsMentioning(ctx context.Context, values []string) (int64, error) {
	var n int64
	for _, v := range values {
		if v == "" {
			continue
		}
		// A full scan of the log per value: deletes are rare, the log is
		// bounded by what clients get wrong.
		res, err := q.x.ExecContext(ctx, `DELETE FROM rejections WHERE instr(lower(CAST(payload AS TEXT)), lower(?)) > 0`, v)
		if err != nil {
			return n, fmt.Errorf("sqlite: delete rejections: %w", err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	return n, nil
}

func (q *Queries) PruneRejections(ctx context.Context, keep int) (int64, error) {
	res, err := q.x.ExecContext(ctx, `DELETE FROM rejections WHERE id < COALESCE((
		SELECT r2.id FROM rejections r2 WHERE r2.property_id = rejections.property_id ORDER BY r2.id DESC LIMIT 1 OFFSET ?), 0)`, keep-1)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune rejections: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

func (q *Queries) Rejections(ctx context.Context, rq events.RejectionQuery) ([]*events.Rejection, error) {
	where := []string{"1 = 1"}
	var args []any
	if rq.PropertyID != "" {
		where = append(where, "property_id = ?")
		args = append(args, rq.PropertyID)
	}
	if rq.BeforeID > 0 {
		where = append(where, "id < ?")
		args = append(args, rq.BeforeID)
	}
	args = append(args, rq.Limit)
	rows, err := q.x.QueryContext(ctx, `SELECT id, property_id, received_at, idx, message_id, type, code, reason, payload FROM rejections WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: rejections: %w", err)
	}
	defer rows.Close()
	var out []*events.Rejection
	for rows.Next() {
		var r events.Rejection
		var at int64
		if err := rows.Scan(&r.ID, &r.PropertyID, &at, &r.Index, &r.MessageID, &r.Type, &r.Code, &r.Reason, &r.Payload); err != nil {
			return nil, fmt.Errorf("sqlite: rejections: %w", err)
		}
		r.ReceivedAt = fromMicros(at)
		out = append(out, &r)
	}
	return out, rows.Err()
}

func (q *Queries) Cursor(ctx context.Context, name string) (int64, error) {
	var seq int64
	err := q.x.QueryRowContext(ctx, `SELECT seq FROM cursors WHERE name = ?`, name).Scan(&seq)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: cursor: %w", err)
	}
	return seq, nil
}

func (q *Queries) SetCursor(ctx context.Context, name string, seq int64) error {
	_, err := q.x.ExecContext(ctx, `INSERT INTO cursors (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq`, name, seq)
	if err != nil {
		return fmt.Errorf("sqlite: set cursor: %w", err)
	}
	return nil
}
