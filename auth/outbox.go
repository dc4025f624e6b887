package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/onramp-dev/onramp"
)

// TimelineSink puts an auth event on a person's timeline (the events part
// ingests it as a track call, which also publishes it on the bus).
type TimelineSink interface {
	Track(ctx context.Context, ev TimelineEvent) error
}

// TimelineBatchSink is a TimelineSink that takes a batch of events at
// once, in order, answering one error (or nil) per event. The outbox hands
// it every timeline job of a batch together: through ingest that is one
// commit for all of them instead of one each.
type TimelineBatchSink interface {
	TimelineSink
	TrackAll(ctx context.Context, evs []TimelineEvent) []error
}

// LogoutSender delivers an OIDC back-channel logout to a client.
type LogoutSender interface {
	SendLogout(ctx context.Context, l BackchannelLogout) error
}

// Outbox carries out queued side effects after their transaction
// committed: emails, timeline events, back-channel logouts. A job is
// claimed with a lease, so a crashed worker's jobs run again; handlers
// must therefore be safe to repeat (emails may, rarely, go twice; timeline
// events dedupe by message id).
type Outbox struct {
	Store    TxStore
	InTx     TxFunc
	Clock    onramp.Clock
	Log      *slog.Logger
	Mailer   Mailer
	Timeline TimelineSink
	Logout   LogoutSender
	// Permanent reports errors that retrying cannot fix (an SMTP 5xx).
	Permanent func(error) bool
	// Poll is how often the worker looks for due jobs; Kick wakes it early.
	Poll time.Duration
	kick chan struct{}
}

const (
	outboxLease       = time.Minute
	outboxMaxAttempts = 12
)

// Kick wakes the worker now (after a transaction queued a job).
func (o *Outbox) Kick() {
	if o.kick == nil {
		return
	}
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// Run works the outbox until ctx ends.
func (o *Outbox) Run(ctx context.Context) {
	if o.Poll == 0 {
		o.Poll = 500 * time.Millisecond
	}
	o.kick = make(chan struct{}, 1)
	t := time.NewTicker(o.Poll)
	defer t.Stop()
	for {
		for {
			n, err := o.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				o.Log.WarnContext(ctx, "outbox", "err", err)
			}
			if n == 0 || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-o.kick:
		}
	}
}

// RunOnce claims and runs one batch of due jobs, returning how many ran.
func (o *Outbox) RunOnce(ctx context.Context) (int, error) {
	var jobs []*OutboxJob
	err := o.InTx(ctx, func(st TxStore) error {
		var err error
		jobs, err = st.ClaimOutbox(ctx, o.Clock.Now(), outboxLease, 20)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("auth: outbox claim: %w", err)
	}
	// Run the batch, then record every outcome in one transaction: a
	// sign-in queues two or three jobs, and a commit each would cost more
	// than the jobs. A crash in between runs the batch again after the
	// lease (handlers are safe to repeat).
	errs := o.runAll(ctx, jobs)
	err = o.InTx(ctx, func(st TxStore) error {
		now := o.Clock.Now()
		for i, j := range jobs {
			if err := o.settle(ctx, st, j, errs[i], now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("auth: outbox: %w", err)
	}
	return len(jobs), nil
}

// settle records how a job's try ended: done, given up, or due again
// after a backoff.
func (o *Outbox) settle(ctx context.Context, st TxStore, j *OutboxJob, runErr error, now time.Time) error {
	switch {
	case runErr == nil:
		return st.CompleteOutbox(ctx, j.ID, now)
	case j.Attempts >= outboxMaxAttempts || (o.Permanent != nil && o.Permanent(runErr)):
		o.Log.ErrorContext(ctx, "outbox job given up", "kind", j.Kind, "id", j.ID, "err", runErr)
		if err := st.FailOutbox(ctx, j.ID, runErr.Error(), now); err != nil {
			return err
		}
		return st.CompleteOutbox(ctx, j.ID, now)
	default:
		// 2 s, 4 s, … about an hour at the last try.
		backoff := time.Duration(1<<min(j.Attempts, 11)) * time.Second // the claim counted this try
		o.Log.WarnContext(ctx, "outbox job failed; will retry", "kind", j.Kind, "id", j.ID, "attempt", j.Attempts, "retry_in", backoff, "err", runErr)
		return st.FailOutbox(ctx, j.ID, runErr.Error(), now.Add(backoff))
	}
}

// runAll runs a batch of jobs and returns their errors. With a
// TimelineBatchSink the timeline events go in one call, in job order,
// after the batch's other jobs (which do not depend on them).
func (o *Outbox) runAll(ctx context.Context, jobs []*OutboxJob) []error {
	errs := make([]error, len(jobs))
	batch, _ := o.Timeline.(TimelineBatchSink)
	var evs []TimelineEvent
	var at []int
	for i, j := range jobs {
		if batch == nil || j.Kind != JobTimeline {
			errs[i] = o.run(ctx, j)
			continue
		}
		var ev TimelineEvent
		if err := json.Unmarshal(j.Payload, &ev); err != nil {
			errs[i] = err
			continue
		}
		evs, at = append(evs, ev), append(at, i)
	}
	if len(evs) > 0 {
		res := batch.TrackAll(ctx, evs)
		for k, i := range at {
			if k < len(res) {
				errs[i] = res[k]
			} else {
				errs[i] = fmt.Errorf("timeline: no answer for event %d of %d", k, len(evs))
			}
		}
	}
	return errs
}

func (o *Outbox) run(ctx context.Context, j *OutboxJob) error {
	switch j.Kind {
	case JobEmail:
		var e Email
		if err := json.Unmarshal(j.Payload, &e); err != nil {
			return err
		}
		if o.Mailer == nil {
			return fmt.Errorf("no mailer configured")
		}
		return o.Mailer.Send(ctx, e)
	case JobTimeline:
		var ev TimelineEvent
		if err := json.Unmarshal(j.Payload, &ev); err != nil {
			return err
		}
		if o.Timeline == nil {
			return nil
		}
		return o.Timeline.Track(ctx, ev)
	case JobBackchannelLogout:
		var l BackchannelLogout
		if err := json.Unmarshal(j.Payload, &l); err != nil {
			return err
		}
		if o.Logout == nil {
			return nil
		}
		return o.Logout.SendLogout(ctx, l)
	default:
		return fmt.Errorf("unknown outbox job kind %q", j.Kind)
	}
}
