package inmem_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/inmem"
)

func TestBusDeliversByPrefixAndRetries(t *testing.T) {
	bus := inmem.NewBus(slog.New(slog.DiscardHandler))
	bus.Backoff = time.Millisecond
	var mu sync.Mutex
	var events, all []string
	failures := 2
	if err := bus.Subscribe("events", "event.", func(ctx context.Context, m onramp.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			return errors.New("not yet")
		}
		events = append(events, m.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := bus.Subscribe("all", "", func(ctx context.Context, m onramp.Message) error {
		mu.Lock()
		all = append(all, m.ID)
		mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := bus.Subscribe("events", "x", nil); err == nil {
		t.Fatal("a second subscriber with the same name must be refused")
	}
	if n := bus.Subscribers(); n != 2 {
		t.Fatalf("Subscribers = %d, want 2", n)
	}
	msgs := []onramp.Message{{ID: "1", Topic: "event.track"}, {ID: "2", Topic: "segment.entered"}, {ID: "3", Topic: "event.page"}}
	if err := bus.Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	// Publish returns only after every subscriber handled every message,
	// in order, the failing one after its retries.
	if len(events) != 2 || events[0] != "1" || events[1] != "3" {
		t.Fatalf("event subscriber got %v, want [1 3]", events)
	}
	if len(all) != 3 {
		t.Fatalf("catch-all subscriber got %v, want all three", all)
	}
}

func TestBusPublishStopsWithContext(t *testing.T) {
	bus := inmem.NewBus(slog.New(slog.DiscardHandler))
	bus.Backoff = time.Millisecond
	_ = bus.Subscribe("broken", "", func(ctx context.Context, m onramp.Message) error { return errors.New("always") })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := bus.Publish(ctx, onramp.Message{ID: "1", Topic: "event.track"}); err == nil {
		t.Fatal("Publish must report that a subscriber never took the message")
	}
}

func TestBusListening(t *testing.T) {
	// A live subscriber counts as listening only while it says so; a
	// durable one always does.
	b := inmem.NewBus(slog.New(slog.DiscardHandler))
	if b.Listening() {
		t.Fatal("an empty bus listens")
	}
	var watching atomic.Bool
	if err := b.SubscribeLive("live", "", func(context.Context, onramp.Message) error { return nil }, watching.Load); err != nil {
		t.Fatal(err)
	}
	if b.Listening() {
		t.Fatal("a live subscriber nobody watches listens")
	}
	watching.Store(true)
	if !b.Listening() {
		t.Fatal("a watched live subscriber does not listen")
	}
	watching.Store(false)
	if err := b.Subscribe("durable", "event.", func(context.Context, onramp.Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if !b.Listening() {
		t.Fatal("a durable subscriber does not listen")
	}
	if err := b.SubscribeLive("durable", "", nil, watching.Load); err == nil {
		t.Fatal("a second subscriber under a taken name was accepted")
	}
}
