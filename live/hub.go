// Package live fans committed events and rejections out to the staff
// console's open live streams. One bus subscription feeds every stream;
// each stream has its own bounded buffer, so a slow console is cut off
// (it reconnects) instead of slowing the bus, ingest or other consoles.
package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
)

// Kinds of Item, used as the SSE event names.
const (
	KindEvent     = "event"
	KindRejection = "rejection"
)

// Item is one thing a stream sends.
type Item struct {
	Kind string
	// ID is the event's seq, which EventSource sends back as Last-Event-ID
	// when it reconnects; empty for rejections.
	ID string
	// Data is the JSON the API shows for it: a timeline item (person_id
	// being the person's current root) or a rejected-events log item.
	Data []byte
}

// Errors a stream can end with (Stream.Err).
var (
	// ErrOverflow: the stream's buffer filled up because its client read
	// too slowly.
	ErrOverflow = errors.New("live: stream fell behind")
	// ErrClosed: the hub was closed (the server is shutting down).
	ErrClosed = errors.New("live: hub closed")
)

var errUnavailable = onramp.Errorf(onramp.EUNAVAILABLE, "The live feed is shutting down; reconnect shortly.")

// Roots tells the root person each person id belongs to now (the identity
// service implements it). Missing ids are persons that do not exist.
type Roots interface {
	Roots(ctx context.Context, ids []string) (map[string]string, error)
}

// Config wires a Hub.
type Config struct {
	Bus   onramp.Bus
	Roots Roots
	Clock onramp.Clock
	Log   *slog.Logger
	// Buffer is how many items each stream may have waiting (default 1024).
	Buffer int
	// Grace is how long before a stream opened an event may have been
	// received and still be sent on it (default 10 s). Events published
	// later than that are a replay (the publisher catching up after a
	// restart), which a live view must not show as new; events received
	// just before opening but committed after are still sent.
	Grace time.Duration
}

// Hub is the one bus subscriber behind all live streams.
type Hub struct {
	cfg Config
	// in carries decoded bus messages to Run, which batches them so one
	// identity read serves many events.
	in chan delivery
	// done is closed when Run returns, so the bus handler stops waiting.
	done chan struct{}
	// open counts streams without the lock: with none, bus messages are
	// dropped at once.
	open atomic.Int64

	mu      sync.Mutex
	streams map[*Stream]struct{}
	closed  bool
}

// delivery is one bus message, decoded.
type delivery struct {
	event     *events.Event
	rejection *rejectionHead
	payload   []byte
}

// rejectionHead is what filtering needs of a rejection payload.
type rejectionHead struct {
	PropertyID string    `json:"property_id"`
	ReceivedAt time.Time `json:"received_at"`
}

// Filter selects what a stream carries.
type Filter struct {
	// PersonID, if set, keeps only events of this person's profile: its
	// root and every person merged into it, as they are when each event
	// is sent. Rejections belong to no person and are left out.
	PersonID string
	// PropertyID, if set, keeps only events and rejections of it.
	PropertyID string
	// AfterSeq skips events up to this seq (EventSource's Last-Event-ID),
	// so a reconnect does not repeat what the client has.
	AfterSeq int64
}

// Stream is one open live stream.
type Stream struct {
	// C delivers the stream's items in bus order; it is closed when the
	// stream ends, after which Err tells why.
	C <-chan Item

	ch     chan Item
	filter Filter
	since  time.Time
	// root is filter.PersonID's root as of the last batch; only Run
	// touches it after Subscribe.
	root string
	err  error
}

// Err is why C was closed: ErrOverflow, ErrClosed, or nil after
// Unsubscribe. Read it only after C is closed.
func (s *Stream) Err() error { return s.err }

// New returns a Hub subscribed to the bus. Call Run to start it.
func New(cfg Config) (*Hub, error) {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 1024
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Second
	}
	h := &Hub{cfg: cfg, in: make(chan delivery, 4096), done: make(chan struct{}), streams: map[*Stream]struct{}{}}
	// Every topic, filtered here: one subscription for events and
	// rejections (and cheap to ignore the rest).
	var err error
	if lb, ok := cfg.Bus.(liveBus); ok {
		// With nobody watching, receive drops everything: the publisher
		// need not encode events for it (a tenth of the server's CPU
		// under ingest load).
		err = lb.SubscribeLive("live", "", h.receive, func() bool { return h.open.Load() > 0 })
	} else {
		err = cfg.Bus.Subscribe("live", "", h.receive)
	}
	if err != nil {
		return nil, fmt.Errorf("live: subscribe: %w", err)
	}
	return h, nil
}

// liveBus is a bus that knows subscribers that only want messages while
// they listen (inmem.Bus).
type liveBus interface {
	SubscribeLive(name, prefix string, h onramp.Handler, listening func() bool) error
}

// receive is the bus handler. It decodes and queues; it waits only when
// Run is behind, which slows the bus publisher, never ingest.
func (h *Hub) receive(ctx context.Context, m onramp.Message) error {
	if h.open.Load() == 0 {
		return nil
	}
	var d delivery
	switch {
	case strings.HasPrefix(m.Topic, "event."):
		d.event = new(events.Event)
		if err := json.Unmarshal(m.Payload, d.event); err != nil {
			h.cfg.Log.Error("live: bad event message", "id", m.ID, "err", err)
			return nil
		}
	case strings.HasPrefix(m.Topic, events.RejectionTopic):
		d.rejection = new(rejectionHead)
		if err := json.Unmarshal(m.Payload, d.rejection); err != nil {
			h.cfg.Log.Error("live: bad rejection message", "id", m.ID, "err", err)
			return nil
		}
	default:
		return nil
	}
	d.payload = m.Payload
	select {
	case h.in <- d:
		return nil
	case <-h.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxBatch bounds how many deliveries share one identity read.
const maxBatch = 512

// Run fans deliveries out until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	defer close(h.done)
	batch := make([]delivery, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-h.in:
			batch = append(batch[:0], d)
		}
	more:
		for len(batch) < maxBatch {
			select {
			case d := <-h.in:
				batch = append(batch, d)
			default:
				break more
			}
		}
		h.fanOut(ctx, batch)
	}
}

// Subscribe opens a stream. A person filter must name an existing person.
func (h *Hub) Subscribe(ctx context.Context, f Filter) (*Stream, error) {
	st := &Stream{filter: f, ch: make(chan Item, h.cfg.Buffer), since: h.cfg.Clock.Now().Add(-h.cfg.Grace)}
	st.C = st.ch
	if f.PersonID != "" {
		roots, err := h.cfg.Roots.Roots(ctx, []string{f.PersonID})
		if err != nil {
			return nil, fmt.Errorf("live: subscribe: %w", err)
		}
		root, ok := roots[f.PersonID]
		if !ok {
			return nil, onramp.Errorf(onramp.ENOTFOUND, "No such person.")
		}
		st.root = root
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errUnavailable
	}
	h.streams[st] = struct{}{}
	h.open.Add(1)
	return st, nil
}

// Unsubscribe ends st (its client went away). Calling it again, or after
// the stream ended otherwise, does nothing.
func (h *Hub) Unsubscribe(st *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.end(st, nil)
}

// Close ends every stream with ErrClosed and refuses new ones, so that a
// graceful shutdown does not wait for consoles that never hang up.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for st := range h.streams {
		h.end(st, ErrClosed)
	}
}

// Streams is the number of open streams.
func (h *Hub) Streams() int { return int(h.open.Load()) }

// end removes st and closes its channel; h.mu must be held.
func (h *Hub) end(st *Stream, why error) {
	if _, ok := h.streams[st]; !ok {
		return
	}
	delete(h.streams, st)
	h.open.Add(-1)
	st.err = why
	close(st.ch)
}

// fanOut resolves the batch's persons to their current roots in one read,
// then offers each item to each stream without waiting.
func (h *Hub) fanOut(ctx context.Context, batch []delivery) {
	h.mu.Lock()
	var filtered []string
	for st := range h.streams {
		if st.filter.PersonID != "" {
			filtered = append(filtered, st.filter.PersonID)
		}
	}
	n := len(h.streams)
	h.mu.Unlock()
	if n == 0 {
		return
	}
	ids := filtered
	for _, d := range batch {
		if d.event != nil {
			ids = append(ids, d.event.PersonID)
		}
	}
	roots, err := h.cfg.Roots.Roots(ctx, dedupe(ids))
	if err != nil {
		// Without roots, events still go out under the person they were
		// first attributed to; only merged persons' events are missed.
		h.cfg.Log.Warn("live: resolve persons", "err", err)
		roots = map[string]string{}
	}
	rootOf := func(id string) string {
		if r, ok := roots[id]; ok {
			return r
		}
		return id
	}
	items := make([]Item, len(batch))
	for i, d := range batch {
		items[i] = h.item(d, rootOf)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	for st := range h.streams {
		if r, ok := roots[st.filter.PersonID]; ok {
			st.root = r
		}
	}
	for i, d := range batch {
		for st := range h.streams {
			if !st.wants(d, rootOf) {
				continue
			}
			select {
			case st.ch <- items[i]:
			default:
				h.end(st, ErrOverflow)
			}
		}
	}
}

// item renders d for the streams. An event is re-encoded only when its
// root differs from the person it was first attributed to.
func (h *Hub) item(d delivery, rootOf func(string) string) Item {
	if d.rejection != nil {
		return Item{Kind: KindRejection, Data: d.payload}
	}
	data := d.payload
	if root := rootOf(d.event.PersonID); root != d.event.PersonID {
		c := *d.event
		c.PersonID = root
		if b, err := json.Marshal(&c); err == nil {
			data = b
		}
	}
	return Item{Kind: KindEvent, ID: strconv.FormatInt(d.event.Seq, 10), Data: data}
}

// wants tells whether st carries d; h.mu is held.
func (st *Stream) wants(d delivery, rootOf func(string) string) bool {
	f := st.filter
	if e := d.event; e != nil {
		return e.Seq > f.AfterSeq && !e.ReceivedAt.Before(st.since) &&
			(f.PropertyID == "" || f.PropertyID == e.PropertyID) &&
			(f.PersonID == "" || rootOf(e.PersonID) == st.root)
	}
	r := d.rejection
	return f.PersonID == "" && !r.ReceivedAt.Before(st.since) && (f.PropertyID == "" || f.PropertyID == r.PropertyID)
}

func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
