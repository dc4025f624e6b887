package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/sqlite"
	"github.com/onramp-dev/onramp/storetest"
)

// TestInTxSurvivesCancellation: a context cancelled at any moment around a
// transaction (the committer's context ends at shutdown) must never leave
// the pinned writer connection inside an open transaction. The driver
// reports ctx.Err() for a statement that did run when the context ends just
// after it, so a BEGIN that "failed" that way would otherwise stay open and
// every later transaction would fail with "cannot start a transaction
// within a transaction".
func TestInTxSurvivesCancellation(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "tx.db"), sqlite.Options{Synchronous: "OFF"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	cancelled := 0
	for i := 0; i < 400; i++ {
		cctx, cancel := context.WithCancel(ctx)
		// Spread the cancellation over the whole life of the transaction:
		// before BEGIN, during it, during the inserts, around COMMIT.
		timer := time.AfterFunc(time.Duration(i%40)*5*time.Microsecond, cancel)
		evs := storetest.FakeEvents(5, 2, fmt.Sprintf("prp_c%d", i))
		if err := db.InTx(cctx, func(q *sqlite.Queries) error { return q.InsertEvents(cctx, evs) }); err != nil {
			cancelled++
		}
		timer.Stop()
		cancel()
		evs = storetest.FakeEvents(1, 1, fmt.Sprintf("prp_ok%d", i))
		if err := db.InTx(ctx, func(q *sqlite.Queries) error { return q.InsertEvents(ctx, evs) }); err != nil {
			t.Fatalf("round %d: a transaction after a cancelled one failed: %v", i, err)
		}
	}
	t.Logf("%d of 400 transactions were cut by their context", cancelled)
}
