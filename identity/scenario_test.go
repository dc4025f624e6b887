package identity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
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
	// As cmd/onramp wires it: staff changes to people reach ingest's caches.
	ids.OnChange = func([]string) { svc.ForgetIdentities() }
	ids.Erase = events.Erase
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

// group says that these events belong to one person, with exactly these
// identifiers and traits.
type group struct {
	events      []string
	identifiers []string
	traits      map[string]any
}

type scenario struct {
	name string
	// steps are request bodies, ingested one after the other.
	steps []string
	// rejected are the rejection codes expected over all steps, in order.
	rejected []string
	persons  int64
	// groups partition the stored events: one group per person.
	groups []group
	// then checks what the table cannot say; roots are the groups' person ids.
	then func(t *testing.T, w *world, roots []string)
}

func TestIdentityScenarios(t *testing.T) {
	scenarios := []scenario{
		{
			name: "anonymous page views then identify join one person",
			steps: []string{
				batch(`{"type":"page","messageId":"pv1","anonymousId":"a1","name":"Blog"}`),
				batch(`{"type":"page","messageId":"pv2","anonymousId":"a1","name":"Pricing"}`),
				batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1","traits":{"name":"Ada"}}`),
			},
			persons: 1,
			groups: []group{{
				events:      []string{"pv1", "pv2", "id1"},
				identifiers: []string{"anonymous_id:a1", "user_id:u1"},
				traits:      map[string]any{"name": "Ada"},
			}},
			then: func(t *testing.T, w *world, roots []string) {
				if got, want := w.timelineIDs(roots[0]), []string{"id1", "pv1", "pv2"}; !slices.Equal(got, want) {
					t.Errorf("timeline = %v, want %v", got, want)
				}
			},
		},
		{
			name: "two devices of one person join when the second identifies",
			steps: []string{
				batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1","traits":{"name":"Ada"}}`),
				batch(`{"type":"page","messageId":"pv1","anonymousId":"a1","name":"Docs"}`),
				batch(`{"type":"page","messageId":"pv2","anonymousId":"a2","name":"Pricing"}`,
					`{"type":"track","messageId":"tr2","anonymousId":"a2","event":"Clicked Trial"}`),
				batch(`{"type":"identify","messageId":"id2","anonymousId":"a2","userId":"u1"}`),
			},
			persons: 1,
			groups: []group{{
				events:      []string{"id1", "pv1", "pv2", "tr2", "id2"},
				identifiers: []string{"anonymous_id:a1", "anonymous_id:a2", "user_id:u1"},
				traits:      map[string]any{"name": "Ada"},
			}},
			then: func(t *testing.T, w *world, roots []string) {
				if got, want := w.timelineIDs(roots[0]), []string{"id1", "id2", "pv1", "pv2", "tr2"}; !slices.Equal(got, want) {
					t.Errorf("u1's timeline = %v, want a2's earlier events on it too: %v", got, want)
				}
				// a2's earlier events keep their own person, now merged.
				if pid := w.stored()["pv2"].PersonID; pid == roots[0] {
					t.Errorf("pv2 was moved to the root person %s; merges must not rewrite events", pid)
				}
				ms, err := w.ids.Merges(context.Background(), roots[0])
				if err != nil {
					t.Fatal(err)
				}
				if len(ms) != 1 || ms[0].Reason != "identifiers" || ms[0].IntoID != roots[0] || ms[0].MessageID != "id2" {
					t.Errorf("merges = %+v, want one identifiers merge into %s by id2", ms, roots[0])
				}
				if len(w.conflicts()) != 0 {
					t.Errorf("conflicts recorded for one user id")
				}
			},
		},
		{
			name: "two devices of one person in a single batch",
			steps: []string{batch(
				`{"type":"page","messageId":"pv1","anonymousId":"a1","name":"Docs"}`,
				`{"type":"page","messageId":"pv2","anonymousId":"a2","name":"Pricing"}`,
				`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1","traits":{"name":"Ada"}}`,
				`{"type":"identify","messageId":"id2","anonymousId":"a2","userId":"u1","traits":{"plan":"pro"}}`,
				`{"type":"track","messageId":"tr","userId":"u1","event":"Paid"}`,
			)},
			persons: 1,
			groups: []group{{
				events:      []string{"pv1", "pv2", "id1", "id2", "tr"},
				identifiers: []string{"anonymous_id:a1", "anonymous_id:a2", "user_id:u1"},
				traits:      map[string]any{"name": "Ada", "plan": "pro"},
			}},
			then: func(t *testing.T, w *world, roots []string) {
				if got, want := w.timelineIDs(roots[0]), []string{"id1", "id2", "pv1", "pv2", "tr"}; !slices.Equal(got, want) {
					t.Errorf("timeline = %v, want %v", got, want)
				}
				ms, err := w.ids.Merges(context.Background(), roots[0])
				if err != nil || len(ms) != 1 {
					t.Fatalf("merges = %v, %v; want 1", ms, err)
				}
				if _, err := w.ids.Unmerge(context.Background(), ms[0].ID, ""); err != nil {
					t.Fatalf("Unmerge of a merge made inside one batch: %v", err)
				}
				if w.persons() != 2 || w.rootOf("pv2") == w.rootOf("pv1") {
					t.Errorf("unmerge did not split the batch's merge")
				}
			},
		},
		{
			name: "form email (context.traits) then sign-up with user id and the same email on another device",
			steps: []string{
				batch(`{"type":"page","messageId":"pv1","anonymousId":"a1","name":"Event"}`),
				batch(`{"type":"track","messageId":"form","anonymousId":"a1","event":"Registered","context":{"traits":{"email":"ada@example.com"}}}`),
				batch(`{"type":"identify","messageId":"signup","anonymousId":"a9","userId":"u1","traits":{"email":"ada@example.com","plan":"trial"}}`),
			},
			persons: 1,
			groups: []group{{
				events:      []string{"pv1", "form", "signup"},
				identifiers: []string{"anonymous_id:a1", "anonymous_id:a9", "email:ada@example.com", "user_id:u1"},
				traits:      map[string]any{"email": "ada@example.com", "plan": "trial"},
			}},
		},
		{
			name: "form email (identify without user id) then sign-up with user id and the same email on another device",
			steps: []string{
				batch(`{"type":"identify","messageId":"form","anonymousId":"a1","traits":{"email":"ada@example.com","name":"Ada","company":"Acme"}}`),
				batch(`{"type":"identify","messageId":"signup","anonymousId":"a9","userId":"u1","traits":{"email":"ada@example.com","plan":"trial"}}`),
				batch(`{"type":"track","messageId":"tr","userId":"u1","event":"Trial Started"}`),
			},
			persons: 1,
			groups: []group{{
				events:      []string{"form", "signup", "tr"},
				identifiers: []string{"anonymous_id:a1", "anonymous_id:a9", "email:ada@example.com", "user_id:u1"},
				traits:      map[string]any{"email": "ada@example.com", "name": "Ada", "company": "Acme", "plan": "trial"},
			}},
		},
		{
			name: "conflicting user ids on one anonymous id stay two persons with a conflict",
			steps: []string{
				batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1","traits":{"name":"Ada"}}`),
				batch(`{"type":"identify","messageId":"id2","anonymousId":"a1","userId":"u2","traits":{"name":"Grace"}}`),
				batch(`{"type":"track","messageId":"tr2","userId":"u2","event":"Logged In"}`),
			},
			persons: 2,
			groups: []group{
				{events: []string{"id1"}, identifiers: []string{"anonymous_id:a1", "user_id:u1"}, traits: map[string]any{"name": "Ada"}},
				{events: []string{"id2", "tr2"}, identifiers: []string{"user_id:u2"}, traits: map[string]any{"name": "Grace"}},
			},
			then: func(t *testing.T, w *world, roots []string) {
				cs := w.conflicts()
				if len(cs) != 1 {
					t.Fatalf("conflicts = %d, want 1", len(cs))
				}
				ps := slices.Clone(cs[0].PersonIDs)
				slices.Sort(ps)
				want := slices.Clone(roots)
				slices.Sort(want)
				if !slices.Equal(ps, want) || cs[0].MessageID != "id2" {
					t.Errorf("conflict = %+v, want persons %v and message id2", cs[0], want)
				}
				for _, r := range roots {
					ms, err := w.ids.Merges(context.Background(), r)
					if err != nil {
						t.Fatal(err)
					}
					if len(ms) != 0 {
						t.Errorf("person %s has merges %+v; two user ids must never merge", r, ms)
					}
				}
			},
		},
		{
			name: "alias from anonymous id to user id",
			steps: []string{
				batch(`{"type":"page","messageId":"pv1","anonymousId":"a1","name":"Home"}`),
				batch(`{"type":"alias","messageId":"al","previousId":"a1","userId":"u1"}`),
				batch(`{"type":"track","messageId":"tr","userId":"u1","event":"Signed Up"}`),
			},
			persons: 1,
			groups: []group{{
				events:      []string{"pv1", "al", "tr"},
				identifiers: []string{"anonymous_id:a1", "user_id:u1"},
				traits:      map[string]any{},
			}},
		},
		{
			name: "alias joins an anonymous person to an identified one",
			steps: []string{
				batch(`{"type":"page","messageId":"pv1","anonymousId":"a1","name":"Home"}`),
				batch(`{"type":"identify","messageId":"id1","anonymousId":"a2","userId":"u1","traits":{"name":"Ada"}}`),
				batch(`{"type":"alias","messageId":"al","previousId":"a1","userId":"u1"}`),
			},
			persons: 1,
			groups: []group{{
				events:      []string{"pv1", "id1", "al"},
				identifiers: []string{"anonymous_id:a1", "anonymous_id:a2", "user_id:u1"},
				traits:      map[string]any{"name": "Ada"},
			}},
			then: func(t *testing.T, w *world, roots []string) {
				ms, err := w.ids.Merges(context.Background(), roots[0])
				if err != nil {
					t.Fatal(err)
				}
				if len(ms) != 1 || ms[0].Reason != "alias" || ms[0].IntoID != roots[0] {
					t.Errorf("merges = %+v, want one alias merge into %s", ms, roots[0])
				}
			},
		},
		{
			name: "email addresses match whatever their case and spaces",
			steps: []string{
				batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","traits":{"email":"Ada@Example.COM"}}`),
				batch(`{"type":"identify","messageId":"id2","anonymousId":"a2","traits":{"email":"  ada@example.com "}}`),
				batch(`{"type":"track","messageId":"tr","anonymousId":"a3","event":"Downloaded","context":{"traits":{"email":"ADA@EXAMPLE.COM"}}}`),
			},
			persons: 1,
			groups: []group{{
				events:      []string{"id1", "id2", "tr"},
				identifiers: []string{"anonymous_id:a1", "anonymous_id:a2", "anonymous_id:a3", "email:ada@example.com"},
				traits:      map[string]any{"email": "  ada@example.com "},
			}},
			then: func(t *testing.T, w *world, roots []string) {
				for _, v := range []string{"ada@example.com", "ADA@example.com", " Ada@Example.Com "} {
					p, err := w.lookup(identity.Email, v)
					if err != nil || p.Person.ID != roots[0] {
						t.Errorf("Lookup(email %q) = %v, %v; want %s", v, p, err, roots[0])
					}
				}
			},
		},
	}

	// Placeholder values that SDK bugs send for everyone never join people:
	// two people who both send one of them, each with their own user id,
	// stay two persons and no conflict is recorded.
	for _, v := range []string{`"null"`, `"undefined"`, `"0"`, `"-1"`, `"anonymous"`, `""`, `"00000000-0000-0000-0000-000000000000"`, `"  NULL "`, `"Undefined"`, `0`, `-1`, `null`} {
		scenarios = append(scenarios, scenario{
			name: "blocked anonymousId " + v + " never matches",
			steps: []string{
				batch(`{"type":"identify","messageId":"alice","anonymousId":` + v + `,"userId":"alice","traits":{"name":"Alice"}}`),
				batch(`{"type":"identify","messageId":"bob","anonymousId":` + v + `,"userId":"bob","traits":{"name":"Bob"}}`),
				batch(`{"type":"track","messageId":"alice2","anonymousId":` + v + `,"userId":"alice","event":"Played"}`),
			},
			persons: 2,
			groups: []group{
				{events: []string{"alice", "alice2"}, identifiers: []string{"user_id:alice"}, traits: map[string]any{"name": "Alice"}},
				{events: []string{"bob"}, identifiers: []string{"user_id:bob"}, traits: map[string]any{"name": "Bob"}},
			},
			then: func(t *testing.T, w *world, roots []string) {
				if n := len(w.conflicts()); n != 0 {
					t.Errorf("%d conflicts recorded for a placeholder id", n)
				}
			},
		})
	}
	for _, v := range []string{"null", "undefined", "0", "-1", "anonymous", "00000000-0000-0000-0000-000000000000"} {
		scenarios = append(scenarios, scenario{
			name: "blocked userId " + v + " never matches",
			steps: []string{
				batch(`{"type":"identify","messageId":"p1","anonymousId":"a1","userId":"` + v + `"}`),
				batch(`{"type":"identify","messageId":"p2","anonymousId":"a2","userId":"` + v + `"}`),
				batch(`{"type":"track","messageId":"only","userId":"` + v + `","event":"x"}`),
			},
			rejected: []string{events.CodeMissingIdentity},
			persons:  2,
			groups: []group{
				{events: []string{"p1"}, identifiers: []string{"anonymous_id:a1"}, traits: map[string]any{}},
				{events: []string{"p2"}, identifiers: []string{"anonymous_id:a2"}, traits: map[string]any{}},
			},
		})
	}

	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			var codes []string
			for _, body := range sc.steps {
				res := w.send(body)
				for _, r := range res.Rejected {
					codes = append(codes, r.Code)
				}
			}
			if !slices.Equal(codes, sc.rejected) {
				t.Fatalf("rejections = %v, want %v", codes, sc.rejected)
			}
			if got := w.persons(); got != sc.persons {
				t.Errorf("persons = %d, want %d", got, sc.persons)
			}
			roots := checkGroups(t, w, sc.groups)
			if sc.then != nil && !t.Failed() {
				sc.then(t, w, roots)
			}
		})
	}
}

// checkGroups asserts that the stored events are exactly the groups' events,
// that each group's events resolve to one person and different groups to
// different persons, and each person's identifiers and traits. It returns
// the groups' person ids.
func checkGroups(t *testing.T, w *world, groups []group) []string {
	t.Helper()
	stored := w.stored()
	listed := map[string]bool{}
	roots := make([]string, len(groups))
	for gi, g := range groups {
		for _, mid := range g.events {
			listed[mid] = true
			if stored[mid] == nil {
				t.Errorf("group %d: event %s was not stored", gi, mid)
				continue
			}
			r := w.rootOf(mid)
			if roots[gi] == "" {
				roots[gi] = r
			} else if r != roots[gi] {
				t.Errorf("group %d: event %s belongs to %s, want %s (the person of %s)", gi, mid, r, roots[gi], g.events[0])
			}
		}
	}
	for mid := range stored {
		if !listed[mid] {
			t.Errorf("event %s was stored but is in no group", mid)
		}
	}
	for i := range roots {
		for j := i + 1; j < len(roots); j++ {
			if roots[i] != "" && roots[i] == roots[j] {
				t.Errorf("groups %d and %d resolve to one person %s, want two", i, j, roots[i])
			}
		}
	}
	for gi, g := range groups {
		if roots[gi] == "" {
			continue
		}
		p := w.profile(roots[gi])
		if got := identSet(p); !slices.Equal(got, g.identifiers) {
			t.Errorf("group %d identifiers = %v, want %v", gi, got, g.identifiers)
		}
		if g.traits != nil {
			if got := traitsOf(t, p); !reflect.DeepEqual(got, g.traits) {
				t.Errorf("group %d traits = %v, want %v", gi, got, g.traits)
			}
		}
	}
	return roots
}

// TestIdentityServiceScenarios drives the staff actions of identity.Service
// (merge, unmerge, delete, suppress) over people made by real ingest.
func TestIdentityServiceScenarios(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, w *world)
	}{
		{"manual merge then unmerge restores both persons", func(t *testing.T, w *world) {
			w.send(batch(
				`{"type":"identify","messageId":"ada","anonymousId":"a1","traits":{"name":"Ada","company":"Acme"}}`,
				`{"type":"page","messageId":"ada-pv","anonymousId":"a1","name":"Home"}`,
				`{"type":"identify","messageId":"bob","anonymousId":"a2","userId":"u2","traits":{"plan":"pro","company":"Other"}}`,
				`{"type":"track","messageId":"bob-tr","anonymousId":"a2","event":"Paid"}`,
			))
			p1, p2 := w.rootOf("ada"), w.rootOf("bob")
			beforeIdents1, beforeIdents2 := identSet(w.profile(p1)), identSet(w.profile(p2))
			beforeTraits1, beforeTraits2 := traitsOf(t, w.profile(p1)), traitsOf(t, w.profile(p2))

			m, err := w.ids.Merge(ctx, identity.MergeParams{FromID: p2, IntoID: p1, Actor: "staff:test"})
			if err != nil {
				t.Fatalf("Merge: %v", err)
			}
			if m.Reason != "manual" || m.Actor != "staff:test" || m.FromID != p2 || m.IntoID != p1 {
				t.Errorf("merge = %+v", m)
			}
			if got := w.persons(); got != 1 {
				t.Errorf("persons after merge = %d, want 1", got)
			}
			if got := w.rootOf("bob-tr"); got != p1 {
				t.Errorf("bob's event resolves to %s after merge, want %s", got, p1)
			}
			merged := w.profile(p2)
			if merged.Person.ID != p1 || !slices.Equal(merged.MergedIDs, []string{p2}) {
				t.Errorf("Person(%s) after merge = %s merged %v", p2, merged.Person.ID, merged.MergedIDs)
			}
			if got, want := traitsOf(t, merged), map[string]any{"name": "Ada", "company": "Acme", "plan": "pro"}; !reflect.DeepEqual(got, want) {
				t.Errorf("merged traits = %v, want %v (into keeps its own company)", got, want)
			}
			if merged.Person.UserID != "u2" {
				t.Errorf("merged person user id = %q, want u2", merged.Person.UserID)
			}
			if got, want := w.timelineIDs(p1), []string{"ada", "ada-pv", "bob", "bob-tr"}; !slices.Equal(got, want) {
				t.Errorf("merged timeline = %v, want %v", got, want)
			}

			if _, err := w.ids.Unmerge(ctx, m.ID, "staff:test"); err != nil {
				t.Fatalf("Unmerge: %v", err)
			}
			if got := w.persons(); got != 2 {
				t.Errorf("persons after unmerge = %d, want 2", got)
			}
			for _, c := range []struct {
				person        string
				idents        []string
				traits        map[string]any
				timeline      []string
				userID        string
				eventsOfOwner []string
			}{
				{p1, beforeIdents1, beforeTraits1, []string{"ada", "ada-pv"}, "", []string{"ada", "ada-pv"}},
				{p2, beforeIdents2, beforeTraits2, []string{"bob", "bob-tr"}, "u2", []string{"bob", "bob-tr"}},
			} {
				prof := w.profile(c.person)
				if prof.Person.ID != c.person || len(prof.MergedIDs) != 0 || prof.Person.MergedInto != "" {
					t.Errorf("Person(%s) after unmerge = %s (merged %v, into %q)", c.person, prof.Person.ID, prof.MergedIDs, prof.Person.MergedInto)
				}
				if got := identSet(prof); !slices.Equal(got, c.idents) {
					t.Errorf("%s identifiers after unmerge = %v, want %v", c.person, got, c.idents)
				}
				if got := traitsOf(t, prof); !reflect.DeepEqual(got, c.traits) {
					t.Errorf("%s traits after unmerge = %v, want %v", c.person, got, c.traits)
				}
				if prof.Person.UserID != c.userID {
					t.Errorf("%s user id after unmerge = %q, want %q", c.person, prof.Person.UserID, c.userID)
				}
				if got := w.timelineIDs(c.person); !slices.Equal(got, c.timeline) {
					t.Errorf("%s timeline after unmerge = %v, want %v", c.person, got, c.timeline)
				}
				for _, mid := range c.eventsOfOwner {
					if got := w.rootOf(mid); got != c.person {
						t.Errorf("event %s resolves to %s after unmerge, want %s", mid, got, c.person)
					}
				}
			}
			ms, err := w.ids.Merges(ctx, p1)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 1 || ms[0].UndoneAt == nil || ms[0].UndoneBy != "staff:test" {
				t.Errorf("merge history after unmerge = %+v, want the merge marked undone", ms)
			}

			_, err = w.ids.Unmerge(ctx, m.ID, "staff:test")
			wantCode(t, err, onramp.ECONFLICT)
		}},
		{"unmerge of an automatic merge gives the second device back its events", func(t *testing.T, w *world) {
			w.send(batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1"}`))
			w.send(batch(`{"type":"page","messageId":"pv2","anonymousId":"a2","name":"Pricing"}`))
			w.send(batch(`{"type":"identify","messageId":"id2","anonymousId":"a2","userId":"u1","traits":{"plan":"pro"}}`))
			root := w.rootOf("id1")
			ms, err := w.ids.Merges(ctx, root)
			if err != nil || len(ms) != 1 {
				t.Fatalf("merges = %v, %v; want 1", ms, err)
			}
			if _, err := w.ids.Unmerge(ctx, ms[0].ID, "staff:test"); err != nil {
				t.Fatalf("Unmerge: %v", err)
			}
			other := w.rootOf("pv2")
			if other == root {
				t.Fatalf("pv2 still resolves to %s after unmerge", root)
			}
			if got, want := w.timelineIDs(other), []string{"pv2"}; !slices.Equal(got, want) {
				t.Errorf("a2's timeline = %v, want %v", got, want)
			}
			if got, want := w.timelineIDs(root), []string{"id1", "id2"}; !slices.Equal(got, want) {
				t.Errorf("u1's timeline = %v, want %v", got, want)
			}
			if got, want := identSet(w.profile(other)), []string{"anonymous_id:a2"}; !slices.Equal(got, want) {
				t.Errorf("a2's identifiers = %v, want %v", got, want)
			}
			if got, want := identSet(w.profile(root)), []string{"anonymous_id:a1", "user_id:u1"}; !slices.Equal(got, want) {
				t.Errorf("u1's identifiers = %v, want %v", got, want)
			}
		}},
		{"an unmerge sticks: the next event joining the two records a conflict", func(t *testing.T, w *world) {
			w.send(batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1"}`))
			w.send(batch(`{"type":"page","messageId":"pv2","anonymousId":"a2"}`))
			w.send(batch(`{"type":"identify","messageId":"id2","anonymousId":"a2","userId":"u1"}`))
			root := w.rootOf("id1")
			ms, err := w.ids.Merges(ctx, root)
			if err != nil || len(ms) != 1 {
				t.Fatalf("merges = %v, %v", ms, err)
			}
			if _, err := w.ids.Unmerge(ctx, ms[0].ID, "staff:test"); err != nil {
				t.Fatal(err)
			}
			other := w.rootOf("pv2")
			w.send(batch(`{"type":"track","messageId":"again","anonymousId":"a2","userId":"u1","event":"x"}`))
			if got := w.persons(); got != 2 {
				t.Errorf("persons = %d, want 2: staff's unmerge was undone by the next event", got)
			}
			if w.rootOf("again") != root || w.rootOf("pv2") != other {
				t.Errorf("again -> %s, pv2 -> %s; want %s and %s", w.rootOf("again"), w.rootOf("pv2"), root, other)
			}
			cs := w.conflicts()
			if len(cs) != 1 || cs[0].MessageID != "again" {
				t.Errorf("conflicts = %+v, want one for the joining event", cs)
			}
			// Staff can still merge them by hand.
			if _, err := w.ids.Merge(ctx, identity.MergeParams{FromID: other, IntoID: root}); err != nil {
				t.Errorf("manual merge after unmerge: %v", err)
			}
		}},
		{"manual merge of two persons with different user ids is refused", func(t *testing.T, w *world) {
			w.send(batch(
				`{"type":"identify","messageId":"m1","anonymousId":"a1","userId":"u1"}`,
				`{"type":"identify","messageId":"m2","anonymousId":"a2","userId":"u2"}`,
			))
			p1, p2 := w.rootOf("m1"), w.rootOf("m2")
			_, err := w.ids.Merge(ctx, identity.MergeParams{FromID: p2, IntoID: p1, Actor: "staff:test"})
			wantCode(t, err, onramp.ECONFLICT)
			if got := w.persons(); got != 2 {
				t.Errorf("persons = %d, want 2", got)
			}
			if w.rootOf("m2") != p2 {
				t.Errorf("refused merge moved m2")
			}
		}},
		{"manual merge of a person into itself is refused", func(t *testing.T, w *world) {
			w.send(batch(`{"type":"identify","messageId":"m1","anonymousId":"a1","userId":"u1"}`))
			p1 := w.rootOf("m1")
			_, err := w.ids.Merge(ctx, identity.MergeParams{FromID: p1, IntoID: p1})
			wantCode(t, err, onramp.ECONFLICT)
			_, err = w.ids.Merge(ctx, identity.MergeParams{FromID: "per_nobody", IntoID: p1})
			wantCode(t, err, onramp.ENOTFOUND)
			_, err = w.ids.Unmerge(ctx, "mrg_nobody", "")
			wantCode(t, err, onramp.ENOTFOUND)
		}},
		{"delete leaves nothing of the person", func(t *testing.T, w *world) {
			w.send(batch(
				`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1","traits":{"email":"ada@example.com","phone":"+44 20 7946 0000"}}`,
				`{"type":"page","messageId":"pv1","anonymousId":"a1","name":"Home"}`,
			))
			w.send(batch(`{"type":"page","messageId":"pv2","anonymousId":"a2","name":"Docs"}`))
			w.send(batch(`{"type":"identify","messageId":"id2","anonymousId":"a2","userId":"u1"}`))
			// A conflict that names the person, and someone else who must stay.
			w.send(batch(`{"type":"identify","messageId":"c1","anonymousId":"a1","userId":"u2"}`))
			w.send(batch(`{"type":"identify","messageId":"other","anonymousId":"b1","userId":"bob"}`))
			root := w.rootOf("id1")
			mergesBefore, err := w.ids.Merges(ctx, root)
			if err != nil || len(mergesBefore) != 1 {
				t.Fatalf("merges before delete = %v, %v", mergesBefore, err)
			}
			if len(w.conflicts()) != 1 {
				t.Fatalf("want one conflict before delete")
			}
			members, err := w.ids.Members(ctx, root)
			if err != nil {
				t.Fatal(err)
			}

			deleted, err := w.ids.Delete(ctx, root)
			if err != nil {
				t.Fatalf("Delete: %v", err)
			}
			slices.Sort(deleted)
			if !slices.Equal(deleted, members) {
				t.Errorf("deleted = %v, want the whole tree %v", deleted, members)
			}
			for _, k := range []identity.Key{{identity.AnonymousID, "a1"}, {identity.AnonymousID, "a2"}, {identity.UserID, "u1"}, {identity.Email, "ada@example.com"}, {identity.Phone, "+442079460000"}} {
				_, err := w.lookup(k.Type, k.Value)
				if onramp.ErrorCode(err) != onramp.ENOTFOUND {
					t.Errorf("Lookup(%s) after delete = %v, want not found", k, err)
				}
			}
			for _, id := range members {
				_, err := w.ids.Person(ctx, id)
				if onramp.ErrorCode(err) != onramp.ENOTFOUND {
					t.Errorf("Person(%s) after delete = %v, want not found", id, err)
				}
			}
			if n := w.eventCount(); n != 2 {
				t.Errorf("events after delete = %d, want 2 (u2's and bob's)", n)
			}
			for mid := range w.stored() {
				if mid != "c1" && mid != "other" {
					t.Errorf("event %s of the deleted person is still stored", mid)
				}
			}
			if _, err := w.read.MergeByID(ctx, mergesBefore[0].ID); onramp.ErrorCode(err) != onramp.ENOTFOUND {
				t.Errorf("MergeByID after delete = %v, want not found", err)
			}
			if ms, err := w.read.MergesOf(ctx, members); err != nil || len(ms) != 0 {
				t.Errorf("MergesOf after delete = %v, %v", ms, err)
			}
			if n := len(w.conflicts()); n != 0 {
				t.Errorf("%d conflicts naming the deleted person remain", n)
			}
			if got := w.persons(); got != 2 {
				t.Errorf("persons after delete = %d, want 2", got)
			}
			if p, err := w.lookup(identity.UserID, "bob"); err != nil || p.Person.ID != w.rootOf("other") {
				t.Errorf("bob after delete = %v, %v", p, err)
			}
			_, err = w.ids.Delete(ctx, root)
			wantCode(t, err, onramp.ENOTFOUND)
		}},
		{"suppressed identifiers are refused until unsuppressed", func(t *testing.T, w *world) {
			w.send(batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1","traits":{"email":"ada@example.com"}}`))
			root := w.rootOf("id1")
			keys, err := w.ids.Suppress(ctx, identity.SuppressParams{PersonID: root})
			if err != nil {
				t.Fatalf("Suppress: %v", err)
			}
			if len(keys) != 3 {
				t.Errorf("suppressed keys = %v, want 3", keys)
			}
			before := w.eventCount()
			later := batch(
				`{"type":"track","messageId":"s1","userId":"u1","event":"x"}`,
				`{"type":"page","messageId":"s2","anonymousId":"a1"}`,
				`{"type":"track","messageId":"s3","anonymousId":"new-device","event":"Form","context":{"traits":{"email":"ADA@example.com"}}}`,
				`{"type":"identify","messageId":"s4","anonymousId":"new-2","traits":{"email":"ada@example.com"}}`,
				`{"type":"page","messageId":"ok","anonymousId":"someone-else"}`,
			)
			// The sender holds only a public write key: it must not learn who
			// is suppressed, so Ingest counts these apart from rejections.
			res := w.send(later)
			if res.Accepted != 1 || res.Suppressed != 4 || len(res.Rejected) != 0 {
				t.Fatalf("result = %+v, want 1 accepted and 4 suppressed", res)
			}
			if got := w.eventCount(); got != before+1 {
				t.Errorf("events = %d, want %d (only the other person's)", got, before+1)
			}
			for _, mid := range []string{"s1", "s2", "s3", "s4"} {
				if w.stored()[mid] != nil {
					t.Errorf("suppressed event %s was stored", mid)
				}
			}
			if _, err := w.lookup(identity.AnonymousID, "new-device"); onramp.ErrorCode(err) != onramp.ENOTFOUND {
				t.Errorf("a suppressed event created identifier new-device: %v", err)
			}
			// Staff see them in the rejected-events log, without payload.
			logged, err := w.events.Rejections(ctx, events.RejectionQuery{PropertyID: w.prop})
			if err != nil || len(logged) != 4 {
				t.Fatalf("rejected log = %d entries, %v; want 4", len(logged), err)
			}
			var idx []int
			for _, r := range logged {
				idx = append(idx, r.Index)
				if r.Code != events.CodeSuppressed || len(r.Payload) != 0 || r.MessageID == "" {
					t.Errorf("logged rejection = code %q payload %q message %q, want suppressed, no payload, the message id", r.Code, r.Payload, r.MessageID)
				}
			}
			slices.Sort(idx)
			if !slices.Equal(idx, []int{0, 1, 2, 3}) {
				t.Errorf("logged indexes = %v, want 0-3", idx)
			}

			if err := w.ids.Unsuppress(ctx, keys); err != nil {
				t.Fatalf("Unsuppress: %v", err)
			}
			res = w.send(later)
			if res.Accepted != 4 || res.Duplicates != 1 || res.Suppressed != 0 || len(res.Rejected) != 0 {
				t.Fatalf("after unsuppress: %+v, want 4 accepted, 1 duplicate", res)
			}
			for _, mid := range []string{"s1", "s2", "s3", "s4"} {
				if got := w.rootOf(mid); got != root {
					t.Errorf("event %s resolves to %s, want %s", mid, got, root)
				}
			}
		}},
		{"suppress with delete removes the person and refuses their events", func(t *testing.T, w *world) {
			w.send(batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1"}`))
			root := w.rootOf("id1")
			if _, err := w.ids.Suppress(ctx, identity.SuppressParams{PersonID: root, AlsoDelete: true}); err != nil {
				t.Fatalf("Suppress: %v", err)
			}
			if n := w.eventCount(); n != 0 {
				t.Errorf("events = %d, want 0", n)
			}
			if _, err := w.lookup(identity.UserID, "u1"); onramp.ErrorCode(err) != onramp.ENOTFOUND {
				t.Errorf("Lookup(u1) = %v, want not found", err)
			}
			res := w.send(batch(`{"type":"track","messageId":"again","userId":"u1","event":"x"}`))
			if res.Accepted != 0 || res.Suppressed != 1 || w.eventCount() != 0 {
				t.Errorf("result = %+v with %d events stored, want it suppressed", res, w.eventCount())
			}
			if n := w.persons(); n != 0 {
				t.Errorf("persons = %d, want 0", n)
			}
		}},
		{"unmerge inside a chain of merges takes the unmerged person's traits back from the root", func(t *testing.T, w *world) {
			w.send(batch(
				`{"type":"identify","messageId":"a","anonymousId":"a1","userId":"u1","traits":{"name":"Ada"}}`,
				`{"type":"identify","messageId":"b","anonymousId":"b1","traits":{"plan":"pro"}}`,
				`{"type":"identify","messageId":"c","anonymousId":"c1","traits":{"company":"Acme"}}`,
			))
			pa, pb, pc := w.rootOf("a"), w.rootOf("b"), w.rootOf("c")
			m1, err := w.ids.Merge(ctx, identity.MergeParams{FromID: pc, IntoID: pb})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.ids.Merge(ctx, identity.MergeParams{FromID: pb, IntoID: pa}); err != nil {
				t.Fatal(err)
			}
			if got, want := traitsOf(t, w.profile(pc)), map[string]any{"name": "Ada", "plan": "pro", "company": "Acme"}; !reflect.DeepEqual(got, want) {
				t.Fatalf("traits of the chain = %v, want %v", got, want)
			}
			// Take c out again: a's profile (the root) must lose what only c
			// brought, as it does when c was merged straight into a.
			if _, err := w.ids.Unmerge(ctx, m1.ID, "staff:test"); err != nil {
				t.Fatalf("Unmerge: %v", err)
			}
			if got := w.rootOf("c"); got != pc {
				t.Fatalf("c resolves to %s after unmerge, want itself", got)
			}
			if got, want := w.timelineIDs(pa), []string{"a", "b"}; !slices.Equal(got, want) {
				t.Errorf("a's timeline = %v, want %v", got, want)
			}
			if got, want := traitsOf(t, w.profile(pc)), map[string]any{"company": "Acme"}; !reflect.DeepEqual(got, want) {
				t.Errorf("c's traits = %v, want %v", got, want)
			}
			if got, want := traitsOf(t, w.profile(pa)), map[string]any{"name": "Ada", "plan": "pro"}; !reflect.DeepEqual(got, want) {
				t.Errorf("a's traits after c was unmerged = %v, want %v: c's traits stay on the root", got, want)
			}
		}},
		{"unmerge of the middle link keeps the rest of the chain together", func(t *testing.T, w *world) {
			w.send(batch(
				`{"type":"identify","messageId":"a","anonymousId":"a1","userId":"u1"}`,
				`{"type":"identify","messageId":"b","anonymousId":"b1"}`,
				`{"type":"identify","messageId":"c","anonymousId":"c1"}`,
			))
			pa, pb, pc := w.rootOf("a"), w.rootOf("b"), w.rootOf("c")
			if _, err := w.ids.Merge(ctx, identity.MergeParams{FromID: pc, IntoID: pb}); err != nil {
				t.Fatal(err)
			}
			m2, err := w.ids.Merge(ctx, identity.MergeParams{FromID: pb, IntoID: pa})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.ids.Unmerge(ctx, m2.ID, ""); err != nil {
				t.Fatalf("Unmerge: %v", err)
			}
			if got := w.rootOf("c"); got != pb {
				t.Errorf("c resolves to %s, want b %s (their merge stands)", got, pb)
			}
			if got, want := w.timelineIDs(pb), []string{"b", "c"}; !slices.Equal(got, want) {
				t.Errorf("b's timeline = %v, want %v", got, want)
			}
			if got, want := w.timelineIDs(pa), []string{"a"}; !slices.Equal(got, want) {
				t.Errorf("a's timeline = %v, want %v", got, want)
			}
			if got := w.persons(); got != 2 {
				t.Errorf("persons = %d, want 2", got)
			}
		}},
		{"identifiers of a deleted person start a new person when they come back", func(t *testing.T, w *world) {
			w.send(batch(`{"type":"identify","messageId":"id1","anonymousId":"a1","userId":"u1","traits":{"name":"Ada"}}`))
			old := w.rootOf("id1")
			if _, err := w.ids.Delete(ctx, old); err != nil {
				t.Fatal(err)
			}
			w.send(batch(`{"type":"page","messageId":"back","anonymousId":"a1"}`, `{"type":"identify","messageId":"back2","anonymousId":"a1","userId":"u1"}`))
			now := w.rootOf("back")
			if now == old {
				t.Fatalf("event went to the deleted person %s", old)
			}
			if w.rootOf("back2") != now || w.persons() != 1 || w.eventCount() != 2 {
				t.Errorf("after return: persons %d events %d", w.persons(), w.eventCount())
			}
			if got := traitsOf(t, w.profile(now)); len(got) != 0 {
				t.Errorf("the new person inherited traits %v", got)
			}
			if got, want := identSet(w.profile(now)), []string{"anonymous_id:a1", "user_id:u1"}; !slices.Equal(got, want) {
				t.Errorf("identifiers = %v, want %v", got, want)
			}
		}},
		{"an alias whose previousId is suppressed is suppressed too", func(t *testing.T, w *world) {
			w.send(batch(`{"type":"page","messageId":"pv","anonymousId":"a1"}`))
			root := w.rootOf("pv")
			if _, err := w.ids.Suppress(ctx, identity.SuppressParams{PersonID: root}); err != nil {
				t.Fatal(err)
			}
			res := w.send(batch(`{"type":"alias","messageId":"al","previousId":"a1","userId":"u-new"}`))
			if res.Accepted != 0 || res.Suppressed != 1 {
				t.Errorf("alias from suppressed a1: %+v, want it suppressed", res)
			}
			if p, err := w.lookup(identity.UserID, "u-new"); err == nil && p.Person.ID == root {
				t.Errorf("the suppressed person gained identifier u-new through an alias")
			}
		}},
		{"retried batch is stored once", func(t *testing.T, w *world) {
			body := batch(
				`{"type":"page","messageId":"r1","anonymousId":"a1"}`,
				`{"type":"track","messageId":"r2","anonymousId":"a1","event":"x"}`,
				`{"type":"identify","messageId":"r3","anonymousId":"a1","userId":"u1","traits":{"n":1}}`,
				`{"type":"track","anonymousId":"a1","event":"no message id","timestamp":"2024-04-30T10:00:00Z"}`,
			)
			for i, want := range []events.Result{{Accepted: 4}, {Duplicates: 4}, {Duplicates: 4}} {
				res := w.send(body)
				if res.Accepted != want.Accepted || res.Duplicates != want.Duplicates || len(res.Rejected) != 0 {
					t.Errorf("attempt %d: %+v, want accepted %d duplicates %d", i+1, res, want.Accepted, want.Duplicates)
				}
			}
			if n := w.eventCount(); n != 4 {
				t.Errorf("events = %d, want 4", n)
			}
			if n := w.persons(); n != 1 {
				t.Errorf("persons = %d, want 1", n)
			}
			// A repeat inside one batch is a duplicate too.
			res := w.send(batch(
				`{"type":"page","messageId":"twice","anonymousId":"a1"}`,
				`{"type":"page","messageId":"twice","anonymousId":"a1"}`,
			))
			if res.Accepted != 1 || res.Duplicates != 1 {
				t.Errorf("in-batch repeat: %+v, want 1 accepted 1 duplicate", res)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newWorld(t))
		})
	}
}

// Two requests that carry the same new identifiers, committed in one group,
// must still make one person.
func TestIdentityConcurrentRequestsMakeOnePerson(t *testing.T) {
	w := newWorld(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.trySend(batch(fmt.Sprintf(`{"type":"page","messageId":"m%d","anonymousId":"same","userId":"u-same"}`, i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := w.persons(); n != 1 {
		t.Errorf("persons = %d, want 1", n)
	}
	if n := w.eventCount(); n != 20 {
		t.Errorf("events = %d, want 20", n)
	}
}
