-- has_account on the persons row (docs/design/console.md): 1 when a
-- person whose root is this one holds an account, the same as
-- EXISTS (persons m JOIN accounts ON person_id = m.id WHERE m.root_id = id),
-- which the people search used to ask for every person it passed: four
-- index probes a row, and has_account=true walked the whole list to find
-- the 3% with one. A non-root has no persons rooted at it, so its flag is
-- 0; only roots are listed.
--
-- Triggers keep it, so every path that creates or erases accounts, merges,
-- unmerges or deletes persons keeps it without knowing: an account added
-- sets its root's flag; an account removed, a person re-rooted or deleted
-- recounts the roots involved. Ingest pays nothing: its last-seen updates
-- leave root_id alone (the WHEN clause), and storing a person needs no
-- trigger, since an account is made for a stored person
-- (auth.AccountStore.CreateAccount): a new person holds none. (Checking
-- each new person's tree anyway cost Postgres 10% of the bench's seed
-- rate.)
ALTER TABLE persons ADD COLUMN has_account INTEGER NOT NULL DEFAULT 0;
UPDATE persons SET has_account = 1 WHERE id IN (SELECT m.root_id FROM persons m JOIN accounts a ON a.person_id = m.id);

CREATE TRIGGER accounts_has_account_insert AFTER INSERT ON accounts BEGIN
    UPDATE persons SET has_account = 1 WHERE id = (SELECT root_id FROM persons WHERE id = new.person_id) AND has_account = 0;
END;
CREATE TRIGGER accounts_has_account_delete AFTER DELETE ON accounts BEGIN
    UPDATE persons SET has_account = EXISTS (SELECT 1 FROM persons m JOIN accounts a ON a.person_id = m.id WHERE m.root_id = persons.id)
    WHERE id = (SELECT root_id FROM persons WHERE id = old.person_id);
END;
CREATE TRIGGER accounts_has_account_update AFTER UPDATE OF person_id ON accounts WHEN old.person_id IS NOT new.person_id BEGIN
    UPDATE persons SET has_account = EXISTS (SELECT 1 FROM persons m JOIN accounts a ON a.person_id = m.id WHERE m.root_id = persons.id)
    WHERE id IN (SELECT root_id FROM persons WHERE id IN (old.person_id, new.person_id));
END;
CREATE TRIGGER persons_has_account_root AFTER UPDATE OF root_id ON persons WHEN old.root_id IS NOT new.root_id BEGIN
    UPDATE persons SET has_account = EXISTS (SELECT 1 FROM persons m JOIN accounts a ON a.person_id = m.id WHERE m.root_id = persons.id)
    WHERE id IN (old.root_id, new.root_id);
END;
CREATE TRIGGER persons_has_account_delete AFTER DELETE ON persons BEGIN
    UPDATE persons SET has_account = EXISTS (SELECT 1 FROM persons m JOIN accounts a ON a.person_id = m.id WHERE m.root_id = persons.id)
    WHERE id = old.root_id;
END;

-- has_account=true walks these: they hold only the flagged roots, so a
-- page is read straight off whether accounts are few or many.
CREATE INDEX persons_account_last_seen ON persons (last_seen_at, id) WHERE has_account = 1;
CREATE INDEX persons_account_created ON persons (created_at, id) WHERE has_account = 1;
