package events_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/sqlite"
)

// TestRejectedLogIsBounded: the public write key must not be able to grow
// the rejected-events log without limit.
func TestRejectedLogIsBounded(t *testing.T) {
	ctx := context.Background()
	svc := newService(openDB(t, sqlite.Options{}), events.Config{KeepRejections: 20})
	run(t, svc)
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
