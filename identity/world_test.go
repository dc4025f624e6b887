package identity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/inmem"
	"github.com/onramp-dev/onramp/sqlite"
)

// stepClock is a fixed clock that moves one second on every reading, so
// events without a timestamp keep the order they were sent in.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// world is the real ingest path over a real SQLite database: the events
// Service (with its committer running) and the identity Service.
type world struct {
	t      *testing.T
	db     *sqlite.DB
	read   *sqlite.Queries
	events *events.Service
	ids    *identity.Service
	clock  *stepClock
	prop   string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "onramp.db"), sqlite.Options{Synchronous: "OFF"})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	log := slog.New(slog.DiscardHandler)
	clock := &stepClock{t: time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)}
	svc := events.NewService(events.Config{
		Read: db.Reader(),
		InTx: func(ctx context.Context, fn func(events.Store) error) error {
			return db.InTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
		},
		Clock:       clock,
		Log:         log,
		Bus:         inmem.NewBus(log),
		IsRetryable: sqlite.IsRetryable,
	})
	ids := identity.NewService(db.Reader(), func(ctx context.Context, fn func(identity.Store) error) error {
		return db.InTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
	}, clock, log)
	svc.ConnectIdentity(ids)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if err := db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &world{t: t, db: db, read: db.Reader(), events: svc, ids: ids, clock: clock, prop: "prp_test"}
}

// send ingests one request body (a Segment batch) and returns the result.
func (w *world) send(body string) *events.Result {
	w.t.Helper()
	res, err := w.trySend(body)
	if err != nil {
		w.t.Fatal(err)
	}
	return res
}

// trySend is send for goroutines other than the test's.
func (w *world) trySend(body string) (*events.Result, error) {
	b, err := events.DecodeBody([]byte(body), "")
	if err != nil {
		return nil, fmt.Errorf("DecodeBody(%s): %w", body, err)
	}
	res, err := w.events.Ingest(context.Background(), events.IngestParams{
		Batch:    b,
		Envelope: events.Envelope{PropertyID: w.prop, ReceivedAt: w.clock.Now(), IP: "192.0.2.1"},
	})
	if err != nil {
		return nil, fmt.Errorf("Ingest: %w", err)
	}
	return res, nil
}

// batch wraps messages in a Segment batch body.
func batch(msgs ...string) string {
	return `{"batch":[` + strings.Join(msgs, ",") + `]}`
}

// stored returns every stored event by message id.
func (w *world) stored() map[string]*events.Event {
	w.t.Helper()
	evs, err := w.read.EventsAfter(context.Background(), 0, 100000)
	if err != nil {
		w.t.Fatalf("EventsAfter: %v", err)
	}
	out := map[string]*events.Event{}
	for _, e := range evs {
		out[e.MessageID] = e
	}
	return out
}

// rootOf is the id of the profile that the stored event belongs to now.
func (w *world) rootOf(messageID string) string {
	w.t.Helper()
	e := w.stored()[messageID]
	if e == nil {
		w.t.Fatalf("event %q is not stored", messageID)
	}
	prof, err := w.ids.Person(context.Background(), e.PersonID)
	if err != nil {
		w.t.Fatalf("Person(%s) of event %s: %v", e.PersonID, messageID, err)
	}
	return prof.Person.ID
}

func (w *world) profile(personID string) *identity.Profile {
	w.t.Helper()
	prof, err := w.ids.Person(context.Background(), personID)
	if err != nil {
		w.t.Fatalf("Person(%s): %v", personID, err)
	}
	return prof
}

func (w *world) persons() int64 {
	w.t.Helper()
	n, err := w.read.CountPersons(context.Background())
	if err != nil {
		w.t.Fatalf("CountPersons: %v", err)
	}
	return n
}

func (w *world) eventCount() int64 {
	w.t.Helper()
	n, err := w.read.CountEvents(context.Background())
	if err != nil {
		w.t.Fatalf("CountEvents: %v", err)
	}
	return n
}

// timelineIDs returns the message ids on personID's whole timeline (the
// persons of its profile, via Members), sorted.
func (w *world) timelineIDs(personID string) []string {
	w.t.Helper()
	ctx := context.Background()
	members, err := w.ids.Members(ctx, personID)
	if err != nil {
		w.t.Fatalf("Members(%s): %v", personID, err)
	}
	page, err := w.events.Timeline(ctx, events.TimelineParams{PersonIDs: members, Limit: 1000})
	if err != nil {
		w.t.Fatalf("Timeline: %v", err)
	}
	var out []string
	for _, e := range page.Events {
		out = append(out, e.MessageID)
	}
	sort.Strings(out)
	return out
}

func (w *world) lookup(typ, value string) (*identity.Profile, error) {
	return w.ids.Lookup(context.Background(), identity.Key{Type: typ, Value: value})
}

func (w *world) conflicts() []*identity.Conflict {
	w.t.Helper()
	cs, err := w.ids.Conflicts(context.Background(), 100)
	if err != nil {
		w.t.Fatalf("Conflicts: %v", err)
	}
	return cs
}

func identSet(p *identity.Profile) []string {
	var out []string
	for _, id := range p.Identifiers {
		out = append(out, id.Type+":"+id.Value)
	}
	sort.Strings(out)
	return out
}

func traitsOf(t *testing.T, p *identity.Profile) map[string]any {
	t.Helper()
	m := map[string]any{}
	if len(p.Person.Traits) > 0 {
		if err := json.Unmarshal(p.Person.Traits, &m); err != nil {
			t.Fatalf("traits of %s: %v", p.Person.ID, err)
		}
	}
	return m
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := onramp.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}
