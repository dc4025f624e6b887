package auth

import (
	"context"
	"sync"
)

// The token endpoint writes one small transaction per request (consume a
// code, insert a token). On SQLite each commit is an fsync, and commits
// are serial, so the fsync, not the work, would bound exchanges per
// second. groupTx lets requests that arrive while a transaction commits
// share the next one: N exchanges, one commit. This is the events
// committer's idea without its goroutine: the first caller to find no
// transaction running leads one batch.

// txGroup collects work for the next shared transaction.
type txGroup struct {
	mu      sync.Mutex
	pending []*txUnit
	leading bool
}

type txUnit struct {
	fn   func(OAuthTxStore) error
	done chan error
}

// maxGroup bounds a batch, so one transaction stays short.
const maxGroup = 128

// groupTx runs fn in a transaction that other callers' work may share.
// fn must be safe to run again (it resets what it reports at its start):
// when the shared transaction fails, each fn runs again alone, so that one
// request's failure is not another's. A fn that refuses a request without
// writing should return nil and report the refusal itself, so the batch
// commits.
func (o *OAuth) groupTx(ctx context.Context, fn func(OAuthTxStore) error) error {
	u := &txUnit{fn: fn, done: make(chan error, 1)}
	g := &o.group
	g.mu.Lock()
	g.pending = append(g.pending, u)
	if g.leading {
		g.mu.Unlock()
		return <-u.done
	}
	g.leading = true
	g.mu.Unlock()
	// Lead one batch, which holds u; then hand what queued meanwhile to a
	// goroutine, so this request is not kept serving others.
	o.runGroup(ctx)
	g.mu.Lock()
	if len(g.pending) == 0 {
		g.leading = false
		g.mu.Unlock()
	} else {
		g.mu.Unlock()
		go o.drainGroup(context.WithoutCancel(ctx))
	}
	return <-u.done
}

// drainGroup leads batches until none is waiting.
func (o *OAuth) drainGroup(ctx context.Context) {
	g := &o.group
	for {
		o.runGroup(ctx)
		g.mu.Lock()
		if len(g.pending) == 0 {
			g.leading = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
	}
}

// runGroup runs up to maxGroup waiting units in one transaction.
func (o *OAuth) runGroup(ctx context.Context) {
	g := &o.group
	g.mu.Lock()
	n := min(len(g.pending), maxGroup)
	batch := g.pending[:n:n]
	g.pending = g.pending[n:]
	g.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	// A cancelled request must not fail the others it shares with.
	ctx = context.WithoutCancel(ctx)
	err := o.tx(ctx, func(st OAuthTxStore) error {
		for _, u := range batch {
			if err := u.fn(st); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(batch) == 1 {
		for _, u := range batch {
			u.done <- err
		}
		return
	}
	for _, u := range batch {
		u.done <- o.tx(ctx, u.fn)
	}
}
