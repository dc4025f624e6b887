-- Links from accounts to upstream identity providers, the same table as
-- SQLite's 0005_upstream.sql: an upstream user, named by the provider's
-- stable subject (never its email), signs in as person_id.

CREATE TABLE upstream_links (
    provider     text COLLATE "C" NOT NULL,
    upstream_sub text COLLATE "C" NOT NULL,
    person_id    text COLLATE "C" NOT NULL,
    email        text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    PRIMARY KEY (provider, upstream_sub)
);
CREATE INDEX upstream_links_person ON upstream_links (person_id);
