package auth

import (
	"context"
	"sync"
)

// The token endpoint writes one small transaction per request (consume a
// code, insert a token), and so does a password sign-in (session, audit
// row, timeline job). On SQLite each commit is an fsync, and commits are
// serial, so the fsync, not the work, would bound requests per second.
// A txGroup lets requests that arrive while a transaction commits share
// the next one: N requests, one commit. This is the events committer's
// idea without its goroutine: the first caller to find no transaction
// running leads one batch.

// txGroup collects work for the next shared transaction of stores S.
type txGroup[S any] struct {
	mu      sync.Mutex
	pending []*txUnit[S]
	leading bool
}

type txUnit[S any] struct {
	fn   func(S) error
	done chan error
}

// maxGroup bounds a batch, so one transaction stays short.
const maxGroup = 128

// run runs fn in a transaction (made by tx) that other callers' work may
// share. fn must be safe to run again (it resets what it reports at its
// start): when the shared transaction fails, each fn runs again alone, so
// that one request's failure is not another's. A fn that refuses a
// request without writing should return nil and report the refusal
// itself, so the batch commits.
func (g *txGroup[S]) run(ctx context.Context, tx func(context.Context, func(S) error) error, fn func(S) error) error {
	u := &txUnit[S]{fn: fn, done: make(chan error, 1)}
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
	g.runBatch(ctx, tx)
	g.mu.Lock()
	if len(g.pending) == 0 {
		g.leading = false
		g.mu.Unlock()
	} else {
		g.mu.Unlock()
		go g.drain(context.WithoutCancel(ctx), tx)
	}
	return <-u.done
}

// drain leads batches until none is waiting.
func (g *txGroup[S]) drain(ctx context.Context, tx func(context.Context, func(S) error) error) {
	for {
		g.runBatch(ctx, tx)
		g.mu.Lock()
		if len(g.pending) == 0 {
			g.leading = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
	}
}

// runBatch runs up to maxGroup waiting units in one transaction.
func (g *txGroup[S]) runBatch(ctx context.Context, tx func(context.Context, func(S) error) error) {
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
	err := tx(ctx, func(st S) error {
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
		u.done <- tx(ctx, u.fn)
	}
}

// groupTx runs fn in a transaction that other token requests may share
// (txGroup.run).
func (o *OAuth) groupTx(ctx context.Context, fn func(OAuthTxStore) error) error {
	return o.group.run(ctx, o.tx, fn)
}

// groupTx runs fn in a transaction that other sign-ins may share
// (txGroup.run).
func (s *Accounts) groupTx(ctx context.Context, fn func(TxStore) error) error {
	return s.group.run(ctx, s.cfg.InTx, fn)
}
