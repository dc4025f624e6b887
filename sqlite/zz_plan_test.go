package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/events"
)

func TestZZPlan(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "x.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var evs []*events.Event
	for i := 0; i < 10; i++ {
		evs = append(evs, &events.Event{PropertyID: "prp", MessageID: "m" + string(rune('a'+i)), PersonID: "per_a", Type: "track", Timestamp: time.Now(), ReceivedAt: time.Now()})
	}
	if err := db.InTx(ctx, func(q *Queries) error { return q.InsertEvents(ctx, evs) }); err != nil {
		t.Fatal(err)
	}
	db.FlushTimeline(ctx)
	for _, ps := range [][]string{{"per_a"}, {"per_a", "per_b"}} {
		q := db.Reader()
		tq := events.TimelineQuery{PersonIDs: ps, Limit: 50}
		query, args := timelineSQL(tq)
		q2, args2 := q.unindexedSQL(tq)
		for _, x := range []struct{ q string; a []any }{{query(packedEventCols), args}, {q2(packedEventCols), args2}} {
			rows, err := q.x.QueryContext(ctx, "EXPLAIN QUERY PLAN "+x.q, x.a...)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id, parent, notused int
				var detail string
				rows.Scan(&id, &parent, &notused, &detail)
				t.Log(id, parent, detail)
			}
			rows.Close()
		}
	}
}
