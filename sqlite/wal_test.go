package sqlite_test

import (
	"context"
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
// the WAL itself once it passes MaxWAL.
func TestWALStaysBounded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wal.db")
	db, err := sqlite.Open(ctx, path, sqlite.Options{MaxWAL: 1 << 20, Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// As in the server: background checkpoints run beside the writer.
	ckCtx, stop := context.WithCancel(ctx)
	defer stop()
	go db.RunCheckpointer(ckCtx, 50*time.Millisecond, slog.New(slog.DiscardHandler))
	var largest int64
	// Enough writes to pass the limit many times over, for long enough that
	// the writer's quarter-second checks come round (slow under -race).
	start, written := time.Now(), 0
	for i := 0; (written < 20000 || time.Since(start) < time.Second) && time.Since(start) < 60*time.Second; i++ {
		evs := storetest.FakeEvents(500, 50, fmt.Sprintf("prp_wal_%d", i))
		if err := db.InTx(ctx, func(q *sqlite.Queries) error { return q.InsertEvents(ctx, evs) }); err != nil {
			t.Fatal(err)
		}
		written += len(evs)
		if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > largest {
			largest = fi.Size()
		}
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	// One check interval (250 ms) of writes may pile up past the limit;
	// without the reset the WAL holds everything written (tens of MB).
	if fi.Size() > 16<<20 || largest > 24<<20 {
		t.Fatalf("WAL is %d bytes (largest %d) with a 1 MB limit", fi.Size(), largest)
	}
	n, err := db.Reader().CountEvents(ctx)
	if err != nil || n < 20000 {
		t.Fatalf("only %d events written (%v): the test did not write enough to mean anything", n, err)
	}
	t.Logf("%d events, WAL now %d bytes, largest %d", n, fi.Size(), largest)
}
