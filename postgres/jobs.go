package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/onramp-dev/onramp/jobs"
)

const jobCols = `id, kind, target, format, status, headers, mapping, rows_total, rows_done, rows_rejected, checkpoint,
	created_by, created_at, updated_at, started_at, finished_at, error, claimed_by, lease_until`

func scanJob(row pgx.CollectableRow) (*jobs.Job, error) {
	var j jobs.Job
	var headers, mapping string
	var created, updated, started, finished, lease pgtype.Timestamptz
	if err := row.Scan(&j.ID, &j.Kind, &j.Target, &j.Format, &j.Status, &headers, &mapping, &j.RowsTotal, &j.RowsDone, &j.RowsRejected, &j.Checkpoint,
		&j.CreatedBy, &created, &updated, &started, &finished, &j.Error, &j.ClaimedBy, &lease); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(headers), &j.Headers); err != nil {
		return nil, fmt.Errorf("job %s headers: %w", j.ID, err)
	}
	if err := json.Unmarshal([]byte(mapping), &j.Mapping); err != nil {
		return nil, fmt.Errorf("job %s mapping: %w", j.ID, err)
	}
	if len(j.Mapping) == 0 {
		j.Mapping = nil
	}
	j.CreatedAt, j.UpdatedAt, j.LeaseUntil = fromTS(created), fromTS(updated), fromTS(lease)
	j.StartedAt, j.FinishedAt = ptrTS(started), ptrTS(finished)
	return &j, nil
}

func (q *Queries) queryJobs(ctx context.Context, query string, args ...any) ([]*jobs.Job, error) {
	rows, err := q.x.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: jobs: %w", err)
	}
	js, err := pgx.CollectRows(rows, scanJob)
	if err != nil {
		return nil, fmt.Errorf("postgres: jobs: %w", err)
	}
	return js, nil
}

// jobJSON encodes the JSON columns. They are text, not jsonb: a header
// of an uploaded file may hold a NUL, which jsonb refuses and JSON text
// escapes.
func jobJSON(j *jobs.Job) (headers, mapping string) {
	h, _ := json.Marshal(nonNil(j.Headers))
	m := []byte("{}")
	if len(j.Mapping) > 0 {
		m, _ = json.Marshal(j.Mapping)
	}
	return string(h), string(m)
}

func (q *Queries) CreateJob(ctx context.Context, j *jobs.Job) error {
	headers, mapping := jobJSON(j)
	_, err := q.x.Exec(ctx, `INSERT INTO jobs (`+jobCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		j.ID, j.Kind, j.Target, j.Format, j.Status, headers, mapping, j.RowsTotal, j.RowsDone, j.RowsRejected, j.Checkpoint,
		j.CreatedBy, ts(j.CreatedAt), ts(j.UpdatedAt), tsPtr(j.StartedAt), tsPtr(j.FinishedAt), j.Error, j.ClaimedBy, ts(j.LeaseUntil))
	if err != nil {
		return fmt.Errorf("postgres: create job: %w", err)
	}
	return nil
}

func (q *Queries) JobByID(ctx context.Context, id string) (*jobs.Job, error) {
	js, err := q.queryJobs(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1`, id)
	if err != nil {
		return nil, err
	}
	if len(js) == 0 {
		return nil, notFound("job")
	}
	return js[0], nil
}

func (q *Queries) ListJobs(ctx context.Context, lq jobs.ListQuery) ([]*jobs.Job, error) {
	if lq.BeforeID != "" {
		return q.queryJobs(ctx, `SELECT `+jobCols+` FROM jobs WHERE id < $1 ORDER BY id DESC LIMIT $2`, lq.BeforeID, limit(lq.Limit))
	}
	return q.queryJobs(ctx, `SELECT `+jobCols+` FROM jobs ORDER BY id DESC LIMIT $1`, limit(lq.Limit))
}

func (q *Queries) UpdateJob(ctx context.Context, j *jobs.Job) error {
	headers, mapping := jobJSON(j)
	tag, err := q.x.Exec(ctx, `UPDATE jobs SET status = $1, headers = $2, mapping = $3, rows_total = $4, rows_done = $5, rows_rejected = $6, checkpoint = $7,
		updated_at = $8, started_at = $9, finished_at = $10, error = $11, claimed_by = $12, lease_until = $13 WHERE id = $14`,
		j.Status, headers, mapping, j.RowsTotal, j.RowsDone, j.RowsRejected, j.Checkpoint,
		ts(j.UpdatedAt), tsPtr(j.StartedAt), tsPtr(j.FinishedAt), j.Error, j.ClaimedBy, ts(j.LeaseUntil), j.ID)
	if err != nil {
		return fmt.Errorf("postgres: update job: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("job")
	}
	return nil
}

// ClaimJob locks the oldest runnable job with FOR UPDATE SKIP LOCKED: a
// node claiming at the same moment skips the locked row and takes the
// next, instead of waiting for it or both getting it.
func (q *Queries) ClaimJob(ctx context.Context, p jobs.ClaimParams) (*jobs.Job, error) {
	js, err := q.queryJobs(ctx, `UPDATE jobs SET status = 'running', claimed_by = $1, lease_until = $2, updated_at = $3,
			started_at = COALESCE(started_at, $3)
		WHERE id = (SELECT id FROM jobs
			WHERE (status = 'queued' OR (status = 'running' AND lease_until < $3)) AND ($4 = '' OR id = $4)
			ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+jobCols, p.Runner, ts(p.LeaseUntil), ts(p.Now), p.OnlyID)
	if err != nil || len(js) == 0 {
		return nil, err
	}
	return js[0], nil
}

func (q *Queries) PutChunk(ctx context.Context, c *jobs.Chunk) error {
	data := c.Data
	if data == nil {
		data = []byte{}
	}
	_, err := q.x.Exec(ctx, `INSERT INTO job_chunks (job_id, part, seq, first_row, row_count, data) VALUES ($1, $2, $3, $4, $5, $6)`,
		c.JobID, c.Part, c.Seq, c.FirstRow, c.Rows, data)
	if err != nil {
		return fmt.Errorf("postgres: put chunk: %w", err)
	}
	return nil
}

func (q *Queries) Chunk(ctx context.Context, jobID, part string, seq int) (*jobs.Chunk, error) {
	c := &jobs.Chunk{JobID: jobID, Part: part, Seq: seq}
	err := q.x.QueryRow(ctx, `SELECT first_row, row_count, data FROM job_chunks WHERE job_id = $1 AND part = $2 AND seq = $3`, jobID, part, seq).
		Scan(&c.FirstRow, &c.Rows, &c.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("chunk")
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: chunk: %w", err)
	}
	return c, nil
}

func (q *Queries) AddRejectedRows(ctx context.Context, rows []*jobs.RejectedRow) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	ids, nums, reasons, fields := make([]string, n), make([]int64, n), make([]string, n), make([][]byte, n)
	for i, r := range rows {
		f, _ := json.Marshal(nonNil(r.Fields))
		ids[i], nums[i], reasons[i], fields[i] = r.JobID, r.Row, r.Reason, f
	}
	_, err := q.x.Exec(ctx, `INSERT INTO job_rejections (job_id, row_num, reason, fields)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bytea[]) ON CONFLICT DO NOTHING`, ids, nums, reasons, fields)
	if err != nil {
		return fmt.Errorf("postgres: add rejected rows: %w", err)
	}
	return nil
}

func (q *Queries) RejectedRows(ctx context.Context, jobID string, afterRow int64, n int) ([]*jobs.RejectedRow, error) {
	rows, err := q.x.Query(ctx, `SELECT row_num, reason, fields FROM job_rejections WHERE job_id = $1 AND row_num > $2 ORDER BY row_num LIMIT $3`, jobID, afterRow, limit(n))
	if err != nil {
		return nil, fmt.Errorf("postgres: rejected rows: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*jobs.RejectedRow, error) {
		r := &jobs.RejectedRow{JobID: jobID}
		var f []byte
		if err := row.Scan(&r.Row, &r.Reason, &f); err != nil {
			return nil, err
		}
		return r, json.Unmarshal(f, &r.Fields)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: rejected rows: %w", err)
	}
	return out, nil
}

func (q *Queries) ExportPeople(ctx context.Context, afterID string, n int) ([]*jobs.PersonRecord, error) {
	ps, err := q.queryPersons(ctx, `SELECT `+personCols+` FROM persons WHERE root_id = id AND id > $1 ORDER BY id LIMIT $2`, afterID, limit(n))
	if err != nil || len(ps) == 0 {
		return nil, err
	}
	out := make([]*jobs.PersonRecord, len(ps))
	byRoot := make(map[string]*jobs.PersonRecord, len(ps))
	ids := make([]string, len(ps))
	for i, p := range ps {
		out[i] = &jobs.PersonRecord{Person: p}
		byRoot[p.ID], ids[i] = out[i], p.ID
	}
	// The person_id column read is the root's: the export lists a tree's
	// identifiers under its root.
	rows, err := q.x.Query(ctx, `SELECT i.type, i.value, p.root_id, i.verified, i.first_seen_at
		FROM identifiers i JOIN persons p ON p.id = i.person_id
		WHERE p.root_id = ANY($1) ORDER BY i.first_seen_at, i.type, i.value`, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: export people: %w", err)
	}
	found, err := pgx.CollectRows(rows, scanIdentifier)
	if err != nil {
		return nil, fmt.Errorf("postgres: export people: %w", err)
	}
	for _, id := range found {
		if r := byRoot[id.PersonID]; r != nil {
			r.Identifiers = append(r.Identifiers, id)
		}
	}
	return out, nil
}

var _ jobs.Store = (*Queries)(nil)
