-- Times are timestamptz (microseconds, like SQLite's integers) so that psql
-- and later analytics read them as dates. A column that is NOT NULL in the
-- SQLite schema is NOT NULL here too (storing Go's zero time there is a
-- caller bug and fails loudly); the optional ones hold NULL for "absent".
-- Identifier-like text columns use the "C" collation: byte order is what
-- SQLite does, it makes prefix ranges exact, and it compares fastest. No
-- foreign keys: DeletePersons deletes explicitly, and ingest does not pay for
-- a lookup per row.

CREATE TABLE properties (
    id              text COLLATE "C" PRIMARY KEY,
    name            text COLLATE "C" NOT NULL UNIQUE,
    origins         text[] NOT NULL DEFAULT '{}',
    write_key       text COLLATE "C" NOT NULL UNIQUE,
    secret_key_hash text COLLATE "C" NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE TABLE api_tokens (
    id           text COLLATE "C" PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL,
    hash         text COLLATE "C" NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

CREATE TABLE persons (
    id           text COLLATE "C" PRIMARY KEY,
    root_id      text COLLATE "C" NOT NULL,
    merged_into  text COLLATE "C",
    user_id      text COLLATE "C",
    traits       jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);
CREATE INDEX persons_root ON persons (root_id);
CREATE INDEX persons_last_seen ON persons (last_seen_at, id);

CREATE TABLE identifiers (
    type          text COLLATE "C" NOT NULL,
    value         text COLLATE "C" NOT NULL,
    person_id     text COLLATE "C" NOT NULL,
    verified      boolean NOT NULL DEFAULT false,
    first_seen_at timestamptz NOT NULL,
    PRIMARY KEY (type, value)
);
CREATE INDEX identifiers_person ON identifiers (person_id);
CREATE INDEX identifiers_value ON identifiers (value);

CREATE TABLE merges (
    id           text COLLATE "C" PRIMARY KEY,
    from_id      text COLLATE "C" NOT NULL,
    into_id      text COLLATE "C" NOT NULL,
    reason       text NOT NULL,
    message_id   text,
    actor        text,
    traits_added text[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL,
    undone_at    timestamptz,
    undone_by    text
);
CREATE INDEX merges_from ON merges (from_id);
CREATE INDEX merges_into ON merges (into_id);

-- person_ids is an array so DeletePersons finds a person's conflicts with
-- the GIN index and &&.
CREATE TABLE conflicts (
    id         text COLLATE "C" PRIMARY KEY,
    person_ids text[] COLLATE "C" NOT NULL,
    keys       jsonb NOT NULL,
    reason     text NOT NULL,
    message_id text,
    created_at timestamptz NOT NULL
);
CREATE INDEX conflicts_created ON conflicts (created_at, id);
CREATE INDEX conflicts_persons ON conflicts USING gin (person_ids);

CREATE TABLE suppressions (
    type       text COLLATE "C" NOT NULL,
    value      text COLLATE "C" NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (type, value)
);

-- seq is filled by InsertEvents from events_seq under a lock, in commit
-- order (see events.go), never by a column default.
CREATE SEQUENCE events_seq AS bigint;
CREATE TABLE events (
    seq          bigint PRIMARY KEY,
    property_id  text COLLATE "C" NOT NULL,
    message_id   text COLLATE "C" NOT NULL,
    person_id    text COLLATE "C" NOT NULL,
    type         text COLLATE "C" NOT NULL,
    name         text NOT NULL DEFAULT '',
    user_id      text NOT NULL DEFAULT '',
    anonymous_id text NOT NULL DEFAULT '',
    group_id     text NOT NULL DEFAULT '',
    previous_id  text NOT NULL DEFAULT '',
    ts           timestamptz NOT NULL,
    original_ts  timestamptz,
    sent_at      timestamptz,
    received_at  timestamptz NOT NULL,
    properties   json,
    traits       json,
    context      json,
    ip           text NOT NULL DEFAULT ''
);
ALTER SEQUENCE events_seq OWNED BY events.seq;
CREATE UNIQUE INDEX events_message ON events (property_id, message_id);
CREATE INDEX events_person_ts ON events (person_id, ts, seq);

CREATE TABLE rejections (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    property_id text COLLATE "C" NOT NULL,
    received_at timestamptz NOT NULL,
    idx         integer NOT NULL,
    message_id  text NOT NULL DEFAULT '',
    type        text NOT NULL DEFAULT '',
    code        text NOT NULL,
    reason      text NOT NULL,
    payload     bytea
);
CREATE INDEX rejections_property ON rejections (property_id, id);

CREATE TABLE cursors (
    name text COLLATE "C" PRIMARY KEY,
    seq  bigint NOT NULL
);
