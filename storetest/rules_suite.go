package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
)

var txTests = []test{
	{"Tx/RollbackWritesNothing", func(t *testing.T, e *env) {
		err := e.InTx(e.ctx, func(s Store) error {
			steps := []error{
				s.CreateProperty(e.ctx, newProperty("Website")),
				s.CreateToken(e.ctx, newToken("t", at(0))),
				s.CreatePersons(e.ctx, []*identity.Person{person("per_a", "", at(0))}),
				s.AddIdentifiers(e.ctx, []*identity.Identifier{ident(identity.Email, "a@example.com", "per_a")}),
				s.InsertMerge(e.ctx, newMerge("mrg_1", "per_b", "per_a", at(0))),
				s.InsertConflicts(e.ctx, []*identity.Conflict{{ID: "cfl_1", PersonIDs: []string{"per_a"}, Reason: "r", CreatedAt: at(0)}}),
				s.AddSuppressions(e.ctx, []identity.Key{{Type: identity.Email, Value: "a@example.com"}}, at(0)),
				s.InsertEvents(e.ctx, []*events.Event{event("m1", "per_a", at(0))}),
				s.InsertRejections(e.ctx, []*events.Rejection{{PropertyID: testProperty, ReceivedAt: at(0), Code: "c", Reason: "r"}}),
				s.SetCursor(e.ctx, "bus", 9),
			}
			if err := errors.Join(steps...); err != nil {
				return err
			}
			// The transaction sees its own writes…
			ps, err := s.PersonsByID(e.ctx, []string{"per_a"})
			if err != nil || len(ps) != 1 {
				return fmt.Errorf("own write not visible inside the transaction: %v, %v", ps, err)
			}
			// …and readers do not, before commit.
			ps, err = e.Reader().PersonsByID(e.ctx, []string{"per_a"})
			if err != nil || len(ps) != 0 {
				return fmt.Errorf("uncommitted write visible to a reader: %v, %v", ps, err)
			}
			return fmt.Errorf("wrapped: %w", errRollback)
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("InTx = %v, want the callback's error", err)
		}
		r := e.Reader()
		counts := map[string]func() (int, error){
			"properties":  func() (int, error) { l, err := r.ListProperties(e.ctx); return len(l), err },
			"tokens":      func() (int, error) { n, err := r.CountTokens(e.ctx); return int(n), err },
			"persons":     func() (int, error) { n, err := r.CountPersons(e.ctx); return int(n), err },
			"identifiers": func() (int, error) { l, err := r.IdentifiersOf(e.ctx, []string{"per_a"}); return len(l), err },
			"merges":      func() (int, error) { l, err := r.MergesOf(e.ctx, []string{"per_a"}); return len(l), err },
			"conflicts":   func() (int, error) { l, err := r.ListConflicts(e.ctx, 10); return len(l), err },
			"suppressions": func() (int, error) {
				l, err := r.Suppressed(e.ctx, []identity.Key{{Type: identity.Email, Value: "a@example.com"}})
				return len(l), err
			},
			"events": func() (int, error) { n, err := r.CountEvents(e.ctx); return int(n), err },
			"rejections": func() (int, error) {
				l, err := r.Rejections(e.ctx, events.RejectionQuery{Limit: 10})
				return len(l), err
			},
			"cursor": func() (int, error) { n, err := r.Cursor(e.ctx, "bus"); return int(n), err },
		}
		for what, count := range counts {
			if n, err := count(); err != nil || n != 0 {
				t.Errorf("%s after rollback = %d, %v; want 0", what, n, err)
			}
		}
	}},
	{"Tx/ReaderRefusesWrites", func(t *testing.T, e *env) {
		r := e.Reader()
		if err := r.CreatePersons(e.ctx, []*identity.Person{person("per_a", "", at(0))}); err == nil {
			t.Error("CreatePersons through Reader succeeded")
		}
		if err := r.SetCursor(e.ctx, "bus", 1); err == nil {
			t.Error("SetCursor through Reader succeeded")
		}
		if n, _ := r.CountPersons(e.ctx); n != 0 {
			t.Errorf("a write through Reader left %d persons", n)
		}
		must(t, e.Writer().SetCursor(e.ctx, "bus", 5))
		if c, err := r.Cursor(e.ctx, "bus"); err != nil || c != 5 {
			t.Errorf("Writer's write read back as %d, %v", c, err)
		}
	}},
}

// resolve runs the identity rules on obs in one transaction, retrying races.
func (e *env) resolve(t *testing.T, clock onramp.Clock, obs ...identity.Observation) []string {
	t.Helper()
	var owners []string
	err := e.retry(func(s Store) error {
		var err error
		owners, err = identity.Resolver{Clock: clock}.Resolve(e.ctx, s, obs)
		return err
	})
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	return owners
}

func obs(msg string, traits string, keys ...identity.Key) identity.Observation {
	o := identity.Observation{Keys: keys, At: at(time.Minute), MessageID: msg}
	if traits != "" {
		o.Traits = json.RawMessage(traits)
	}
	return o
}

func anon(v string) identity.Key  { return identity.Key{Type: identity.AnonymousID, Value: v} }
func user(v string) identity.Key  { return identity.Key{Type: identity.UserID, Value: v} }
func email(v string) identity.Key { return identity.Key{Type: identity.Email, Value: v} }

// ownerOf returns the person an identifier belongs to, or "".
func (e *env) ownerOf(t *testing.T, k identity.Key) string {
	t.Helper()
	ids, err := e.Reader().FindIdentifiers(e.ctx, []identity.Key{k})
	must(t, err)
	if len(ids) == 0 {
		return ""
	}
	return ids[0].PersonID
}

func (e *env) getPerson(t *testing.T, id string) *identity.Person {
	t.Helper()
	ps, err := e.Reader().PersonsByID(e.ctx, []string{id})
	must(t, err)
	if len(ps) != 1 {
		t.Fatalf("person %s: found %d", id, len(ps))
	}
	return ps[0]
}

func traitsOf(t *testing.T, p *identity.Person) map[string]any {
	t.Helper()
	var m map[string]any
	must(t, json.Unmarshal(p.Traits, &m))
	return m
}

var resolverTests = []test{
	{"Resolver/RepeatedIdentifyLeavesPersonAlone", func(t *testing.T, e *env) {
		clock := newClock()
		owners := e.resolve(t, clock, obs("i1", `{"plan": "trial", "name": "Ada", "tags": ["a", "b"]}`, user("u-rep")))
		first := e.getPerson(t, owners[0]).UpdatedAt
		e.resolve(t, clock, obs("i2", `{"plan":"trial","name":"Ada","tags":["a","b"]}`, user("u-rep")))
		second := e.getPerson(t, owners[0]).UpdatedAt
		e.resolve(t, clock, obs("i3", `{"plan":"trial","name":"Ada","tags":["a","b"]}`, user("u-rep")))
		third := e.getPerson(t, owners[0]).UpdatedAt
		if !third.Equal(second) {
			t.Errorf("identify with unchanged traits rewrote the person: updated_at %v, %v, %v", first, second, third)
		}
	}},
	{"Resolver/AnonymousThenIdentified", func(t *testing.T, e *env) {
		clock := newClock()
		first := e.resolve(t, clock, obs("m1", "", anon("a1")))
		second := e.resolve(t, clock, obs("m2", `{"name": "Ada", "email": "ada@example.com"}`, anon("a1"), user("u1"), email("ada@example.com")))
		if first[0] == "" || second[0] != first[0] {
			t.Fatalf("identified event went to %q, anonymous one to %q; want one person", second[0], first[0])
		}
		pid := first[0]
		for _, k := range []identity.Key{anon("a1"), user("u1"), email("ada@example.com")} {
			if got := e.ownerOf(t, k); got != pid {
				t.Errorf("%v belongs to %q, want %q", k, got, pid)
			}
		}
		p := e.getPerson(t, pid)
		if p.UserID != "u1" || p.RootID != pid || traitsOf(t, p)["name"] != "Ada" {
			t.Errorf("person = %+v traits %s", p, p.Traits)
		}
		if n, _ := e.Reader().CountPersons(e.ctx); n != 1 {
			t.Errorf("CountPersons = %d, want 1", n)
		}
	}},
	{"Resolver/AnonymousMergesIntoKnown", func(t *testing.T, e *env) {
		clock := newClock()
		known := e.resolve(t, clock, obs("m1", `{"plan": "pro"}`, user("u1"), email("ada@example.com")))[0]
		stranger := e.resolve(t, clock, obs("m2", `{"company": "Acme"}`, anon("a2")))[0]
		if known == stranger {
			t.Fatal("two unrelated observations gave one person")
		}
		// On a new device, Ada signs in: the anonymous person folds into her.
		owner := e.resolve(t, clock, obs("m3", "", anon("a2"), user("u1")))[0]
		if owner != known {
			t.Errorf("event with user id went to %q, want %q", owner, known)
		}
		members, err := e.Reader().PersonsWithRoot(e.ctx, known)
		must(t, err)
		sameStrings(t, "members", sorted(members), sorted([]string{known, stranger}))
		s := e.getPerson(t, stranger)
		if s.MergedInto != known || s.RootID != known {
			t.Errorf("merged person = %+v", s)
		}
		if traitsOf(t, e.getPerson(t, known))["company"] != "Acme" {
			t.Error("merge did not copy the missing trait")
		}
		ms, err := e.Reader().MergesOf(e.ctx, []string{known})
		must(t, err)
		if len(ms) != 1 || ms[0].FromID != stranger || ms[0].Reason != "identifiers" || ms[0].MessageID != "m3" {
			t.Errorf("merges = %+v", ms)
		}
		if n, _ := e.Reader().CountPersons(e.ctx); n != 1 {
			t.Errorf("CountPersons = %d, want 1", n)
		}
	}},
	{"Resolver/TwoUserIDsConflict", func(t *testing.T, e *env) {
		clock := newClock()
		ada := e.resolve(t, clock, obs("m1", "", user("u1"), email("shared@example.com")))[0]
		// Another user id with Ada's email: never merge two known people.
		bob := e.resolve(t, clock, obs("m2", "", user("u2"), email("shared@example.com")))[0]
		if bob == ada {
			t.Fatal("two user ids were merged into one person")
		}
		if got := e.ownerOf(t, user("u2")); got != bob {
			t.Errorf("u2 belongs to %q, want %q", got, bob)
		}
		if got := e.ownerOf(t, email("shared@example.com")); got != ada {
			t.Errorf("the shared email moved to %q", got)
		}
		cs, err := e.Reader().ListConflicts(e.ctx, 10)
		must(t, err)
		if len(cs) != 1 || cs[0].MessageID != "m2" {
			t.Fatalf("conflicts = %+v, want one for m2", cs)
		}
		sameStrings(t, "conflict persons", sorted(cs[0].PersonIDs), sorted([]string{ada, bob}))
		ms, err := e.Reader().MergesOf(e.ctx, []string{ada, bob})
		must(t, err)
		if len(ms) != 0 {
			t.Errorf("merges = %+v, want none", ms)
		}
	}},
	{"Resolver/ConcurrentNewIdentifier", func(t *testing.T, e *env) {
		// Several writers meet the same new anonymous id at once (several
		// nodes on Postgres). With retries, exactly one person owns it.
		clock := newClock()
		const writers = 6
		owners := make([]string, writers)
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := e.retry(func(s Store) error {
					o, err := identity.Resolver{Clock: clock}.Resolve(e.ctx, s, []identity.Observation{obs(fmt.Sprintf("m%d", i), fmt.Sprintf(`{"w%d": %d}`, i, i), anon("same"))})
					if err == nil {
						owners[i] = o[0]
					}
					return err
				})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, err)
		}
		for _, o := range owners {
			if o != owners[0] {
				t.Fatalf("owners = %v, want one person", owners)
			}
		}
		if n, _ := e.Reader().CountPersons(e.ctx); n != 1 {
			t.Errorf("CountPersons = %d, want 1", n)
		}
		// No writer's traits were lost to a concurrent update.
		if got := len(traitsOf(t, e.getPerson(t, owners[0]))); got != writers {
			t.Errorf("person has %d traits, want %d: an update was lost", got, writers)
		}
	}},
}

func (e *env) service(clock onramp.Clock) *identity.Service {
	inTx := func(ctx context.Context, fn func(identity.Store) error) error {
		return e.InTx(ctx, func(s Store) error { return fn(s) })
	}
	return identity.NewService(e.Reader(), inTx, clock, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

var serviceTests = []test{
	{"Service/MergeUnmerge", func(t *testing.T, e *env) {
		clock := newClock()
		svc := e.service(clock)
		p := e.resolve(t, clock, obs("m1", `{"name": "Ada"}`, anon("a"), email("ada@example.com")))[0]
		q := e.resolve(t, clock, obs("m2", `{"company": "Acme"}`, anon("b")))[0]
		r := e.resolve(t, clock, obs("m3", `{"city": "Lyon"}`, anon("c")))[0]
		mRQ, err := svc.Merge(e.ctx, identity.MergeParams{FromID: r, IntoID: q, Actor: "staff:1"})
		must(t, err)
		mQP, err := svc.Merge(e.ctx, identity.MergeParams{FromID: q, IntoID: p, Actor: "staff:1"})
		must(t, err)
		members, err := svc.Members(e.ctx, r)
		must(t, err)
		sameStrings(t, "members after two merges", sorted(members), sorted([]string{p, q, r}))
		prof, err := svc.Person(e.ctx, r)
		must(t, err)
		if prof.Person.ID != p || len(prof.Identifiers) != 4 || traitsOf(t, prof.Person)["company"] != "Acme" {
			t.Errorf("profile of a merged person = %+v", prof)
		}
		_, err = svc.Merge(e.ctx, identity.MergeParams{FromID: q, IntoID: p})
		wantCode(t, err, onramp.ECONFLICT, "merging one person with itself")

		// Unmerge q from p: q and r (merged into q before) are a tree again.
		undone, err := svc.Unmerge(e.ctx, mQP.ID, "staff:2")
		must(t, err)
		if undone.UndoneAt == nil || undone.UndoneBy != "staff:2" {
			t.Errorf("unmerge = %+v", undone)
		}
		for id, root := range map[string]string{p: p, q: q, r: q} {
			if got := e.getPerson(t, id).RootID; got != root {
				t.Errorf("root of %s = %s, want %s", id, got, root)
			}
		}
		if e.getPerson(t, q).MergedInto != "" || e.getPerson(t, r).MergedInto != q {
			t.Error("MergedInto not restored")
		}
		if _, ok := traitsOf(t, e.getPerson(t, p))["company"]; ok {
			t.Error("unmerge left the copied trait on the person merged into")
		}
		_, err = svc.Unmerge(e.ctx, mQP.ID, "staff:2")
		wantCode(t, err, onramp.ECONFLICT, "undoing a merge twice")
		_, err = svc.Unmerge(e.ctx, "mrg_nope", "staff:2")
		wantCode(t, err, onramp.ENOTFOUND, "undoing an unknown merge")
		ms, err := svc.Merges(e.ctx, q)
		must(t, err)
		if len(ms) != 2 || ms[0].ID != mQP.ID || ms[0].UndoneAt == nil || ms[1].ID != mRQ.ID || ms[1].UndoneAt != nil {
			t.Errorf("merge history = %+v", ms)
		}
	}},
	{"Service/MergeRefusesTwoUsers", func(t *testing.T, e *env) {
		clock := newClock()
		a := e.resolve(t, clock, obs("m1", "", user("u1")))[0]
		b := e.resolve(t, clock, obs("m2", "", user("u2")))[0]
		_, err := e.service(clock).Merge(e.ctx, identity.MergeParams{FromID: a, IntoID: b})
		wantCode(t, err, onramp.ECONFLICT, "merging two known users")
		_, err = e.service(clock).Merge(e.ctx, identity.MergeParams{FromID: a, IntoID: "per_nope"})
		wantCode(t, err, onramp.ENOTFOUND, "merging into an unknown person")
	}},
	{"Service/Delete", func(t *testing.T, e *env) {
		clock := newClock()
		svc := e.service(clock)
		gone := e.resolve(t, clock, obs("m1", "", user("u1"), email("gone@example.com")))[0]
		merged := e.resolve(t, clock, obs("m2", "", anon("a-gone")))[0]
		kept := e.resolve(t, clock, obs("m3", "", user("u2")))[0]
		e.resolve(t, clock, obs("m4", "", anon("a-gone"), user("u1")))
		e.insertEvents(t, event("e1", gone, at(0)), event("e2", merged, at(0)), event("e3", kept, at(0)))
		deleted, err := svc.Delete(e.ctx, merged)
		must(t, err)
		sameStrings(t, "deleted", sorted(deleted), sorted([]string{gone, merged}))
		if n, _ := e.Reader().CountEvents(e.ctx); n != 1 {
			t.Errorf("events left = %d, want 1", n)
		}
		if e.ownerOf(t, user("u1")) != "" || e.ownerOf(t, user("u2")) != kept {
			t.Error("identifiers of the wrong persons were deleted")
		}
		_, err = svc.Delete(e.ctx, gone)
		wantCode(t, err, onramp.ENOTFOUND, "deleting a deleted person")
	}},
	{"Service/Suppress", func(t *testing.T, e *env) {
		clock := newClock()
		svc := e.service(clock)
		p := e.resolve(t, clock, obs("m1", "", user("u1"), email("quiet@example.com")))[0]
		keys, err := svc.Suppress(e.ctx, identity.SuppressParams{PersonID: p})
		must(t, err)
		if len(keys) != 2 {
			t.Fatalf("suppressed keys = %v", keys)
		}
		sup, err := e.Reader().Suppressed(e.ctx, []identity.Key{user("u1"), email("quiet@example.com"), user("u2")})
		must(t, err)
		if len(sup) != 2 {
			t.Errorf("Suppressed = %v", sup)
		}
		if e.ownerOf(t, user("u1")) != p {
			t.Error("Suppress without AlsoDelete deleted the person")
		}
		_, err = svc.Suppress(e.ctx, identity.SuppressParams{PersonID: p, AlsoDelete: true})
		must(t, err)
		if e.ownerOf(t, user("u1")) != "" {
			t.Error("Suppress with AlsoDelete kept the person")
		}
		must(t, svc.Unsuppress(e.ctx, []identity.Key{email("QUIET@example.com")}))
		sup, err = e.Reader().Suppressed(e.ctx, []identity.Key{user("u1"), email("quiet@example.com")})
		must(t, err)
		if len(sup) != 1 || sup[0] != user("u1") {
			t.Errorf("after Unsuppress: %v", sup)
		}
	}},
}

// startIngest runs an events.Service over e until the test ends.
func (e *env) startIngest(t *testing.T, clock onramp.Clock) *events.Service {
	return e.runIngest(t, events.Config{Clock: clock})
}

// runIngest runs an events.Service with cfg over e until the test ends;
// unset, InTx is e's, IsRetryable e's, SplitCommit e.splitCommit.
func (e *env) runIngest(t *testing.T, cfg events.Config) *events.Service {
	cfg.Read = e.Reader()
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.InTx == nil {
		cfg.InTx = e.ingestTx
	}
	if cfg.IsRetryable == nil {
		cfg.IsRetryable = e.IsRetryable
	}
	cfg.SplitCommit = cfg.SplitCommit || e.splitCommit
	svc := events.NewService(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return svc
}

// ingestTx is e's transaction as events.Service wants it.
func (e *env) ingestTx(ctx context.Context, fn func(events.Store) error) error {
	return e.InTx(ctx, func(s Store) error { return fn(s) })
}

// errRace stands in for a race another node won (a serialization failure
// on PostgreSQL): the Service retries it like the engine's own.
var errRace = errors.New("storetest: lost a race with another node")

// startRacingIngest is startIngest whose next *lose transactions fail
// with errRace before they run.
func (e *env) startRacingIngest(t *testing.T, clock onramp.Clock, lose *atomic.Int32) *events.Service {
	return e.runIngest(t, events.Config{
		Clock: clock,
		InTx: func(ctx context.Context, fn func(events.Store) error) error {
			if lose.Add(-1) >= 0 {
				return errRace
			}
			return e.ingestTx(ctx, fn)
		},
		IsRetryable: func(err error) bool { return errors.Is(err, errRace) || e.IsRetryable(err) },
	})
}

func (e *env) ingest(t *testing.T, svc *events.Service, msgs ...string) *events.Result {
	t.Helper()
	b := &events.Batch{}
	for _, m := range msgs {
		b.Messages = append(b.Messages, json.RawMessage(m))
	}
	res, err := svc.Ingest(e.ctx, events.IngestParams{Batch: b, Envelope: events.Envelope{PropertyID: testProperty, ReceivedAt: at(time.Hour), IP: "198.51.100.7"}})
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	return res
}

// startGatedIngest runs a split-commit events.Service whose transactions
// first call gate with their number (1, 2, …), which may hold them or fail
// them.
func (e *env) startGatedIngest(t *testing.T, gate func(n int32) error) *events.Service {
	var calls atomic.Int32
	return e.runIngest(t, events.Config{
		Clock: newClock(),
		InTx: func(ctx context.Context, fn func(events.Store) error) error {
			if err := gate(calls.Add(1)); err != nil {
				return err
			}
			return e.ingestTx(ctx, fn)
		},
		SplitCommit: true,
	})
}

// startHeldIngest is startGatedIngest whose second transaction (the first
// group's events) waits until release is closed and then fails with err,
// or goes on if err is nil; held is closed once it waits.
func (e *env) startHeldIngest(t *testing.T, err error) (svc *events.Service, held, release chan struct{}) {
	held, release = make(chan struct{}), make(chan struct{})
	svc = e.startGatedIngest(t, func(n int32) error {
		if n == 2 {
			close(held)
			<-release
			return err
		}
		return nil
	})
	return svc, held, release
}

// ingestAsync sends msgs as one request and returns its outcome later.
func (e *env) ingestAsync(svc *events.Service, msgs ...string) <-chan ingestOutcome {
	b := &events.Batch{}
	for _, m := range msgs {
		b.Messages = append(b.Messages, json.RawMessage(m))
	}
	out := make(chan ingestOutcome, 1)
	go func() {
		res, err := svc.Ingest(e.ctx, events.IngestParams{Batch: b, Envelope: events.Envelope{PropertyID: testProperty, ReceivedAt: at(time.Hour)}})
		out <- ingestOutcome{res, err}
	}()
	return out
}

type ingestOutcome struct {
	res *events.Result
	err error
}

var splitOnlyTests = []test{
	{"IngestSplit/ResendWhileInFlight", func(t *testing.T, e *env) {
		// A message resent while its first copy's events are not committed
		// yet is a duplicate, and is stored once.
		svc, held, release := e.startHeldIngest(t, nil)
		first := e.ingestAsync(svc, `{"type": "track", "messageId": "m1", "anonymousId": "anon-1", "event": "E"}`)
		<-held
		second := e.ingestAsync(svc, `{"type": "track", "messageId": "m1", "anonymousId": "anon-1", "event": "E"}`,
			`{"type": "track", "messageId": "m2", "anonymousId": "anon-1", "event": "E"}`)
		time.Sleep(200 * time.Millisecond) // the second request is resolved meanwhile
		close(release)
		r1, r2 := <-first, <-second
		if r1.err != nil || r1.res.Accepted != 1 {
			t.Fatalf("first = %+v, %v", r1.res, r1.err)
		}
		if r2.err != nil || r2.res.Accepted != 1 || r2.res.Duplicates != 1 {
			t.Fatalf("resend = %+v, %v; want one accepted, one duplicate", r2.res, r2.err)
		}
		if n, err := e.Reader().CountEvents(e.ctx); err != nil || n != 2 {
			t.Errorf("CountEvents = %d, %v; want 2", n, err)
		}
	}},
	{"IngestSplit/InFlightCopyFails", func(t *testing.T, e *env) {
		// When the events of the first copy fail to commit, a resend that
		// counted on them must fail too: told "duplicate", its sender would
		// never send the message again.
		svc, held, release := e.startHeldIngest(t, errors.New("disk on fire"))
		first := e.ingestAsync(svc, `{"type": "track", "messageId": "m1", "anonymousId": "anon-1", "event": "E"}`)
		<-held
		second := e.ingestAsync(svc, `{"type": "track", "messageId": "m1", "anonymousId": "anon-1", "event": "E"}`)
		time.Sleep(200 * time.Millisecond)
		close(release)
		if r := <-first; r.err == nil {
			t.Fatalf("first = %+v; want the commit's error", r.res)
		}
		if r := <-second; r.err == nil {
			t.Fatalf("resend = %+v; want an error: the copy it counted on failed", r.res)
		}
		r := e.ingest(t, svc, `{"type": "track", "messageId": "m1", "anonymousId": "anon-1", "event": "E"}`)
		if r.Accepted != 1 {
			t.Fatalf("third send = %+v; want it stored", r)
		}
		if n, err := e.Reader().CountEvents(e.ctx); err != nil || n != 1 {
			t.Errorf("CountEvents = %d, %v; want 1", n, err)
		}
	}},
	{"IngestSplit/PersonDeletedInFlight", func(t *testing.T, e *env) {
		// A person deleted between their persons' commit and their events'
		// must not get those events afterwards: deleting a person deletes
		// their events (tracking.md), and a retry after the delete makes a
		// new person.
		svc, held, release := e.startHeldIngest(t, nil)
		first := e.ingestAsync(svc, `{"type": "identify", "messageId": "m1", "anonymousId": "anon-1", "traits": {"email": "ada@example.com"}}`)
		<-held
		pid := e.ownerOf(t, anon("anon-1"))
		if pid == "" {
			t.Fatal("the first group's persons are not committed")
		}
		ids := e.service(newClock())
		ids.OnChange = func([]string) { svc.ForgetIdentities() }
		_, err := ids.Delete(e.ctx, pid)
		must(t, err)
		close(release)
		r1 := <-first
		tl, err := e.Reader().Timeline(e.ctx, events.TimelineQuery{PersonIDs: []string{pid}, Limit: 10})
		must(t, err)
		if len(tl) != 0 {
			t.Fatalf("the deleted person has events %v (first request: %+v, %v)", messageIDs(tl), r1.res, r1.err)
		}
		if n, err := e.Reader().CountEvents(e.ctx); err != nil || n != 0 {
			t.Fatalf("CountEvents = %d, %v; want 0 (first request: %+v, %v)", n, err, r1.res, r1.err)
		}
		if r1.err == nil {
			t.Fatalf("first request = %+v; want an error to retry: its events were not stored", r1.res)
		}
		// The retry is stored, for a new person.
		r := e.ingest(t, svc, `{"type": "identify", "messageId": "m1", "anonymousId": "anon-1", "traits": {"email": "ada@example.com"}}`)
		if r.Accepted != 1 {
			t.Fatalf("retry = %+v; want it stored", r)
		}
		if p := e.ownerOf(t, anon("anon-1")); p == "" || p == pid {
			t.Errorf("after the retry anon-1 belongs to %q; want a new person", p)
		}
	}},
}

// splitIngestTests are ingestTests again with events.Config.SplitCommit:
// persons and events committed apart.
var splitIngestTests = func() []test {
	var out []test
	for _, tc := range ingestTests {
		out = append(out, test{"IngestSplit/" + strings.TrimPrefix(tc.name, "Ingest/"), func(t *testing.T, e *env) {
			e.splitCommit = true
			tc.run(t, e)
		}})
	}
	return out
}()

var ingestTests = []test{
	{"Ingest/EndToEnd", func(t *testing.T, e *env) {
		clock := newClock()
		svc := e.startIngest(t, clock)
		res := e.ingest(t, svc,
			`{"type": "page", "messageId": "p1", "anonymousId": "anon-1", "name": "Pricing", "timestamp": "2026-03-14T15:00:00Z", "properties": {"path": "/pricing"}}`,
			`{"type": "identify", "messageId": "i1", "anonymousId": "anon-1", "userId": "u-1", "traits": {"email": "Ada@Example.com", "name": "Ada"}, "timestamp": "2026-03-14T15:01:00Z"}`,
			`{"type": "track", "messageId": "t1", "userId": "u-1", "event": "Signed Up", "properties": {"q": "a\u0000b"}, "timestamp": "2026-03-14T15:02:00Z"}`,
			`{"type": "track", "messageId": "t1", "userId": "u-1", "event": "Signed Up"}`,
			`{"type": "bogus"}`,
		)
		if res.Accepted != 3 || res.Duplicates != 1 || len(res.Rejected) != 1 {
			t.Fatalf("result = %+v", res)
		}
		pid := e.ownerOf(t, email("ada@example.com"))
		if pid == "" || e.ownerOf(t, anon("anon-1")) != pid || e.ownerOf(t, user("u-1")) != pid {
			t.Fatal("the three calls did not make one person")
		}
		tl, err := e.Reader().Timeline(e.ctx, events.TimelineQuery{PersonIDs: []string{pid}, Limit: 10})
		must(t, err)
		sameStrings(t, "timeline", messageIDs(tl), []string{"t1", "i1", "p1"})
		rej, err := e.Reader().Rejections(e.ctx, events.RejectionQuery{PropertyID: testProperty, Limit: 10})
		must(t, err)
		if len(rej) != 1 || rej[0].Code != events.CodeBadType || rej[0].Index != 4 {
			t.Errorf("rejections = %+v", rej)
		}
		res = e.ingest(t, svc, `{"type": "track", "messageId": "t1", "userId": "u-1", "event": "Signed Up"}`)
		if res.Duplicates != 1 || res.Accepted != 0 {
			t.Errorf("resend = %+v", res)
		}
		_, err = e.service(clock).Suppress(e.ctx, identity.SuppressParams{PersonID: pid})
		must(t, err)
		res = e.ingest(t, svc, `{"type": "track", "messageId": "t2", "anonymousId": "anon-1", "event": "Again"}`)
		if res.Accepted != 0 || res.Suppressed != 1 {
			t.Errorf("suppressed sender = %+v", res)
		}
		// Staff see it in the rejected-events log; the event is not stored.
		rej, err = e.Reader().Rejections(e.ctx, events.RejectionQuery{PropertyID: testProperty, Limit: 1})
		must(t, err)
		if len(rej) != 1 || rej[0].Code != events.CodeSuppressed || rej[0].MessageID != "t2" {
			t.Errorf("rejections after a suppressed event = %+v", rej)
		}
		if got, _ := e.Reader().ExistingMessageIDs(e.ctx, testProperty, []string{"t2"}); got["t2"] {
			t.Error("the suppressed event was stored")
		}
	}},
	{"Ingest/ResendWithNewMessages", func(t *testing.T, e *env) {
		// A retried batch that also carries new messages and a new person:
		// the stored message is a duplicate, the rest lands once (on
		// PostgreSQL the first try of the group is refused by the unique
		// index and runs again with the lookup; nothing of it may remain).
		svc := e.startIngest(t, newClock())
		e.ingest(t, svc, `{"type": "track", "messageId": "a1", "anonymousId": "anon-1", "event": "E"}`)
		for range 2 {
			res := e.ingest(t, svc,
				`{"type": "track", "messageId": "b1", "anonymousId": "anon-2", "event": "E"}`,
				`{"type": "track", "messageId": "a1", "anonymousId": "anon-1", "event": "E"}`,
				`{"type": "identify", "messageId": "b2", "anonymousId": "anon-2", "userId": "u-2", "traits": {"email": "bo@example.com"}}`,
			)
			if res.Accepted+res.Duplicates != 3 || len(res.Rejected) != 0 {
				t.Fatalf("result = %+v", res)
			}
		}
		// The second request of the loop is all duplicates, and the first
		// had one.
		if n, err := e.Reader().CountEvents(e.ctx); err != nil || n != 3 {
			t.Errorf("CountEvents = %d, %v; want 3", n, err)
		}
		if n, err := e.Reader().CountPersons(e.ctx); err != nil || n != 2 {
			t.Errorf("CountPersons = %d, %v; want 2", n, err)
		}
		pid := e.ownerOf(t, anon("anon-2"))
		if pid == "" || e.ownerOf(t, user("u-2")) != pid || e.ownerOf(t, email("bo@example.com")) != pid {
			t.Fatal("the new person's identifiers are not one person's")
		}
		res := e.ingest(t, svc, `{"type": "track", "messageId": "c1", "userId": "u-2", "event": "E"}`)
		if res.Accepted != 1 {
			t.Fatalf("a new message after the resends = %+v", res)
		}
		tl, err := e.Reader().Timeline(e.ctx, events.TimelineQuery{PersonIDs: []string{pid}, Limit: 10})
		must(t, err)
		sameStrings(t, "timeline", messageIDs(tl), []string{"c1", "b2", "b1"})
	}},
	{"Ingest/ResendAfterLostRaces", func(t *testing.T, e *env) {
		// A resent message in a group that lost races four times (nodes
		// contending on the same people): the fifth and last try must
		// store the rest and count the resend as a duplicate. On
		// PostgreSQL that try is the first to reach the insert, which the
		// unique index refuses; the run again with the lookup must not
		// cost the group its last try.
		var lose atomic.Int32
		svc := e.startRacingIngest(t, newClock(), &lose)
		e.ingest(t, svc, `{"type": "track", "messageId": "a1", "anonymousId": "anon-1", "event": "E"}`)
		lose.Store(4)
		b := &events.Batch{Messages: []json.RawMessage{
			json.RawMessage(`{"type": "track", "messageId": "a1", "anonymousId": "anon-1", "event": "E"}`),
			json.RawMessage(`{"type": "track", "messageId": "a2", "anonymousId": "anon-1", "event": "E"}`),
		}}
		res, err := svc.Ingest(e.ctx, events.IngestParams{Batch: b, Envelope: events.Envelope{PropertyID: testProperty, ReceivedAt: at(time.Hour)}})
		if err != nil {
			t.Fatalf("ingest after four lost races: %v", err)
		}
		if res.Accepted != 1 || res.Duplicates != 1 {
			t.Errorf("result = %+v; want one accepted, one duplicate", res)
		}
		if n, err := e.Reader().CountEvents(e.ctx); err != nil || n != 2 {
			t.Errorf("CountEvents = %d, %v; want 2", n, err)
		}
	}},
	{"Ingest/ResendFromSuppressedSender", func(t *testing.T, e *env) {
		// A message stored before its sender was suppressed, resent: it is
		// a duplicate (tracking.md: a stored messageId counts in
		// duplicates), not a refused event in the rejected-events log.
		clock := newClock()
		svc := e.startIngest(t, clock)
		e.ingest(t, svc, `{"type": "track", "messageId": "t1", "userId": "u-1", "event": "E"}`)
		_, err := e.service(clock).Suppress(e.ctx, identity.SuppressParams{PersonID: e.ownerOf(t, user("u-1"))})
		must(t, err)
		res := e.ingest(t, svc, `{"type": "track", "messageId": "t1", "userId": "u-1", "event": "E"}`)
		if res.Duplicates != 1 || res.Suppressed != 0 {
			t.Errorf("resend of a stored message = %+v; want one duplicate", res)
		}
		rej, err := e.Reader().Rejections(e.ctx, events.RejectionQuery{PropertyID: testProperty, Limit: 10})
		must(t, err)
		if len(rej) != 0 {
			t.Errorf("rejected-events log = %+v; want empty", rej)
		}
		// A new message of theirs is still refused.
		res = e.ingest(t, svc, `{"type": "track", "messageId": "t2", "userId": "u-1", "event": "E"}`)
		if res.Suppressed != 1 || res.Duplicates != 0 {
			t.Errorf("new message of a suppressed sender = %+v", res)
		}
	}},
	{"Ingest/ConcurrentRequests", func(t *testing.T, e *env) {
		// Many requests at once are grouped into few transactions; every
		// event lands once, with increasing seq per request order.
		svc := e.startIngest(t, newClock())
		const requests, perRequest = 20, 25
		var wg sync.WaitGroup
		for r := range requests {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var msgs []string
				for i := range perRequest {
					msgs = append(msgs, fmt.Sprintf(`{"type": "track", "messageId": "r%d-%d", "anonymousId": "anon-%d", "event": "E"}`, r, i, i%7))
				}
				if res := e.ingest(t, svc, msgs...); res.Accepted != perRequest {
					t.Errorf("request %d: %+v", r, res)
				}
			}()
		}
		wg.Wait()
		n, err := e.Reader().CountEvents(e.ctx)
		if err != nil || n != requests*perRequest {
			t.Errorf("CountEvents = %d, %v", n, err)
		}
		if n, _ := e.Reader().CountPersons(e.ctx); n != 7 {
			t.Errorf("CountPersons = %d, want 7", n)
		}
	}},
}
