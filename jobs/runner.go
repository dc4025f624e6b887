package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
)

// RunnerConfig tunes a Runner.
type RunnerConfig struct {
	// Name identifies the runner in claims (default: a new random id).
	Name string
	// Poll is how often an idle runner looks for queued jobs queued by
	// other nodes (default 1 s); jobs queued in this process wake it at once.
	Poll time.Duration
	// Lease is how long a claim lasts without a checkpoint; after it
	// another runner may take the job over (default 30 s). A batch takes
	// well under a second, so only a dead or stuck runner loses its jobs.
	Lease time.Duration
}

// Runner works through queued jobs one at a time.
type Runner struct {
	s   *Service
	cfg RunnerConfig
}

// NewRunner returns a Runner for this Service's jobs.
func (s *Service) NewRunner(cfg RunnerConfig) *Runner {
	if cfg.Name == "" {
		cfg.Name = onramp.NewID("run")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	return &Runner{s: s, cfg: cfg}
}

// errLost means the runner no longer holds the job: it was cancelled, or
// another runner took it over after the lease ended.
var errLost = errors.New("jobs: claim lost")

// Run claims and works on jobs until ctx ends. A job in progress at that
// moment is queued again, from its last checkpoint, for the next start.
func (r *Runner) Run(ctx context.Context) {
	for ctx.Err() == nil {
		j, err := r.claim(ctx, "")
		if err != nil {
			if ctx.Err() == nil {
				r.s.cfg.Log.Warn("jobs: claim", "err", err)
			}
		}
		if j != nil {
			r.work(ctx, j)
			continue
		}
		select {
		case <-ctx.Done():
		case <-r.s.wake:
		case <-time.After(r.cfg.Poll):
		}
	}
}

// RunJob works on one job until it finishes (here or on another node) or
// ctx ends, and returns the job as it ended. The CLI uses it.
func (r *Runner) RunJob(ctx context.Context, id string) (*Job, error) {
	for {
		j, err := r.claim(ctx, id)
		if err != nil && ctx.Err() == nil {
			r.s.cfg.Log.Warn("jobs: claim", "err", err)
		}
		if j != nil {
			r.work(ctx, j)
		}
		cur, err := r.s.Get(context.WithoutCancel(ctx), id)
		if err != nil {
			return nil, err
		}
		if cur.Finished() || ctx.Err() != nil {
			return cur, ctx.Err()
		}
		if j == nil {
			select {
			case <-ctx.Done():
			case <-time.After(r.cfg.Poll):
			}
		}
	}
}

func (r *Runner) claim(ctx context.Context, only string) (*Job, error) {
	var j *Job
	err := r.s.inTx(ctx, func(st Store) error {
		now := r.s.cfg.Clock.Now()
		var err error
		j, err = st.ClaimJob(ctx, ClaimParams{Runner: r.cfg.Name, Now: now, LeaseUntil: now.Add(r.cfg.Lease), OnlyID: only})
		return err
	})
	return j, err
}

// work runs one claimed job and records how it ended.
func (r *Runner) work(ctx context.Context, j *Job) {
	log := r.s.cfg.Log.With("job", j.ID, "kind", j.Kind, "target", j.Target)
	log.Info("job claimed", "checkpoint", j.Checkpoint, "rows_done", j.RowsDone)
	var err error
	switch j.Kind {
	case KindImport:
		err = r.runImport(ctx, j)
	case KindExport:
		err = r.runExport(ctx, j)
	default:
		err = onramp.Errorf(onramp.EINVALID, "Unknown job kind %q.", j.Kind)
	}
	// The end is recorded even during shutdown: it is one short write.
	bg := context.WithoutCancel(ctx)
	switch {
	case errors.Is(err, errLost):
		log.Info("job stopped: cancelled or taken over")
	case err != nil && ctx.Err() != nil:
		// Shutting down: queue it again so the next start resumes at once
		// instead of waiting for the lease to end.
		if err := r.update(bg, j, func(_ Store, cur *Job) error {
			cur.Status, cur.ClaimedBy = StatusQueued, ""
			return nil
		}); err != nil && !errors.Is(err, errLost) {
			log.Warn("job release", "err", err)
		}
		log.Info("job paused for shutdown", "rows_done", j.RowsDone)
	case err != nil:
		msg := onramp.ErrorMessage(err)
		log.Error("job failed", "err", err)
		if err := r.update(bg, j, func(_ Store, cur *Job) error {
			now := r.s.cfg.Clock.Now()
			cur.Status, cur.Error, cur.FinishedAt, cur.ClaimedBy = StatusFailed, msg, &now, ""
			return nil
		}); err != nil && !errors.Is(err, errLost) {
			log.Warn("job failure not recorded", "err", err)
		}
	default:
		if err := r.update(bg, j, func(_ Store, cur *Job) error {
			now := r.s.cfg.Clock.Now()
			cur.Status, cur.FinishedAt, cur.ClaimedBy = StatusDone, &now, ""
			if cur.Kind == KindExport {
				cur.RowsTotal = cur.RowsDone
			}
			return nil
		}); err != nil && !errors.Is(err, errLost) {
			log.Warn("job end not recorded", "err", err)
		}
		log.Info("job done", "rows_done", j.RowsDone, "rows_rejected", j.RowsRejected)
	}
}

// update changes the job in a transaction if this runner still holds it,
// renewing the lease, and copies the result into j. Checkpoints go
// through here with the batch's own writes, so a batch and its checkpoint
// commit together.
func (r *Runner) update(ctx context.Context, j *Job, fn func(st Store, cur *Job) error) error {
	var out *Job
	err := r.s.inTx(ctx, func(st Store) error {
		cur, err := st.JobByID(ctx, j.ID)
		if err != nil {
			return err
		}
		if cur.Status != StatusRunning || cur.ClaimedBy != r.cfg.Name {
			return errLost
		}
		if err := fn(st, cur); err != nil {
			return err
		}
		now := r.s.cfg.Clock.Now()
		cur.UpdatedAt, cur.LeaseUntil = now, now.Add(r.cfg.Lease)
		out = cur
		return st.UpdateJob(ctx, cur)
	})
	if err != nil {
		return err
	}
	*j = *out
	return nil
}

// runImport sends each input chunk through ingest, then commits the
// chunk's rejected rows, counts and the next chunk number together. A
// chunk interrupted between the two is sent again on resume; its rows'
// message ids are fixed, so ingest counts them as duplicates.
func (r *Runner) runImport(ctx context.Context, j *Job) error {
	p, err := compileMapping(j.Headers, j.Mapping)
	if err != nil {
		return err
	}
	seq := 0
	if j.Checkpoint != "" {
		if seq, err = strconv.Atoi(j.Checkpoint); err != nil {
			return fmt.Errorf("jobs: import checkpoint %q: %w", j.Checkpoint, err)
		}
	}
	for ; ; seq++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := r.s.cfg.Read.Chunk(ctx, j.ID, PartInput, seq)
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return nil
		}
		if err != nil {
			return err
		}
		rejected, err := r.importChunk(ctx, j, p, c)
		if err != nil {
			return err
		}
		next := strconv.Itoa(seq + 1)
		// The batch is ingested: its checkpoint commits even if shutdown
		// began meanwhile.
		bg := context.WithoutCancel(ctx)
		err = r.update(bg, j, func(st Store, cur *Job) error {
			if err := st.AddRejectedRows(bg, rejected); err != nil {
				return err
			}
			cur.RowsDone += int64(c.Rows)
			cur.RowsRejected += int64(len(rejected))
			cur.Checkpoint = next
			return nil
		})
		if err != nil {
			return err
		}
	}
}

// importChunk ingests one chunk's rows and returns the rows it rejected.
func (r *Runner) importChunk(ctx context.Context, j *Job, p *plan, c *Chunk) ([]*RejectedRow, error) {
	recs, err := readChunk(c, len(j.Headers))
	if err != nil {
		return nil, err
	}
	var rejected []*RejectedRow
	reject := func(i int, reason string) {
		rejected = append(rejected, &RejectedRow{JobID: j.ID, Row: c.FirstRow + int64(i), Reason: reason, Fields: recs[i]})
	}
	msgs := make([]json.RawMessage, 0, len(recs))
	// rowOf maps a message's position in the batch to its row's index.
	rowOf := make([]int, 0, len(recs))
	for i, rec := range recs {
		m, reason := p.message(j.ID, c.FirstRow+int64(i), rec)
		if reason != "" {
			reject(i, reason)
			continue
		}
		msgs = append(msgs, m)
		rowOf = append(rowOf, i)
	}
	if len(msgs) == 0 {
		return rejected, nil
	}
	res, err := r.s.cfg.Ingest.Ingest(ctx, events.IngestParams{
		Batch:    &events.Batch{Messages: msgs},
		Envelope: events.Envelope{PropertyID: ImportPropertyID, ReceivedAt: r.s.cfg.Clock.Now()},
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("jobs: import ingest: %w", err)
	}
	for _, rj := range res.Rejected {
		if rj.Index >= 0 && rj.Index < len(rowOf) {
			reject(rowOf[rj.Index], rj.Reason)
		}
	}
	for _, i := range res.SuppressedIndexes {
		if i >= 0 && i < len(rowOf) {
			reject(rowOf[i], "This person is suppressed at their request; their data is not recorded.")
		}
	}
	return rejected, nil
}

// exportCursor is an export's checkpoint: where the next batch starts and
// which output chunk it writes.
type exportCursor struct {
	AfterID  string `json:"after_id,omitempty"`
	AfterSeq int64  `json:"after_seq,omitempty"`
	Chunk    int    `json:"chunk"`
}

// runExport reads people or events in keyset order, one batch at a time,
// and commits each batch's piece of the file with the checkpoint.
func (r *Runner) runExport(ctx context.Context, j *Job) error {
	var cur exportCursor
	if j.Checkpoint == "" {
		// First claim: the total is what exists now (the export may end
		// with more, written meanwhile).
		var n int64
		var err error
		if j.Target == TargetPeople {
			n, err = r.s.cfg.Read.CountPersons(ctx)
		} else {
			n, err = r.s.cfg.Read.CountEvents(ctx)
		}
		if err != nil {
			return err
		}
		start, _ := json.Marshal(cur)
		if err := r.update(ctx, j, func(_ Store, c *Job) error {
			c.RowsTotal, c.Checkpoint = n, string(start)
			return nil
		}); err != nil {
			return err
		}
	} else if err := json.Unmarshal([]byte(j.Checkpoint), &cur); err != nil {
		return fmt.Errorf("jobs: export checkpoint %q: %w", j.Checkpoint, err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var data []byte
		var n int
		next := cur
		next.Chunk++
		switch j.Target {
		case TargetPeople:
			recs, err := r.s.cfg.Read.ExportPeople(ctx, cur.AfterID, r.s.cfg.ExportBatch)
			if err != nil {
				return err
			}
			if n = len(recs); n > 0 {
				next.AfterID = recs[n-1].Person.ID
			}
			if data, err = encodePeople(j.Format, recs, cur.Chunk == 0); err != nil {
				return err
			}
		case TargetEvents:
			evs, err := r.s.cfg.Read.EventsAfter(ctx, cur.AfterSeq, r.s.cfg.ExportBatch)
			if err != nil {
				return err
			}
			if n = len(evs); n > 0 {
				next.AfterSeq = evs[n-1].Seq
			}
			if data, err = encodeEvents(j.Format, evs, cur.Chunk == 0); err != nil {
				return err
			}
		default:
			return onramp.Errorf(onramp.EINVALID, "Unknown export target %q.", j.Target)
		}
		if len(data) > 0 {
			cp, _ := json.Marshal(next)
			bg := context.WithoutCancel(ctx)
			err := r.update(bg, j, func(st Store, c *Job) error {
				if err := st.PutChunk(bg, &Chunk{JobID: j.ID, Part: PartOutput, Seq: cur.Chunk, Rows: n, Data: data}); err != nil {
					return err
				}
				c.RowsDone += int64(n)
				c.Checkpoint = string(cp)
				return nil
			})
			if err != nil {
				return err
			}
		}
		if n < r.s.cfg.ExportBatch {
			return nil
		}
		cur = next
	}
}
