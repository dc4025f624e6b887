package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Young tables need statistics sooner than autovacuum gives them. pgx runs
// every statement prepared, and PostgreSQL settles on a generic plan for a
// prepared statement after five runs if it looks no dearer. A plan made
// while a table is empty and never analysed keeps scanning it as it grows:
// ingest's lookups by id list then filtered every event of the property and
// every person (50–120 ms per group at 20,000 events; a fresh database
// ingested 2,000 events/s where an analysed one took 25,000). Autovacuum
// analyses a table after 10 % of it changed, but looks only once a minute
// (autovacuum_naptime), an age for a table that grows by 25,000 rows a
// second. ANALYZE invalidates the cached plans, and the next ones use the
// statistics. Planning every statement afresh instead was slower: without
// statistics the planner chose scans for long id lists too.

// analyzedTables are the tables ingest looks rows up in by id lists.
var analyzedTables = []string{"events", "persons", "identifiers"}

// youngTableRows is the size below which a table counts as young: past it
// autovacuum's 10 % rule is timely enough.
const youngTableRows = 5_000_000

// analyzeYoung analyses the tables ingest reads by id list that are young
// (under youngTableRows) and changed by more than half their analysed size
// (at least 1,000 rows); RunUpkeep runs it every analyzeEvery.
func (db *DB) analyzeYoung(ctx context.Context) error {
	rows, err := db.w.Query(ctx, `SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
		WHERE s.schemaname = current_schema() AND s.relname = ANY($1)
			AND greatest(c.reltuples, 0) < $2 AND s.n_mod_since_analyze > greatest(1000, greatest(c.reltuples, 0) / 2)`,
		analyzedTables, youngTableRows)
	if err != nil {
		return fmt.Errorf("postgres: young tables: %w", err)
	}
	due, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("postgres: young tables: %w", err)
	}
	for _, table := range due {
		if _, err := db.w.Exec(ctx, "ANALYZE "+pgx.Identifier{table}.Sanitize()); err != nil {
			return fmt.Errorf("postgres: analyze %s: %w", table, err)
		}
	}
	return nil
}
