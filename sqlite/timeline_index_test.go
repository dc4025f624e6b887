package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/sqlite"
)

// timelineEvents makes n events spread over persons per_0 … per_{k-1},
// with timestamps that do not follow the insert order.
func timelineEvents(tag string, n, k int) []*events.Event {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var evs []*events.Event
	for i := range n {
		typ, name := "track", fmt.Sprintf("e%d", i%3)
		if i%4 == 0 {
			typ, name = "page", ""
		}
		e := &events.Event{PropertyID: "prp_1", MessageID: fmt.Sprintf("%s-%d", tag, i), PersonID: fmt.Sprintf("per_%d", i%k), Type: typ,
			Timestamp: base.Add(time.Duration((i*7919)%1000) * time.Minute), ReceivedAt: base}
		e.SetNameColumn(name)
		evs = append(evs, e)
	}
	return evs
}

// timelineQueries are reads with and without every filter.
func timelineQueries(persons ...string) []events.TimelineQuery {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	return []events.TimelineQuery{
		{PersonIDs: persons, Limit: 1000},
		{PersonIDs: persons, Limit: 3},
		{PersonIDs: persons, Limit: 1000, Types: []string{"page"}},
		{PersonIDs: persons, Limit: 1000, Names: []string{"e1"}},
		{PersonIDs: persons, Limit: 1000, PropertyID: "prp_1"},
		{PersonIDs: persons, Limit: 1000, From: base.Add(100 * time.Minute), To: base.Add(600 * time.Minute)},
		{PersonIDs: persons, Limit: 1000, Before: &events.Cursor{Timestamp: base.Add(500 * time.Minute), Seq: 1 << 40}},
	}
}

func readTimeline(t *testing.T, q *sqlite.Queries, tq events.TimelineQuery) []int64 {
	t.Helper()
	evs, err := q.Timeline(context.Background(), tq)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, e := range evs {
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

// TestTimelineSameBeforeAndAfterSweeps: a timeline read gives the same
// events whether they wait in the backlog, are read by a process that has
// no backlog (scanning the events after indexed_through), or are in the
// timeline table; flushing indexes every event.
func TestTimelineSameBeforeAndAfterSweeps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	db := openTestDB(t, path, sqlite.Options{Synchronous: "OFF"})
	for i := range 3 {
		insert(t, db, timelineEvents(fmt.Sprint(i), 40, 5))
	}
	if n := rawCount(t, path, `SELECT count(*) FROM timeline`); n >= 120 {
		t.Fatalf("timeline rows before the backlog was swept: %d, want fewer than the 120 events", n)
	}
	other := openTestDB(t, path, sqlite.Options{Synchronous: "OFF"})
	var queries []events.TimelineQuery
	queries = append(queries, timelineQueries("per_1")...)
	queries = append(queries, timelineQueries("per_2", "per_4")...)
	before := map[int][]int64{}
	for i, tq := range queries {
		before[i] = readTimeline(t, db.Reader(), tq)
		if got := readTimeline(t, other.Reader(), tq); !slices.Equal(got, before[i]) {
			t.Fatalf("query %d: a process without the backlog reads %v, the writer's process %v", i, got, before[i])
		}
	}
	if len(before[0]) != 24 {
		t.Fatalf("per_1 has %d events, want 24", len(before[0]))
	}
	if err := db.FlushTimeline(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM timeline`); n != 120 {
		t.Fatalf("timeline rows after the flush: %d, want 120", n)
	}
	if n := rawCount(t, path, `SELECT indexed_through FROM timeline_state`); n != 120 {
		t.Fatalf("indexed_through after the flush: %d, want 120", n)
	}
	for i, tq := range queries {
		for _, q := range []*sqlite.Queries{db.Reader(), other.Reader()} {
			if got := readTimeline(t, q, tq); !slices.Equal(got, before[i]) {
				t.Fatalf("query %d after the flush: %v, before %v", i, got, before[i])
			}
		}
	}
}

// TestTimelineBacklogRebuiltAfterCrash: a process that dies with events in
// its backlog leaves them to the next writer, which finds them after
// indexed_through and indexes them.
func TestTimelineBacklogRebuiltAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	crashed := openTestDB(t, path, sqlite.Options{Synchronous: "OFF"})
	insert(t, crashed, timelineEvents("a", 50, 7))
	insert(t, crashed, timelineEvents("b", 50, 7))
	// crashed is never used again, as if killed; a new process starts.
	next := openTestDB(t, path, sqlite.Options{Synchronous: "OFF"})
	insert(t, next, timelineEvents("c", 10, 7))
	if err := next.FlushTimeline(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM timeline t WHERE t.seq = e.seq AND t.person_id = e.person_id AND t.ts = e.ts)`); n != 0 {
		t.Fatalf("%d events without a timeline row", n)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM timeline`); n != 110 {
		t.Fatalf("timeline rows: %d, want 110", n)
	}
}

// TestTimelineNoRowOutlivesItsEvent: persons deleted while their events
// wait in a backlog, by the same process or by another one, leave no
// timeline rows once the backlog is swept.
func TestTimelineNoRowOutlivesItsEvent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db := openTestDB(t, path, sqlite.Options{Synchronous: "OFF"})
	other := openTestDB(t, path, sqlite.Options{Synchronous: "OFF"})
	insert(t, db, timelineEvents("a", 60, 6))
	insert(t, db, timelineEvents("b", 60, 6))
	del := func(d *sqlite.DB, ids ...string) {
		t.Helper()
		if err := d.InTx(ctx, func(q *sqlite.Queries) error { return q.DeletePersons(ctx, ids) }); err != nil {
			t.Fatal(err)
		}
	}
	del(db, "per_0")
	// per_4's events wait in db's backlog when another process deletes it.
	del(other, "per_4")
	// One transaction that inserts, deletes and sweeps the whole backlog.
	if err := db.InTxFlushingTimeline(ctx, func(q *sqlite.Queries) error {
		if err := q.InsertEvents(ctx, timelineEvents("c", 12, 6)); err != nil {
			return err
		}
		return q.DeletePersons(ctx, []string{"per_2"})
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.FlushTimeline(ctx); err != nil {
		t.Fatal(err)
	}
	// And with no other process involved: per_5's events of batch d wait
	// in the backlog when the transaction that sweeps it deletes per_5.
	insert(t, db, timelineEvents("d", 12, 6))
	if err := db.InTxFlushingTimeline(ctx, func(q *sqlite.Queries) error { return q.DeletePersons(ctx, []string{"per_5"}) }); err != nil {
		t.Fatal(err)
	}
	// Batches c and d gave per_0 and per_4 two new events each after their
	// deletion, per_2 two after its deletion (d).
	for p, want := range map[string]int{"per_0": 4, "per_4": 4, "per_2": 2, "per_3": 24, "per_5": 0} {
		if n := rawCount(t, path, `SELECT count(*) FROM timeline WHERE person_id = '`+p+`'`); n != want {
			t.Errorf("%s has %d timeline rows, want %d", p, n, want)
		}
		if got := readTimeline(t, db.Reader(), events.TimelineQuery{PersonIDs: []string{p}, Limit: 100}); len(got) != want {
			t.Errorf("%s has %d events on its timeline, want %d", p, len(got), want)
		}
	}
	if n := rawCount(t, path, `SELECT count(*) FROM timeline t WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.seq = t.seq)`); n != 0 {
		t.Fatalf("%d timeline rows without their event", n)
	}
}

// TestPageSizeOption: a new database file gets the page size asked for;
// an existing one keeps its own.
func TestPageSizeOption(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	db := openTestDB(t, path, sqlite.Options{PageSize: 16384})
	insert(t, db, timelineEvents("a", 10, 2))
	if n := rawCount(t, path, `PRAGMA page_size`); n != 16384 {
		t.Fatalf("page size %d, want 16384", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	openTestDB(t, path, sqlite.Options{PageSize: 8192})
	if n := rawCount(t, path, `PRAGMA page_size`); n != 16384 {
		t.Fatalf("page size of the existing file %d, want 16384", n)
	}
}

// TestTimelineKeepsEventsInsertedAfterADelete: a transaction that deletes
// a person and then stores new events of the same person id keeps those
// events on the timeline. Deleting a person forgets the backlog entries it
// had, not the ones the transaction stages afterwards: those events exist,
// and the backlog's covered mark goes past them at commit, so an event
// left out of the backlog would never get its timeline row, and neither
// readers nor a later DeletePersons would find it again.
func TestTimelineKeepsEventsInsertedAfterADelete(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db := openTestDB(t, path, sqlite.Options{Synchronous: "OFF"})
	// per_0 … per_3 with events waiting in the (loaded) backlog.
	insert(t, db, timelineEvents("a", 40, 4))
	again := timelineEvents("b", 8, 4)
	if err := db.InTx(ctx, func(q *sqlite.Queries) error {
		if err := q.DeletePersons(ctx, []string{"per_1"}); err != nil {
			return err
		}
		if err := q.InsertEvents(ctx, again); err != nil {
			return err
		}
		// Deleting someone else leaves per_1's new events alone.
		return q.DeletePersons(ctx, []string{"per_2"})
	}); err != nil {
		t.Fatal(err)
	}
	tq := events.TimelineQuery{PersonIDs: []string{"per_1"}, Limit: 100}
	check := func(when string) {
		t.Helper()
		if got, want := readTimeline(t, db.Reader(), tq), storedTimeline(t, path, "per_1"); !slices.Equal(got, want) {
			t.Errorf("%s: per_1's timeline is %v, its stored events %v", when, got, want)
		}
	}
	check("in the backlog")
	// More ingest: the sweeps and indexed_through move past those events.
	insert(t, db, timelineEvents("c", 8, 4))
	if err := db.FlushTimeline(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the flush")
	if n := rawCount(t, path, `SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM timeline t WHERE t.person_id = e.person_id AND t.ts = e.ts AND t.seq = e.seq)`); n != 0 {
		t.Errorf("%d events without a timeline row after the flush", n)
	}
	// A later deletion must still find them.
	if err := db.InTx(ctx, func(q *sqlite.Queries) error { return q.DeletePersons(ctx, []string{"per_1"}) }); err != nil {
		t.Fatal(err)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM events WHERE person_id = 'per_1'`); n != 0 {
		t.Errorf("per_1 deleted, but %d of its events are still stored", n)
	}
}

// storedTimeline is the person's timeline as the events table has it,
// read by another connection without the timeline table.
func storedTimeline(t *testing.T, path, person string) []int64 {
	t.Helper()
	c, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rows, err := c.Query(`SELECT seq FROM events WHERE person_id = ? ORDER BY ts DESC, seq DESC`, person)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var seqs []int64
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return seqs
}
