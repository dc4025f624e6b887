// Package storetest is the one storage contract suite: the same tests run
// against every engine (SQLite always, Postgres when
// ONRAMP_TEST_POSTGRES_URL is set), so the parts can rely on one meaning of
// each Store method whatever the engine. It also holds the raw-insert
// measurement that `onramp bench` compares HTTP ingest to.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/jobs"
	"github.com/onramp-dev/onramp/property"
)

// Store is every part's Store, as each engine's Queries implements them.
type Store interface {
	events.Store // includes identity.Store
	property.Store
	auth.Store
	auth.AccountStore
	auth.MFAStore
	auth.UpstreamStore
	auth.OAuthStore
	jobs.Store
}

// Engine is an open database of one engine, as the suite drives it.
type Engine interface {
	Migrate(ctx context.Context) ([]int, error)
	// InTx runs fn in one write transaction, committed if fn returns nil.
	InTx(ctx context.Context, fn func(Store) error) error
	// Reader reads committed state; writes through it fail.
	Reader() Store
	// Writer writes outside an explicit transaction.
	Writer() Store
	// IsRetryable is the engine's IsRetryable.
	IsRetryable(err error) bool
}

// DB is the shape both engines' *DB share, over their own Queries type.
type DB[Q Store] interface {
	Migrate(ctx context.Context) ([]int, error)
	InTx(ctx context.Context, fn func(Q) error) error
	Reader() Q
	Writer() Q
}

// Adapt makes an Engine of an engine's *DB, e.g.
// storetest.Adapt(db, sqlite.IsRetryable).
func Adapt[Q Store](db DB[Q], isRetryable func(error) bool) Engine {
	return adapted[Q]{db: db, retryable: isRetryable}
}

type adapted[Q Store] struct {
	db        DB[Q]
	retryable func(error) bool
}

func (a adapted[Q]) Migrate(ctx context.Context) ([]int, error) { return a.db.Migrate(ctx) }
func (a adapted[Q]) Reader() Store                              { return a.db.Reader() }
func (a adapted[Q]) Writer() Store                              { return a.db.Writer() }
func (a adapted[Q]) IsRetryable(err error) bool                 { return a.retryable(err) }
func (a adapted[Q]) InTx(ctx context.Context, fn func(Store) error) error {
	return a.db.InTx(ctx, func(q Q) error { return fn(q) })
}

// Run runs the contract suite. open returns a new, empty, not yet migrated
// database for each subtest, closed by t.Cleanup; subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) Engine) {
	groups := [][]test{propertyTests, tokenTests, personTests, identifierTests, searchTests, consoleTests, mergeTests,
		suppressionTests, eventTests, timelineTests, rejectionTests, txTests, resolverTests, serviceTests, ingestTests, splitIngestTests, splitOnlyTests,
		accountTests, sessionTests, codeTests, auditTests, outboxTests, oauthTests,
		mfaTests, upstreamTests, jobTests}
	t.Run("Migrate", func(t *testing.T) {
		t.Parallel()
		e := open(t)
		ctx := context.Background()
		first, err := e.Migrate(ctx)
		if err != nil || len(first) == 0 {
			t.Fatalf("first Migrate = %v, %v; want versions applied", first, err)
		}
		again, err := e.Migrate(ctx)
		if err != nil || len(again) != 0 {
			t.Fatalf("second Migrate = %v, %v; want nothing applied", again, err)
		}
	})
	for _, g := range groups {
		for _, tc := range g {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				e := open(t)
				if _, err := e.Migrate(context.Background()); err != nil {
					t.Fatalf("migrate: %v", err)
				}
				tc.run(t, &env{Engine: e, ctx: context.Background()})
			})
		}
	}
}

// test is one subtest of the suite.
type test struct {
	name string
	run  func(t *testing.T, e *env)
}

// env is a migrated engine with helpers that fail the test on error.
type env struct {
	Engine
	ctx context.Context
	// splitCommit makes startIngest commit persons and events apart.
	splitCommit bool
}

// tx runs fn in a transaction and fails the test if it errs.
func (e *env) tx(t *testing.T, fn func(s Store) error) {
	t.Helper()
	if err := e.InTx(e.ctx, fn); err != nil {
		t.Fatalf("transaction: %v", err)
	}
}

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantCode fails unless err carries code.
func wantCode(t *testing.T, err error, code, what string) {
	t.Helper()
	if got := onramp.ErrorCode(err); got != code {
		t.Errorf("%s: error %v has code %q, want %q", what, err, got, code)
	}
}

// base is the suite's "now": fixed, and not a round number, so truncation
// bugs show.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

// at returns base plus d.
func at(d time.Duration) time.Time { return base.Add(d) }

// stored is what an engine returns for t: UTC, microseconds.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

// sameTime compares times with ==, on purpose: engines must return UTC with
// no monotonic reading, so that callers may compare with == as well.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if got != stored(want) {
		t.Errorf("%s = %v (%s), want %v", what, got, got.Location(), stored(want))
	}
}

func sameTimePtr(t *testing.T, what string, got, want *time.Time) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Errorf("%s = %v, want %v", what, got, want)
	default:
		sameTime(t, what, *got, *want)
	}
}

// sameJSON compares JSON by meaning: jsonb reorders keys and respaces.
// Empty and absent are the same.
func sameJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if len(got) == 0 || len(want) == 0 {
		t.Errorf("%s = %q, want %q", what, got, want)
		return
	}
	g, err1 := decodeJSON(got)
	w, err2 := decodeJSON(want)
	if err1 != nil || err2 != nil || !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %s, want %s (%v, %v)", what, trim(got), trim(want), err1, err2)
	}
}

// decodeJSON reads numbers as float64 on purpose: jsonb rewrites -3e10
// as -30000000000, the same number.
func decodeJSON(b []byte) (any, error) {
	var v any
	err := json.Unmarshal(b, &v)
	return v, err
}

func trim(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// sameStrings compares lists, nil and empty being the same.
func sameStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// sorted returns a sorted copy.
func sorted(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

// stepClock is a Clock that moves one millisecond per reading, so
// everything a test writes has distinct, ordered times.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *stepClock { return &stepClock{now: base} }

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now.UTC().Truncate(time.Microsecond)
}

// retry runs fn in a transaction until it succeeds or fails for a reason
// other than a race the engine calls retryable, as ingest does.
func (e *env) retry(fn func(s Store) error) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = e.InTx(e.ctx, fn); err == nil || !e.IsRetryable(err) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * time.Millisecond)
	}
	return fmt.Errorf("still failing after retries: %w", err)
}

var errRollback = errors.New("storetest: roll back")

// race runs fn in n transactions at once, each retried while the engine
// calls its failure retryable, and returns the racers (0…n-1) that reported
// a win. Every transaction first runs look, so that a Postgres snapshot is
// taken, then waits for the others to look too before fn: the writes then
// really overlap. On an engine whose transactions take turns (SQLite's one
// writer) the others cannot arrive, so the first wait gives up after a
// second and the racers after it do not wait at all.
func (e *env) race(t *testing.T, n int, look func(s Store) error, fn func(s Store, i int) (bool, error)) []int {
	t.Helper()
	var arrived atomic.Int32
	all := make(chan struct{})
	open := sync.OnceFunc(func() { close(all) })
	won := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.retry(func(s Store) error {
				if err := look(s); err != nil {
					return err
				}
				if arrived.Add(1) == int32(n) {
					open()
				}
				select {
				case <-all:
				case <-time.After(time.Second):
					open()
				}
				var err error
				won[i], err = fn(s, i)
				return err
			})
		}()
	}
	wg.Wait()
	var winners []int
	for i, err := range errs {
		must(t, err)
		if won[i] {
			winners = append(winners, i)
		}
	}
	return winners
}
