package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/sqlite"
)

// TestTimelineReadsRacingSweeps: timeline reads that run while the writer
// commits, sweeps and catches up with another connection's events find
// every event committed before they started, each once, newest first.
func TestTimelineReadsRacingSweeps(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db := openTestDB(t, path, sqlite.Options{Synchronous: "OFF"})
	other := openTestDB(t, path, sqlite.Options{Synchronous: "OFF"})
	const persons = 6
	var mu sync.Mutex
	committed := map[string][]int64{}
	note := func(evs []*events.Event) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range evs {
			committed[e.PersonID] = append(committed[e.PersonID], e.Seq)
		}
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer done.Store(true)
		base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		for i := range 150 {
			var evs []*events.Event
			for j := range 20 {
				e := &events.Event{PropertyID: "prp_1", MessageID: fmt.Sprintf("m%d-%d", i, j), PersonID: fmt.Sprintf("per_%d", (i+j)%persons), Type: "track",
					Timestamp: base.Add(time.Duration((i*31+j*7919)%5000) * time.Second), ReceivedAt: base}
				e.SetNameColumn("x")
				evs = append(evs, e)
			}
			var err error
			switch {
			case i%10 == 9:
				// Another process's commit, which the writer catches up with.
				err = other.Writer().InsertEvents(ctx, evs)
			case i%25 == 24:
				err = db.FlushTimeline(ctx)
				if err == nil {
					err = db.InTx(ctx, func(q *sqlite.Queries) error { return q.InsertEvents(ctx, evs) })
				}
			default:
				err = db.InTx(ctx, func(q *sqlite.Queries) error { return q.InsertEvents(ctx, evs) })
			}
			if err != nil {
				t.Error(err)
				return
			}
			note(evs)
		}
	}()
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reads := 0
			for !done.Load() || reads == 0 {
				p := fmt.Sprintf("per_%d", reads%persons)
				ps := []string{p}
				if r == 1 {
					ps = append(ps, fmt.Sprintf("per_%d", (reads+1)%persons))
				}
				mu.Lock()
				want := map[int64]bool{}
				for _, q := range ps {
					for _, s := range committed[q] {
						want[s] = true
					}
				}
				mu.Unlock()
				reader := db.Reader()
				if r == 2 {
					reader = other.Reader()
				}
				evs, err := reader.Timeline(ctx, events.TimelineQuery{PersonIDs: ps, Limit: 100000})
				if err != nil {
					t.Error(err)
					return
				}
				seen := map[int64]bool{}
				for i, e := range evs {
					if seen[e.Seq] {
						t.Errorf("%v: event %d read twice", ps, e.Seq)
						return
					}
					seen[e.Seq] = true
					if i > 0 && (e.Timestamp.After(evs[i-1].Timestamp) || e.Timestamp.Equal(evs[i-1].Timestamp) && e.Seq > evs[i-1].Seq) {
						t.Errorf("%v: not newest first at %d", ps, i)
						return
					}
				}
				for s := range want {
					if !seen[s] {
						t.Errorf("%v: committed event %d missing from a later read (read %d, reader %d)", ps, s, reads, r)
						return
					}
				}
				reads++
			}
		}()
	}
	wg.Wait()
}
