-- Bulk jobs of the console (CSV imports, exports): the job rows with their
-- checkpoint, their files in chunks, and an import's rejected rows. The
-- files live in the database so that whichever node runs a job or serves
-- its download sees them. Chunks and rejected rows are bytea: an uploaded
-- file may hold NUL bytes, which text refuses. Runners claim with
-- FOR UPDATE SKIP LOCKED (see ClaimJob).

CREATE TABLE jobs (
    id            text COLLATE "C" PRIMARY KEY,
    kind          text NOT NULL,
    target        text NOT NULL,
    format        text NOT NULL DEFAULT '',
    status        text NOT NULL,
    headers       text NOT NULL DEFAULT '[]',
    mapping       text NOT NULL DEFAULT '{}',
    rows_total    bigint NOT NULL DEFAULT 0,
    rows_done     bigint NOT NULL DEFAULT 0,
    rows_rejected bigint NOT NULL DEFAULT 0,
    checkpoint    text NOT NULL DEFAULT '',
    created_by    text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    started_at    timestamptz,
    finished_at   timestamptz,
    error         text NOT NULL DEFAULT '',
    claimed_by    text NOT NULL DEFAULT '',
    lease_until   timestamptz
);
CREATE INDEX jobs_runnable ON jobs (status, id) WHERE status IN ('queued', 'running');

CREATE TABLE job_chunks (
    job_id    text COLLATE "C" NOT NULL,
    part      text NOT NULL,
    seq       integer NOT NULL,
    first_row bigint NOT NULL DEFAULT 0,
    row_count integer NOT NULL DEFAULT 0,
    data      bytea NOT NULL,
    PRIMARY KEY (job_id, part, seq)
);

CREATE TABLE job_rejections (
    job_id  text COLLATE "C" NOT NULL,
    row_num bigint NOT NULL,
    reason  text NOT NULL,
    fields  bytea NOT NULL,
    PRIMARY KEY (job_id, row_num)
);
