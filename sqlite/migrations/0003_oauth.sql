-- The OAuth 2.0 / OpenID Connect provider (docs/design/auth.md §1). Client
-- secrets, codes and refresh tokens are stored only as their SHA-256. Empty
-- text means "absent" except where NULL is needed: a NULL secret_hash marks a
-- public client, and code_hash is NULL until a code is issued (it is UNIQUE).

CREATE TABLE oauth_clients (
    id                        TEXT PRIMARY KEY,
    property_id               TEXT NOT NULL,
    secret_hash               TEXT,
    first_party               INTEGER NOT NULL DEFAULT 0,
    redirect_uris             TEXT NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
    backchannel_logout_uri    TEXT NOT NULL DEFAULT '',
    grant_types               TEXT NOT NULL DEFAULT '[]',
    claims                    TEXT NOT NULL DEFAULT '{}',
    id_token_lifetime_s       INTEGER NOT NULL DEFAULT 0,
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL
);
CREATE INDEX oauth_clients_property ON oauth_clients (property_id);

CREATE TABLE auth_requests (
    id                    TEXT PRIMARY KEY,
    client_id             TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    scopes                TEXT NOT NULL DEFAULT '[]',
    state                 TEXT NOT NULL DEFAULT '',
    nonce                 TEXT NOT NULL DEFAULT '',
    response_type         TEXT NOT NULL,
    response_mode         TEXT NOT NULL DEFAULT '',
    code_challenge        TEXT NOT NULL DEFAULT '',
    code_challenge_method TEXT NOT NULL DEFAULT '',
    prompt                TEXT NOT NULL DEFAULT '[]',
    max_age               INTEGER,
    ui_locales            TEXT NOT NULL DEFAULT '',
    login_hint            TEXT NOT NULL DEFAULT '',
    hint_subject          TEXT NOT NULL DEFAULT '',
    anonymous_id          TEXT NOT NULL DEFAULT '',
    session_id            TEXT NOT NULL DEFAULT '',
    subject               TEXT NOT NULL DEFAULT '',
    auth_time             INTEGER NOT NULL DEFAULT 0,
    amr                   TEXT NOT NULL DEFAULT '[]',
    done                  INTEGER NOT NULL DEFAULT 0,
    code_hash             TEXT UNIQUE,
    code_expires_at       INTEGER NOT NULL DEFAULT 0,
    code_used_at          INTEGER,
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL
);
CREATE INDEX auth_requests_expires ON auth_requests (expires_at);
CREATE INDEX auth_requests_subject ON auth_requests (subject) WHERE subject <> '';

CREATE TABLE access_tokens (
    id                TEXT PRIMARY KEY,
    client_id         TEXT NOT NULL,
    subject           TEXT NOT NULL,
    session_id        TEXT NOT NULL DEFAULT '',
    refresh_family_id TEXT NOT NULL DEFAULT '',
    auth_request_id   TEXT NOT NULL DEFAULT '',
    scopes            TEXT NOT NULL DEFAULT '[]',
    audience          TEXT NOT NULL DEFAULT '[]',
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    revoked_at        INTEGER
);
CREATE INDEX access_tokens_session ON access_tokens (session_id) WHERE session_id <> '';
CREATE INDEX access_tokens_family ON access_tokens (refresh_family_id) WHERE refresh_family_id <> '';
CREATE INDEX access_tokens_auth_request ON access_tokens (auth_request_id) WHERE auth_request_id <> '';
CREATE INDEX access_tokens_subject ON access_tokens (subject);
CREATE INDEX access_tokens_expires ON access_tokens (expires_at);

CREATE TABLE refresh_families (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    session_id      TEXT NOT NULL DEFAULT '',
    auth_request_id TEXT NOT NULL DEFAULT '',
    scopes          TEXT NOT NULL DEFAULT '[]',
    amr             TEXT NOT NULL DEFAULT '[]',
    auth_time       INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    idle_expires_at INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    revoked_reason  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX refresh_families_session ON refresh_families (session_id) WHERE session_id <> '';
CREATE INDEX refresh_families_auth_request ON refresh_families (auth_request_id) WHERE auth_request_id <> '';
CREATE INDEX refresh_families_subject ON refresh_families (subject);
CREATE INDEX refresh_families_expires ON refresh_families (expires_at);

-- (family_id, generation) is unique: a refresh token has one successor, ever.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL,
    generation INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    UNIQUE (family_id, generation)
) WITHOUT ROWID;

-- active_from is unique: nodes that plan the same rotation insert one key.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_jwk  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    active_from INTEGER NOT NULL UNIQUE,
    retire_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE consents (
    subject    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL DEFAULT '[]',
    granted_at INTEGER NOT NULL,
    revoked_at INTEGER,
    PRIMARY KEY (subject, client_id)
) WITHOUT ROWID;
