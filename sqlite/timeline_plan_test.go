package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/events"
)

// TestTimelineReadsSearch: both arms of a timeline read reach events and
// the timeline table through a key (the person's range of the table, the
// seqs of the backlog, the seqs after the backlog or indexed_through),
// never by scanning a table, whether the person's events wait in the
// backlog or not and whether the reader's process has a backlog or not.
// A scan would make every read as slow as the tables are big.
func TestTimelineReadsSearch(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	open := func() *DB {
		db, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return db
	}
	db, other := open(), open()
	var evs []*events.Event
	for i := range 10 {
		evs = append(evs, &events.Event{PropertyID: "prp", MessageID: "m" + string(rune('a'+i)), PersonID: "per_" + string(rune('a'+i%2)), Type: "track", Timestamp: time.Now(), ReceivedAt: time.Now()})
	}
	insert := func() {
		t.Helper()
		if err := db.InTx(ctx, func(q *Queries) error { return q.InsertEvents(ctx, evs[:5]) }); err != nil {
			t.Fatal(err)
		}
		evs = evs[5:]
	}
	check := func(when string, q *Queries) {
		t.Helper()
		for _, tq := range []events.TimelineQuery{
			{PersonIDs: []string{"per_a"}, Limit: 50},
			{PersonIDs: []string{"per_a", "per_b"}, Limit: 50, Types: []string{"track"}},
		} {
			indexed, args := timelineSQL(tq)
			unindexed, uargs := q.unindexedSQL(tq)
			for _, x := range []struct {
				arm   string
				query string
				args  []any
			}{{"indexed", indexed(packedEventCols), args}, {"unindexed", unindexed(packedEventCols), uargs}} {
				rows, err := q.x.QueryContext(ctx, "EXPLAIN QUERY PLAN "+x.query, x.args...)
				if err != nil {
					t.Fatal(err)
				}
				var plan []string
				for rows.Next() {
					var id, parent, notused int
					var detail string
					if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
						t.Fatal(err)
					}
					plan = append(plan, detail)
				}
				if err := rows.Close(); err != nil {
					t.Fatal(err)
				}
				for _, step := range plan {
					f := strings.Fields(step)
					if len(f) >= 2 && f[0] == "SCAN" && (f[1] == "events" || f[1] == "e" || f[1] == "timeline" || f[1] == "t") {
						t.Errorf("%s, %d persons, %s arm: %q in the plan:\n%s", when, len(tq.PersonIDs), x.arm, step, strings.Join(plan, "\n"))
					}
				}
			}
		}
	}
	insert()
	check("events in the backlog", db.Reader())
	check("no backlog in this process", other.Reader())
	if err := db.FlushTimeline(ctx); err != nil {
		t.Fatal(err)
	}
	insert()
	if err := db.FlushTimeline(ctx); err != nil {
		t.Fatal(err)
	}
	check("backlog empty", db.Reader())
}
