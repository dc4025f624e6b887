package events_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/inmem"
	"github.com/onramp-dev/onramp/sqlite"
)

// openDB opens a migrated SQLite database in a temp folder, closed when
// the test ends.
func openDB(tb testing.TB, opt sqlite.Options) *sqlite.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "events.db"), opt)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return db
}

// newService wires an events Service over db as cmd/onramp does; cfg
// supplies the optional settings (Bus defaults to a fresh in-process bus,
// Read to the database's readers).
func newService(db *sqlite.DB, cfg events.Config) *events.Service {
	if cfg.SyncCommits == nil {
		cfg.SyncCommits = db.SyncWAL
	}
	return wire(db, cfg, db.InTxUnsynced)
}

// newPlainService is newService whose transactions are durable when they
// return, with no flush after them (neither SyncCommits nor SplitCommit):
// the committer answers each group itself.
func newPlainService(db *sqlite.DB, cfg events.Config) *events.Service {
	return wire(db, cfg, db.InTx)
}

func wire(db *sqlite.DB, cfg events.Config, inTx func(context.Context, func(*sqlite.Queries) error) error) *events.Service {
	log := slog.New(slog.DiscardHandler)
	if cfg.Read == nil {
		cfg.Read = db.Reader()
	}
	cfg.InTx = func(ctx context.Context, fn func(events.Store) error) error {
		return inTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
	}
	cfg.Clock, cfg.Log, cfg.IsRetryable = onramp.SystemClock{}, log, sqlite.IsRetryable
	if cfg.Bus == nil {
		cfg.Bus = inmem.NewBus(log)
	}
	return events.NewService(cfg)
}

// run starts svc's committer until the test ends.
func run(tb testing.TB, svc *events.Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
}
