package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/onramp-dev/onramp/sqlite"
	"github.com/onramp-dev/onramp/storetest"
)

// TestWALSync: at FULL (the default) the pinned writer commits at NORMAL
// and the WAL is flushed from outside: by InTx after each commit, by
// SyncWAL for InTxUnsynced. The spare connection stays at FULL. At NORMAL
// nothing is flushed beyond what SQLite does.
func TestWALSync(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		sync                    string
		pinned, spare           int
		inTx, unsynced, syncWAL int64
	}{
		{sync: "", pinned: 1, spare: 2, inTx: 1, unsynced: 0, syncWAL: 1},
		{sync: "FULL", pinned: 1, spare: 2, inTx: 1, unsynced: 0, syncWAL: 1},
		{sync: "NORMAL", pinned: 1, spare: 1},
	} {
		t.Run("synchronous="+tc.sync, func(t *testing.T) {
			db := openTestDB(t, filepath.Join(t.TempDir(), "onramp.db"), sqlite.Options{Synchronous: tc.sync})
			var n atomic.Int64
			db.CountWALSyncs(&n)
			pinned, spare, err := db.Synchronous(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if pinned != tc.pinned || spare != tc.spare {
				t.Errorf("synchronous: pinned writer %d, spare %d; want %d and %d", pinned, spare, tc.pinned, tc.spare)
			}
			calls := 0
			insert := func(q *sqlite.Queries) error {
				calls++
				return q.InsertEvents(ctx, storetest.FakeEvents(3, 1, fmt.Sprintf("prp_s%d", calls)))
			}
			step := func(what string, want int64, f func() error) {
				t.Helper()
				before := n.Load()
				if err := f(); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if got := n.Load() - before; got != want {
					t.Errorf("%s flushed the WAL %d times, want %d", what, got, want)
				}
			}
			step("InTx", tc.inTx, func() error { return db.InTx(ctx, insert) })
			step("InTxUnsynced", tc.unsynced, func() error { return db.InTxUnsynced(ctx, insert) })
			step("SyncWAL", tc.syncWAL, func() error { return db.SyncWAL(ctx) })
		})
	}
}

// TestWALSyncFailureIsFinal: after a failed flush nothing is acknowledged
// any more, not even when a later flush would succeed, and Ping fails (so
// /readyz does).
func TestWALSyncFailureIsFinal(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t, filepath.Join(t.TempDir(), "onramp.db"), sqlite.Options{})
	insert := func(prop string) func(q *sqlite.Queries) error {
		return func(q *sqlite.Queries) error { return q.InsertEvents(ctx, storetest.FakeEvents(2, 1, prop)) }
	}
	if err := db.InTx(ctx, insert("prp_1")); err != nil {
		t.Fatal(err)
	}
	db.FailWALSyncs(errors.New("EIO"))
	if err := db.InTxUnsynced(ctx, insert("prp_2")); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncWAL(ctx); err == nil || !strings.Contains(err.Error(), "EIO") {
		t.Fatalf("the failing flush: %v", err)
	}
	if err := db.SyncWAL(ctx); err == nil {
		t.Fatal("a flush after a failed one succeeded")
	}
	if err := db.InTx(ctx, insert("prp_3")); err == nil {
		t.Fatal("InTx succeeded after a failed flush")
	}
	if err := db.InTxUnsynced(ctx, insert("prp_4")); err == nil {
		t.Fatal("InTxUnsynced succeeded after a failed flush")
	}
	// Neither wrote anything: a write that cannot be acknowledged is not
	// made.
	n, err := db.Reader().CountEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("%d events stored, want the 4 written before and with the failing flush", n)
	}
	if err := db.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded after a failed flush")
	}
}
