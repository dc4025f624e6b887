-- Ingest keeps recently resolved persons in memory (identity.PersonCache)
-- and may trust them only while nobody else changed persons or
-- identifiers. Every statement that changes either counts here, per
-- writer: a node's ingest transactions under the name they set in
-- onramp.writer (Queries.ChangedElsewhere), every other transaction under
-- its connection's backend pid. One row per writer, so that concurrent
-- writers never wait on each other for it; the counts only ever grow.
CREATE TABLE identity_writes (
    writer text PRIMARY KEY,
    n      bigint NOT NULL
);

CREATE FUNCTION identity_writes_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO identity_writes (writer, n)
    VALUES (coalesce(nullif(current_setting('onramp.writer', true), ''), 'pid:' || pg_backend_pid()), 1)
    ON CONFLICT (writer) DO UPDATE SET n = identity_writes.n + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER persons_writes AFTER INSERT OR UPDATE OR DELETE ON persons
    FOR EACH STATEMENT EXECUTE FUNCTION identity_writes_count();
CREATE TRIGGER identifiers_writes AFTER INSERT OR UPDATE OR DELETE ON identifiers
    FOR EACH STATEMENT EXECUTE FUNCTION identity_writes_count();
