package events_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/inmem"
	"github.com/onramp-dev/onramp/sqlite"
)

// TestRejectedLogIsBounded: the public write key must not be able to grow
// the rejected-events log without limit.
func TestRejectedLogIsBounded(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "prune.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	svc := events.NewService(events.Config{
		Read: db.Reader(),
		InTx: func(ctx context.Context, fn func(events.Store) error) error {
			return db.InTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
		},
		Clock: onramp.SystemClock{}, Log: log, Bus: inmem.NewBus(log), KeepRejections: 20,
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { svc.Run(runCtx); close(done) }()
	defer func() { cancel(); <-done }()
	for i := 0; i < 30; i++ {
		body := fmt.Sprintf(`{"batch":[{"type":"track","userId":"u","messageId":"bad-%d"},{"type":"track","userId":"u","event":"ok","messageId":"ok-%d"}]}`, i, i)
		b, err := events.DecodeBody([]byte(body), "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Ingest(ctx, events.IngestParams{Batch: b, Envelope: events.Envelope{PropertyID: "prp_1", ReceivedAt: time.Now().UTC()}}); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := svc.Rejections(ctx, events.RejectionQuery{PropertyID: "prp_1", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// Pruning runs after each group's callers were answered, once a tenth
	// of the bound accumulated: the log holds at most bound + bound/10.
	if len(rs) > 22 || len(rs) < 18 || rs[0].MessageID != "bad-29" {
		t.Fatalf("log holds %d entries (newest %q); want at most 22, the newest kept", len(rs), rs[0].MessageID)
	}
}
