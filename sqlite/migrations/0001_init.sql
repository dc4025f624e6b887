-- Times are INTEGER microseconds since the Unix epoch (UTC): compact, fast to
-- compare, and exact on round trips. No foreign keys: deletes are explicit in
-- DeletePersons, and ingest does not pay for a lookup per row.

CREATE TABLE properties (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    origins         TEXT NOT NULL DEFAULT '[]',
    write_key       TEXT NOT NULL UNIQUE,
    secret_key_hash TEXT NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER
);

CREATE TABLE persons (
    id           TEXT PRIMARY KEY,
    root_id      TEXT NOT NULL,
    merged_into  TEXT,
    user_id      TEXT,
    traits       TEXT NOT NULL DEFAULT '{}',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX persons_root ON persons (root_id);
CREATE INDEX persons_last_seen ON persons (last_seen_at, id);

CREATE TABLE identifiers (
    type          TEXT NOT NULL,
    value         TEXT NOT NULL,
    person_id     TEXT NOT NULL,
    verified      INTEGER NOT NULL DEFAULT 0,
    first_seen_at INTEGER NOT NULL,
    PRIMARY KEY (type, value)
) WITHOUT ROWID;
CREATE INDEX identifiers_person ON identifiers (person_id);
CREATE INDEX identifiers_value ON identifiers (value);

CREATE TABLE merges (
    id           TEXT PRIMARY KEY,
    from_id      TEXT NOT NULL,
    into_id      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    message_id   TEXT,
    actor        TEXT,
    traits_added TEXT NOT NULL DEFAULT '[]',
    created_at   INTEGER NOT NULL,
    undone_at    INTEGER,
    undone_by    TEXT
);
CREATE INDEX merges_from ON merges (from_id);
CREATE INDEX merges_into ON merges (into_id);

CREATE TABLE conflicts (
    id         TEXT PRIMARY KEY,
    person_ids TEXT NOT NULL,
    keys       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    message_id TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX conflicts_created ON conflicts (created_at);

CREATE TABLE suppressions (
    type       TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (type, value)
) WITHOUT ROWID;

CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    property_id  TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    person_id    TEXT NOT NULL,
    type         TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    user_id      TEXT NOT NULL DEFAULT '',
    anonymous_id TEXT NOT NULL DEFAULT '',
    group_id     TEXT NOT NULL DEFAULT '',
    previous_id  TEXT NOT NULL DEFAULT '',
    ts           INTEGER NOT NULL,
    original_ts  INTEGER NOT NULL DEFAULT 0,
    sent_at      INTEGER NOT NULL DEFAULT 0,
    received_at  INTEGER NOT NULL,
    properties   TEXT,
    traits       TEXT,
    context      TEXT,
    ip           TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX events_message ON events (property_id, message_id);
CREATE INDEX events_person_ts ON events (person_id, ts, seq);

CREATE TABLE rejections (
    id          INTEGER PRIMARY KEY,
    property_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    message_id  TEXT NOT NULL DEFAULT '',
    type        TEXT NOT NULL DEFAULT '',
    code        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    payload     BLOB
);
CREATE INDEX rejections_property ON rejections (property_id, id);

CREATE TABLE cursors (
    name TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL
);
