-- People search for the staff console (docs/design/console.md).
--
-- search_name is identity.SearchName of the traits (the lower-case name,
-- or first and last name), written by CreatePersons and UpdatePersons
-- whenever they write traits, so that a name search is an index range.
-- NULL when the traits name nobody. The backfill below does in SQL what
-- SearchName does in Go, except that lower() folds ASCII letters only:
-- a stored name with other capitals is found in its own case until its
-- traits are next written.
ALTER TABLE persons ADD COLUMN search_name TEXT;
UPDATE persons SET search_name = NULLIF(lower(substr(trim(CASE
        WHEN json_type(traits, '$.name') = 'text' AND trim(json_extract(traits, '$.name')) <> '' THEN json_extract(traits, '$.name')
        ELSE COALESCE(NULLIF(trim(CASE WHEN json_type(traits, '$.first_name') = 'text' THEN json_extract(traits, '$.first_name') END), ''),
                      NULLIF(trim(CASE WHEN json_type(traits, '$.firstName') = 'text' THEN json_extract(traits, '$.firstName') END), ''), '')
             || ' ' ||
             COALESCE(NULLIF(trim(CASE WHEN json_type(traits, '$.last_name') = 'text' THEN json_extract(traits, '$.last_name') END), ''),
                      NULLIF(trim(CASE WHEN json_type(traits, '$.lastName') = 'text' THEN json_extract(traits, '$.lastName') END), ''), '')
    END), 1, 200)), '');
CREATE INDEX persons_search_name ON persons (search_name) WHERE search_name IS NOT NULL;

-- The filters that look at a person's whole tree (has_account, property)
-- find its members here without reading their rows.
DROP INDEX persons_root;
CREATE INDEX persons_root ON persons (root_id, id);

-- sort=first_seen pages through this one as sort=last_seen does through
-- persons_last_seen.
CREATE INDEX persons_created ON persons (created_at, id);

-- Which persons have events from which property: one row per pair,
-- written by InsertEvents, so the property filter is one probe per person
-- however many events the person has. Rows stay with the person the
-- events were attributed to, as events do, so an unmerge needs nothing.
CREATE TABLE person_properties (
    person_id   TEXT NOT NULL,
    property_id TEXT NOT NULL,
    PRIMARY KEY (person_id, property_id)
) WITHOUT ROWID;
INSERT INTO person_properties (person_id, property_id) SELECT DISTINCT person_id, property_id FROM events;

-- Sign-ups per day on the console's home page.
CREATE INDEX accounts_created ON accounts (created_at);

-- The trait filter's index: one row per top-level trait of each person,
-- its value as text the way the filter compares it (true/false, numbers
-- as SQLite prints them, strings as they are, objects and arrays as JSON).
-- Triggers keep it: the update one fires only when the traits text
-- changed, so the last-seen writes of ingest cost nothing here. Keys and
-- values past 200 bytes are left out; the filter reads the traits
-- themselves for those.
CREATE TABLE person_traits (
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    person_id TEXT NOT NULL,
    PRIMARY KEY (key, value, person_id)
) WITHOUT ROWID;
CREATE INDEX person_traits_person ON person_traits (person_id);
CREATE TRIGGER persons_traits_insert AFTER INSERT ON persons WHEN new.traits <> '{}' BEGIN
    INSERT OR IGNORE INTO person_traits (key, value, person_id)
    SELECT j.key, CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.value AS TEXT) END, new.id FROM json_each(new.traits) j
    WHERE j.type <> 'null' AND length(CAST(j.key AS BLOB)) <= 200 AND length(CAST(CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.value AS TEXT) END AS BLOB)) <= 200;
END;
CREATE TRIGGER persons_traits_update AFTER UPDATE OF traits ON persons WHEN old.traits IS NOT new.traits BEGIN
    DELETE FROM person_traits WHERE person_id = old.id;
    INSERT OR IGNORE INTO person_traits (key, value, person_id)
    SELECT j.key, CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.value AS TEXT) END, new.id FROM json_each(new.traits) j
    WHERE j.type <> 'null' AND length(CAST(j.key AS BLOB)) <= 200 AND length(CAST(CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.value AS TEXT) END AS BLOB)) <= 200;
END;
CREATE TRIGGER persons_traits_delete AFTER DELETE ON persons BEGIN
    DELETE FROM person_traits WHERE person_id = old.id;
END;
INSERT OR IGNORE INTO person_traits (key, value, person_id)
SELECT j.key, CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.value AS TEXT) END, p.id FROM persons p, json_each(p.traits) j
WHERE j.type <> 'null' AND length(CAST(j.key AS BLOB)) <= 200 AND length(CAST(CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.value AS TEXT) END AS BLOB)) <= 200;
