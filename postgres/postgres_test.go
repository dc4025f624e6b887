package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/postgres"
	"github.com/onramp-dev/onramp/postgres/pgtest"
)

// The contract suite (storetest) covers every Store method; these tests
// cover what only Postgres has: several nodes at once.

func open(t *testing.T, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, postgres.Options{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func migrated(t *testing.T) *postgres.DB {
	t.Helper()
	db := open(t, pgtest.Schema(pgtest.Database(t, "Postgres engine tests")))
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestMigrateConcurrently(t *testing.T) {
	// Nodes that start together must not race on the schema: the lock
	// makes one apply everything and the others find it done.
	url := pgtest.Schema(pgtest.Database(t, "Postgres engine tests"))
	const nodes = 5
	applied := make([][]int, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		db := open(t, url)
		wg.Add(1)
		go func() {
			defer wg.Done()
			applied[i], errs[i] = db.Migrate(context.Background())
		}()
	}
	wg.Wait()
	total := 0
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		total += len(applied[i])
	}
	if total == 0 || total != len(slicesMax(applied)) {
		t.Errorf("migrations applied per node = %v; want each exactly once in all", applied)
	}
}

func slicesMax(ss [][]int) []int {
	var best []int
	for _, s := range ss {
		if len(s) > len(best) {
			best = s
		}
	}
	return best
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", postgres.Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "postgres: connect") {
		t.Fatalf("Open of an unreachable server = %v", err)
	}
}

func TestRacesAreRetryable(t *testing.T) {
	db := migrated(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := &identity.Person{ID: "per_1", RootID: "per_1", CreatedAt: now, UpdatedAt: now, LastSeenAt: now}
	if err := db.Writer().CreatePersons(ctx, []*identity.Person{p}); err != nil {
		t.Fatal(err)
	}

	// Two transactions (two nodes) hold each other up on the same rows; the
	// loser's error must be one IsRetryable accepts.
	race := func(name string, write func(q *postgres.Queries) error) {
		t.Run(name, func(t *testing.T) {
			started, release := make(chan struct{}), make(chan struct{})
			first := make(chan error, 1)
			go func() {
				first <- db.InTx(ctx, func(q *postgres.Queries) error {
					// Take the snapshot before the other transaction commits.
					if _, err := q.PersonsByID(ctx, []string{"per_1"}); err != nil {
						return err
					}
					close(started)
					<-release
					return write(q)
				})
			}()
			<-started
			if err := db.InTx(ctx, write); err != nil {
				t.Fatalf("first writer: %v", err)
			}
			close(release)
			err := <-first
			if err == nil || !postgres.IsRetryable(err) {
				t.Fatalf("second writer got %v; want a retryable error", err)
			}
		})
	}
	race("same new identifier", func(q *postgres.Queries) error {
		return q.AddIdentifiers(ctx, []*identity.Identifier{{Key: identity.Key{Type: identity.AnonymousID, Value: "same"}, PersonID: "per_1", FirstSeenAt: now}})
	})
	race("same person updated", func(q *postgres.Queries) error {
		p2 := *p
		p2.Traits = []byte(fmt.Sprintf(`{"n": %d}`, time.Now().UnixNano()))
		return q.UpdatePersons(ctx, []*identity.Person{&p2})
	})
	race("same message id", func(q *postgres.Queries) error {
		return q.InsertEvents(ctx, []*events.Event{{PropertyID: "prp_1", MessageID: "m1", PersonID: "per_1", Type: events.TypeTrack, Timestamp: now, ReceivedAt: now}})
	})

	for _, err := range []error{nil, errors.New("postgres: other"), context.Canceled} {
		if postgres.IsRetryable(err) {
			t.Errorf("IsRetryable(%v) = true", err)
		}
	}
	// A unique violation that is the caller's fault is not a race: the
	// engine turns it into ECONFLICT before IsRetryable sees it.
	syntax := db.InTx(ctx, func(q *postgres.Queries) error { _, err := q.PersonsByID(ctx, []string{"x\x00"}); return err })
	if syntax == nil || postgres.IsRetryable(syntax) {
		t.Errorf("an invalid query gave %v; want a non-retryable error", syntax)
	}
}

func TestEventSeqFollowsCommitOrder(t *testing.T) {
	// The publisher reads EventsAfter its cursor. If a later-numbered event
	// could commit first, the publisher would move past the earlier one
	// before it is visible and never deliver it. So a second transaction's
	// insert waits until the first commits, and numbers after it.
	db := migrated(t)
	ctx := context.Background()
	now := time.Now().UTC()
	ev := func(id string) *events.Event {
		return &events.Event{PropertyID: "prp_1", MessageID: id, PersonID: "per_1", Type: events.TypeTrack, Timestamp: now, ReceivedAt: now}
	}
	a, b := ev("a"), ev("b")
	inA, releaseA := make(chan struct{}), make(chan struct{})
	doneA := make(chan error, 1)
	go func() {
		doneA <- db.InTx(ctx, func(q *postgres.Queries) error {
			if err := q.InsertEvents(ctx, []*events.Event{a}); err != nil {
				return err
			}
			close(inA)
			<-releaseA
			return nil
		})
	}()
	<-inA
	doneB := make(chan error, 1)
	go func() {
		doneB <- db.InTx(ctx, func(q *postgres.Queries) error { return q.InsertEvents(ctx, []*events.Event{b}) })
	}()
	select {
	case err := <-doneB:
		t.Fatalf("second transaction inserted events while the first was open (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(releaseA)
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
	if b.Seq <= a.Seq {
		t.Errorf("seq of the later commit = %d, of the earlier = %d", b.Seq, a.Seq)
	}
}

func TestChangedElsewhere(t *testing.T) {
	// Ingest trusts the persons it keeps in memory while ChangedElsewhere
	// says false: its own writes must not count, everyone else's must,
	// whether another node's ingest or any other transaction.
	ctx := context.Background()
	url := pgtest.Schema(pgtest.Database(t, "Postgres engine tests"))
	node1, node2 := open(t, url), open(t, url)
	if _, err := node1.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	n := 0
	newPerson := func() []*identity.Person {
		n++
		id := fmt.Sprintf("per_%d", n)
		return []*identity.Person{{ID: id, RootID: id, CreatedAt: now, UpdatedAt: now, LastSeenAt: now}}
	}
	// look runs an ingest-like transaction on db: the look, then a write.
	look := func(db *postgres.DB) bool {
		t.Helper()
		var changed bool
		if err := db.InTx(ctx, func(q *postgres.Queries) error {
			var err error
			if changed, err = q.ChangedElsewhere(ctx); err != nil {
				return err
			}
			return q.CreatePersons(ctx, newPerson())
		}); err != nil {
			t.Fatal(err)
		}
		return changed
	}
	if !look(node1) {
		t.Error("first look: want changed (nothing known yet)")
	}
	for range 2 {
		if look(node1) {
			t.Error("after its own writes only: want unchanged")
		}
	}
	if !look(node2) {
		t.Error("node 2's first look: want changed")
	}
	if !look(node1) {
		t.Error("after node 2's ingest wrote: want changed")
	}
	if look(node1) {
		t.Error("nothing new since: want unchanged")
	}
	// Any other transaction, even on node 1's own pool.
	if err := node1.InTx(ctx, func(q *postgres.Queries) error {
		return q.SetRoot(ctx, []string{"per_1"}, "per_2")
	}); err != nil {
		t.Fatal(err)
	}
	if !look(node1) {
		t.Error("after a staff change: want changed")
	}
	if err := node2.Writer().AddIdentifiers(ctx, []*identity.Identifier{{Key: identity.Key{Type: identity.UserID, Value: "u-1"}, PersonID: "per_1", FirstSeenAt: now}}); err != nil {
		t.Fatal(err)
	}
	if !look(node1) {
		t.Error("after an identifier was added elsewhere: want changed")
	}
	// A look in a transaction that rolls back changes nothing for others.
	undone := errors.New("undone")
	if err := node2.InTx(ctx, func(q *postgres.Queries) error {
		if _, err := q.ChangedElsewhere(ctx); err != nil {
			return err
		}
		if err := q.CreatePersons(ctx, newPerson()); err != nil {
			return err
		}
		return undone
	}); !errors.Is(err, undone) {
		t.Fatal(err)
	}
	if look(node1) {
		t.Error("after a rolled-back write: want unchanged")
	}
}

func TestFoldIdentityWrites(t *testing.T) {
	// Writes from connections that have ended are folded into one row:
	// the table stays small, and no ingest sees a change that is not one.
	ctx := context.Background()
	url := pgtest.Schema(pgtest.Database(t, "Postgres engine tests"))
	node := open(t, url)
	if _, err := node.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	look := func() bool {
		t.Helper()
		var changed bool
		if err := node.InTx(ctx, func(q *postgres.Queries) error {
			var err error
			changed, err = q.ChangedElsewhere(ctx)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return changed
	}
	// Three other processes write a person each, then go away.
	for i := range 3 {
		other := open(t, url)
		id := fmt.Sprintf("per_%d", i)
		if err := other.Writer().CreatePersons(ctx, []*identity.Person{{ID: id, RootID: id, CreatedAt: now, UpdatedAt: now, LastSeenAt: now}}); err != nil {
			t.Fatal(err)
		}
		other.Close()
	}
	look()
	rows := func() (n int) {
		t.Helper()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if err := c.QueryRow(ctx, `SELECT count(*) FROM identity_writes WHERE writer LIKE 'pid:%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Backends end a moment after their client closes.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := node.FoldIdentityWrites(ctx); err != nil {
			t.Fatal(err)
		}
		if rows() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows of ended connections left after folding", rows())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if look() {
		t.Error("folding looked like a change")
	}
	// Writes after the fold still count.
	other := open(t, url)
	if err := other.Writer().SetRoot(ctx, []string{"per_1"}, "per_2"); err != nil {
		t.Fatal(err)
	}
	if !look() {
		t.Error("a write after the fold: want changed")
	}
}

func TestTriggersFindTheirTablesFromAnotherSearchPath(t *testing.T) {
	// An operator's session whose search_path does not name Onramp's
	// schema can still write persons: the trigger functions resolve their
	// tables in the schema they were created in.
	ctx := context.Background()
	url := pgtest.Schema(pgtest.Database(t, "Postgres engine tests"))
	db := open(t, url)
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var schema string
	if err := c.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `SET search_path = pg_catalog`); err != nil {
		t.Fatal(err)
	}
	q := pgx.Identifier{schema, "persons"}.Sanitize()
	if _, err := c.Exec(ctx, `INSERT INTO `+q+` (id, root_id, traits, created_at, updated_at, last_seen_at) VALUES ('per_x', 'per_x', '{"plan": "pro"}', now(), now(), now())`); err != nil {
		t.Fatalf("insert from another search_path: %v", err)
	}
	if _, err := c.Exec(ctx, `UPDATE `+q+` SET traits = '{"plan": "team"}' WHERE id = 'per_x'`); err != nil {
		t.Fatalf("update from another search_path: %v", err)
	}
}

func TestSplitCommitCountsAnotherNodesInsertAsDuplicate(t *testing.T) {
	// Node 1 resolves a group, then node 2 stores the same message before
	// node 1's events commit: node 1's insert is refused by the unique
	// index, and it stores the rest of the group and answers "duplicate"
	// for that message instead of failing the request.
	ctx := context.Background()
	url := pgtest.Schema(pgtest.Database(t, "Postgres engine tests"))
	db1, db2 := open(t, url), open(t, url)
	if _, err := db1.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	start := func(db *postgres.DB, gate func(n int32)) *events.Service {
		var calls atomic.Int32
		svc := events.NewService(events.Config{
			Read: db.Reader(),
			InTx: func(ctx context.Context, fn func(events.Store) error) error {
				gate(calls.Add(1))
				return db.InTx(ctx, func(q *postgres.Queries) error { return fn(q) })
			},
			Clock: onramp.SystemClock{}, Log: slog.New(slog.DiscardHandler), IsRetryable: postgres.IsRetryable, SplitCommit: true,
		})
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { svc.Run(runCtx); close(done) }()
		t.Cleanup(func() { stop(); <-done })
		return svc
	}
	held, release := make(chan struct{}), make(chan struct{})
	node1 := start(db1, func(n int32) {
		if n == 2 { // the first group's events
			close(held)
			<-release
		}
	})
	node2 := start(db2, func(int32) {})
	ingest := func(svc *events.Service, msgs ...string) (*events.Result, error) {
		b := &events.Batch{}
		for _, m := range msgs {
			b.Messages = append(b.Messages, json.RawMessage(m))
		}
		return svc.Ingest(ctx, events.IngestParams{Batch: b, Envelope: events.Envelope{PropertyID: "prp_1", ReceivedAt: time.Now()}})
	}
	type outcome struct {
		res *events.Result
		err error
	}
	first := make(chan outcome, 1)
	go func() {
		res, err := ingest(node1, `{"type": "track", "messageId": "m1", "anonymousId": "anon-1", "event": "E"}`,
			`{"type": "track", "messageId": "m2", "anonymousId": "anon-1", "event": "E"}`)
		first <- outcome{res, err}
	}()
	<-held
	if res, err := ingest(node2, `{"type": "track", "messageId": "m1", "anonymousId": "anon-1", "event": "E"}`); err != nil || res.Accepted != 1 {
		t.Fatalf("node 2 = %+v, %v", res, err)
	}
	close(release)
	got := <-first
	if got.err != nil || got.res.Accepted != 1 || got.res.Duplicates != 1 {
		t.Fatalf("node 1 = %+v, %v; want m2 accepted and m1 a duplicate", got.res, got.err)
	}
	if n, err := db1.Reader().CountEvents(ctx); err != nil || n != 2 {
		t.Errorf("CountEvents = %d, %v; want 2", n, err)
	}
	// Node 1 must have forgotten m1 as in flight with the group: once the
	// person is deleted (and their events with them), a retry of m1 is
	// stored again (tracking.md, Duplicates), not counted as a duplicate
	// of an event no one holds.
	anon, err := db1.Reader().FindIdentifiers(ctx, []identity.Key{{Type: identity.AnonymousID, Value: "anon-1"}})
	if err != nil || len(anon) != 1 {
		t.Fatalf("FindIdentifiers = %v, %v", anon, err)
	}
	if err := db1.Writer().DeletePersons(ctx, []string{anon[0].PersonID}); err != nil {
		t.Fatal(err)
	}
	if res, err := ingest(node1, `{"type": "track", "messageId": "m1", "anonymousId": "anon-1", "event": "E"}`); err != nil || res.Accepted != 1 {
		t.Fatalf("m1 resent to node 1 after the delete = %+v, %v; want it stored again", res, err)
	}
	if n, err := db1.Reader().CountEvents(ctx); err != nil || n != 1 {
		t.Errorf("CountEvents after the resend = %d, %v; want 1", n, err)
	}
}

// The split commit's check relies on PostgreSQL counting persons cheaply.
var _ events.PersonCounter = (*postgres.Queries)(nil)
