-- Bulk jobs of the console (CSV imports, exports): the job rows with their
-- checkpoint, their files in chunks, and an import's rejected rows. The
-- files live in the database, not the data folder, so that whichever node
-- runs a job or serves its download sees them (the same schema as
-- Postgres's 0009_jobs.sql).

CREATE TABLE jobs (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    target        TEXT NOT NULL,
    format        TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL,
    headers       TEXT NOT NULL DEFAULT '[]',
    mapping       TEXT NOT NULL DEFAULT '{}',
    rows_total    INTEGER NOT NULL DEFAULT 0,
    rows_done     INTEGER NOT NULL DEFAULT 0,
    rows_rejected INTEGER NOT NULL DEFAULT 0,
    checkpoint    TEXT NOT NULL DEFAULT '',
    created_by    TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    error         TEXT NOT NULL DEFAULT '',
    claimed_by    TEXT NOT NULL DEFAULT '',
    lease_until   INTEGER NOT NULL DEFAULT 0
);
-- Runners look for queued and running jobs only; finished ones pile up.
CREATE INDEX jobs_runnable ON jobs (status, id) WHERE status IN ('queued', 'running');

-- Chunks keep a rowid (not WITHOUT ROWID): their data is up to 1 MiB, and
-- large rows belong in a rowid table's overflow pages, not in a B-tree key.
CREATE TABLE job_chunks (
    job_id    TEXT NOT NULL,
    part      TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    first_row INTEGER NOT NULL DEFAULT 0,
    row_count INTEGER NOT NULL DEFAULT 0,
    data      BLOB NOT NULL
);
CREATE UNIQUE INDEX job_chunks_key ON job_chunks (job_id, part, seq);

CREATE TABLE job_rejections (
    job_id  TEXT NOT NULL,
    row_num INTEGER NOT NULL,
    reason  TEXT NOT NULL,
    fields  BLOB NOT NULL,
    PRIMARY KEY (job_id, row_num)
);
