-- The trigger functions name Onramp's tables without a schema. Pin each to
-- the search_path the migration ran with (the schema Onramp's tables are
-- in), so that a write to persons or accounts from a session with another
-- search_path (an operator in psql) finds them.
ALTER FUNCTION persons_index_traits() SET search_path FROM CURRENT;
ALTER FUNCTION persons_recount_account(text[]) SET search_path FROM CURRENT;
ALTER FUNCTION accounts_has_account() SET search_path FROM CURRENT;
ALTER FUNCTION persons_has_account() SET search_path FROM CURRENT;
ALTER FUNCTION identity_writes_count() SET search_path FROM CURRENT;
