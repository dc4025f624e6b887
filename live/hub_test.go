package live_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/inmem"
	"github.com/onramp-dev/onramp/live"
	"github.com/onramp-dev/onramp/sqlite"
)

// world is a real SQLite database with the events committer, its bus
// publisher on an in-process bus, the identity service and a hub.
type world struct {
	t   *testing.T
	svc *events.Service
	ids *identity.Service
	hub *live.Hub
	msg int
}

type fixedClock struct{ at time.Time }

func (c fixedClock) Now() time.Time { return c.at }

func newWorld(t *testing.T, cfg live.Config) *world {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "live.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	bus := inmem.NewBus(log)
	svc := events.NewService(events.Config{
		Read: db.Reader(), Clock: onramp.SystemClock{}, Log: log, Bus: bus, IsRetryable: sqlite.IsRetryable,
		InTx: func(ctx context.Context, fn func(events.Store) error) error {
			return db.InTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
		},
	})
	ids := identity.NewService(db.Reader(), func(ctx context.Context, fn func(identity.Store) error) error {
		return db.InTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
	}, onramp.SystemClock{}, log)
	svc.ConnectIdentity(ids)
	cfg.Bus, cfg.Roots, cfg.Log = bus, ids, log
	if cfg.Clock == nil {
		cfg.Clock = onramp.SystemClock{}
	}
	hub, err := live.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); svc.Run(runCtx) }()
	go func() { defer wg.Done(); _ = svc.NewPublisher().Run(runCtx) }()
	go func() { defer wg.Done(); hub.Run(runCtx) }()
	t.Cleanup(func() { hub.Close(); cancel(); wg.Wait() })
	return &world{t: t, svc: svc, ids: ids, hub: hub}
}

// track ingests one track event per anonymous id, in one request, to
// property prp_1 unless prop says otherwise.
func (w *world) track(prop string, anons ...string) {
	w.t.Helper()
	var msgs []map[string]any
	for _, a := range anons {
		w.msg++
		msgs = append(msgs, map[string]any{"type": "track", "event": "E", "anonymousId": a, "messageId": fmt.Sprintf("m%d", w.msg)})
	}
	w.ingest(prop, msgs, len(msgs))
}

func (w *world) ingest(prop string, msgs []map[string]any, accepted int) {
	w.t.Helper()
	if prop == "" {
		prop = "prp_1"
	}
	body, _ := json.Marshal(map[string]any{"batch": msgs})
	b, err := events.DecodeBody(body, "")
	if err != nil {
		w.t.Fatal(err)
	}
	res, err := w.svc.Ingest(context.Background(), events.IngestParams{Batch: b, Envelope: events.Envelope{PropertyID: prop, ReceivedAt: onramp.SystemClock{}.Now()}})
	if err != nil || res.Accepted != accepted {
		w.t.Fatalf("ingest: %v %+v", err, res)
	}
}

func (w *world) person(anon string) string {
	w.t.Helper()
	p, err := w.ids.Lookup(context.Background(), identity.Key{Type: identity.AnonymousID, Value: anon})
	if err != nil {
		w.t.Fatalf("person of %s: %v", anon, err)
	}
	return p.Person.ID
}

func (w *world) subscribe(f live.Filter) *live.Stream {
	w.t.Helper()
	st, err := w.hub.Subscribe(context.Background(), f)
	if err != nil {
		w.t.Fatal(err)
	}
	return st
}

// next waits for st's next item.
func next(t *testing.T, st *live.Stream) live.Item {
	t.Helper()
	select {
	case it, ok := <-st.C:
		if !ok {
			t.Fatalf("stream ended: %v", st.Err())
		}
		return it
	case <-time.After(5 * time.Second):
		t.Fatal("no item within 5 s")
	}
	return live.Item{}
}

// nextEvent waits for st's next item and decodes it as an event.
func nextEvent(t *testing.T, st *live.Stream) events.Event {
	t.Helper()
	it := next(t, st)
	var e events.Event
	if it.Kind != live.KindEvent {
		t.Fatalf("got %s %s, want an event", it.Kind, it.Data)
	}
	if err := json.Unmarshal(it.Data, &e); err != nil {
		t.Fatal(err)
	}
	if it.ID != fmt.Sprint(e.Seq) {
		t.Fatalf("item id %s for seq %d", it.ID, e.Seq)
	}
	return e
}

func TestOrderPerStream(t *testing.T) {
	w := newWorld(t, live.Config{})
	a, b := w.subscribe(live.Filter{}), w.subscribe(live.Filter{})
	const requests, per = 20, 10
	for i := 0; i < requests; i++ {
		anons := make([]string, per)
		for j := range anons {
			anons[j] = fmt.Sprintf("anon-%d", j)
		}
		w.track("", anons...)
	}
	for _, st := range []*live.Stream{a, b} {
		var last int64
		for i := 0; i < requests*per; i++ {
			e := nextEvent(t, st)
			if e.Seq <= last {
				t.Fatalf("event %d: seq %d after %d; want bus order", i, e.Seq, last)
			}
			last = e.Seq
		}
	}
}

func TestOverflowCutsOnlyTheSlowStream(t *testing.T) {
	w := newWorld(t, live.Config{Buffer: 16})
	slow, fast := w.subscribe(live.Filter{}), w.subscribe(live.Filter{})
	anons := make([]string, 10)
	for i := range anons {
		anons[i] = fmt.Sprintf("anon-%d", i)
	}
	w.track("", anons...)
	for range 10 {
		nextEvent(t, fast)
	}
	// The slow stream holds 10 of 16; ten more overflow it. Ingest must
	// not wait for it.
	start := time.Now()
	w.track("", anons...)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("ingest took %s with a stuck stream", d)
	}
	for range 10 {
		nextEvent(t, fast)
	}
	n := 0
	for range slow.C {
		n++
	}
	if !errors.Is(slow.Err(), live.ErrOverflow) || n != 16 {
		t.Fatalf("slow stream got %d items and ended with %v; want its 16 buffered then ErrOverflow", n, slow.Err())
	}
	if w.hub.Streams() != 1 {
		t.Fatalf("%d streams open, want the fast one", w.hub.Streams())
	}
	w.track("", "anon-0")
	nextEvent(t, fast)
}

func TestUnsubscribeAndClose(t *testing.T) {
	w := newWorld(t, live.Config{})
	st := w.subscribe(live.Filter{})
	other := w.subscribe(live.Filter{})
	w.hub.Unsubscribe(st)
	w.hub.Unsubscribe(st) // twice is fine
	if _, ok := <-st.C; ok || st.Err() != nil {
		t.Fatalf("unsubscribed stream: open=%v err=%v", ok, st.Err())
	}
	if w.hub.Streams() != 1 {
		t.Fatalf("%d streams, want 1", w.hub.Streams())
	}
	w.track("", "a")
	nextEvent(t, other)
	w.hub.Close()
	if _, ok := <-other.C; ok || !errors.Is(other.Err(), live.ErrClosed) {
		t.Fatalf("after Close: open=%v err=%v", ok, other.Err())
	}
	if _, err := w.hub.Subscribe(context.Background(), live.Filter{}); onramp.ErrorCode(err) != onramp.EUNAVAILABLE {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

func TestPersonFilterFollowsMerges(t *testing.T) {
	w := newWorld(t, live.Config{})
	w.track("", "a", "b", "c")
	pa, pb := w.person("a"), w.person("b")
	st := w.subscribe(live.Filter{PersonID: pa, AfterSeq: 3})
	if _, err := w.hub.Subscribe(context.Background(), live.Filter{PersonID: "per_nobody"}); onramp.ErrorCode(err) != onramp.ENOTFOUND {
		t.Fatalf("unknown person: %v", err)
	}

	w.track("", "b", "c", "a")
	if e := nextEvent(t, st); e.AnonymousID != "a" || e.PersonID != pa {
		t.Fatalf("got %s of %s, want a's", e.AnonymousID, e.PersonID)
	}

	m, err := w.ids.Merge(context.Background(), identity.MergeParams{FromID: pb, IntoID: pa, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	w.track("", "c", "b")
	if e := nextEvent(t, st); e.AnonymousID != "b" || e.PersonID != pa {
		t.Fatalf("after merge got %s of %s, want b's shown as %s (the root)", e.AnonymousID, e.PersonID, pa)
	}

	if _, err := w.ids.Unmerge(context.Background(), m.ID, "test"); err != nil {
		t.Fatal(err)
	}
	w.track("", "b", "c", "a")
	if e := nextEvent(t, st); e.AnonymousID != "a" {
		t.Fatalf("after unmerge got %s's event, want only a's", e.AnonymousID)
	}
}

func TestRejectionsAndPropertyFilter(t *testing.T) {
	w := newWorld(t, live.Config{})
	w.track("", "a")
	// AfterSeq 1: the first event may still be on its way to the bus.
	all := w.subscribe(live.Filter{AfterSeq: 1})
	prop2 := w.subscribe(live.Filter{PropertyID: "prp_2", AfterSeq: 1})
	person := w.subscribe(live.Filter{PersonID: w.person("a"), AfterSeq: 1})

	w.ingest("prp_1", []map[string]any{{"type": "track", "anonymousId": "a", "messageId": "no-name"}}, 0)
	w.track("prp_2", "a")

	// The publisher puts the events it reads in one pass before the
	// rejections queued meanwhile, so either may come first.
	var kinds []string
	for range 2 {
		it := next(t, all)
		kinds = append(kinds, it.Kind)
		if it.Kind == live.KindEvent {
			var e events.Event
			if json.Unmarshal(it.Data, &e) != nil || e.PropertyID != "prp_2" {
				t.Fatalf("all: %s", it.Data)
			}
			continue
		}
		var r struct {
			ID      int64           `json:"id"`
			Code    string          `json:"code"`
			Payload json.RawMessage `json:"payload"`
		}
		if it.Kind != live.KindRejection || it.ID != "" || json.Unmarshal(it.Data, &r) != nil || r.ID == 0 || r.Code != events.CodeMissingEvent || len(r.Payload) == 0 {
			t.Fatalf("got %s %q %s, want the rejection with its id and payload", it.Kind, it.ID, it.Data)
		}
	}
	if kinds[0] == kinds[1] {
		t.Fatalf("got %v, want one event and one rejection", kinds)
	}
	// The property stream skips the rejection of prp_1; the person stream
	// skips rejections altogether.
	if e := nextEvent(t, prop2); e.PropertyID != "prp_2" {
		t.Fatalf("prop2: %+v", e)
	}
	if e := nextEvent(t, person); e.PropertyID != "prp_2" {
		t.Fatalf("person: %+v", e)
	}
}

// TestReplayIsNotLive: what the publisher replays from before a stream
// opened (beyond the grace) is not sent as if it were new.
func TestReplayIsNotLive(t *testing.T) {
	w := newWorld(t, live.Config{Clock: fixedClock{time.Now().Add(time.Hour)}, Grace: time.Minute})
	old := w.subscribe(live.Filter{})
	w.track("", "a")
	other := w.subscribe(live.Filter{AfterSeq: 1 << 40})
	select {
	case it := <-old.C:
		t.Fatalf("got %s %s; events received before the stream opened (minus grace) are not live", it.Kind, it.Data)
	case it := <-other.C:
		t.Fatalf("got %s %s; events up to Last-Event-ID are skipped", it.Kind, it.Data)
	case <-time.After(300 * time.Millisecond):
	}
}
