package storetest_test

import (
	"context"
	"testing"

	"github.com/onramp-dev/onramp/postgres"
	"github.com/onramp-dev/onramp/postgres/pgtest"
	"github.com/onramp-dev/onramp/storetest"
)

// openPostgres opens a fresh schema of the run's database: one CREATE
// DATABASE per run, one cheap schema per subtest.
func openPostgres(t testing.TB, dbURL string) storetest.Engine {
	db, err := postgres.Open(context.Background(), pgtest.Schema(dbURL), postgres.Options{MaxConns: 8, ReadConns: 4})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return storetest.Adapt(db, postgres.IsRetryable)
}

func TestPostgres(t *testing.T) {
	dbURL := pgtest.Database(t, "Postgres half of the contract suite")
	storetest.Run(t, func(t *testing.T) storetest.Engine { return openPostgres(t, dbURL) })
}
