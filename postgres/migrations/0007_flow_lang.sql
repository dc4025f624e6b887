-- The language of a sign-in flow's emails: the one its pages were shown
-- in ('' is English); the same column as SQLite's 0007_flow_lang.sql. A
-- column rather than a field in pending, because pending means "a sign-up
-- waits" when set and is cleared as the flow moves on, while the language
-- lasts the whole flow.

ALTER TABLE auth_flows ADD COLUMN lang text NOT NULL DEFAULT '';
