-- The OAuth 2.0 / OpenID Connect provider (docs/design/auth.md §1), the same
-- tables as SQLite's 0003_oauth.sql. Lists of strings are text[] (like
-- properties.origins); the claims map and public keys are jsonb. Empty text
-- means "absent" except where NULL is needed: a NULL secret_hash marks a
-- public client, and code_hash is NULL until a code is issued (it is UNIQUE).

CREATE TABLE oauth_clients (
    id                        text COLLATE "C" PRIMARY KEY,
    property_id               text COLLATE "C" NOT NULL,
    secret_hash               text COLLATE "C",
    first_party               boolean NOT NULL DEFAULT false,
    redirect_uris             text[] NOT NULL DEFAULT '{}',
    post_logout_redirect_uris text[] NOT NULL DEFAULT '{}',
    backchannel_logout_uri    text NOT NULL DEFAULT '',
    grant_types               text[] NOT NULL DEFAULT '{}',
    claims                    jsonb NOT NULL DEFAULT '{}',
    id_token_lifetime_s       integer NOT NULL DEFAULT 0,
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL
);
CREATE INDEX oauth_clients_property ON oauth_clients (property_id);

CREATE TABLE auth_requests (
    id                    text COLLATE "C" PRIMARY KEY,
    client_id             text COLLATE "C" NOT NULL,
    redirect_uri          text NOT NULL,
    scopes                text[] NOT NULL DEFAULT '{}',
    state                 text NOT NULL DEFAULT '',
    nonce                 text NOT NULL DEFAULT '',
    response_type         text NOT NULL,
    response_mode         text NOT NULL DEFAULT '',
    code_challenge        text NOT NULL DEFAULT '',
    code_challenge_method text NOT NULL DEFAULT '',
    prompt                text[] NOT NULL DEFAULT '{}',
    max_age               bigint,
    ui_locales            text NOT NULL DEFAULT '',
    login_hint            text NOT NULL DEFAULT '',
    hint_subject          text COLLATE "C" NOT NULL DEFAULT '',
    anonymous_id          text COLLATE "C" NOT NULL DEFAULT '',
    session_id            text COLLATE "C" NOT NULL DEFAULT '',
    subject               text COLLATE "C" NOT NULL DEFAULT '',
    auth_time             timestamptz,
    amr                   text[] NOT NULL DEFAULT '{}',
    done                  boolean NOT NULL DEFAULT false,
    code_hash             text COLLATE "C" UNIQUE,
    code_expires_at       timestamptz,
    code_used_at          timestamptz,
    created_at            timestamptz NOT NULL,
    expires_at            timestamptz NOT NULL
);
CREATE INDEX auth_requests_expires ON auth_requests (expires_at);
CREATE INDEX auth_requests_subject ON auth_requests (subject) WHERE subject <> '';

CREATE TABLE access_tokens (
    id                text COLLATE "C" PRIMARY KEY,
    client_id         text COLLATE "C" NOT NULL,
    subject           text COLLATE "C" NOT NULL,
    session_id        text COLLATE "C" NOT NULL DEFAULT '',
    refresh_family_id text COLLATE "C" NOT NULL DEFAULT '',
    auth_request_id   text COLLATE "C" NOT NULL DEFAULT '',
    scopes            text[] NOT NULL DEFAULT '{}',
    audience          text[] NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    revoked_at        timestamptz
);
CREATE INDEX access_tokens_session ON access_tokens (session_id) WHERE session_id <> '';
CREATE INDEX access_tokens_family ON access_tokens (refresh_family_id) WHERE refresh_family_id <> '';
CREATE INDEX access_tokens_auth_request ON access_tokens (auth_request_id) WHERE auth_request_id <> '';
CREATE INDEX access_tokens_subject ON access_tokens (subject);
CREATE INDEX access_tokens_expires ON access_tokens (expires_at);

CREATE TABLE refresh_families (
    id              text COLLATE "C" PRIMARY KEY,
    client_id       text COLLATE "C" NOT NULL,
    subject         text COLLATE "C" NOT NULL,
    session_id      text COLLATE "C" NOT NULL DEFAULT '',
    auth_request_id text COLLATE "C" NOT NULL DEFAULT '',
    scopes          text[] NOT NULL DEFAULT '{}',
    amr             text[] NOT NULL DEFAULT '{}',
    auth_time       timestamptz,
    created_at      timestamptz NOT NULL,
    idle_expires_at timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text NOT NULL DEFAULT ''
);
CREATE INDEX refresh_families_session ON refresh_families (session_id) WHERE session_id <> '';
CREATE INDEX refresh_families_auth_request ON refresh_families (auth_request_id) WHERE auth_request_id <> '';
CREATE INDEX refresh_families_subject ON refresh_families (subject);
CREATE INDEX refresh_families_expires ON refresh_families (expires_at);

-- (family_id, generation) is unique: a refresh token has one successor, ever.
CREATE TABLE refresh_tokens (
    token_hash text COLLATE "C" PRIMARY KEY,
    family_id  text COLLATE "C" NOT NULL,
    generation integer NOT NULL,
    created_at timestamptz NOT NULL,
    used_at    timestamptz,
    UNIQUE (family_id, generation)
);

-- active_from is unique: nodes that plan the same rotation insert one key.
CREATE TABLE signing_keys (
    kid         text COLLATE "C" PRIMARY KEY,
    alg         text NOT NULL,
    private_key bytea NOT NULL,
    public_jwk  jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    active_from timestamptz NOT NULL UNIQUE,
    retire_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

CREATE TABLE consents (
    subject    text COLLATE "C" NOT NULL,
    client_id  text COLLATE "C" NOT NULL,
    scopes     text[] NOT NULL DEFAULT '{}',
    granted_at timestamptz NOT NULL,
    revoked_at timestamptz,
    PRIMARY KEY (subject, client_id)
);
