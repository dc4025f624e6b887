package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// RunUpkeep is what a server does for the database besides answering:
// statistics for young tables every analyzeEvery (RunAnalyzer's round) and,
// every foldEvery, the identity_writes rows of connections that are gone
// folded into one, until ctx ends.
func (db *DB) RunUpkeep(ctx context.Context, log *slog.Logger) {
	analyze, fold := time.NewTicker(analyzeEvery), time.NewTicker(foldEvery)
	defer analyze.Stop()
	defer fold.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-analyze.C:
			err = db.analyzeYoung(ctx)
		case <-fold.C:
			err = db.FoldIdentityWrites(ctx)
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("postgres upkeep", "err", err)
		}
	}
}

const (
	analyzeEvery = 2 * time.Second
	foldEvery    = time.Minute
)

// FoldIdentityWrites moves the counts of identity_writes rows whose
// connection has ended into one "retired" row. Every connection that
// writes persons or identifiers outside ingest counts under its own row
// (0011_identity_writes.sql), and pools replace connections all the time;
// ingest sums everyone else's rows once a group, so the rows must not pile
// up. The total stays the same, so no ingest sees a change that is not
// one. A backend pid that a new connection reuses before the fold just
// carries on counting in its row.
func (db *DB) FoldIdentityWrites(ctx context.Context) error {
	_, err := db.w.Exec(ctx, `WITH gone AS (
			DELETE FROM identity_writes w
			WHERE w.writer LIKE 'pid:%'
				AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE w.writer = 'pid:' || a.pid)
			RETURNING n)
		INSERT INTO identity_writes (writer, n)
		SELECT 'retired', sum(n) FROM gone HAVING count(*) > 0
		ON CONFLICT (writer) DO UPDATE SET n = identity_writes.n + excluded.n`)
	if err != nil {
		return fmt.Errorf("postgres: fold identity writes: %w", err)
	}
	return nil
}
