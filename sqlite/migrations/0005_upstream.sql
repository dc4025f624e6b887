-- Links from accounts to upstream identity providers (docs/design/auth.md
-- §1): an upstream user, named by the provider's stable subject (never its
-- email), signs in as person_id. Times are INTEGER microseconds as in 0002;
-- last_used_at is NULL until the link is first used to sign in.

CREATE TABLE upstream_links (
    provider     TEXT NOT NULL,
    upstream_sub TEXT NOT NULL,
    person_id    TEXT NOT NULL,
    email        TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    PRIMARY KEY (provider, upstream_sub)
) WITHOUT ROWID;
CREATE INDEX upstream_links_person ON upstream_links (person_id);
