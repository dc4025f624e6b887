package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/onramp-dev/onramp"
)

// Publisher moves committed events onto the bus, at least once: it keeps a
// cursor in the store and advances it only after the bus took the events,
// so a crash replays what may not have been delivered.
type Publisher struct {
	svc  *Service
	name string
	// Batch is how many events one Publish carries.
	Batch int
	// SaveEvery spaces cursor writes: on SQLite every write waits for the
	// one writer, so the cursor is saved at most this often (a crash then
	// replays at most this much, which at-least-once allows).
	SaveEvery time.Duration
}

// NewPublisher returns the publisher of svc's events.
func (s *Service) NewPublisher() *Publisher {
	return &Publisher{svc: s, name: "bus", Batch: 2000, SaveEvery: 250 * time.Millisecond}
}

// Message turns an event into a bus message. Its ID is stable across
// redeliveries so subscribers can dedupe.
func Message(e *Event) (onramp.Message, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return onramp.Message{}, fmt.Errorf("events: encode: %w", err)
	}
	return onramp.Message{ID: fmt.Sprintf("evt_%d", e.Seq), Topic: "event." + e.Type, Seq: e.Seq, Payload: b}, nil
}

// Run publishes until ctx ends.
func (p *Publisher) Run(ctx context.Context) error {
	st := p.svc.cfg.Read
	cur, err := st.Cursor(ctx, p.name)
	if err != nil {
		return fmt.Errorf("events: publisher cursor: %w", err)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	saved, lastSave := cur, time.Now()
	save := func() {
		if cur == saved {
			return
		}
		if err := p.svc.cfg.InTx(ctx, func(st Store) error { return st.SetCursor(ctx, p.name, cur) }); err != nil {
			if !errors.Is(err, context.Canceled) {
				p.svc.cfg.Log.Error("publisher cursor", "err", err)
			}
			return
		}
		saved, lastSave = cur, time.Now()
	}
	for {
		if c, ok := p.svc.cfg.Bus.(interface{ Subscribers() int }); ok && c.Subscribers() == 0 {
			// Nobody listens: leave the cursor where it is, so a subscriber
			// that arrives later still gets every event since.
			select {
			case <-ctx.Done():
				return nil
			case <-p.svc.wake:
			case <-tick.C:
			}
			continue
		}
		for {
			evs, err := st.EventsAfter(ctx, cur, p.Batch)
			if err != nil {
				if ctx.Err() == nil {
					p.svc.cfg.Log.Error("publisher read", "err", err)
				}
				break
			}
			if len(evs) == 0 {
				break
			}
			msgs := make([]onramp.Message, 0, len(evs))
			for _, e := range evs {
				m, err := Message(e)
				if err != nil {
					return err
				}
				msgs = append(msgs, m)
			}
			if err := p.svc.cfg.Bus.Publish(ctx, msgs...); err != nil {
				if ctx.Err() == nil {
					p.svc.cfg.Log.Error("publish", "err", err)
				}
				break
			}
			cur = evs[len(evs)-1].Seq
			if time.Since(lastSave) >= p.SaveEvery {
				save()
			}
		}
		if time.Since(lastSave) >= p.SaveEvery && ctx.Err() == nil {
			save()
		}
		select {
		case <-ctx.Done():
			ctx = context.WithoutCancel(ctx)
			save()
			return nil
		case <-p.svc.wake:
		case <-tick.C:
			save()
		}
	}
}
