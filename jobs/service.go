package jobs

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/events"
)

// Ingester records events: the events Service. An import sends each row
// through it as an identify call, so imported people follow the identity
// rules, land on the timeline and reach the bus like any other event.
type Ingester interface {
	Ingest(ctx context.Context, p events.IngestParams) (*events.Result, error)
}

// Config wires a Service.
type Config struct {
	// Read serves queries; InTx runs every write.
	Read   Store
	InTx   TxFunc
	Ingest Ingester
	Clock  onramp.Clock
	Log    *slog.Logger
	// IsRetryable tells whether a failed transaction may be run again.
	IsRetryable func(error) bool
	// ChunkRows is how many rows an input chunk holds, and so an import
	// batch (default 500).
	ChunkRows int
	// ExportBatch is how many people or events an export batch reads
	// (default 1000).
	ExportBatch int
}

// Service holds the job rules: upload, start, cancel, list, and reading
// a job's files. Runners do the work.
type Service struct {
	cfg Config
	// wake tells this process's runners that a job was queued, so they do
	// not wait for their next poll.
	wake chan struct{}
}

// NewService returns a Service.
func NewService(cfg Config) *Service {
	if cfg.ChunkRows <= 0 {
		cfg.ChunkRows = 500
	}
	if cfg.ExportBatch <= 0 {
		cfg.ExportBatch = 1000
	}
	if cfg.IsRetryable == nil {
		cfg.IsRetryable = func(error) bool { return false }
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, wake: make(chan struct{}, 1)}
}

func (s *Service) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// inTx runs fn in a transaction, again when the engine says it lost a race
// (two nodes updating one job on Postgres).
func (s *Service) inTx(ctx context.Context, fn func(Store) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.cfg.InTx(ctx, fn); err == nil || !s.cfg.IsRetryable(err) {
			return err
		}
	}
	return err
}

// UploadParams is an uploaded import file.
type UploadParams struct {
	Body      []byte
	CreatedBy string
}

// Upload is a stored import file with what the console shows before the
// mapping is chosen.
type Upload struct {
	Job     *Job       `json:"job"`
	Headers []string   `json:"headers"`
	Preview [][]string `json:"preview"`
}

// Upload validates a CSV file and stores it as a job waiting for its
// mapping. A malformed file stores nothing.
func (s *Service) Upload(ctx context.Context, p UploadParams) (*Upload, error) {
	if len(p.Body) > MaxUploadBytes {
		return nil, onramp.Errorf(onramp.ETOOLARGE, "The file is larger than the limit of 50 MB; split it into several imports.")
	}
	up, err := parseUpload(p.Body, s.cfg.ChunkRows)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now()
	j := &Job{ID: onramp.NewID("job"), Kind: KindImport, Target: TargetPeople, Status: StatusUploaded, RowsTotal: up.rows,
		CreatedBy: p.CreatedBy, CreatedAt: now, UpdatedAt: now, Headers: up.headers}
	err = s.inTx(ctx, func(st Store) error {
		if err := st.CreateJob(ctx, j); err != nil {
			return err
		}
		for _, c := range up.chunks {
			c.JobID = j.ID
			if err := st.PutChunk(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: upload: %w", err)
	}
	return &Upload{Job: j, Headers: up.headers, Preview: up.preview}, nil
}

// StartParams starts an uploaded import.
type StartParams struct {
	JobID   string
	Mapping map[string]string
}

// Start validates the mapping and queues the import.
func (s *Service) Start(ctx context.Context, p StartParams) (*Job, error) {
	var out *Job
	err := s.inTx(ctx, func(st Store) error {
		j, err := st.JobByID(ctx, p.JobID)
		if err != nil {
			return err
		}
		if j.Kind != KindImport {
			return onramp.Errorf(onramp.ECONFLICT, "Job %s is an export; only imports are started with a mapping.", j.ID)
		}
		if j.Status != StatusUploaded {
			return onramp.Errorf(onramp.ECONFLICT, "Import %s is %s; only an uploaded import can be started.", j.ID, j.Status)
		}
		if _, err := compileMapping(j.Headers, p.Mapping); err != nil {
			return err
		}
		j.Mapping = p.Mapping
		j.Status = StatusQueued
		j.UpdatedAt = s.cfg.Clock.Now()
		out = j
		return st.UpdateJob(ctx, j)
	})
	if err != nil {
		return nil, err
	}
	s.notify()
	return out, nil
}

// ExportParams asks for an export file.
type ExportParams struct {
	Target    string
	Format    string
	CreatedBy string
}

// Export queues an export.
func (s *Service) Export(ctx context.Context, p ExportParams) (*Job, error) {
	if p.Target != TargetPeople && p.Target != TargetEvents {
		return nil, onramp.Errorf(onramp.EINVALID, `"kind" must be "people" or "events".`)
	}
	if p.Format != FormatNDJSON && p.Format != FormatCSV {
		return nil, onramp.Errorf(onramp.EINVALID, `"format" must be "ndjson" or "csv".`)
	}
	now := s.cfg.Clock.Now()
	j := &Job{ID: onramp.NewID("job"), Kind: KindExport, Target: p.Target, Format: p.Format, Status: StatusQueued,
		CreatedBy: p.CreatedBy, CreatedAt: now, UpdatedAt: now}
	if err := s.inTx(ctx, func(st Store) error { return st.CreateJob(ctx, j) }); err != nil {
		return nil, fmt.Errorf("jobs: export: %w", err)
	}
	s.notify()
	return j, nil
}

// Get returns a job.
func (s *Service) Get(ctx context.Context, id string) (*Job, error) {
	return s.cfg.Read.JobByID(ctx, id)
}

// List returns jobs, newest first.
func (s *Service) List(ctx context.Context, q ListQuery) ([]*Job, error) {
	if q.Limit <= 0 || q.Limit > 100 {
		q.Limit = 50
	}
	return s.cfg.Read.ListJobs(ctx, q)
}

// Cancel stops a job that has not finished. A running job stops at its
// next checkpoint; what it committed before stays (imported people stay
// imported). Cancelling a cancelled job changes nothing.
func (s *Service) Cancel(ctx context.Context, id string) (*Job, error) {
	var out *Job
	err := s.inTx(ctx, func(st Store) error {
		j, err := st.JobByID(ctx, id)
		if err != nil {
			return err
		}
		out = j
		switch j.Status {
		case StatusCancelled:
			return nil
		case StatusDone, StatusFailed:
			return onramp.Errorf(onramp.ECONFLICT, "Job %s already finished (%s).", j.ID, j.Status)
		}
		now := s.cfg.Clock.Now()
		j.Status, j.FinishedAt, j.UpdatedAt = StatusCancelled, &now, now
		j.ClaimedBy, j.LeaseUntil = "", now
		return st.UpdateJob(ctx, j)
	})
	return out, err
}

// WriteRejections writes an import's rejected rows as CSV: row, reason,
// then the row's original columns under the file's own headers.
func (s *Service) WriteRejections(ctx context.Context, j *Job, w io.Writer) error {
	cw := newCSVWriter(w)
	cw.write(append([]string{"row", "reason"}, j.Headers...))
	var after int64
	for {
		rows, err := s.cfg.Read.RejectedRows(ctx, j.ID, after, 1000)
		if err != nil {
			return fmt.Errorf("jobs: rejections: %w", err)
		}
		for _, r := range rows {
			cw.write(append([]string{fmt.Sprint(r.Row), r.Reason}, r.Fields...))
			after = r.Row
		}
		if err := cw.flush(); err != nil {
			return err
		}
		if len(rows) < 1000 {
			return nil
		}
	}
}

// WriteOutput writes a finished export's file, chunk by chunk.
func (s *Service) WriteOutput(ctx context.Context, j *Job, w io.Writer) error {
	for seq := 0; ; seq++ {
		c, err := s.cfg.Read.Chunk(ctx, j.ID, PartOutput, seq)
		if onramp.ErrorCode(err) == onramp.ENOTFOUND {
			return nil
		}
		if err != nil {
			return fmt.Errorf("jobs: output: %w", err)
		}
		if _, err := w.Write(c.Data); err != nil {
			return err
		}
	}
}

// CheckDownload says whether j has a file to download.
func CheckDownload(j *Job) error {
	if j.Kind != KindExport {
		return onramp.Errorf(onramp.ECONFLICT, "Job %s is an import; imports have rejected rows (/rejections), not a download.", j.ID)
	}
	if j.Status != StatusDone {
		return onramp.Errorf(onramp.ECONFLICT, "Export %s is %s; its file can be downloaded once it is done.", j.ID, j.Status)
	}
	return nil
}

// FileName is the download's name.
func FileName(j *Job) string {
	return j.Target + "-" + j.ID + "." + j.Format
}
