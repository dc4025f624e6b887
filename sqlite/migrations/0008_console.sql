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
