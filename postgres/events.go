package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/internal/seen"
)

func (q *Queries) ExistingMessageIDs(ctx context.Context, propertyID string, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.x.Query(ctx, `SELECT message_id FROM events WHERE property_id = $1 AND message_id = ANY($2)`, propertyID, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: existing message ids: %w", err)
	}
	var id string
	_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
		out[id] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: existing message ids: %w", err)
	}
	return out, nil
}

// eventChunk bounds one COPY: big enough that group commits of several
// ingest batches go in one, small enough to keep the encoded rows in memory
// modest.
const eventChunk = 2000

var eventInsertCols = []string{"seq", "property_id", "message_id", "person_id", "type", "name", "user_id", "anonymous_id", "group_id", "previous_id",
	"ts", "original_ts", "sent_at", "received_at", "properties", "traits", "context", "ip"}

// InsertEvents stores events with COPY and numbers them in input order.
//
// Seq must grow in commit order, or the bus publisher (which reads
// EventsAfter its cursor) would skip an event whose transaction commits
// after a later-numbered one was already read. So numbers are reserved from
// events_seq under a transaction-level advisory lock, held until commit:
// event inserts of concurrent transactions (other nodes) take turns from
// here to their commit. One node commits ingest from one goroutine, so the
// lock only costs when several nodes ingest at once.
func (q *Queries) InsertEvents(ctx context.Context, evs []*events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if q.pool != nil {
		// The lock must be held until the rows commit: one transaction.
		return pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error { return (&Queries{x: tx}).InsertEvents(ctx, evs) })
	}
	first, err := q.reserveSeqs(ctx, len(evs))
	if err != nil {
		return fmt.Errorf("postgres: insert events: %w", err)
	}
	for done := 0; done < len(evs); {
		n := min(eventChunk, len(evs)-done)
		if err := copyEvents(ctx, q.x, evs[done:done+n], first+int64(done)); err != nil {
			return fmt.Errorf("postgres: insert events: %w", err)
		}
		done += n
	}
	for i, e := range evs {
		e.Seq = first + int64(i)
	}
	return q.notePersonProperties(ctx, evs)
}

// notePersonProperties records which persons have events from which
// property (the console's property filter): the distinct pairs of the
// batch that the snapshot does not hold yet and, inside InTx, DB.pairs does
// not know to be stored.
func (q *Queries) notePersonProperties(ctx context.Context, evs []*events.Event) error {
	var known *seen.Set
	if q.db != nil {
		known = q.db.pairs
	}
	pairs, keys := events.NewPersonProperties(evs, known)
	if len(pairs) == 0 {
		return nil
	}
	persons, props := make([]string, len(pairs)), make([]string, len(pairs))
	for i, p := range pairs {
		persons[i], props[i] = p.PersonID, p.PropertyID
	}
	_, err := q.x.Exec(ctx, `INSERT INTO person_properties (person_id, property_id)
		SELECT u.person_id, u.property_id FROM unnest($1::text[], $2::text[]) AS u(person_id, property_id)
		WHERE NOT EXISTS (SELECT 1 FROM person_properties pp WHERE pp.person_id = u.person_id AND pp.property_id = u.property_id)`, persons, props)
	if err != nil {
		return fmt.Errorf("postgres: person properties: %w", err)
	}
	q.stagedPairs = append(q.stagedPairs, keys...)
	return nil
}

// seqBlock is how many numbers a transaction reserves at least. Ingest
// groups several HTTP batches per transaction; reserving for all of them at
// the first saves a round trip per batch. The unused rest of a block is
// skipped: Seq is increasing, not dense.
const seqBlock = 1000

// reserveSeqs returns the first of n consecutive numbers for this
// transaction's events, reserving a new block under the lock when the
// current one is used up.
func (q *Queries) reserveSeqs(ctx context.Context, n int) (int64, error) {
	if q.seqNext == 0 || q.seqNext+int64(n) > q.seqEnd {
		size := int64(max(n, seqBlock))
		var last int64
		if err := q.x.QueryRow(ctx, `SELECT setval('events_seq', nextval('events_seq') + $2 - 1) FROM (SELECT pg_advisory_xact_lock($1)) AS l`,
			lockEventsSeq, size).Scan(&last); err != nil {
			return 0, err
		}
		q.seqNext, q.seqEnd = last-size+1, last+1
	}
	first := q.seqNext
	q.seqNext += int64(n)
	return first, nil
}

func copyEvents(ctx context.Context, x querier, evs []*events.Event, first int64) error {
	rows := make([][]any, len(evs))
	for i, e := range evs {
		rows[i] = []any{first + int64(i), e.PropertyID, e.MessageID, e.PersonID, e.Type, e.NameColumn(), e.UserID, e.AnonymousID, e.GroupID, e.PreviousID,
			ts(e.Timestamp), ts(e.OriginalTimestamp), ts(e.SentAt), ts(e.ReceivedAt),
			jsonArg(e.Properties), jsonArg(e.Traits), jsonArg(e.Context), e.IP}
	}
	_, err := x.CopyFrom(ctx, pgx.Identifier{"events"}, eventInsertCols, pgx.CopyFromRows(rows))
	return err
}

// jsonArg is a JSON column's value: NULL when empty, as for SQLite.
func jsonArg(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(stripNUL(b))
}

var escapedNUL = []byte(`\u0000`)

// stripNUL replaces each escaped NUL (\u0000) in JSON text by U+FFFD.
// SDKs do send NUL inside strings, and jsonb refuses it (Postgres text
// cannot hold it). Event columns are json, which would take it, but then
// every later query casting them to jsonb (filters on properties) would
// fail on that one row; person traits are jsonb outright. Refusing the
// event would lose the rest of it for one meaningless character, so the
// character is replaced, the way invalid UTF-8 is.
func stripNUL(b []byte) []byte {
	if !bytes.Contains(b, escapedNUL) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' || i+1 >= len(b) {
			out = append(out, c)
			continue
		}
		// Copy each escape whole, so the "u0000" of an escaped backslash
		// followed by text (\\u0000) is left alone.
		if b[i+1] == 'u' && i+6 <= len(b) && string(b[i+2:i+6]) == "0000" {
			out = append(out, `\ufffd`...)
			i += 5
			continue
		}
		out = append(out, c, b[i+1])
		i++
	}
	return out
}

const eventCols = `seq, property_id, message_id, person_id, type, name, user_id, anonymous_id, group_id, previous_id, ts, original_ts, sent_at, received_at, properties, traits, context, ip`

func scanEvent(row pgx.CollectableRow) (*events.Event, error) {
	var e events.Event
	var name string
	var t, ots, sent, recv pgtype.Timestamptz
	var props, traits, ctx []byte
	if err := row.Scan(&e.Seq, &e.PropertyID, &e.MessageID, &e.PersonID, &e.Type, &name, &e.UserID, &e.AnonymousID, &e.GroupID, &e.PreviousID,
		&t, &ots, &sent, &recv, &props, &traits, &ctx, &e.IP); err != nil {
		return nil, err
	}
	e.SetNameColumn(name)
	e.Timestamp, e.OriginalTimestamp, e.SentAt, e.ReceivedAt = fromTS(t), fromTS(ots), fromTS(sent), fromTS(recv)
	e.Properties, e.Traits, e.Context = rawJSON(props), rawJSON(traits), rawJSON(ctx)
	return &e, nil
}

func rawJSON(b []byte) json.RawMessage {
	if b == nil {
		return nil
	}
	return json.RawMessage(b)
}

func (q *Queries) queryEvents(ctx context.Context, what, query string, args ...any) ([]*events.Event, error) {
	rows, err := q.x.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	return out, nil
}

// Timeline reads each person's newest events through the (person_id, ts,
// seq) index and merges them: one LIMITed subquery per person, because
// "person_id = ANY(…) ORDER BY ts" reads and sorts every event of those
// persons.
func (q *Queries) Timeline(ctx context.Context, tq events.TimelineQuery) ([]*events.Event, error) {
	persons := dedupe(tq.PersonIDs)
	if len(persons) == 0 {
		return nil, nil
	}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	var filter []string
	if len(tq.Types) > 0 {
		filter = append(filter, `type = ANY(`+arg(tq.Types)+`)`)
	}
	if len(tq.Names) > 0 {
		filter = append(filter, `name = ANY(`+arg(tq.Names)+`)`)
	}
	if tq.PropertyID != "" {
		filter = append(filter, `property_id = `+arg(tq.PropertyID))
	}
	if !tq.From.IsZero() {
		filter = append(filter, `ts >= `+arg(ts(tq.From)))
	}
	if !tq.To.IsZero() {
		filter = append(filter, `ts < `+arg(ts(tq.To)))
	}
	if tq.Before != nil {
		filter = append(filter, `(ts, seq) < (`+arg(ts(tq.Before.Timestamp))+`, `+arg(tq.Before.Seq)+`)`)
	}
	lim := arg(limit(tq.Limit))
	parts := make([]string, len(persons))
	for i, p := range persons {
		parts[i] = `(SELECT ` + eventCols + ` FROM events WHERE ` + strings.Join(append([]string{`person_id = ` + arg(p)}, filter...), " AND ") +
			` ORDER BY ts DESC, seq DESC LIMIT ` + lim + `)`
	}
	query := parts[0]
	if len(parts) > 1 {
		query = strings.Join(parts, " UNION ALL ") + ` ORDER BY ts DESC, seq DESC LIMIT ` + lim
	}
	return q.queryEvents(ctx, "timeline", query, args...)
}

func (q *Queries) EventsAfter(ctx context.Context, seq int64, n int) ([]*events.Event, error) {
	return q.queryEvents(ctx, "events after", `SELECT `+eventCols+` FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, seq, limit(n))
}

func (q *Queries) CountEvents(ctx context.Context) (int64, error) {
	var n int64
	if err := q.x.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count events: %w", err)
	}
	return n, nil
}

func (q *Queries) InsertRejections(ctx context.Context, rs []*events.Rejection) error {
	if len(rs) == 0 {
		return nil
	}
	n := len(rs)
	props, at, idx := make([]string, n), make([]pgtype.Timestamptz, n), make([]int32, n)
	msgs, types, codes, reasons, payloads := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([][]byte, n)
	for i, r := range rs {
		props[i], at[i], idx[i] = r.PropertyID, ts(r.ReceivedAt), int32(r.Index)
		msgs[i], types[i], codes[i], reasons[i], payloads[i] = r.MessageID, r.Type, r.Code, r.Reason, r.Payload
	}
	// WITH ORDINALITY keeps ids in input order, as SQLite's multi-row
	// INSERT does.
	rows, err := q.x.Query(ctx, `INSERT INTO rejections (property_id, received_at, idx, message_id, type, code, reason, payload)
		SELECT property_id, received_at, idx, message_id, type, code, reason, payload
		FROM unnest($1::text[], $2::timestamptz[], $3::integer[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bytea[])
			WITH ORDINALITY AS u(property_id, received_at, idx, message_id, type, code, reason, payload, n)
		ORDER BY n
		RETURNING id`,
		props, at, idx, msgs, types, codes, reasons, payloads)
	if err != nil {
		return fmt.Errorf("postgres: insert rejections: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("postgres: insert rejections: %w", err)
	}
	if len(ids) != n {
		return fmt.Errorf("postgres: insert rejections: %d ids for %d rows", len(ids), n)
	}
	// The identity takes numbers in the order rows are inserted (ORDER BY
	// n), but RETURNING promises no order: sorted, the ids match the input.
	slices.Sort(ids)
	for i, r := range rs {
		r.ID = ids[i]
	}
	return nil
}

func (q *Queries) DeleteRejectionsMentioning(ctx context.Context, values []string) (int64, error) {
	var n int64
	for _, v := range values {
		if v == "" {
			continue
		}
		// Payloads are bytes and may be cut mid-way or malformed: match the
		// exact bytes, or case-insensitively on the escaped text (which
		// keeps ASCII as is).
		tag, err := q.x.Exec(ctx, `DELETE FROM rejections WHERE position($1::bytea in payload) > 0 OR strpos(lower(encode(payload, 'escape')), lower($2)) > 0`, []byte(v), v)
		if err != nil {
			return n, fmt.Errorf("postgres: delete rejections: %w", err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}

func (q *Queries) PruneRejections(ctx context.Context, keep int) (int64, error) {
	tag, err := q.x.Exec(ctx, `DELETE FROM rejections WHERE id < COALESCE((
		SELECT r2.id FROM rejections r2 WHERE r2.property_id = rejections.property_id ORDER BY r2.id DESC LIMIT 1 OFFSET $1), 0)`, keep-1)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune rejections: %w", err)
	}
	return tag.RowsAffected(), nil
}

func (q *Queries) Rejections(ctx context.Context, rq events.RejectionQuery) ([]*events.Rejection, error) {
	where := []string{"true"}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if rq.PropertyID != "" {
		where = append(where, "property_id = "+arg(rq.PropertyID))
	}
	if rq.BeforeID > 0 {
		where = append(where, "id < "+arg(rq.BeforeID))
	}
	rows, err := q.x.Query(ctx, `SELECT id, property_id, received_at, idx, message_id, type, code, reason, payload FROM rejections WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT `+arg(limit(rq.Limit)), args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: rejections: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*events.Rejection, error) {
		var r events.Rejection
		var at pgtype.Timestamptz
		var idx int32
		if err := row.Scan(&r.ID, &r.PropertyID, &at, &idx, &r.MessageID, &r.Type, &r.Code, &r.Reason, &r.Payload); err != nil {
			return nil, err
		}
		r.ReceivedAt, r.Index = fromTS(at), int(idx)
		return &r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: rejections: %w", err)
	}
	return out, nil
}

func (q *Queries) Cursor(ctx context.Context, name string) (int64, error) {
	var seq int64
	err := q.x.QueryRow(ctx, `SELECT seq FROM cursors WHERE name = $1`, name).Scan(&seq)
	if err == pgx.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: cursor: %w", err)
	}
	return seq, nil
}

func (q *Queries) SetCursor(ctx context.Context, name string, seq int64) error {
	_, err := q.x.Exec(ctx, `INSERT INTO cursors (name, seq) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq`, name, seq)
	if err != nil {
		return fmt.Errorf("postgres: set cursor: %w", err)
	}
	return nil
}
