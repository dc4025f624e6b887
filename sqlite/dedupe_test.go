package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/sqlite"
	"github.com/onramp-dev/onramp/storetest"
)

func openDedupeDB(t *testing.T, path string, window int) *sqlite.DB {
	t.Helper()
	return openTestDB(t, path, sqlite.Options{Synchronous: "OFF", DedupeWindow: window})
}

// openTestDB opens and migrates the database at path, closed when the test
// ends.
func openTestDB(t *testing.T, path string, opt sqlite.Options) *sqlite.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

func insert(t *testing.T, db *sqlite.DB, evs []*events.Event) {
	t.Helper()
	if err := db.InTx(context.Background(), func(q *sqlite.Queries) error { return q.InsertEvents(context.Background(), evs) }); err != nil {
		t.Fatal(err)
	}
}

// known returns how many of evs' message ids the writer reports stored.
func known(t *testing.T, db *sqlite.DB, prop string, evs []*events.Event) int {
	t.Helper()
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.MessageID
	}
	var got map[string]bool
	err := db.InTx(context.Background(), func(q *sqlite.Queries) error {
		var err error
		got, err = q.ExistingMessageIDs(context.Background(), prop, ids)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(got)
}

// TestDedupeWindowSurvivesRestartAndSeesOtherWriters: the message ids the
// window knows come back after a restart (from message_hashes), include
// what another connection inserted meanwhile, and a database whose events
// predate message_hashes is hashed on first use.
func TestDedupeWindowSurvivesRestartAndSeesOtherWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	evs := storetest.FakeEvents(450, 20, "prp_a")
	db := openDedupeDB(t, path, 10_000)
	insert(t, db, evs[:300])
	if n := known(t, db, "prp_a", evs); n != 300 {
		t.Fatalf("window knows %d of 300 inserted ids", n)
	}
	// Another process (the CLI) inserts through its own connection.
	if err := db.Writer().InsertEvents(context.Background(), evs[300:400]); err != nil {
		t.Fatal(err)
	}
	if n := known(t, db, "prp_a", evs); n != 400 {
		t.Fatalf("after another connection's insert the window knows %d of 400", n)
	}
	if n := known(t, db, "prp_other", evs); n != 0 {
		t.Fatalf("ids of prp_a reported for another property: %d", n)
	}
	db.Close()

	db = openDedupeDB(t, path, 10_000)
	if n := known(t, db, "prp_a", evs); n != 400 {
		t.Fatalf("after a restart the window knows %d of 400", n)
	}
	// Insert refuses a repeat even when the caller did not check.
	if err := db.InTx(context.Background(), func(q *sqlite.Queries) error {
		return q.InsertEvents(context.Background(), storetest.FakeEvents(1, 20, "prp_a"))
	}); err == nil {
		t.Fatal("a repeated message id was inserted")
	}
	db.Close()

	// A database from before message_hashes: the rows are gone, the events
	// are not; and an event deleted since its insert is no longer a
	// duplicate (the window's hit is confirmed against the row).
	rawSQL(t, path, `DELETE FROM message_hashes`, `DELETE FROM events WHERE seq = 1`)
	db = openDedupeDB(t, path, 10_000)
	if n := known(t, db, "prp_a", evs); n != 399 {
		t.Fatalf("hashed from the events table the window knows %d, want 399", n)
	}
	db.Close()
	if n := rawCount(t, path, `SELECT count(*) FROM message_hashes`); n == 0 {
		t.Fatal("the hashes of the old events were not kept")
	}
}

// TestDedupeWindowForgetsTheOldest: past its size the window forgets the
// oldest ids (a retry that late is stored again, as documented) and the
// table sheds their rows.
func TestDedupeWindowForgetsTheOldest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	db := openDedupeDB(t, path, 150)
	evs := storetest.FakeEvents(1000, 50, "prp_a")
	for i := 0; i < len(evs); i += 100 {
		insert(t, db, evs[i:i+100])
	}
	if n := known(t, db, "prp_a", evs[850:]); n != 150 {
		t.Fatalf("window knows %d of the newest 150", n)
	}
	if n := known(t, db, "prp_a", evs[:800]); n != 0 {
		t.Fatalf("window still knows %d of the oldest 800", n)
	}
	db.Close()
	if n := rawCount(t, path, `SELECT count(*) FROM message_hashes`); n > 5 {
		t.Fatalf("message_hashes keeps %d rows for a window of 150 events", n)
	}
	db = openDedupeDB(t, path, 150)
	if n := known(t, db, "prp_a", evs[850:]); n != 150 {
		t.Fatalf("after a restart the window knows %d of the newest 150", n)
	}
}

func rawSQL(t *testing.T, path string, stmts ...string) {
	t.Helper()
	c, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, s := range stmts {
		if _, err := c.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
}

func rawCount(t *testing.T, path, query string) int {
	t.Helper()
	c, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var n int
	if err := c.QueryRow(query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDedupeWindowFailedLoadLeavesNothingBehind: a load of the window that
// fails half-way must leave nothing in the shared window (a second load
// would add the same ids again, and evicting the copies would later drop
// ids the window should still hold).
func TestDedupeWindowFailedLoadLeavesNothingBehind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	evs := storetest.FakeEvents(300, 20, "prp_a")
	db := openDedupeDB(t, path, 300)
	insert(t, db, evs[:200])
	db.Close()
	// Events 101..200 lack their row (as events from before the table do),
	// and the backfill insert fails once.
	rawSQL(t, path, `DELETE FROM message_hashes WHERE first_seq = 101`,
		`CREATE TRIGGER fail_hashes BEFORE INSERT ON message_hashes BEGIN SELECT RAISE(ABORT, 'injected'); END`)
	db = openDedupeDB(t, path, 300)
	err := db.InTx(context.Background(), func(q *sqlite.Queries) error {
		_, err := q.ExistingMessageIDs(context.Background(), "prp_a", []string{"x"})
		return err
	})
	if err == nil {
		t.Fatal("load did not fail")
	}
	rawSQL(t, path, `DROP TRIGGER fail_hashes`)
	if n := known(t, db, "prp_a", evs[:200]); n != 200 {
		t.Fatalf("after the retried load the window knows %d of 200", n)
	}
	insert(t, db, evs[200:300])
	// A window of 300 holds all 300 events.
	if n := known(t, db, "prp_a", evs); n != 300 {
		t.Fatalf("window of 300 knows %d of the 300 events inserted", n)
	}
}

// TestDedupeWindowRolledBackLoadIsRedone: the first transaction after an
// upgrade hashes the old events and writes their rows; if it rolls back,
// the next one must do it again, or after a restart those events would
// never be hashed.
func TestDedupeWindowRolledBackLoadIsRedone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	evs := storetest.FakeEvents(300, 20, "prp_a")
	db := openDedupeDB(t, path, 10_000)
	insert(t, db, evs[:200])
	db.Close()
	rawSQL(t, path, `DELETE FROM message_hashes`) // events from before the table
	db = openDedupeDB(t, path, 10_000)
	_ = db.InTx(context.Background(), func(q *sqlite.Queries) error {
		if _, err := q.ExistingMessageIDs(context.Background(), "prp_a", []string{"x"}); err != nil {
			return err
		}
		return context.Canceled // any failure of the first ingest group
	})
	insert(t, db, evs[200:300])
	if n := known(t, db, "prp_a", evs); n != 300 {
		t.Fatalf("before restart the window knows %d of 300", n)
	}
	db.Close()
	db = openDedupeDB(t, path, 10_000)
	if n := known(t, db, "prp_a", evs); n != 300 {
		t.Fatalf("after restart the window knows %d of 300", n)
	}
}
