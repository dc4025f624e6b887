package sqlite

import (
	"context"
	"os"
	"sync/atomic"
)

// InTxFlushingTimeline is InTx that indexes the whole timeline backlog
// before it commits, for tests of what a sweep does in the transaction
// that also changes the events.
func (db *DB) InTxFlushingTimeline(ctx context.Context, fn func(*Queries) error) error {
	return db.inTx(ctx, sweepAll, fn)
}

// CountWALSyncs makes the WAL flushes count themselves in n. Call it
// while no transaction runs.
func (db *DB) CountWALSyncs(n *atomic.Int64) {
	if db.walSync == nil {
		return
	}
	next := db.walSync.syncFile
	db.walSync.syncFile = func(f *os.File) error {
		n.Add(1)
		return next(f)
	}
}

// Synchronous reads the synchronous pragma of the pinned writer connection
// and of the spare one (0 OFF, 1 NORMAL, 2 FULL).
func (db *DB) Synchronous(ctx context.Context) (pinned, spare int, err error) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if err := db.wconn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&pinned); err != nil {
		return 0, 0, err
	}
	err = db.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&spare)
	return pinned, spare, err
}

// FailWALSyncs makes the next WAL flush fail with err.
func (db *DB) FailWALSyncs(err error) {
	next := db.walSync.syncFile
	db.walSync.syncFile = func(f *os.File) error {
		db.walSync.syncFile = next
		return err
	}
}
