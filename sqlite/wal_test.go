package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/sqlite"
	"github.com/onramp-dev/onramp/storetest"
)

// TestWALStaysBounded: under back-to-back write transactions (which keep
// background checkpoints from ever restarting the WAL) the writer resets
// the WAL itself once it passes MaxWAL. How far the WAL grows between two
// of the writer's checks (at most four a second) depends on how fast the
// machine writes, so the test checks the reset itself: after each burst
// of writes far past the limit, the next commit once a check is due leaves
// a WAL below the limit. Without the reset the file keeps the size of the
// largest burst (SQLite reuses a WAL file but never shrinks it).
//
// It runs with the server's background checkpointer and without it (the
// CLI): with it, SQLite itself restarts a fully checkpointed WAL at the
// next write, so only the run without it shows that the writer's own reset
// works.
func TestWALStaysBounded(t *testing.T) {
	const limit = 1 << 20
	t.Run("checkpointer", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "wal.db")
		testWALStaysBounded(t, path, openWithCheckpointer(t, path, limit, 50*time.Millisecond), limit)
	})
	t.Run("no checkpointer", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "wal.db")
		testWALStaysBounded(t, path, openTestDB(t, path, sqlite.Options{MaxWAL: limit, Synchronous: "NORMAL"}), limit)
	})
}

func testWALStaysBounded(t *testing.T, path string, db *sqlite.DB, limit int64) {
	ctx := context.Background()
	walSize := func() int64 {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	insert := func(n int, property string) {
		evs := storetest.FakeEvents(n, 50, property)
		if err := db.InTx(ctx, func(q *sqlite.Queries) error { return q.InsertEvents(ctx, evs) }); err != nil {
			t.Fatal(err)
		}
	}
	written := 0
	for round := range 4 {
		// A burst runs until the WAL is well past the limit; on a slow
		// machine (-race) the writer's own checks may reset it during the
		// burst, so it also ends after two seconds, as long as the WAL
		// passed the limit at all.
		var largest int64
		for i, start := 0, time.Now(); largest < 3*limit && (largest <= limit || time.Since(start) < 2*time.Second); i++ {
			// Commits of 4,000 events: a few pass the limit between two of
			// the writer's checks even under -race (with 500, the writer's
			// resets kept up once event inserts stopped writing index pages).
			insert(4000, fmt.Sprintf("prp_wal_%d_%d", round, i))
			written += 4000
			largest = max(largest, walSize())
			if time.Since(start) > 30*time.Second {
				t.Fatalf("round %d: the WAL never passed the %d-byte limit between commits in 30 s (largest %d)", round, limit, largest)
			}
		}
		// Past the writer's check interval, one small commit resets it.
		time.Sleep(300 * time.Millisecond)
		insert(1, fmt.Sprintf("prp_wal_%d_tick", round))
		// The file is cut back when the log restarts, at the write after
		// the reset.
		insert(1, fmt.Sprintf("prp_wal_%d_tock", round))
		if size := walSize(); size > limit {
			t.Fatalf("round %d: WAL grew to %d bytes and is still %d after the next commit, with a %d-byte limit", round, largest, size, limit)
		}
		t.Logf("round %d: WAL grew to %d bytes, %d after the next commit", round, largest, walSize())
	}
	n, err := db.Reader().CountEvents(ctx)
	if err != nil || n < int64(written) {
		t.Fatalf("%d events stored (%v), want %d", n, err, written)
	}
}

// TestWALResetDoesNotWaitForReaders: a reader holding a snapshot in the
// WAL (a long console query, an export) would make the writer's RESTART
// wait for it, up to busy_timeout, while every ingest commit waits on the
// write lock. Below four times the limit the reset gives up at once.
func TestWALResetDoesNotWaitForReaders(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wal.db")
	db := openWithCheckpointer(t, path, 8<<20, 20*time.Millisecond)
	insert := func(n int, prop string) time.Duration {
		start := time.Now()
		evs := storetest.FakeEvents(n, 50, prop)
		if err := db.InTx(ctx, func(q *sqlite.Queries) error { return q.InsertEvents(ctx, evs) }); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	insert(2000, "prp_1") // ~1 MB of WAL: past 8 MB/16, far below 8 MB
	// A reader with a snapshot in the WAL.
	rc, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tx, err := rc.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(3 * time.Second); tx.Rollback() }()
	time.Sleep(300 * time.Millisecond)
	if d := insert(1, "prp_2"); d > time.Second {
		t.Errorf("a one-event commit took %v: the WAL reset waited for the reader", d)
	}
}

// openWithCheckpointer opens a database with the given WAL limit and, as
// the server does, background checkpoints beside the writer, both stopped
// when the test ends.
func openWithCheckpointer(t *testing.T, path string, maxWAL int64, every time.Duration) *sqlite.DB {
	t.Helper()
	db := openTestDB(t, path, sqlite.Options{MaxWAL: maxWAL, Synchronous: "NORMAL"})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { db.RunCheckpointer(ctx, every, slog.New(slog.DiscardHandler)); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	return db
}
