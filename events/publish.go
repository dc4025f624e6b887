package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/onramp-dev/onramp"
)

// Publisher moves committed events onto the bus, at least once: it keeps a
// cursor in the store and advances it only after the bus took the events,
// so a crash replays what may not have been delivered. It also publishes
// committed rejections, at most once (see liveRejections).
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
	// goccy/go-json writes the same bytes as encoding/json, several times
	// faster; every committed event passes through here.
	b, err := gojson.Marshal(e)
	if err != nil {
		return onramp.Message{}, fmt.Errorf("events: encode: %w", err)
	}
	return onramp.Message{ID: fmt.Sprintf("evt_%d", e.Seq), Topic: "event." + e.Type, Seq: e.Seq, Payload: b}, nil
}

// RejectionTopic prefixes the topics of rejection messages; the rest of
// the topic is the rejection's code.
const RejectionTopic = "rejection."

// RejectionMessage turns a logged rejection into a bus message whose
// payload is the rejection as the API shows it (Rejection.View).
func RejectionMessage(r *Rejection) (onramp.Message, error) {
	// The log keeps microseconds; the message must say what it says.
	c := *r
	c.ReceivedAt = c.ReceivedAt.Truncate(time.Microsecond)
	b, err := json.Marshal(c.View())
	if err != nil {
		return onramp.Message{}, fmt.Errorf("events: encode rejection: %w", err)
	}
	return onramp.Message{ID: fmt.Sprintf("rej_%d", r.ID), Topic: RejectionTopic + r.Code, Seq: r.ID, Payload: b}, nil
}

// maxQueuedRejections bounds the rejections waiting for the publisher, so
// a flood of junk sent with the public write key cannot grow memory.
const maxQueuedRejections = 10_000

// liveRejections hands committed rejections from the committer to the
// publisher. The committer only appends under a mutex, with no I/O and no
// wait for subscribers, so ingest's hot path stays as it was. Rejections
// are published at most once: they are not read back through a cursor as
// events are, so a crash between commit and publish loses their live
// notice (the rejected-events log still has them). That is enough for a
// debugger, and spares a store read per wake.
type liveRejections struct {
	mu      sync.Mutex
	queue   []*Rejection
	dropped int
}

// queueRejections keeps rs for the publisher, dropping what exceeds the
// bound. The committer calls it after commit, before waking the publisher.
func (s *Service) queueRejections(rs []*Rejection) {
	if len(rs) == 0 {
		return
	}
	l := &s.live
	l.mu.Lock()
	defer l.mu.Unlock()
	room := max(maxQueuedRejections-len(l.queue), 0)
	if len(rs) > room {
		l.dropped += len(rs) - room
		rs = rs[:room]
	}
	l.queue = append(l.queue, rs...)
}

// take empties the queue, returning what it held and how many were
// dropped since the last take.
func (l *liveRejections) take() ([]*Rejection, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rs, dropped := l.queue, l.dropped
	l.queue, l.dropped = nil, 0
	return rs, dropped
}

// maxHandedOff bounds the committed events waiting in memory for the
// publisher. Past it the publisher reads them back from the store, as it
// does after a restart.
const maxHandedOff = 20_000

// handoff passes committed events from the committer to the publisher in
// memory, so that the publisher does not read back, row by row, what the
// committer has just written (that read-back cost a seventh of the
// server's CPU under ingest load). It is used where one server owns the
// database (Config.SoleWriter), whose sequence numbers have no gaps: each
// group carries the last sequence number committed before it, and the
// publisher takes a group only if that is exactly its cursor, so nothing
// can be skipped; anything else (a restart, an overflow, events another
// process inserted in between) falls back to the store.
type handoff struct {
	mu     sync.Mutex
	groups []handedGroup
	queued int
	// last is the sequence number of the last event handed off, -1 while
	// unknown (before the first commit, after an overflow).
	last int64
	// unsynced counts groups committed but not yet answered
	// (Config.SyncCommits): their events are in the store before they are
	// durable, and the publisher waits for them to be handed off rather
	// than read them there.
	unsynced int
}

// committed notes a group committed and waiting for its flush.
func (h *handoff) committed() {
	h.mu.Lock()
	h.unsynced++
	h.mu.Unlock()
}

// answered notes that a group noted by committed was answered (and, if it
// succeeded, put).
func (h *handoff) answered() {
	h.mu.Lock()
	h.unsynced--
	h.mu.Unlock()
}

type handedGroup struct {
	after int64
	evs   []*Event
}

// put queues a committed group, in commit order.
func (h *handoff) put(evs []*Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.queued+len(evs) > maxHandedOff {
		// Nobody is taking them (no subscriber, or a slow one): drop the
		// queue; the publisher reads from the store from its cursor.
		h.groups, h.queued, h.last = nil, 0, -1
	}
	g := handedGroup{after: h.last, evs: evs}
	if evs[0].Seq != h.last+1 {
		// Another connection (the CLI) inserted events in between: they
		// are in the store only, so the publisher must read from there.
		g.after = -1
	}
	h.last = evs[len(evs)-1].Seq
	if g.after < 0 {
		return
	}
	h.groups = append(h.groups, g)
	h.queued += len(evs)
}

// take returns the queued events that follow cur without a gap, whole
// groups until it holds at least limit events, or nil if the next events
// must come from the store; wait says that there are none yet, but groups
// committed by this process will follow once flushed.
func (h *handoff) take(cur int64, limit int) (evs []*Event, wait bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	// Groups the store read already covered.
	for len(h.groups) > 0 && h.groups[0].evs[len(h.groups[0].evs)-1].Seq <= cur {
		h.queued -= len(h.groups[0].evs)
		h.groups = h.groups[1:]
	}
	var out []*Event
	for len(h.groups) > 0 && h.groups[0].after == cur && len(out) < limit {
		g := h.groups[0]
		out = append(out, g.evs...)
		cur = g.evs[len(g.evs)-1].Seq
		h.queued -= len(g.evs)
		h.groups = h.groups[1:]
	}
	return out, out == nil && len(h.groups) == 0 && h.unsynced > 0
}

// flushRead makes events read from the store durable before they are
// published: with Config.SyncCommits the store holds committed groups
// that are not flushed yet, and a read can take them (after a gap in the
// handoff, or a group committed between the handoff's look and the read).
// One flush covers everything committed before it began, so everything
// the read saw.
func (p *Publisher) flushRead(ctx context.Context, evs []*Event) error {
	if len(evs) == 0 || p.svc.unsynced == nil {
		return nil
	}
	if err := p.svc.cfg.SyncCommits(ctx); err != nil {
		if ctx.Err() == nil {
			p.svc.cfg.Log.Error("publisher flush", "err", err)
		}
		return err
	}
	return nil
}

// publishRejections puts the queued rejections on the bus. A failed
// Publish is logged, not retried: rejections are published at most once.
func (p *Publisher) publishRejections(ctx context.Context) {
	rs, dropped := p.svc.live.take()
	if dropped > 0 {
		p.svc.cfg.Log.Warn("rejections not published: the queue was full", "dropped", dropped)
	}
	if len(rs) == 0 {
		return
	}
	msgs := make([]onramp.Message, 0, len(rs))
	for _, r := range rs {
		m, err := RejectionMessage(r)
		if err != nil {
			p.svc.cfg.Log.Error("publish rejection", "err", err)
			continue
		}
		msgs = append(msgs, m)
	}
	if err := p.svc.cfg.Bus.Publish(ctx, msgs...); err != nil && ctx.Err() == nil {
		p.svc.cfg.Log.Error("publish rejections", "err", err)
	}
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
			// that arrives later still gets every event since. Rejections
			// are only for those listening now.
			p.svc.live.take()
			select {
			case <-ctx.Done():
				return nil
			case <-p.svc.wake:
			case <-tick.C:
			}
			continue
		}
		for {
			evs, wait := p.svc.handed.take(cur, p.Batch)
			if wait {
				break
			}
			if evs == nil {
				evs, err = st.EventsAfter(ctx, cur, p.Batch)
				if err != nil {
					if ctx.Err() == nil {
						p.svc.cfg.Log.Error("publisher read", "err", err)
					}
					break
				}
				if err := p.flushRead(ctx, evs); err != nil {
					break
				}
			}
			if len(evs) == 0 {
				break
			}
			if l, ok := p.svc.cfg.Bus.(interface{ Listening() bool }); ok && !l.Listening() {
				// Every subscriber is a live view nobody watches, which
				// would drop the messages: skip making them.
				cur = evs[len(evs)-1].Seq
				continue
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
		// After the events, so a request's accepted events reach
		// subscribers before its rejections.
		p.publishRejections(ctx)
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
