package storetest_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/onramp-dev/onramp/sqlite"
	"github.com/onramp-dev/onramp/storetest"
)

func openSQLite(t testing.TB) storetest.Engine {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "onramp.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return storetest.Adapt(db, sqlite.IsRetryable)
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Engine { return openSQLite(t) })
}
