-- has_account on the persons row, kept by triggers: see the SQLite
-- migration of the same name for why, and why storing a person needs none. True when a person whose root is
-- this one holds an account, the same as
-- EXISTS (persons m JOIN accounts ON person_id = m.id WHERE m.root_id = id).
ALTER TABLE persons ADD COLUMN has_account boolean NOT NULL DEFAULT false;
UPDATE persons SET has_account = true WHERE id IN (SELECT m.root_id FROM persons m JOIN accounts a ON a.person_id = m.id);

-- persons_recount_account sets the flag of the given roots from their
-- trees. AFTER row triggers run at the end of their statement, so a merge
-- or unmerge that re-roots many persons in one statement recounts once
-- the statement's rows are all in place.
CREATE FUNCTION persons_recount_account(roots text[]) RETURNS void LANGUAGE sql AS $$
    UPDATE persons SET has_account = x.has
    FROM (SELECT r.id, EXISTS (SELECT 1 FROM persons m JOIN accounts a ON a.person_id = m.id WHERE m.root_id = r.id) AS has
          FROM unnest(roots) AS r(id)) x
    WHERE persons.id = x.id AND persons.has_account IS DISTINCT FROM x.has
$$;
CREATE FUNCTION accounts_has_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE persons SET has_account = true
        WHERE id = (SELECT root_id FROM persons WHERE id = NEW.person_id) AND NOT has_account;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM persons_recount_account(ARRAY(SELECT root_id FROM persons WHERE id = OLD.person_id));
    ELSE
        PERFORM persons_recount_account(ARRAY(SELECT root_id FROM persons WHERE id IN (OLD.person_id, NEW.person_id)));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER accounts_has_account_insert AFTER INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_has_account();
CREATE TRIGGER accounts_has_account_delete AFTER DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_has_account();
CREATE TRIGGER accounts_has_account_update AFTER UPDATE OF person_id ON accounts
    FOR EACH ROW WHEN (OLD.person_id IS DISTINCT FROM NEW.person_id) EXECUTE FUNCTION accounts_has_account();

CREATE FUNCTION persons_has_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        PERFORM persons_recount_account(ARRAY[OLD.root_id, NEW.root_id]);
    ELSE
        PERFORM persons_recount_account(ARRAY[OLD.root_id]);
    END IF;
    RETURN NULL;
END
$$;
-- Ingest's last-seen updates leave root_id alone and skip the function.
CREATE TRIGGER persons_has_account_root AFTER UPDATE OF root_id ON persons
    FOR EACH ROW WHEN (OLD.root_id IS DISTINCT FROM NEW.root_id) EXECUTE FUNCTION persons_has_account();
CREATE TRIGGER persons_has_account_delete AFTER DELETE ON persons
    FOR EACH ROW EXECUTE FUNCTION persons_has_account();

-- has_account=true walks these: they hold only the flagged roots, so a
-- page is read straight off whether accounts are few or many.
CREATE INDEX persons_account_last_seen ON persons (last_seen_at, id) WHERE root_id = id AND has_account;
CREATE INDEX persons_account_created ON persons (created_at, id) WHERE root_id = id AND has_account;
