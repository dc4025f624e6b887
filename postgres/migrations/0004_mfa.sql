-- Passkeys, TOTP secrets and recovery codes (docs/design/auth.md §1), with
-- the same columns as SQLite's 0004. Optional times are NULL when absent;
-- ids, hashes and keys use the "C" collation (byte order, as SQLite
-- compares). A passkey's id is its base64url credential id (globally
-- unique), so one credential can never sit on two accounts.

CREATE TABLE passkeys (
    id                 text COLLATE "C" PRIMARY KEY,
    person_id          text COLLATE "C" NOT NULL,
    public_key         bytea NOT NULL,
    attestation_type   text NOT NULL DEFAULT '',
    attestation_format text NOT NULL DEFAULT '',
    transports         jsonb NOT NULL DEFAULT '[]',
    flags              integer NOT NULL,
    aaguid             bytea,
    sign_count         bigint NOT NULL DEFAULT 0,
    clone_warning      boolean NOT NULL DEFAULT false,
    name               text NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL,
    last_used_at       timestamptz
);
CREATE INDEX passkeys_person ON passkeys (person_id, created_at);

-- One secret per person: a new enrolment replaces an unconfirmed one.
-- last_step only grows (compare-and-set), which is what burns a code.
CREATE TABLE totp (
    person_id    text COLLATE "C" PRIMARY KEY,
    secret_enc   bytea NOT NULL,
    confirmed_at timestamptz,
    last_step    bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL
);
-- PruneAuth drops enrolments never confirmed.
CREATE INDEX totp_unconfirmed ON totp (created_at) WHERE confirmed_at IS NULL;

CREATE TABLE recovery_codes (
    person_id  text COLLATE "C" NOT NULL,
    code_hash  text COLLATE "C" NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (person_id, code_hash)
);
