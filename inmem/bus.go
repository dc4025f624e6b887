// Package inmem holds the in-process implementations of the kernel's
// interfaces, used when Onramp runs as one binary with nothing else.
package inmem

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/onramp-dev/onramp"
)

// Bus delivers each published message to every subscriber whose prefix
// matches, and Publish returns only when all of them have handled it. That
// is what makes delivery at-least-once: the publisher advances its durable
// cursor after Publish returns, so a crash before then redelivers.
type Bus struct {
	log *slog.Logger

	mu   sync.RWMutex
	subs []*subscription
	// Backoff is the first wait before retrying a failed handler; it
	// doubles up to a minute.
	Backoff time.Duration
}

type subscription struct {
	name, prefix string
	h            onramp.Handler
	// listening, for a live subscription, says whether it wants messages
	// now; nil for a durable one, which always does.
	listening func() bool
}

// NewBus returns an empty Bus.
func NewBus(log *slog.Logger) *Bus {
	return &Bus{log: log, Backoff: 50 * time.Millisecond}
}

// Subscribe registers h under name for topics starting with prefix.
func (b *Bus) Subscribe(name, prefix string, h onramp.Handler) error {
	return b.subscribe(&subscription{name: name, prefix: prefix, h: h})
}

// SubscribeLive registers h as Subscribe does, for a subscriber that
// ignores what is published while listening returns false (the live
// views, with nobody watching). Publishers may then skip making the
// messages (see Listening).
func (b *Bus) SubscribeLive(name, prefix string, h onramp.Handler, listening func() bool) error {
	return b.subscribe(&subscription{name: name, prefix: prefix, h: h, listening: listening})
}

func (b *Bus) subscribe(sub *subscription) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.subs {
		if s.name == sub.name {
			return fmt.Errorf("inmem: subscriber %q exists already", sub.name)
		}
	}
	b.subs = append(b.subs, sub)
	return nil
}

// Listening reports whether any subscriber wants what is published now:
// a durable one, or a live one that listens.
func (b *Bus) Listening() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, s := range b.subs {
		if s.listening == nil || s.listening() {
			return true
		}
	}
	return false
}

// Subscribers is the number of subscriptions; the publisher skips reading
// events back while nobody listens.
func (b *Bus) Subscribers() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs)
}

// Publish hands msgs to each matching subscriber in order, subscribers in
// parallel, retrying a failing handler with backoff until it succeeds or ctx
// ends.
func (b *Bus) Publish(ctx context.Context, msgs ...onramp.Message) error {
	b.mu.RLock()
	subs := append([]*subscription(nil), b.subs...)
	b.mu.RUnlock()
	var wg sync.WaitGroup
	errs := make(chan error, len(subs))
	for _, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, m := range msgs {
				if !strings.HasPrefix(m.Topic, s.prefix) {
					continue
				}
				if err := b.deliver(ctx, s, m); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (b *Bus) deliver(ctx context.Context, s *subscription, m onramp.Message) error {
	wait := b.Backoff
	for attempt := 1; ; attempt++ {
		err := s.h(ctx, m)
		if err == nil {
			return nil
		}
		b.log.Warn("bus handler failed; will retry", "subscriber", s.name, "message", m.ID, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("inmem: deliver %s to %s: %w", m.ID, s.name, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}
