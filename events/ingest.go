package events

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/identity"
)

// Metrics receives what ingest measures. A nil Metrics records nothing.
type Metrics interface {
	Accepted(propertyID string, n int)
	Rejected(propertyID, code string, n int)
	Duplicates(propertyID string, n int)
	Commit(d time.Duration, events int, err error)
}

// Config wires a Service.
type Config struct {
	// Read serves queries; InTx runs the ingest transaction.
	Read  Store
	InTx  TxFunc
	Clock onramp.Clock
	Log   *slog.Logger
	Bus   onramp.Bus
	// Metrics is optional.
	Metrics Metrics
	// IsRetryable tells whether a failed transaction may be run again (a
	// unique-key race between nodes, a serialization failure).
	IsRetryable func(error) bool
	// MaxGroupEvents caps the events committed in one transaction.
	MaxGroupEvents int
	// IdentifierCacheSize bounds the identifier → person cache (default
	// 200,000, about 25 MB when full).
	IdentifierCacheSize int
	// SoleWriter says this process is the only writer of events (SQLite,
	// whose data folder one server owns), so committed events can reach
	// the publisher in memory instead of being read back from the store.
	SoleWriter bool
	// SplitCommit commits a group's persons and its events in two
	// transactions, the events on a second goroutine while the next group
	// is resolved (split.go). For an engine whose writers do not wait on
	// each other (PostgreSQL); SQLite runs them one after the other anyway.
	SplitCommit bool
	// SyncCommits, if set, makes every transaction InTx committed so far
	// durable, and InTx's commits need not be durable by themselves: the
	// committer hands each committed group to a second goroutine, which
	// calls SyncCommits once for all the groups committed meanwhile and
	// then answers them, while the committer writes the next group
	// (synced.go). For SQLite (InTxUnsynced and SyncWAL), whose one writer
	// would otherwise wait for the disk inside every commit. Ignored with
	// SplitCommit, whose transactions are durable.
	SyncCommits func(ctx context.Context) error
	// KeepRejections is how many rejected-events log entries each property
	// keeps (default 10,000; up to a tenth more between prunes). The write key is public, so without a bound
	// anyone could fill the disk with refused junk.
	KeepRejections int
}

// Service ingests and queries events. Every ingest request waits until its
// events are committed: the answer it gets is the durable truth.
type Service struct {
	cfg      Config
	resolver identity.Resolver
	work     chan *pending
	wake     chan struct{}

	// rejectedSincePrune counts log entries written since the last prune;
	// only the goroutine that answers committed groups touches it (the
	// committer, or with SplitCommit insertLoop, or with SyncCommits
	// syncLoop: finish with an error returns before it).
	rejectedSincePrune int
	// split carries resolved groups to insertLoop (SplitCommit only),
	// which closes splitDone when split is closed and drained; inflight
	// holds their message ids meanwhile.
	split     chan *resolvedGroup
	splitDone chan struct{}
	inflight  *inflightIDs
	// unsynced carries committed groups to syncLoop (Config.SyncCommits
	// only), which closes syncDone when unsynced is closed and drained.
	unsynced chan *unsyncedGroup
	syncDone chan struct{}

	// live holds committed rejections until the publisher puts them on the
	// bus; see queueRejections.
	live liveRejections
	// handed holds committed events for the publisher (SoleWriter only).
	handed handoff

	mu      sync.Mutex
	closed  bool
	stopped chan struct{}
	// OnCommit, if set, is called with each committed group of events
	// once it is durable (after commit, and with Config.SyncCommits after
	// the flush, on the flushing goroutine), before the ingest callers are
	// answered.
	OnCommit func([]*Event)
}

// pending is one request waiting for the committer.
type pending struct {
	parsed   []*Parsed
	rejected []*Rejection
	done     chan result
}

type result struct {
	res *Result
	err error
}

// Result is what one ingest request achieved.
type Result struct {
	Accepted   int          `json:"accepted"`
	Duplicates int          `json:"duplicates"`
	Rejected   []*Rejection `json:"rejected"`
	// Suppressed counts events refused because their person asked to be
	// suppressed. They are in the rejected-events log for staff, but a
	// sender holding only the public write key must not learn that a given
	// email or user id is suppressed, so transports report them as accepted.
	Suppressed int `json:"-"`
	// SuppressedIndexes are the batch positions of those events, for
	// callers that answer to staff (a CSV import reports them per row).
	SuppressedIndexes []int `json:"-"`
}

// NewService returns a Service; call Run to start committing.
func NewService(cfg Config) *Service {
	if cfg.MaxGroupEvents <= 0 {
		cfg.MaxGroupEvents = 5000
	}
	if cfg.KeepRejections <= 0 {
		cfg.KeepRejections = 10_000
	}
	if cfg.IdentifierCacheSize <= 0 {
		cfg.IdentifierCacheSize = 200_000
	}
	if cfg.IsRetryable == nil {
		cfg.IsRetryable = func(error) bool { return false }
	}
	s := &Service{
		cfg: cfg,
		resolver: identity.Resolver{
			Clock:   cfg.Clock,
			Cache:   identity.NewIdentifierCache(cfg.IdentifierCacheSize),
			Persons: identity.NewPersonCache(cfg.IdentifierCacheSize / 2),
		},
		handed:  handoff{last: -1},
		work:    make(chan *pending, 1024),
		wake:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	if cfg.SplitCommit {
		s.split, s.splitDone, s.inflight = make(chan *resolvedGroup, 1), make(chan struct{}), &inflightIDs{}
	} else if cfg.SyncCommits != nil {
		s.unsynced, s.syncDone = make(chan *unsyncedGroup, unsyncedGroups), make(chan struct{})
	}
	return s
}

var errClosed = onramp.Errorf(onramp.EUNAVAILABLE, "Onramp is shutting down; retry shortly.")

// IngestParams is one request's worth of messages.
type IngestParams struct {
	Batch    *Batch
	Envelope Envelope
	// Type is the single-call endpoint's type, "" for batches.
	Type string
}

// Ingest validates the messages, and commits the valid ones together with
// the rejections. It returns once everything is durable.
func (s *Service) Ingest(ctx context.Context, p IngestParams) (*Result, error) {
	env := p.Envelope
	if env.BatchSentAt.IsZero() {
		env.BatchSentAt = p.Batch.SentAt
	}
	if env.BatchContext == nil {
		env.BatchContext = p.Batch.Context
	}
	pd := &pending{done: make(chan result, 1)}
	for i, raw := range p.Batch.Messages {
		parsed, rej := Parse(raw, i, p.Type, env)
		if rej != nil {
			pd.rejected = append(pd.rejected, rej)
			continue
		}
		pd.parsed = append(pd.parsed, parsed)
	}
	return s.submit(ctx, pd)
}

// ConnectIdentity wires ids to this Service, the one way the two parts
// must be joined wherever they run together: staff changes to people
// (merge, unmerge, delete, suppress) clear ingest's identity caches, and a
// delete also erases what the rejected-events log kept of the person.
func (s *Service) ConnectIdentity(ids *identity.Service) {
	ids.OnChange = func([]string) { s.ForgetIdentities() }
	ids.OnErase(func(ctx context.Context, st identity.Store, _ []string, keys []identity.Key) error {
		return Erase(ctx, st, keys)
	})
}

// ForgetIdentities drops the identity caches. Call it after changing
// persons outside ingest in this process (merge, unmerge, delete,
// suppress), which the store's change detection cannot see.
func (s *Service) ForgetIdentities() {
	s.resolver.Cache.Clear()
	s.resolver.Persons.Clear()
}

// RecordRejection logs a request refused as a whole (malformed body) for a
// known property, so the debugger shows it.
func (s *Service) RecordRejection(ctx context.Context, r *Rejection) error {
	_, err := s.submit(ctx, &pending{rejected: []*Rejection{r}, done: make(chan result, 1)})
	return err
}

func (s *Service) submit(ctx context.Context, pd *pending) (*Result, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	select {
	case s.work <- pd:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.stopped:
		return nil, errClosed
	}
	// Once queued, the request is committed or failed even if the caller
	// goes away; waiting on ctx here only stops the wait. A request queued
	// just after Run's last drain (it read closed before Run set it) is
	// never taken: when Run has stopped, every request it took has its
	// answer in done, so one without is refused.
	select {
	case r := <-pd.done:
		return r.res, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.stopped:
		select {
		case r := <-pd.done:
			return r.res, r.err
		default:
			return nil, errClosed
		}
	}
}

// Run commits queued requests in groups until ctx ends, then finishes what
// is queued and returns.
func (s *Service) Run(ctx context.Context) {
	defer close(s.stopped)
	if s.split != nil {
		go s.insertLoop(context.WithoutCancel(ctx))
		defer func() { close(s.split); <-s.splitDone }()
	}
	if s.unsynced != nil {
		go s.syncLoop(context.WithoutCancel(ctx))
		defer func() { close(s.unsynced); <-s.syncDone }()
	}
	for {
		var first *pending
		select {
		case first = <-s.work:
		case <-ctx.Done():
			s.mu.Lock()
			s.closed = true
			s.mu.Unlock()
			// Drain what is already queued: those callers are waiting.
			for {
				select {
				case pd := <-s.work:
					s.commitGroup(context.WithoutCancel(ctx), []*pending{pd})
				default:
					return
				}
			}
		}
		group := []*pending{first}
		n := len(first.parsed)
	drain:
		for n < s.cfg.MaxGroupEvents {
			select {
			case pd := <-s.work:
				group = append(group, pd)
				n += len(pd.parsed)
			default:
				break drain
			}
		}
		s.commitGroup(context.WithoutCancel(ctx), group)
	}
}

// commitGroup writes a group of requests in one transaction: one fsync for
// many requests is what makes durable acknowledgement fast. With
// Config.SplitCommit the group's persons commit here and its events on the
// inserter goroutine (split.go).
func (s *Service) commitGroup(ctx context.Context, group []*pending) {
	start := time.Now()
	if s.split != nil {
		s.resolveGroup(ctx, group, start)
		return
	}
	t, err := s.commitTries(ctx, group, wholeGroup)
	if s.unsynced != nil {
		if s.cfg.SoleWriter {
			s.handed.committed()
		}
		s.unsynced <- &unsyncedGroup{group: group, start: start, tried: t, err: err}
		return
	}
	s.finish(ctx, group, start, t, err)
}

// commitTries runs tryCommit until it succeeds, up to five times while
// its error is retryable, and keeps the identity caches in step.
func (s *Service) commitTries(ctx context.Context, group []*pending, mode commitMode) (*tried, error) {
	var t *tried
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		t, err = s.tryCommit(ctx, group, mode)
		if err == nil {
			s.resolver.Cache.Commit()
			s.resolver.Persons.Commit()
			return t, nil
		}
		s.resolver.Cache.Discard()
		s.resolver.Persons.Discard()
		if !s.cfg.IsRetryable(err) {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return t, err
}

// finish answers a group's requests once its events and rejections are
// committed (or failed), and tells whoever waits for committed events.
func (s *Service) finish(ctx context.Context, group []*pending, start time.Time, t *tried, err error) {
	var committed []*Event
	if err == nil {
		committed = t.events
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.Commit(time.Since(start), len(committed), err)
	}
	if err != nil {
		s.cfg.Log.Error("ingest commit failed", "err", err, "requests", len(group))
		for _, pd := range group {
			pd.done <- result{err: fmt.Errorf("events: commit: %w", err)}
		}
		return
	}
	results := t.results
	if s.OnCommit != nil && len(committed) > 0 {
		s.OnCommit(committed)
	}
	if s.cfg.SoleWriter && len(committed) > 0 {
		s.handed.put(committed)
	}
	s.queueRejections(t.rejections)
	for _, r := range results {
		s.rejectedSincePrune += len(r.Rejected) + r.Suppressed
	}
	defer s.maybePrune(ctx)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	for i, pd := range group {
		if m := s.cfg.Metrics; m != nil {
			pid := ""
			if len(pd.parsed) > 0 {
				pid = pd.parsed[0].Event.PropertyID
			} else if len(pd.rejected) > 0 {
				pid = pd.rejected[0].PropertyID
			}
			m.Accepted(pid, results[i].Accepted)
			m.Duplicates(pid, results[i].Duplicates)
			for _, r := range results[i].Rejected {
				m.Rejected(r.PropertyID, r.Code, 1)
			}
			// Staff see suppressed refusals in the metrics; senders do not.
			m.Rejected(pid, CodeSuppressed, results[i].Suppressed)
		}
		pd.done <- result{res: results[i]}
	}
}

// commitMode says what one transaction of tryCommit writes.
type commitMode int

const (
	// wholeGroup writes the persons, the events and the rejections.
	wholeGroup commitMode = iota
	// personsOnly resolves and writes persons, and leaves the events and
	// the rejections to the inserter (Config.SplitCommit).
	personsOnly
)

// tried is what a transaction of tryCommit made of a group.
type tried struct {
	results []*Result
	// events are the events stored (wholeGroup) or to store
	// (personsOnly), with their persons set; reqOf[i] is the request
	// events[i] came from.
	events []*Event
	reqOf  []int
	// rejections are the rejected-events log entries written (with their
	// ids set) or to write.
	rejections []*Rejection
	// dependsOn are the groups in flight (personsOnly) whose message ids
	// made some of this group's messages duplicates.
	dependsOn []uint64
}

// tryCommit runs one transaction of a group (see commitMode) and returns
// what it made of it.
func (s *Service) tryCommit(ctx context.Context, group []*pending, mode commitMode) (*tried, error) {
	results := make([]*Result, len(group))
	t := &tried{results: results}
	err := s.cfg.InTx(ctx, func(st Store) error {
		*t = tried{results: results}
		for i, pd := range group {
			results[i] = &Result{Rejected: append([]*Rejection(nil), pd.rejected...)}
		}
		// 1. Duplicates: earlier requests (stored, or in flight between
		// the two commits of SplitCommit), and repeats inside this group.
		// They are found before resolving, so that a resent identify
		// cannot put back traits a newer one changed.
		live, deps, err := dedupeGroup(ctx, st, group, results, s.inflight) // nil without SplitCommit
		if err != nil {
			return err
		}
		t.dependsOn = deps
		// 2. Suppressed senders.
		var suppressed []*Rejection
		if len(live) > 0 {
			var keys []identity.Key
			for _, sl := range live {
				keys = append(keys, suppressionKeys(sl.p)...)
			}
			sup, err := st.Suppressed(ctx, keys)
			if err != nil {
				return err
			}
			if len(sup) > 0 {
				blocked := map[identity.Key]bool{}
				for _, k := range sup {
					blocked[k] = true
				}
				kept := live[:0]
				for _, sl := range live {
					hit := false
					for _, k := range suppressionKeys(sl.p) {
						hit = hit || blocked[k]
					}
					if hit {
						e := sl.p.Event
						suppressed = append(suppressed, &Rejection{
							PropertyID: e.PropertyID, ReceivedAt: e.ReceivedAt, Index: sl.p.Index, MessageID: e.MessageID, Type: e.Type,
							Code: CodeSuppressed, Reason: "Events from this person are suppressed at their request.",
						})
						results[sl.req].Suppressed++
						results[sl.req].SuppressedIndexes = append(results[sl.req].SuppressedIndexes, sl.p.Index)
						continue
					}
					kept = append(kept, sl)
				}
				live = kept
			}
		}
		// 3. Who is it? One resolution for the whole group, in order.
		if len(live) > 0 {
			obs := make([]identity.Observation, len(live))
			for i, sl := range live {
				obs[i] = sl.p.Obs
			}
			owners, err := s.resolver.Resolve(ctx, st, obs)
			if err != nil {
				return err
			}
			evs := make([]*Event, len(live))
			t.reqOf = make([]int, len(live))
			for i, sl := range live {
				sl.p.Event.PersonID = owners[i]
				evs[i] = sl.p.Event
				t.reqOf[i] = sl.req
				results[sl.req].Accepted++
			}
			t.events = evs
		}
		// 4. The rejected log, in the same transaction as the events: the
		// answer the client gets and the log never disagree.
		rejs := suppressed
		for _, r := range results {
			rejs = append(rejs, r.Rejected...)
		}
		t.rejections = rejs
		if mode == personsOnly {
			return nil
		}
		if len(t.events) > 0 {
			if err := st.InsertEvents(ctx, t.events); err != nil {
				return err
			}
		}
		if len(rejs) > 0 {
			if err := st.InsertRejections(ctx, rejs); err != nil {
				return err
			}
		}
		return nil
	})
	return t, err
}

// slot is a message of a group's request still to be stored.
type slot struct {
	req int
	p   *Parsed
}

// dedupeGroup counts each request's duplicates into results and returns the
// other messages: those neither stored, nor repeated earlier in the group,
// nor held by a group in inflight (if not nil; it returns the groups they
// depended on). inflight is asked before the store: a group that leaves it
// has committed, so a lookup that starts after is sure to see its events.
func dedupeGroup(ctx context.Context, st Store, group []*pending, results []*Result, inflight *inflightIDs) ([]slot, []uint64, error) {
	var all []slot
	for i, pd := range group {
		for _, p := range pd.parsed {
			all = append(all, slot{i, p})
		}
	}
	all, deps := inflight.dropInFlight(all, results)
	evs := make([]*Event, len(all))
	for i, sl := range all {
		evs[i] = sl.p.Event
	}
	existing, err := storedMessageIDs(ctx, st, evs)
	if err != nil {
		return nil, nil, err
	}
	live := all[:0]
	// Repeats inside the group, in a map sized once (growing one to a few
	// thousand ids cost 2 % of the committer).
	type message struct{ property, id string }
	inGroup := make(map[message]struct{}, len(all))
	for _, sl := range all {
		m := message{sl.p.Event.PropertyID, sl.p.Event.MessageID}
		if _, again := inGroup[m]; again || existing[m.property][m.id] {
			results[sl.req].Duplicates++
			continue
		}
		inGroup[m] = struct{}{}
		live = append(live, sl)
	}
	return live, deps, nil
}

// storedMessageIDs returns, by property, which message ids of evs st holds
// (every property of evs has a map, empty if none).
func storedMessageIDs(ctx context.Context, st Store, evs []*Event) (map[string]map[string]bool, error) {
	byProp := map[string][]string{}
	for _, e := range evs {
		byProp[e.PropertyID] = append(byProp[e.PropertyID], e.MessageID)
	}
	stored := make(map[string]map[string]bool, len(byProp))
	for prop, ids := range byProp {
		ex, err := st.ExistingMessageIDs(ctx, prop, ids)
		if err != nil {
			return nil, err
		}
		stored[prop] = ex
	}
	return stored, nil
}

// maybePrune trims the rejected-events log once enough was written since
// the last trim: the cost is one DELETE per KeepRejections/10 rejections.
func (s *Service) maybePrune(ctx context.Context) {
	if s.rejectedSincePrune < max(s.cfg.KeepRejections/10, 1) {
		return
	}
	s.rejectedSincePrune = 0
	err := s.cfg.InTx(ctx, func(st Store) error {
		_, err := st.PruneRejections(ctx, s.cfg.KeepRejections)
		return err
	})
	if err != nil {
		s.cfg.Log.Warn("prune rejected-events log", "err", err)
	}
}

// suppressionKeys are the identifiers whose suppression refuses p: its
// own, and for an alias call its previousId in either form it may take.
func suppressionKeys(p *Parsed) []identity.Key {
	if p.Obs.AliasOf == "" {
		return p.Obs.Keys
	}
	return append(slices.Clone(p.Obs.Keys), identity.Key{Type: identity.UserID, Value: p.Obs.AliasOf}, identity.Key{Type: identity.AnonymousID, Value: p.Obs.AliasOf})
}

// TimelineParams selects a page of one person's timeline.
type TimelineParams struct {
	// PersonIDs are the persons of one profile (the root and those merged
	// into it).
	PersonIDs  []string
	Types      []string
	Names      []string
	PropertyID string
	From, To   time.Time
	Cursor     string
	Limit      int
}

// Page is a page of events with the cursor of the next one.
type Page struct {
	Events []*Event `json:"data"`
	Next   string   `json:"next,omitempty"`
}

// Timeline returns events newest first.
func (s *Service) Timeline(ctx context.Context, p TimelineParams) (*Page, error) {
	if p.Limit <= 0 {
		p.Limit = 50
	}
	if p.Limit > 1000 {
		p.Limit = 1000
	}
	q := TimelineQuery{PersonIDs: p.PersonIDs, Types: p.Types, Names: p.Names, PropertyID: p.PropertyID, From: p.From, To: p.To, Limit: p.Limit + 1}
	if p.Cursor != "" {
		c, err := DecodeCursor(p.Cursor)
		if err != nil {
			return nil, err
		}
		q.Before = c
	}
	evs, err := s.cfg.Read.Timeline(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("events: timeline: %w", err)
	}
	page := &Page{Events: evs}
	if len(evs) > p.Limit {
		page.Events = evs[:p.Limit]
		last := page.Events[p.Limit-1]
		page.Next = EncodeCursor(Cursor{Timestamp: last.Timestamp, Seq: last.Seq})
	}
	return page, nil
}

// Rejections returns the rejected-events log, newest first.
func (s *Service) Rejections(ctx context.Context, q RejectionQuery) ([]*Rejection, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 100
	}
	return s.cfg.Read.Rejections(ctx, q)
}

// EncodeCursor makes an opaque page cursor.
func EncodeCursor(c Cursor) string {
	return fmt.Sprintf("%d.%d", c.Timestamp.UnixMicro(), c.Seq)
}

// DecodeCursor reads a cursor made by EncodeCursor.
func DecodeCursor(s string) (*Cursor, error) {
	var us, seq int64
	if _, err := fmt.Sscanf(s, "%d.%d", &us, &seq); err != nil || seq < 0 {
		return nil, onramp.Errorf(onramp.EINVALID, "cursor is not valid; use the \"next\" value of a previous page")
	}
	return &Cursor{Timestamp: time.UnixMicro(us).UTC(), Seq: seq}, nil
}

// Erase removes what the events part keeps about identifiers outside the
// persons' own event rows: rejected payloads that mention them. It is
// registered with identity.Service.OnErase, so it runs in the delete's transaction.
func Erase(ctx context.Context, st identity.Store, keys []identity.Key) error {
	es, ok := st.(Store)
	if !ok {
		return fmt.Errorf("events: erase: the store holds no events")
	}
	values := make([]string, 0, len(keys))
	for _, k := range keys {
		values = append(values, k.Value)
	}
	_, err := es.DeleteRejectionsMentioning(ctx, values)
	return err
}
