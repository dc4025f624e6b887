package sqlite

import "context"

// InTxFlushingTimeline is InTx that indexes the whole timeline backlog
// before it commits, for tests of what a sweep does in the transaction
// that also changes the events.
func (db *DB) InTxFlushingTimeline(ctx context.Context, fn func(*Queries) error) error {
	return db.inTx(ctx, sweepAll, fn)
}
