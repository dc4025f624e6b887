// Package jobs owns the console's long bulk work: CSV imports of people and
// exports of people and events. A job is a row with a checkpoint; its input
// (the uploaded CSV) and its output (the export file) are chunks in the
// database, and its rejected rows a table beside it. A Runner in each server
// process claims queued jobs and works through them in batches, committing
// the checkpoint with each batch, so a restart (even a crash) resumes where
// the last commit left off.
//
// Why a job table and not riverqueue/river (named in DESIGN.md, available
// as v0.51): a job here is one long, resumable piece of work whose state
// (checkpoint, counts, files, rejected rows) lives in our own tables
// anyway, and must be migrated and tested on both engines by our own
// migration sets and contract suite. River would add a second migration
// system (rivermigrate) and schema beside ours, its SQLite driver is still
// young, and it would only replace the claim query and the poll loop — a
// few dozen lines here. When workflows need scheduled, retried,
// fan-out jobs, river is the better tool for those.
//
// Why the database for the files (not the data folder): Postgres
// deployments run several nodes, and any node may claim a job or serve its
// download; files on one node's disk would be invisible to the others.
// Chunks (at most ChunkRows rows or 1 MiB each) keep every read and write
// bounded.
package jobs

import (
	"context"
	"time"

	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
)

// Kinds of jobs.
const (
	KindImport = "import"
	KindExport = "export"
)

// Statuses. A job moves uploaded → queued → running → done | failed, and
// may be cancelled from any of the first three. A running job whose node
// went away is queued again (by lease expiry or at graceful shutdown).
const (
	StatusUploaded  = "uploaded"
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusDone      = "done"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// Targets: what a job imports or exports.
const (
	TargetPeople = "people"
	TargetEvents = "events"
)

// Formats of export files.
const (
	FormatCSV    = "csv"
	FormatNDJSON = "ndjson"
)

// Parts of a job's stored files.
const (
	PartInput  = "input"
	PartOutput = "output"
)

// ImportPropertyID is the property of the identify events an import
// records: the reserved id of events Onramp itself records (no created
// property has it, their ids being generated), so imports show on the
// timeline as Onramp's, not as a website's.
const ImportPropertyID = "onramp"

// Job is one import or export.
type Job struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// Format is the export file's format ("" for imports, which read CSV).
	Format       string     `json:"format,omitempty"`
	Status       string     `json:"status"`
	RowsTotal    int64      `json:"rows_total"`
	RowsDone     int64      `json:"rows_done"`
	RowsRejected int64      `json:"rows_rejected"`
	CreatedBy    string     `json:"created_by"`
	CreatedAt    time.Time  `json:"created_at"`
	StartedAt    *time.Time `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at"`
	Error        string     `json:"error"`
	// Headers are an import's column names, in file order.
	Headers []string `json:"headers,omitempty"`
	// Mapping is an import's column mapping, set when it is started.
	Mapping map[string]string `json:"mapping,omitempty"`

	// Checkpoint is where the work continues: the next input chunk of an
	// import, the keyset position of an export. Opaque to the store.
	Checkpoint string `json:"-"`
	// ClaimedBy names the runner working on the job; LeaseUntil is when
	// another runner may take it over if this one stops renewing.
	ClaimedBy  string    `json:"-"`
	LeaseUntil time.Time `json:"-"`
	UpdatedAt  time.Time `json:"-"`
}

// Finished reports whether the job will not change any more.
func (j *Job) Finished() bool {
	return j.Status == StatusDone || j.Status == StatusFailed || j.Status == StatusCancelled
}

// Chunk is one piece of a job's input or output file.
type Chunk struct {
	JobID string
	Part  string
	Seq   int
	// FirstRow is the 1-based data row number of the chunk's first row
	// (the CSV header not counted); Rows how many rows it holds.
	FirstRow int64
	Rows     int
	Data     []byte
}

// RejectedRow is an import row that was not imported, and why.
type RejectedRow struct {
	JobID  string
	Row    int64
	Reason string
	// Fields are the row's original columns.
	Fields []string
}

// PersonRecord is one person of a people export: a root person with the
// identifiers of every person merged into it.
type PersonRecord struct {
	Person      *identity.Person
	Identifiers []*identity.Identifier
}

// ListQuery selects jobs, newest first.
type ListQuery struct {
	// BeforeID continues after the last job of a previous page (job ids are
	// time-ordered).
	BeforeID string
	Limit    int
}

// ClaimParams asks for the oldest runnable job.
type ClaimParams struct {
	Runner     string
	Now        time.Time
	LeaseUntil time.Time
	// OnlyID, if set, limits the claim to that job (the CLI runs its own).
	OnlyID string
}

// Store is what the job rules need from an engine.
type Store interface {
	CreateJob(ctx context.Context, j *Job) error
	// JobByID returns the job, or ENOTFOUND.
	JobByID(ctx context.Context, id string) (*Job, error)
	ListJobs(ctx context.Context, q ListQuery) ([]*Job, error)
	// UpdateJob writes every mutable field of j. Callers read, check and
	// write in one transaction; engines make concurrent writers of one job
	// conflict (SQLite by its single writer, Postgres by REPEATABLE READ).
	UpdateJob(ctx context.Context, j *Job) error
	// ClaimJob marks the oldest queued job (or running job whose lease
	// ended) as running for p.Runner and returns it; nil when there is
	// none. Two runners never get the same job from concurrent calls.
	ClaimJob(ctx context.Context, p ClaimParams) (*Job, error)
	PutChunk(ctx context.Context, c *Chunk) error
	// Chunk returns a chunk, or ENOTFOUND past the last one.
	Chunk(ctx context.Context, jobID, part string, seq int) (*Chunk, error)
	// AddRejectedRows stores rows; a row already stored for the job is
	// left as it is (a resumed batch adds its rows again).
	AddRejectedRows(ctx context.Context, rows []*RejectedRow) error
	// RejectedRows returns a job's rejected rows with Row > afterRow, in
	// row order.
	RejectedRows(ctx context.Context, jobID string, afterRow int64, limit int) ([]*RejectedRow, error)
	// ExportPeople returns up to limit root persons with id > afterID, in
	// id order, each with the identifiers of its whole merge tree.
	ExportPeople(ctx context.Context, afterID string, limit int) ([]*PersonRecord, error)
	// EventsAfter and the counts are the events and identity Stores' own.
	EventsAfter(ctx context.Context, seq int64, limit int) ([]*events.Event, error)
	CountEvents(ctx context.Context) (int64, error)
	CountPersons(ctx context.Context) (int64, error)
}

// TxFunc runs fn in one transaction of the engine.
type TxFunc func(ctx context.Context, fn func(Store) error) error
