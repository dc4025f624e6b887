package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/onramp-dev/onramp/jobs"
)

const jobCols = `id, kind, target, format, status, headers, mapping, rows_total, rows_done, rows_rejected, checkpoint,
	created_by, created_at, updated_at, started_at, finished_at, error, claimed_by, lease_until`

func scanJob(sc interface{ Scan(...any) error }) (*jobs.Job, error) {
	var j jobs.Job
	var headers, mapping string
	var created, updated, lease int64
	var started, finished sql.NullInt64
	if err := sc.Scan(&j.ID, &j.Kind, &j.Target, &j.Format, &j.Status, &headers, &mapping, &j.RowsTotal, &j.RowsDone, &j.RowsRejected, &j.Checkpoint,
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
	j.CreatedAt, j.UpdatedAt, j.LeaseUntil = fromMicros(created), fromMicros(updated), fromMicros(lease)
	j.StartedAt, j.FinishedAt = timePtr(started), timePtr(finished)
	return &j, nil
}

func (q *Queries) queryJobs(ctx context.Context, query string, args ...any) ([]*jobs.Job, error) {
	rows, err := q.x.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: jobs: %w", err)
	}
	defer rows.Close()
	var out []*jobs.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

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
	_, err := q.x.ExecContext(ctx, `INSERT INTO jobs (`+jobCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.Kind, j.Target, j.Format, j.Status, headers, mapping, j.RowsTotal, j.RowsDone, j.RowsRejected, j.Checkpoint,
		j.CreatedBy, micros(j.CreatedAt), micros(j.UpdatedAt), nullMicros(j.StartedAt), nullMicros(j.FinishedAt), j.Error, j.ClaimedBy, micros(j.LeaseUntil))
	if err != nil {
		return fmt.Errorf("sqlite: create job: %w", err)
	}
	return nil
}

func (q *Queries) JobByID(ctx context.Context, id string) (*jobs.Job, error) {
	js, err := q.queryJobs(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`, id)
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
		return q.queryJobs(ctx, `SELECT `+jobCols+` FROM jobs WHERE id < ? ORDER BY id DESC LIMIT ?`, lq.BeforeID, lq.Limit)
	}
	return q.queryJobs(ctx, `SELECT `+jobCols+` FROM jobs ORDER BY id DESC LIMIT ?`, lq.Limit)
}

func (q *Queries) UpdateJob(ctx context.Context, j *jobs.Job) error {
	headers, mapping := jobJSON(j)
	res, err := q.x.ExecContext(ctx, `UPDATE jobs SET status = ?, headers = ?, mapping = ?, rows_total = ?, rows_done = ?, rows_rejected = ?, checkpoint = ?,
		updated_at = ?, started_at = ?, finished_at = ?, error = ?, claimed_by = ?, lease_until = ? WHERE id = ?`,
		j.Status, headers, mapping, j.RowsTotal, j.RowsDone, j.RowsRejected, j.Checkpoint,
		micros(j.UpdatedAt), nullMicros(j.StartedAt), nullMicros(j.FinishedAt), j.Error, j.ClaimedBy, micros(j.LeaseUntil), j.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update job: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("job")
	}
	return nil
}

// ClaimJob runs in a write transaction, which on SQLite holds the one
// write lock: no other process's claim can interleave.
func (q *Queries) ClaimJob(ctx context.Context, p jobs.ClaimParams) (*jobs.Job, error) {
	query := `SELECT ` + jobCols + ` FROM jobs WHERE (status = 'queued' OR (status = 'running' AND lease_until < ?))`
	args := []any{micros(p.Now)}
	if p.OnlyID != "" {
		query += ` AND id = ?`
		args = append(args, p.OnlyID)
	}
	js, err := q.queryJobs(ctx, query+` ORDER BY id LIMIT 1`, args...)
	if err != nil || len(js) == 0 {
		return nil, err
	}
	j := js[0]
	j.Status, j.ClaimedBy, j.LeaseUntil, j.UpdatedAt = jobs.StatusRunning, p.Runner, p.LeaseUntil, p.Now
	if j.StartedAt == nil {
		now := p.Now
		j.StartedAt = &now
	}
	if err := q.UpdateJob(ctx, j); err != nil {
		return nil, err
	}
	return j, nil
}

func (q *Queries) PutChunk(ctx context.Context, c *jobs.Chunk) error {
	_, err := q.x.ExecContext(ctx, `INSERT INTO job_chunks (job_id, part, seq, first_row, row_count, data) VALUES (?, ?, ?, ?, ?, ?)`,
		c.JobID, c.Part, c.Seq, c.FirstRow, c.Rows, nonNilBytes(c.Data))
	if err != nil {
		return fmt.Errorf("sqlite: put chunk: %w", err)
	}
	return nil
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func (q *Queries) Chunk(ctx context.Context, jobID, part string, seq int) (*jobs.Chunk, error) {
	c := &jobs.Chunk{JobID: jobID, Part: part, Seq: seq}
	err := q.x.QueryRowContext(ctx, `SELECT first_row, row_count, data FROM job_chunks WHERE job_id = ? AND part = ? AND seq = ?`, jobID, part, seq).
		Scan(&c.FirstRow, &c.Rows, &c.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("chunk")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: chunk: %w", err)
	}
	return c, nil
}

func (q *Queries) AddRejectedRows(ctx context.Context, rows []*jobs.RejectedRow) error {
	return chunk(rows, 200, func(rows []*jobs.RejectedRow) error {
		args := make([]any, 0, 4*len(rows))
		for _, r := range rows {
			f, _ := json.Marshal(nonNil(r.Fields))
			args = append(args, r.JobID, r.Row, r.Reason, f)
		}
		_, err := q.x.ExecContext(ctx, `INSERT INTO job_rejections (job_id, row_num, reason, fields) VALUES `+rowsOf(len(rows), 4)+` ON CONFLICT DO NOTHING`, args...)
		if err != nil {
			return fmt.Errorf("sqlite: add rejected rows: %w", err)
		}
		return nil
	})
}

func (q *Queries) RejectedRows(ctx context.Context, jobID string, afterRow int64, limit int) ([]*jobs.RejectedRow, error) {
	rows, err := q.x.QueryContext(ctx, `SELECT row_num, reason, fields FROM job_rejections WHERE job_id = ? AND row_num > ? ORDER BY row_num LIMIT ?`, jobID, afterRow, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: rejected rows: %w", err)
	}
	defer rows.Close()
	var out []*jobs.RejectedRow
	for rows.Next() {
		r := &jobs.RejectedRow{JobID: jobID}
		var f []byte
		if err := rows.Scan(&r.Row, &r.Reason, &f); err != nil {
			return nil, fmt.Errorf("sqlite: rejected rows: %w", err)
		}
		if err := json.Unmarshal(f, &r.Fields); err != nil {
			return nil, fmt.Errorf("sqlite: rejected row %d: %w", r.Row, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (q *Queries) ExportPeople(ctx context.Context, afterID string, limit int) ([]*jobs.PersonRecord, error) {
	ps, err := q.queryPersons(ctx, `SELECT `+personCols+` FROM persons WHERE root_id = id AND id > ? ORDER BY id LIMIT ?`, afterID, limit)
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
	err = chunk(ids, 500, func(ids []string) error {
		rows, err := q.x.QueryContext(ctx, `SELECT i.type, i.value, p.root_id, i.verified, i.first_seen_at
			FROM identifiers i JOIN persons p ON p.id = i.person_id
			WHERE p.root_id IN (`+placeholders(len(ids))+`) ORDER BY i.first_seen_at, i.type, i.value`, anys(ids)...)
		if err != nil {
			return err
		}
		found, err := scanIdentifiers(rows)
		for _, id := range found {
			if r := byRoot[id.PersonID]; r != nil {
				r.Identifiers = append(r.Identifiers, id)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: export people: %w", err)
	}
	return out, nil
}

var _ jobs.Store = (*Queries)(nil)
