-- People search for the staff console (docs/design/console.md).
--
-- search_name is identity.SearchName of the traits (the lower-case name,
-- or first and last name), written by CreatePersons and UpdatePersons
-- whenever they write traits, so that a name search is an index range
-- (the "C" collation makes a prefix an exact byte range, as in SQLite).
-- NULL when the traits name nobody. The backfill below does in SQL what
-- SearchName does in Go (lower() here follows the database's locale).
ALTER TABLE persons ADD COLUMN search_name text COLLATE "C";
UPDATE persons SET search_name = NULLIF(lower(left(btrim(CASE
        WHEN jsonb_typeof(traits -> 'name') = 'string' AND btrim(traits ->> 'name') <> '' THEN traits ->> 'name'
        ELSE COALESCE(NULLIF(btrim(CASE WHEN jsonb_typeof(traits -> 'first_name') = 'string' THEN traits ->> 'first_name' END), ''),
                      NULLIF(btrim(CASE WHEN jsonb_typeof(traits -> 'firstName') = 'string' THEN traits ->> 'firstName' END), ''), '')
             || ' ' ||
             COALESCE(NULLIF(btrim(CASE WHEN jsonb_typeof(traits -> 'last_name') = 'string' THEN traits ->> 'last_name' END), ''),
                      NULLIF(btrim(CASE WHEN jsonb_typeof(traits -> 'lastName') = 'string' THEN traits ->> 'lastName' END), ''), '')
    END), 200)), '');
CREATE INDEX persons_search_name ON persons (search_name) WHERE search_name IS NOT NULL;

-- The filters that look at a person's whole tree (has_account, property)
-- find its members here without reading their rows.
DROP INDEX persons_root;
CREATE INDEX persons_root ON persons (root_id, id);

-- The people list walks these, newest or oldest first. Only root persons
-- are listed, and the partial indexes are also what tells the planner how
-- many roots there are: it cannot estimate root_id = id from column
-- statistics and guesses a few hundred, which leads it to bad plans.
DROP INDEX persons_last_seen;
CREATE INDEX persons_last_seen ON persons (last_seen_at, id) WHERE root_id = id;
CREATE INDEX persons_created ON persons (created_at, id) WHERE root_id = id;

-- Which persons have events from which property, written by InsertEvents,
-- so the property filter is one probe per person however many events the
-- person has. Rows stay with the person the events were attributed to, as
-- events do, so an unmerge needs nothing. No unique key: ingest runs in
-- REPEATABLE READ, where ON CONFLICT against a pair another node just
-- committed is a serialization failure; InsertEvents skips the pairs its
-- snapshot sees, and the rare twin of a race is harmless to EXISTS.
CREATE TABLE person_properties (
    person_id   text COLLATE "C" NOT NULL,
    property_id text COLLATE "C" NOT NULL
);
CREATE INDEX person_properties_pair ON person_properties (person_id, property_id);
INSERT INTO person_properties (person_id, property_id) SELECT DISTINCT person_id, property_id FROM events;

-- Sign-ups per day on the console's home page.
CREATE INDEX accounts_created ON accounts (created_at);

-- The trait filter's index: one row per top-level trait of each person,
-- its value as text the way ->> gives it. Triggers keep it: the update
-- one fires only when the traits changed, so the last-seen writes of
-- ingest cost nothing here. Keys and values past 200 bytes are left out
-- (a B-tree entry has a size limit); the filter reads the traits
-- themselves for those.
CREATE TABLE person_traits (
    key       text COLLATE "C" NOT NULL,
    value     text COLLATE "C" NOT NULL,
    person_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (key, value, person_id)
);
CREATE INDEX person_traits_person ON person_traits (person_id);
CREATE FUNCTION persons_index_traits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM person_traits WHERE person_id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO person_traits (key, value, person_id)
        SELECT t.key, t.value, NEW.id FROM jsonb_each_text(NEW.traits) t
        WHERE t.value IS NOT NULL AND octet_length(t.key) <= 200 AND octet_length(t.value) <= 200
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER persons_traits_insert AFTER INSERT ON persons
    FOR EACH ROW WHEN (NEW.traits <> '{}'::jsonb) EXECUTE FUNCTION persons_index_traits();
CREATE TRIGGER persons_traits_update AFTER UPDATE OF traits ON persons
    FOR EACH ROW WHEN (OLD.traits IS DISTINCT FROM NEW.traits) EXECUTE FUNCTION persons_index_traits();
CREATE TRIGGER persons_traits_delete AFTER DELETE ON persons
    FOR EACH ROW EXECUTE FUNCTION persons_index_traits();
INSERT INTO person_traits (key, value, person_id)
SELECT t.key, t.value, p.id FROM persons p, jsonb_each_text(p.traits) t
WHERE t.value IS NOT NULL AND octet_length(t.key) <= 200 AND octet_length(t.value) <= 200
ON CONFLICT DO NOTHING;
