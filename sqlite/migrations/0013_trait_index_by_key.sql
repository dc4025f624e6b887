-- The trait filter's index without its per-person index: a person's rows
-- are found from their traits, through the primary key (key, value,
-- person_id). An update writes only the rows that changed, where it used
-- to delete and insert all of them. (Both save little on ingest, 1-5 %:
-- what costs is the first traits of each new person, a random page of the
-- primary key per trait.)
DROP TRIGGER persons_traits_update;
DROP TRIGGER persons_traits_delete;
DROP INDEX person_traits_person;
CREATE TRIGGER persons_traits_update AFTER UPDATE OF traits ON persons WHEN old.traits IS NOT new.traits BEGIN
    -- The old traits that the new ones do not repeat. (Written with NOT
    -- EXISTS: an EXCEPT here made SQLite scan the whole table.)
    DELETE FROM person_traits WHERE person_id = old.id AND (key, value) IN (
        SELECT o.key, CASE o.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(o.value AS TEXT) END FROM json_each(old.traits) o
        WHERE NOT EXISTS (SELECT 1 FROM json_each(new.traits) n WHERE n.key = o.key AND n.type <> 'null'
            AND CASE n.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(n.value AS TEXT) END = CASE o.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(o.value AS TEXT) END));
    INSERT OR IGNORE INTO person_traits (key, value, person_id)
    SELECT j.key, CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.value AS TEXT) END, new.id FROM json_each(new.traits) j
    WHERE j.type <> 'null' AND length(CAST(j.key AS BLOB)) <= 200 AND length(CAST(CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.value AS TEXT) END AS BLOB)) <= 200;
END;
CREATE TRIGGER persons_traits_delete AFTER DELETE ON persons BEGIN
    DELETE FROM person_traits WHERE person_id = old.id AND (key, value) IN (
        SELECT j.key, CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.value AS TEXT) END FROM json_each(old.traits) j);
END;
