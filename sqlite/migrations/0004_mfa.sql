-- Passkeys, TOTP secrets and recovery codes (docs/design/auth.md §1).
-- Times are INTEGER microseconds as in 0001 and 0002; optional ones are NULL
-- when absent. A passkey's id is its base64url credential id (globally
-- unique: an authenticator makes a fresh random one per registration), so
-- one credential can never sit on two accounts.

CREATE TABLE passkeys (
    id                 TEXT PRIMARY KEY,
    person_id          TEXT NOT NULL,
    public_key         BLOB NOT NULL,
    attestation_type   TEXT NOT NULL DEFAULT '',
    attestation_format TEXT NOT NULL DEFAULT '',
    transports         TEXT NOT NULL DEFAULT '[]',
    flags              INTEGER NOT NULL,
    aaguid             BLOB,
    sign_count         INTEGER NOT NULL DEFAULT 0,
    clone_warning      INTEGER NOT NULL DEFAULT 0,
    name               TEXT NOT NULL DEFAULT '',
    created_at         INTEGER NOT NULL,
    last_used_at       INTEGER
);
CREATE INDEX passkeys_person ON passkeys (person_id, created_at);

-- One secret per person: a new enrolment replaces an unconfirmed one.
-- last_step only grows (compare-and-set), which is what burns a code.
CREATE TABLE totp (
    person_id    TEXT PRIMARY KEY,
    secret_enc   BLOB NOT NULL,
    confirmed_at INTEGER,
    last_step    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);
-- PruneAuth drops enrolments never confirmed.
CREATE INDEX totp_unconfirmed ON totp (created_at) WHERE confirmed_at IS NULL;

CREATE TABLE recovery_codes (
    person_id  TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    used_at    INTEGER,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (person_id, code_hash)
) WITHOUT ROWID;
