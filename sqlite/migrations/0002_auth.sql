-- Accounts, sign-in flows, sessions, staff, the audit log and the shared
-- state of the sign-in rules (docs/design/auth.md §1). Secrets are never
-- stored, only their SHA-256 or argon2id string. Times are INTEGER
-- microseconds as in 0001: an optional time held in a time.Time is 0 when
-- absent, one held in a *time.Time is NULL. Empty strings stand for absent
-- text, except link_hash and webauthn_handle, which are NULL when absent so
-- that their UNIQUE constraints only bind real values.

CREATE TABLE accounts (
    person_id       TEXT PRIMARY KEY,
    subject         TEXT NOT NULL UNIQUE,
    webauthn_handle BLOB UNIQUE,
    status          TEXT NOT NULL,
    primary_email   TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE passwords (
    person_id  TEXT PRIMARY KEY,
    phc        TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    secret_hash     TEXT NOT NULL UNIQUE,
    person_id       TEXT NOT NULL,
    aal             INTEGER NOT NULL,
    amr             TEXT NOT NULL DEFAULT '[]',
    auth_time       INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    idle_expires_at INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    ip              TEXT NOT NULL DEFAULT '',
    user_agent      TEXT NOT NULL DEFAULT '',
    revoked_at      INTEGER,
    revoked_reason  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_person ON sessions (person_id, created_at);
-- PruneAuth finds sessions past either end through these two.
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_idle_expires ON sessions (idle_expires_at);

CREATE TABLE session_clients (
    session_id TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    first_at   INTEGER NOT NULL,
    last_at    INTEGER NOT NULL,
    PRIMARY KEY (session_id, client_id)
) WITHOUT ROWID;

CREATE TABLE auth_flows (
    id              TEXT PRIMARY KEY,
    secret_hash     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    auth_request_id TEXT NOT NULL DEFAULT '',
    client_id       TEXT NOT NULL DEFAULT '',
    email           TEXT NOT NULL DEFAULT '',
    person_id       TEXT NOT NULL DEFAULT '',
    anonymous_id    TEXT NOT NULL DEFAULT '',
    step            TEXT NOT NULL DEFAULT '',
    amr             TEXT NOT NULL DEFAULT '[]',
    pending         TEXT,
    ip              TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);
CREATE INDEX auth_flows_expires ON auth_flows (expires_at);
CREATE INDEX auth_flows_person ON auth_flows (person_id);
CREATE INDEX auth_flows_email ON auth_flows (email);

CREATE TABLE one_time_codes (
    id           TEXT PRIMARY KEY,
    flow_id      TEXT NOT NULL DEFAULT '',
    purpose      TEXT NOT NULL,
    email        TEXT NOT NULL DEFAULT '',
    person_id    TEXT NOT NULL DEFAULT '',
    code_hash    TEXT NOT NULL DEFAULT '',
    link_hash    TEXT UNIQUE,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,
    created_at   INTEGER NOT NULL
);
CREATE INDEX one_time_codes_flow ON one_time_codes (flow_id, purpose, created_at);
CREATE INDEX one_time_codes_email ON one_time_codes (email, purpose);
CREATE INDEX one_time_codes_person ON one_time_codes (person_id);
CREATE INDEX one_time_codes_expires ON one_time_codes (expires_at);

-- AUTOINCREMENT: a seq is never handed out twice, even after the newest
-- rows are deleted, so a page boundary (BeforeSeq) keeps its meaning.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    at          INTEGER NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    person_id   TEXT NOT NULL DEFAULT '',
    property_id TEXT NOT NULL DEFAULT '',
    client_id   TEXT NOT NULL DEFAULT '',
    session_id  TEXT NOT NULL DEFAULT '',
    ip          TEXT NOT NULL DEFAULT '',
    user_agent  TEXT NOT NULL DEFAULT '',
    detail      TEXT
);
CREATE INDEX audit_log_person ON audit_log (person_id, seq);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE login_attempts (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    locked_until INTEGER NOT NULL DEFAULT 0,
    updated_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX login_attempts_updated ON login_attempts (updated_at);

CREATE TABLE staff (
    person_id  TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL
);

CREATE TABLE settings (
    name       TEXT PRIMARY KEY,
    value      TEXT,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL DEFAULT ''
);

CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE auth_outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    payload    TEXT,
    run_at     INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    done_at    INTEGER
);
-- Due jobs are (NULL, run_at <= now); done ones to prune (done_at < cutoff).
CREATE INDEX auth_outbox_due ON auth_outbox (done_at, run_at);
