package main

import (
	"context"
	"testing"

	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/storetest"
)

// TestIngestCommitsFlush: on SQLite at FULL (the default) ingest commits
// without a flush and must get the flush that makes its commits durable;
// at NORMAL the flush does nothing.
func TestIngestCommitsFlush(t *testing.T) {
	ctx := context.Background()
	for _, sync := range []string{"FULL", "NORMAL"} {
		t.Run(sync, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.DataDir = t.TempDir()
			cfg.SQLiteSync = sync
			eng, err := openEngine(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer eng.close()
			if _, err := eng.migrate(ctx); err != nil {
				t.Fatal(err)
			}
			tx, flush := ingestCommits(eng)
			if flush == nil {
				t.Fatal("ingest on SQLite has no flush: its commits would be acknowledged before they are durable")
			}
			if err := tx(ctx, func(s events.Store) error { return s.InsertEvents(ctx, storetest.FakeEvents(3, 1, "prp_w")) }); err != nil {
				t.Fatal(err)
			}
			if err := flush(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
