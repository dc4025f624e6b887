package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/inmem"
	"github.com/onramp-dev/onramp/sqlite"
)

// gatedSync is a Config.SyncCommits that flushes the WAL only when the
// test lets it, and fails when told to.
type gatedSync struct {
	db      *sqlite.DB
	release chan error
	calls   chan struct{}
}

func (g *gatedSync) sync(ctx context.Context) error {
	g.calls <- struct{}{}
	if err := <-g.release; err != nil {
		return err
	}
	return g.db.SyncWAL(ctx)
}

func TestAnswersWaitForTheFlush(t *testing.T) {
	// With SyncCommits, a request is answered only once a flush after its
	// commit returned; a failed flush answers an error, and the retry is a
	// duplicate of the committed events, answered after the next flush.
	ctx := context.Background()
	db := openDB(t, sqlite.Options{})
	g := &gatedSync{db: db, release: make(chan error), calls: make(chan struct{}, 16)}
	svc := newService(db, events.Config{SyncCommits: g.sync})
	run(t, svc)

	batch := func(ids ...string) events.IngestParams {
		var msgs []json.RawMessage
		for _, id := range ids {
			msgs = append(msgs, json.RawMessage(fmt.Sprintf(`{"type": "track", "messageId": %q, "anonymousId": "anon-sync", "event": "E"}`, id)))
		}
		return events.IngestParams{Batch: &events.Batch{Messages: msgs}, Envelope: events.Envelope{PropertyID: "prp_a", ReceivedAt: time.Now()}}
	}
	type answer struct {
		res *events.Result
		err error
	}
	ingest := func(p events.IngestParams) chan answer {
		ch := make(chan answer, 1)
		go func() {
			res, err := svc.Ingest(ctx, p)
			ch <- answer{res, err}
		}()
		return ch
	}

	flushing := func(answered chan answer) {
		t.Helper()
		select {
		case <-g.calls:
		case a := <-answered:
			t.Fatalf("answered without a flush: %+v, %v", a.res, a.err)
		case <-time.After(10 * time.Second):
			t.Fatal("no flush")
		}
	}
	first := ingest(batch("m1", "m2"))
	flushing(first) // committed, now flushing
	select {
	case a := <-first:
		t.Fatalf("answered before the flush: %+v, %v", a.res, a.err)
	case <-time.After(100 * time.Millisecond):
	}
	// The commit is visible to readers while the flush runs.
	if ids, err := db.Reader().ExistingMessageIDs(ctx, "prp_a", []string{"m1", "m2"}); err != nil || len(ids) != 2 {
		t.Fatalf("committed events: %v, %v", ids, err)
	}
	g.release <- errors.New("disk on fire")
	if a := <-first; a.err == nil || !strings.Contains(a.err.Error(), "disk on fire") || a.res != nil {
		t.Fatalf("a failed flush must fail the request: %+v, %v", a.res, a.err)
	}

	retry := ingest(batch("m1", "m2", "m3"))
	flushing(retry)
	g.release <- nil
	a := <-retry
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.res.Accepted != 1 || a.res.Duplicates != 2 {
		t.Fatalf("retry after a failed flush: accepted %d, duplicates %d; want 1 and 2", a.res.Accepted, a.res.Duplicates)
	}
}

// flushGate is a Config.SyncCommits whose flushes, while closed, wait
// until the test opens it.
type flushGate struct {
	db       *sqlite.DB
	closed   atomic.Bool
	flushed  atomic.Bool // a held flush went through
	release  chan struct{}
	flushing chan struct{}
	// open lets held and later flushes through; call it (deferred) before
	// stopping the node, whose committer may wait on the gate.
	open func()
}

func newFlushGate(db *sqlite.DB) *flushGate {
	g := &flushGate{db: db, release: make(chan struct{}), flushing: make(chan struct{}, 16)}
	g.open = gosync.OnceFunc(func() { g.closed.Store(false); close(g.release) })
	return g
}

func (g *flushGate) sync(ctx context.Context) error {
	if g.closed.Load() {
		g.flushing <- struct{}{}
		<-g.release
		g.flushed.Store(true)
	}
	return g.db.SyncWAL(ctx)
}

func TestBusWaitsForTheFlush(t *testing.T) {
	// The publisher hands subscribers a group's events only after its
	// flush, even when it looks in the store (its tick) while the group is
	// committed and not yet durable.
	db := openDB(t, sqlite.Options{})
	bus := inmem.NewBus(slog.New(slog.DiscardHandler))
	var delivered atomic.Int64
	if err := bus.Subscribe("test", "event.", func(context.Context, onramp.Message) error {
		delivered.Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	g := newFlushGate(db)
	n := startNodeWith(t, db, events.Config{Bus: bus, SoleWriter: true, SyncCommits: g.sync})
	defer n.stop()
	defer g.open()
	ingest(t, n.svc, 0, 10)
	waitFor(t, "the first events delivered", func() bool { return delivered.Load() == 10 })

	g.closed.Store(true)
	done := make(chan struct{})
	go func() { ingest(t, n.svc, 10, 10); close(done) }()
	<-g.flushing
	// Past the publisher's one-second tick, which reads the store when
	// nothing is handed off.
	time.Sleep(1200 * time.Millisecond)
	if got := delivered.Load(); got != 10 {
		t.Fatalf("%d events delivered before their flush", got-10)
	}
	g.open()
	<-done
	waitFor(t, "the second events delivered", func() bool { return delivered.Load() == 20 })
}

func TestBusFlushesWhatItReadsFromTheStore(t *testing.T) {
	// When the handoff has a gap (the first group after a start is never
	// handed over), the publisher reads the store, which also holds
	// groups committed and not yet flushed: it must flush before it
	// publishes them.
	db := openDB(t, sqlite.Options{})
	bus := inmem.NewBus(slog.New(slog.DiscardHandler))
	g := newFlushGate(db)
	n := startNodeWith(t, db, events.Config{Bus: bus, SoleWriter: true, SyncCommits: g.sync})
	defer n.stop()
	defer g.open()
	ingest(t, n.svc, 0, 10)  // seq 1-10: not handed over (the first group)
	ingest(t, n.svc, 10, 10) // seq 11-20: queued after 10, the cursor is at 0
	g.closed.Store(true)
	done := make(chan struct{})
	go func() { ingest(t, n.svc, 20, 10); close(done) }() // seq 21-30 committed, flush held
	<-g.flushing
	var early atomic.Int64
	if err := bus.Subscribe("late", "event.", func(_ context.Context, m onramp.Message) error {
		if m.Seq > 20 && !g.flushed.Load() {
			early.Add(1)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // past the publisher's tick
	if e := early.Load(); e > 0 {
		t.Errorf("%d events of the unflushed group reached the bus before their flush", e)
	}
	g.open()
	<-done
}
