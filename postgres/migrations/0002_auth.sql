-- Accounts, sign-in flows, sessions, staff, the audit log and the shared
-- state of the sign-in rules (docs/design/auth.md §1), with the same
-- columns as SQLite's 0002. Secrets are never stored, only their SHA-256 or
-- argon2id string. As in 0001, a column NOT NULL in SQLite is NOT NULL here
-- and optional times are NULL when absent; empty strings stand for absent
-- text, except link_hash and webauthn_handle, which are NULL when absent so
-- that their UNIQUE constraints only bind real values. Ids, hashes and
-- keys use the "C" collation (byte order, as SQLite compares).

CREATE TABLE accounts (
    person_id       text COLLATE "C" PRIMARY KEY,
    subject         text COLLATE "C" NOT NULL UNIQUE,
    webauthn_handle bytea UNIQUE,
    status          text NOT NULL,
    primary_email   text COLLATE "C" NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE TABLE passwords (
    person_id  text COLLATE "C" PRIMARY KEY,
    phc        text NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE sessions (
    id              text COLLATE "C" PRIMARY KEY,
    secret_hash     text COLLATE "C" NOT NULL UNIQUE,
    person_id       text COLLATE "C" NOT NULL,
    aal             integer NOT NULL,
    amr             jsonb NOT NULL DEFAULT '[]',
    auth_time       timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    idle_expires_at timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    ip              text NOT NULL DEFAULT '',
    user_agent      text NOT NULL DEFAULT '',
    revoked_at      timestamptz,
    revoked_reason  text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_person ON sessions (person_id, created_at);
-- PruneAuth finds sessions past either end through these two.
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_idle_expires ON sessions (idle_expires_at);

CREATE TABLE session_clients (
    session_id text COLLATE "C" NOT NULL,
    client_id  text COLLATE "C" NOT NULL,
    first_at   timestamptz NOT NULL,
    last_at    timestamptz NOT NULL,
    PRIMARY KEY (session_id, client_id)
);

CREATE TABLE auth_flows (
    id              text COLLATE "C" PRIMARY KEY,
    secret_hash     text COLLATE "C" NOT NULL,
    kind            text COLLATE "C" NOT NULL,
    auth_request_id text COLLATE "C" NOT NULL DEFAULT '',
    client_id       text COLLATE "C" NOT NULL DEFAULT '',
    email           text COLLATE "C" NOT NULL DEFAULT '',
    person_id       text COLLATE "C" NOT NULL DEFAULT '',
    anonymous_id    text COLLATE "C" NOT NULL DEFAULT '',
    step            text NOT NULL DEFAULT '',
    amr             jsonb NOT NULL DEFAULT '[]',
    pending         jsonb,
    ip              text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL
);
CREATE INDEX auth_flows_expires ON auth_flows (expires_at);
CREATE INDEX auth_flows_person ON auth_flows (person_id);
CREATE INDEX auth_flows_email ON auth_flows (email);

CREATE TABLE one_time_codes (
    id           text COLLATE "C" PRIMARY KEY,
    flow_id      text COLLATE "C" NOT NULL DEFAULT '',
    purpose      text COLLATE "C" NOT NULL,
    email        text COLLATE "C" NOT NULL DEFAULT '',
    person_id    text COLLATE "C" NOT NULL DEFAULT '',
    code_hash    text COLLATE "C" NOT NULL DEFAULT '',
    link_hash    text COLLATE "C" UNIQUE,
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    created_at   timestamptz NOT NULL
);
CREATE INDEX one_time_codes_flow ON one_time_codes (flow_id, purpose, created_at);
CREATE INDEX one_time_codes_email ON one_time_codes (email, purpose);
CREATE INDEX one_time_codes_person ON one_time_codes (person_id);
CREATE INDEX one_time_codes_expires ON one_time_codes (expires_at);

-- seq comes from an identity sequence: unique and increasing in insert
-- order, never reused, which is all paging by BeforeSeq needs.
CREATE TABLE audit_log (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          text COLLATE "C" NOT NULL UNIQUE,
    at          timestamptz NOT NULL,
    actor_type  text COLLATE "C" NOT NULL,
    actor_id    text COLLATE "C" NOT NULL DEFAULT '',
    action      text COLLATE "C" NOT NULL,
    outcome     text COLLATE "C" NOT NULL,
    person_id   text COLLATE "C" NOT NULL DEFAULT '',
    property_id text COLLATE "C" NOT NULL DEFAULT '',
    client_id   text COLLATE "C" NOT NULL DEFAULT '',
    session_id  text COLLATE "C" NOT NULL DEFAULT '',
    ip          text NOT NULL DEFAULT '',
    user_agent  text NOT NULL DEFAULT '',
    detail      jsonb
);
CREATE INDEX audit_log_person ON audit_log (person_id, seq);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE login_attempts (
    key          text COLLATE "C" PRIMARY KEY,
    failures     integer NOT NULL,
    window_start timestamptz NOT NULL,
    locked_until timestamptz,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX login_attempts_updated ON login_attempts (updated_at);

CREATE TABLE staff (
    person_id  text COLLATE "C" PRIMARY KEY,
    role       text COLLATE "C" NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text COLLATE "C" NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL
);

CREATE TABLE settings (
    name       text COLLATE "C" PRIMARY KEY,
    value      jsonb,
    updated_at timestamptz NOT NULL,
    updated_by text COLLATE "C" NOT NULL DEFAULT ''
);

CREATE TABLE server_secrets (
    name       text COLLATE "C" PRIMARY KEY,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE auth_outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text COLLATE "C" NOT NULL,
    payload    jsonb,
    run_at     timestamptz NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    last_error text NOT NULL DEFAULT '',
    done_at    timestamptz
);
-- Due jobs are (NULL, run_at <= now); done ones to prune (done_at < cutoff).
CREATE INDEX auth_outbox_due ON auth_outbox (done_at, run_at);
