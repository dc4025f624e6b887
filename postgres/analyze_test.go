package postgres_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onramp-dev/onramp/postgres"
	"github.com/onramp-dev/onramp/postgres/pgtest"
	"github.com/onramp-dev/onramp/storetest"
)

// TestAnalyzerGivesYoungTablesStatistics: a table that grew from empty gets
// analysed by the server within seconds, not at autovacuum's next look (a
// minute or more), so that cached plans stop treating it as empty.
func TestAnalyzerGivesYoungTablesStatistics(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(pgtest.Database(t, "Postgres engine tests"))
	db := open(t, url)
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	analysed := func() bool {
		var at *time.Time
		err := conn.QueryRow(ctx, `SELECT greatest(last_analyze, last_autoanalyze) FROM pg_stat_user_tables
			WHERE schemaname = current_schema() AND relname = 'events'`).Scan(&at)
		if err != nil {
			t.Fatal(err)
		}
		return at != nil
	}
	if analysed() {
		t.Fatal("events analysed before anything was written")
	}
	if err := db.InTx(ctx, func(q *postgres.Queries) error { return q.InsertEvents(ctx, storetest.FakeEvents(3000, 50, "prp_a")) }); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { db.RunUpkeep(runCtx, slog.New(slog.DiscardHandler)); close(done) }()
	defer func() { stop(); <-done }()
	deadline := time.Now().Add(15 * time.Second)
	for !analysed() {
		if time.Now().After(deadline) {
			t.Fatal("events not analysed 15 s after 3,000 rows were written to it")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
