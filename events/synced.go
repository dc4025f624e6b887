package events

import (
	"context"
	"fmt"
	"time"
)

// Committed, then made durable: Config.SyncCommits.
//
// The committer commits group N and goes on to write group N+1 while
// syncLoop flushes the disk for N and answers its requests. One flush
// covers every group committed before it began, so under load one flush
// answers several groups. Nothing reaches a caller or, with SoleWriter,
// the bus before its flush: finish runs after it, the publisher waits
// for the handoff while groups are in flight instead of reading the store
// (handoff.unsynced), and flushes before it publishes what it did read
// there (Publisher.flushRead). A reader of the store may see the events between
// the commit and the flush; a machine that fails in that moment loses
// them, and nobody was told they were stored.

// unsyncedGroups bounds the committed groups waiting for a flush: when
// the disk falls that far behind, the committer waits for it.
const unsyncedGroups = 4

// unsyncedGroup is a group the committer is done with: committed, or
// failed with err.
type unsyncedGroup struct {
	group []*pending
	start time.Time
	tried *tried
	err   error
}

// syncLoop answers committed groups, in commit order, once a flush made
// them durable. A dedupe hit on an event of group N answers a request of
// a later group as stored; that answer goes out after a flush that
// covers N as well.
func (s *Service) syncLoop(ctx context.Context) {
	defer close(s.syncDone)
	for g := range s.unsynced {
		batch := []*unsyncedGroup{g}
	more:
		for {
			select {
			case g, ok := <-s.unsynced:
				if !ok {
					break more
				}
				batch = append(batch, g)
			default:
				break more
			}
		}
		var syncErr error
		for _, g := range batch {
			if g.err == nil {
				if err := s.cfg.SyncCommits(ctx); err != nil {
					syncErr = fmt.Errorf("sync: %w", err)
				}
				break
			}
		}
		for _, g := range batch {
			err := g.err
			if err == nil && syncErr != nil {
				// Committed, but perhaps not on disk: the callers retry,
				// and their retries are answered as duplicates once a
				// flush succeeds.
				err = syncErr
			}
			s.finish(ctx, g.group, g.start, g.tried, err)
			if s.cfg.SoleWriter {
				s.handed.answered()
			}
		}
	}
}
