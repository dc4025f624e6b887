package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/inmem"
	"github.com/onramp-dev/onramp/sqlite"
)

// node is one running events Service with its publisher over a database.
type node struct {
	svc  *events.Service
	stop func()
}

func startNode(t *testing.T, db *sqlite.DB, bus onramp.Bus) *node {
	return startNodeWith(t, db, events.Config{Bus: bus})
}

func startNodeWith(t *testing.T, db *sqlite.DB, cfg events.Config) *node {
	t.Helper()
	svc := newService(db, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); svc.Run(ctx) }()
	pub := svc.NewPublisher()
	pub.SaveEvery = 0
	go func() { defer wg.Done(); _ = pub.Run(ctx) }()
	return &node{svc: svc, stop: func() { cancel(); wg.Wait() }}
}

func ingest(t *testing.T, svc *events.Service, from, n int) {
	t.Helper()
	var msgs []map[string]any
	for i := from; i < from+n; i++ {
		msgs = append(msgs, map[string]any{"type": "track", "event": "E", "anonymousId": "a1", "messageId": fmt.Sprintf("m%d", i)})
	}
	body, _ := json.Marshal(map[string]any{"batch": msgs})
	b, err := events.DecodeBody(body, "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Ingest(context.Background(), events.IngestParams{Batch: b, Envelope: events.Envelope{PropertyID: "prp_1", ReceivedAt: time.Now().UTC()}})
	if err != nil || res.Accepted != n {
		t.Fatalf("ingest: %v %+v", err, res)
	}
}

// recorder counts deliveries per message id and can be told to fail.
type recorder struct {
	mu    sync.Mutex
	seen  map[string]int
	fails int
}

func (r *recorder) handle(ctx context.Context, m onramp.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fails > 0 {
		r.fails--
		return errors.New("subscriber not ready")
	}
	var e events.Event
	if err := json.Unmarshal(m.Payload, &e); err != nil || fmt.Sprintf("evt_%d", e.Seq) != m.ID || m.Topic != "event.track" {
		return fmt.Errorf("bad message %s %s: %v", m.ID, m.Topic, err)
	}
	r.seen[m.ID]++
	return nil
}

func (r *recorder) count() (distinct, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.seen {
		distinct++
		total += n
	}
	return
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBusAtLeastOnce: every committed event reaches the subscriber, a
// failing subscriber gets it again, and a restart neither loses nor (beyond
// what the saved cursor allows) repeats anything.
func TestBusAtLeastOnce(t *testing.T) {
	for _, sole := range []bool{false, true} {
		t.Run(fmt.Sprintf("sole-writer=%v", sole), func(t *testing.T) { testBusAtLeastOnce(t, sole) })
	}
}

func testBusAtLeastOnce(t *testing.T, sole bool) {
	db := openDB(t, sqlite.Options{})
	rec := &recorder{seen: map[string]int{}, fails: 3}
	bus := inmem.NewBus(slog.New(slog.DiscardHandler))
	bus.Backoff = time.Millisecond
	if err := bus.Subscribe("test", "event.", rec.handle); err != nil {
		t.Fatal(err)
	}
	n1 := startNodeWith(t, db, events.Config{Bus: bus, SoleWriter: sole})
	ingest(t, n1.svc, 0, 50)
	waitFor(t, "50 events delivered", func() bool { d, _ := rec.count(); return d == 50 })
	n1.stop()

	// Events committed while nobody publishes (the node "crashed" before
	// its publisher ran) are delivered by the next node.
	svc := newService(db, events.Config{Bus: bus})
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(runCtx); close(done) }()
	ingest(t, svc, 50, 30)
	cancel()
	<-done

	n2 := startNodeWith(t, db, events.Config{Bus: bus, SoleWriter: sole})
	defer n2.stop()
	waitFor(t, "80 events delivered", func() bool { d, _ := rec.count(); return d == 80 })
	ingest(t, n2.svc, 80, 20)
	waitFor(t, "100 events delivered", func() bool { d, _ := rec.count(); return d == 100 })
	time.Sleep(100 * time.Millisecond)
	distinct, total := rec.count()
	if distinct != 100 {
		t.Fatalf("delivered %d distinct events, want 100", distinct)
	}
	// The cursor is saved after every publish here (SaveEvery 0), so a clean
	// restart repeats nothing.
	if total != 100 {
		t.Fatalf("delivered %d times for 100 events; a clean restart must not repeat", total)
	}
}

// TestBusRejections: rejections reach the bus after their commit, after
// the accepted events of the same request, with the id the log gave them
// and the payload as the API shows it.
func TestBusRejections(t *testing.T) {
	db := openDB(t, sqlite.Options{})
	bus := inmem.NewBus(slog.New(slog.DiscardHandler))
	var mu sync.Mutex
	var got []onramp.Message
	if err := bus.Subscribe("test", "", func(_ context.Context, m onramp.Message) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, db, bus)
	defer n.stop()
	body := []byte(`{"batch":[{"type":"track","event":"Ok","anonymousId":"a1","messageId":"ok-1"},{"type":"track","anonymousId":"a1","messageId":"bad-1"}]}`)
	b, err := events.DecodeBody(body, "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := n.svc.Ingest(context.Background(), events.IngestParams{Batch: b, Envelope: events.Envelope{PropertyID: "prp_1", ReceivedAt: time.Now().UTC()}})
	if err != nil || res.Accepted != 1 || len(res.Rejected) != 1 {
		t.Fatalf("ingest: %v %+v", err, res)
	}
	waitFor(t, "event and rejection published", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 2 })
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Topic != "event.track" || got[1].Topic != events.RejectionTopic+events.CodeMissingEvent {
		t.Fatalf("published %+v, want the event then the rejection", got)
	}
	logged, err := n.svc.Rejections(context.Background(), events.RejectionQuery{})
	if err != nil || len(logged) != 1 {
		t.Fatalf("log: %v %v", logged, err)
	}
	want, _ := json.Marshal(logged[0].View())
	if got[1].ID != fmt.Sprintf("rej_%d", logged[0].ID) || got[1].Seq != logged[0].ID || string(got[1].Payload) != string(want) {
		t.Fatalf("rejection message %s %d %s, want rej_%d %s", got[1].ID, got[1].Seq, got[1].Payload, logged[0].ID, want)
	}
}

// TestBusHandoffInOrder: with the committer handing events to the
// publisher in memory (SoleWriter), concurrent requests, more of them than
// the handoff holds, still reach the subscriber each once and in commit
// order, as reading them back from the store would deliver them.
func TestBusHandoffInOrder(t *testing.T) {
	db := openDB(t, sqlite.Options{})
	bus := inmem.NewBus(slog.New(slog.DiscardHandler))
	var mu sync.Mutex
	var seqs []int64
	if err := bus.Subscribe("test", "event.", func(_ context.Context, m onramp.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seqs = append(seqs, m.Seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	reads := &countingReads{Store: db.Reader()}
	n := startNodeWith(t, db, events.Config{Bus: bus, SoleWriter: true, Read: reads})
	defer n.stop()
	const clients, each = 8, 30
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				ingest(t, n.svc, (c*each+i)*100, 100)
			}
		})
	}
	wg.Wait()
	const total = clients * each * 100
	waitFor(t, "every event delivered", func() bool { mu.Lock(); defer mu.Unlock(); return len(seqs) >= total })
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(seqs) != total {
		t.Fatalf("delivered %d messages for %d events", len(seqs), total)
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("message %d has seq %d, want %d: the handoff skipped, repeated or reordered", i, s, i+1)
		}
	}
	// The handoff was used: the store was read for the first group and
	// after overflows, not for every group (240 requests).
	if r := reads.eventsAfter.Load(); r > 60 {
		t.Errorf("the publisher read the store %d times for %d requests: the handoff is not used", r, clients*each)
	}
}

// countingReads counts the publisher's reads of committed events.
type countingReads struct {
	events.Store
	eventsAfter atomic.Int64
}

func (c *countingReads) EventsAfter(ctx context.Context, seq int64, limit int) ([]*events.Event, error) {
	c.eventsAfter.Add(1)
	return c.Store.EventsAfter(ctx, seq, limit)
}

// TestBusHandoffSeesOtherWriters: events another process inserts between
// two of the server's commits (the CLI on the same SQLite file) are not in
// the handoff; the publisher must still deliver them, from the store.
func TestBusHandoffSeesOtherWriters(t *testing.T) {
	db := openDB(t, sqlite.Options{})
	rec := &recorder{seen: map[string]int{}}
	bus := inmem.NewBus(slog.New(slog.DiscardHandler))
	if err := bus.Subscribe("test", "event.", rec.handle); err != nil {
		t.Fatal(err)
	}
	n := startNodeWith(t, db, events.Config{Bus: bus, SoleWriter: true})
	defer n.stop()
	ingest(t, n.svc, 0, 10)
	waitFor(t, "10 events delivered", func() bool { d, _ := rec.count(); return d == 10 })
	// Another "process": its own service over the same file, no publisher.
	other := newService(db, events.Config{})
	otherCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { other.Run(otherCtx); close(done) }()
	ingest(t, other, 10, 5)
	cancel()
	<-done
	ingest(t, n.svc, 15, 10)
	waitFor(t, "25 events delivered", func() bool { d, _ := rec.count(); return d == 25 })
}

// TestBusHandoffPayloadIsWhatTheStoreHolds: the handoff publishes the event
// as parsed, a store read (fallback, restart, redelivery) as stored; they
// must be the same bytes (nanoseconds and time zones included).
func TestBusHandoffPayloadIsWhatTheStoreHolds(t *testing.T) {
	db := openDB(t, sqlite.Options{})
	bus := inmem.NewBus(slog.New(slog.DiscardHandler))
	var mu sync.Mutex
	got := map[int64][]byte{}
	if err := bus.Subscribe("test", "event.", func(_ context.Context, m onramp.Message) error {
		mu.Lock()
		defer mu.Unlock()
		got[m.Seq] = m.Payload
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	n := startNodeWith(t, db, events.Config{Bus: bus, SoleWriter: true})
	defer n.stop()
	ingest(t, n.svc, 0, 1) // the first group always comes from the store
	waitFor(t, "first", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	b, err := events.DecodeBody([]byte(`{"batch":[{"type":"track","event":"E","anonymousId":"a1","messageId":"ns","timestamp":"2024-05-01T09:00:00.123456789Z","sentAt":"2024-05-01T09:00:01.987654321+02:00"}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.Ingest(context.Background(), events.IngestParams{Batch: b, Envelope: events.Envelope{PropertyID: "prp_1", ReceivedAt: time.Now().UTC().Truncate(time.Microsecond)}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
	stored, err := db.Reader().EventsAfter(context.Background(), 1, 10)
	if err != nil || len(stored) != 1 {
		t.Fatal(stored, err)
	}
	want, _ := events.Message(stored[0])
	mu.Lock()
	defer mu.Unlock()
	if string(got[2]) != string(want.Payload) {
		var a, b map[string]any
		_ = json.Unmarshal(got[2], &a)
		_ = json.Unmarshal(want.Payload, &b)
		t.Errorf("handed off:\n %v\nstore read:\n %v", a, b)
	}
}

// TestBusSkipsIdleLiveSubscribers: with only a live subscriber that
// nobody watches, the publisher moves past committed events without
// handing them over; once it listens, new events reach it, old ones not.
func TestBusSkipsIdleLiveSubscribers(t *testing.T) {
	db := openDB(t, sqlite.Options{})
	bus := inmem.NewBus(slog.New(slog.DiscardHandler))
	var watching atomic.Bool
	var got atomic.Int64
	if err := bus.SubscribeLive("live", "event.", func(context.Context, onramp.Message) error {
		got.Add(1)
		return nil
	}, watching.Load); err != nil {
		t.Fatal(err)
	}
	n := startNodeWith(t, db, events.Config{Bus: bus, SoleWriter: true})
	defer n.stop()
	ingest(t, n.svc, 0, 50)
	ctx := context.Background()
	waitFor(t, "the cursor past the first events", func() bool {
		cur, err := db.Reader().Cursor(ctx, "bus")
		return err == nil && cur == 50
	})
	if g := got.Load(); g != 0 {
		t.Fatalf("an idle live subscriber got %d messages", g)
	}
	watching.Store(true)
	ingest(t, n.svc, 50, 20)
	waitFor(t, "the new events delivered", func() bool { return got.Load() == 20 })
	time.Sleep(50 * time.Millisecond)
	if g := got.Load(); g != 20 {
		t.Fatalf("a live subscriber got %d messages, want the 20 new ones", g)
	}
}
