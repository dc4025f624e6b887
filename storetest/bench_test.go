package storetest_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/onramp-dev/onramp/postgres/pgtest"
	"github.com/onramp-dev/onramp/sqlite"
	"github.com/onramp-dev/onramp/storetest"
)

// BenchmarkRawInsert measures events/s stored in batches of 100, ten
// batches per transaction: the store's ceiling for HTTP ingest.
func BenchmarkRawInsert(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchRawInsert(b, openSQLite(b)) })
	b.Run("sqlite-sync-normal", func(b *testing.B) {
		db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "onramp.db"), sqlite.Options{Synchronous: "NORMAL"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		benchRawInsert(b, storetest.Adapt(db, sqlite.IsRetryable))
	})
	b.Run("postgres", func(b *testing.B) {
		benchRawInsert(b, openPostgres(b, pgtest.Database(b, "Postgres raw insert benchmark")))
	})
}

func benchRawInsert(b *testing.B, e storetest.Engine) {
	ctx := context.Background()
	if _, err := e.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	const batch, perTx = 100, 10
	evs := storetest.FakeEvents(batch*perTx, 50, "prp_bench")
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.MessageID
	}
	n := 0
	for round := 0; b.Loop(); round++ {
		suffix := "-" + strconv.Itoa(round)
		for i, ev := range evs {
			ev.MessageID = ids[i] + suffix
		}
		err := e.InTx(ctx, func(s storetest.Store) error {
			for i := 0; i < len(evs); i += batch {
				if err := s.InsertEvents(ctx, evs[i:i+batch]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		n += len(evs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func TestRawInsertRate(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) storetest.Engine{
		"sqlite": func(t *testing.T) storetest.Engine { return openSQLite(t) },
		"postgres": func(t *testing.T) storetest.Engine {
			return openPostgres(t, pgtest.Database(t, "Postgres raw insert rate"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := open(t)
			ctx := context.Background()
			if _, err := e.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			rate, err := storetest.RawInsertRate(ctx, e, 3000)
			if err != nil || rate <= 0 {
				t.Fatalf("RawInsertRate = %v, %v", rate, err)
			}
			t.Logf("%s: %.0f events/s", name, rate)
			// It cleans up after itself.
			if n, err := e.Reader().CountEvents(ctx); err != nil || n != 0 {
				t.Errorf("events left after RawInsertRate: %d, %v", n, err)
			}
		})
	}
}
