package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/onramp-dev/onramp"
)

// Split commits (Config.SplitCommit). On PostgreSQL a group spent about as
// long waiting on its COPY of events as on resolving its persons, one
// after the other on one connection. With SplitCommit the committer
// resolves a group and commits its persons (resolveGroup), then hands the
// events to the inserter goroutine (insertLoop), which commits them with
// the group's rejected-events log entries on another connection and only
// then answers the requests, while the committer already resolves the next
// group. What a client is told still holds once it is told: its events and
// log entries are committed, and their persons before them.
//
// What the split changes, and how each is kept right:
//   - A retried message may arrive while its first copy's events are not
//     committed yet. The committer remembers the message ids of the groups
//     in flight (inflightIDs) and counts a repeat of one as a duplicate,
//     like a stored one; the later group then depends on the earlier, and
//     fails if it fails, or the client would be told "duplicate" of an
//     event that was never stored.
//   - A stored message id is looked up before resolving (always: the
//     inserter cannot send a message back to be resolved again, and an
//     identify resent after a newer one must not put old traits back).
//     One the lookup cannot see yet (another node's, committed since) is
//     refused by the store; the inserter then looks up, counts those as
//     duplicates and stores the rest.
//   - A crash between the two commits leaves persons without the events;
//     the client, not answered, sends again, and finds its persons.

// resolvedGroup is a group whose persons are committed, on its way to the
// inserter.
type resolvedGroup struct {
	id    uint64
	group []*pending
	start time.Time
	tried *tried
	// held are the events whose message ids inflight holds for the group:
	// tried.events as resolved, before insertResolved drops any that
	// another node stored meanwhile.
	held []*Event
}

// errRefusedDuplicate marks events a DuplicateRefuser refused because one
// of their message ids is stored already: insertResolved runs again at
// once, with the lookup.
var errRefusedDuplicate = errors.New("events: a message id is stored already")

// errEarlierGroupFailed fails a group that counted messages of a failed
// group in flight as duplicates.
var errEarlierGroupFailed = onramp.Errorf(onramp.EUNAVAILABLE, "An earlier batch with the same message ids failed to commit; retry.")

// resolveGroup is commitGroup's first half with SplitCommit.
func (s *Service) resolveGroup(ctx context.Context, group []*pending, start time.Time) {
	t, err := s.commitTries(ctx, group, personsOnly)
	if err != nil {
		s.finish(ctx, group, start, t, err)
		return
	}
	rg := &resolvedGroup{group: group, start: start, tried: t, held: t.events}
	rg.id = s.inflight.add(rg.held)
	s.split <- rg
}

// insertLoop commits the events of resolved groups in order until split is
// closed.
func (s *Service) insertLoop(ctx context.Context) {
	defer close(s.splitDone)
	failed := map[uint64]bool{}
	for rg := range s.split {
		var err error
		for _, dep := range rg.tried.dependsOn {
			if failed[dep] {
				err = errEarlierGroupFailed
			}
		}
		if err == nil {
			err = s.insertResolved(ctx, rg.tried)
		}
		if err != nil {
			failed[rg.id] = true
		}
		// Only the groups resolved while this one was in flight can
		// depend on it, and they come right after it.
		for id := range failed {
			if id+inflightGroups < rg.id {
				delete(failed, id)
			}
		}
		s.inflight.remove(rg.id, rg.held)
		s.finish(ctx, rg.group, rg.start, rg.tried, err)
	}
}

// inflightGroups bounds how many groups can be in flight at once: the one
// the inserter commits, one waiting in the channel, one being resolved.
const inflightGroups = 3

// errPersonDeleted fails a group one of whose persons was deleted after
// its persons committed: its events must not outlive the delete. A retry
// is resolved again, to a new person (or refused as suppressed).
var errPersonDeleted = onramp.Errorf(onramp.EUNAVAILABLE, "A person of this batch was deleted while it was being stored; retry.")

// insertResolved commits t's events and rejections in one transaction,
// counting as duplicates the events the store says are stored already,
// and failing if a person of the events is gone.
func (s *Service) insertResolved(ctx context.Context, t *tried) error {
	lookUp := false
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = s.cfg.InTx(ctx, func(st Store) error {
			evs := t.events
			if lookUp {
				var err error
				if evs, err = dropStored(ctx, st, t); err != nil {
					return err
				}
			}
			if len(evs) > 0 {
				if err := personsExist(ctx, st, evs); err != nil {
					return err
				}
				if err := st.InsertEvents(ctx, evs); err != nil {
					if r, ok := st.(DuplicateRefuser); ok && !lookUp && r.RefusedDuplicate(err) {
						return fmt.Errorf("%w: %w", errRefusedDuplicate, err)
					}
					return err
				}
			}
			if len(t.rejections) > 0 {
				return st.InsertRejections(ctx, t.rejections)
			}
			return nil
		})
		if err == nil {
			return nil
		}
		if errors.Is(err, errRefusedDuplicate) && !lookUp {
			lookUp = true
			attempt--
			continue
		}
		if !s.cfg.IsRetryable(err) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return err
}

// personsExist fails with errPersonDeleted if a person of evs is not
// stored: deleted since the group's persons committed. (A delete that
// commits while this transaction runs is not seen; that race is as old as
// ingest's cached persons, which it also has.)
func personsExist(ctx context.Context, st Store, evs []*Event) error {
	seen := map[string]bool{}
	var ids []string
	for _, e := range evs {
		if !seen[e.PersonID] {
			seen[e.PersonID] = true
			ids = append(ids, e.PersonID)
		}
	}
	n := 0
	if c, ok := st.(PersonCounter); ok {
		var err error
		if n, err = c.CountPersonsByID(ctx, ids); err != nil {
			return err
		}
	} else {
		ps, err := st.PersonsByID(ctx, ids)
		if err != nil {
			return err
		}
		n = len(ps)
	}
	if n < len(ids) {
		return errPersonDeleted
	}
	return nil
}

// PersonCounter is a Store that counts stored persons among ids without
// reading them (for the check of split commits).
type PersonCounter interface {
	CountPersonsByID(ctx context.Context, ids []string) (int, error)
}

// dropStored removes from t the events whose message ids st holds, moving
// them from each request's Accepted to its Duplicates.
func dropStored(ctx context.Context, st Store, t *tried) ([]*Event, error) {
	stored, err := storedMessageIDs(ctx, st, t.events)
	if err != nil {
		return nil, err
	}
	kept, keptReq := t.events[:0:0], t.reqOf[:0:0]
	for i, e := range t.events {
		if stored[e.PropertyID][e.MessageID] {
			t.results[t.reqOf[i]].Accepted--
			t.results[t.reqOf[i]].Duplicates++
			continue
		}
		kept, keptReq = append(kept, e), append(keptReq, t.reqOf[i])
	}
	t.events, t.reqOf = kept, keptReq
	return kept, nil
}

// inflightIDs are the message ids of the groups whose persons are
// committed and whose events are not yet.
type inflightIDs struct {
	mu    sync.Mutex
	next  uint64
	group map[messageKey]uint64
}

type messageKey struct{ property, message string }

// add remembers the events' message ids and returns the group's number.
func (f *inflightIDs) add(evs []*Event) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	if f.group == nil {
		f.group = map[messageKey]uint64{}
	}
	for _, e := range evs {
		f.group[messageKey{e.PropertyID, e.MessageID}] = f.next
	}
	return f.next
}

// remove forgets group id's message ids once its events are committed or
// failed.
func (f *inflightIDs) remove(id uint64, evs []*Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range evs {
		k := messageKey{e.PropertyID, e.MessageID}
		if f.group[k] == id {
			delete(f.group, k)
		}
	}
}

// dropInFlight counts as duplicates the messages of live that a group in
// flight holds, and returns the rest and the groups they depended on.
func (f *inflightIDs) dropInFlight(live []slot, results []*Result) ([]slot, []uint64) {
	if f == nil {
		return live, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.group) == 0 {
		return live, nil
	}
	var deps []uint64
	kept := live[:0]
	for _, sl := range live {
		if id, ok := f.group[messageKey{sl.p.Event.PropertyID, sl.p.Event.MessageID}]; ok {
			results[sl.req].Duplicates++
			deps = append(deps, id)
			continue
		}
		kept = append(kept, sl)
	}
	return kept, deps
}
