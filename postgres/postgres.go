// Package postgres implements every part's Store on PostgreSQL (jackc/pgx v5,
// no ORM), for several Onramp nodes sharing one database. Writes run in
// REPEATABLE READ transactions: a race between nodes then fails with an
// error IsRetryable recognises, instead of silently losing an update.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/internal/migrate"
	"github.com/onramp-dev/onramp/internal/seen"
	"github.com/onramp-dev/onramp/property"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Advisory lock keys. Arbitrary constants, chosen so other applications
// sharing the database are unlikely to pick them.
const (
	lockMigrate   int64 = 0x6f6e72616d700001 // "onramp" + 1
	lockEventsSeq int64 = 0x6f6e72616d700002
)

// DB is an open Onramp database on PostgreSQL.
type DB struct {
	w *pgxpool.Pool
	// r refuses writes (default_transaction_read_only), like SQLite's
	// readers, so a write that should be in a transaction cannot hide in a
	// read path; it is also where a replica can be plugged in later.
	r *pgxpool.Pool
	// pairs remembers person_properties rows known to exist (see
	// notePersonProperties): added to after commits, cleared by
	// DeletePersons.
	pairs *seen.Set
	// writer names this node's ingest transactions in identity_writes (see
	// ChangedElsewhere); othersWrites is the count of everyone else's
	// identity writes at the last look, sawOthers whether there was one.
	writer       string
	identityMu   sync.Mutex
	othersWrites int64
	sawOthers    bool
}

// Options tune Open. Zero values use pgxpool's defaults.
type Options struct {
	// MaxConns bounds the write pool.
	MaxConns int32
	// ReadConns bounds the read pool.
	ReadConns int32
}

// Open connects to url (postgres://…). The tables live in the first schema
// of the search_path, which the URL may set (…?search_path=onramp);
// Migrate creates that schema if it does not exist yet.
func Open(ctx context.Context, url string, opt Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if opt.MaxConns > 0 {
		cfg.MaxConns = opt.MaxConns
	}
	w, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := w.Ping(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("postgres: connect %s@%s:%d/%s: %w", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	rcfg := cfg.Copy()
	rcfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	if opt.ReadConns > 0 {
		rcfg.MaxConns = opt.ReadConns
	}
	r, err := pgxpool.NewWithConfig(ctx, rcfg)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("postgres: open readers: %w", err)
	}
	return &DB{w: w, r: r, pairs: events.NewKnownPersonProperties(), writer: onramp.NewID("wrt")}, nil
}

// Close closes both pools.
func (db *DB) Close() error {
	db.r.Close()
	db.w.Close()
	return nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.r.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Migrate applies pending migrations in one transaction and returns the
// versions it applied. An advisory lock makes nodes that start together
// take turns: the second one finds everything applied.
func (db *DB) Migrate(ctx context.Context) ([]int, error) {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	ms, err := migrate.Load(sub)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	var applied []int
	err = pgx.BeginFunc(ctx, db.w, func(tx pgx.Tx) error {
		applied = applied[:0]
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockMigrate); err != nil {
			return err
		}
		if err := ensureSchema(ctx, tx); err != nil {
			return err
		}
		// Created under the lock: two concurrent CREATE TABLE IF NOT
		// EXISTS can both miss the table and one then fails.
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		done, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return err
		}
		have := map[int]bool{}
		for _, v := range done {
			have[int(v)] = true
		}
		for _, m := range ms {
			if have[m.Version] {
				continue
			}
			// No arguments: pgx sends it with the simple protocol, which
			// runs a file of several statements.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return err
			}
			applied = append(applied, m.Version)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	return applied, nil
}

// ensureSchema creates the first schema of the search_path when none of its
// schemas exists, so a URL with search_path=onramp works on a bare database.
func ensureSchema(ctx context.Context, tx pgx.Tx) error {
	var cur pgtype.Text
	if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&cur); err != nil {
		return err
	}
	if cur.Valid {
		return nil
	}
	var path, user string
	if err := tx.QueryRow(ctx, `SELECT current_setting('search_path'), current_user`).Scan(&path, &user); err != nil {
		return err
	}
	first, _, _ := strings.Cut(path, ",")
	first = strings.TrimSpace(first)
	if first == `"$user"` || first == "$user" {
		first = user
	} else if len(first) >= 2 && first[0] == '"' && first[len(first)-1] == '"' {
		first = strings.ReplaceAll(first[1:len(first)-1], `""`, `"`)
	}
	if first == "" {
		return errors.New("search_path names no schema to create the tables in")
	}
	_, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{first}.Sanitize())
	return err
}

// querier is what the pool and a transaction both offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Queries implements every part's Store over a pool or a transaction.
type Queries struct {
	x querier
	// pool is set when x is a pool, not a transaction: a method whose
	// statements must share one transaction then begins its own.
	pool *pgxpool.Pool
	// seqNext and seqEnd bound the event numbers this transaction has
	// reserved and not used yet (see InsertEvents).
	seqNext, seqEnd int64
	// db is set inside InTx; stagedPairs are the person_properties rows
	// the transaction wrote, for db.pairs once it commits.
	db          *DB
	stagedPairs []uint64
	// home is the database of Writer Queries.
	home *DB
}

// Reader returns Queries on the read pool. Writes through it fail.
func (db *DB) Reader() *Queries { return &Queries{x: db.r, pool: db.r} }

// Writer returns Queries that write outside an explicit transaction (each
// method commits on its own).
func (db *DB) Writer() *Queries { return &Queries{x: db.w, pool: db.w, home: db} }

// InTx runs fn in one REPEATABLE READ transaction, committed if fn returns
// nil. Conflicting writes of another transaction surface as errors for
// which IsRetryable is true; the caller runs fn again.
func (db *DB) InTx(ctx context.Context, fn func(*Queries) error) error {
	tx, err := db.w.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	// A no-op after Commit; after a panic or error it frees the connection.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	q := &Queries{x: tx, db: db}
	if err := fn(q); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	db.pairs.Add(q.stagedPairs)
	return nil
}

// inTx runs fn in a transaction: q's own when it has one, else a new one.
func (q *Queries) inTx(ctx context.Context, fn func(querier) error) error {
	if q.pool == nil {
		return fn(q.x)
	}
	return pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error { return fn(tx) })
}

// SQLSTATE codes this package reacts to.
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

// IsRetryable reports errors after which running the same transaction again
// may succeed: a serialization failure or deadlock, or a unique violation
// when another node inserted the same identifier, person or message id
// first (the retry then finds and reuses its row).
func IsRetryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case codeSerializationFailure, codeDeadlockDetected, codeUniqueViolation:
		return true
	}
	return false
}

// ChangedElsewhere reports whether anyone but this node's ingest changed
// persons or identifiers since its last look (identity.ChangeDetector), so
// that ingest may keep resolved persons in memory. It names the
// transaction as this node's ingest for the identity_writes triggers
// (0011_identity_writes.sql), in the same round trip. Concurrent commits
// after this transaction's snapshot are seen by the next look; until then
// the transaction sees the same as it would without the cache.
func (q *Queries) ChangedElsewhere(ctx context.Context) (bool, error) {
	if q.db == nil {
		return true, nil
	}
	var set string
	var others int64
	if err := q.x.QueryRow(ctx, `SELECT set_config('onramp.writer', $1, true), (SELECT coalesce(sum(n), 0) FROM identity_writes WHERE writer <> $1)::bigint`,
		q.db.writer).Scan(&set, &others); err != nil {
		return true, fmt.Errorf("postgres: identity writes: %w", err)
	}
	db := q.db
	db.identityMu.Lock()
	defer db.identityMu.Unlock()
	changed := !db.sawOthers || others != db.othersWrites
	db.othersWrites, db.sawOthers = others, true
	return changed, nil
}

// RefusedDuplicate reports that InsertEvents failed because a (property id,
// message id) is stored already (events.DuplicateRefuser): the events_message
// unique index refused it.
func (q *Queries) RefusedDuplicate(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == codeUniqueViolation && pe.ConstraintName == "events_message"
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == codeUniqueViolation
}

func notFound(what string) error { return onramp.Errorf(onramp.ENOTFOUND, "No such %s.", what) }

// ts maps Go's zero time to NULL, the engines' shared meaning of "absent".
func ts(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

func tsPtr(t *time.Time) pgtype.Timestamptz {
	if t == nil {
		return pgtype.Timestamptz{}
	}
	return ts(*t)
}

// fromTS returns UTC: pgx decodes into the local zone, and callers compare
// times from both engines with ==.
func fromTS(v pgtype.Timestamptz) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return v.Time.UTC()
}

func ptrTS(v pgtype.Timestamptz) *time.Time {
	if !v.Valid {
		return nil
	}
	t := v.Time.UTC()
	return &t
}

func nullText(s string) pgtype.Text { return pgtype.Text{String: s, Valid: s != ""} }

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// limit maps a non-positive limit to NULL (no limit): SQLite's LIMIT -1
// means that, and Postgres refuses negative limits.
func limit(n int) pgtype.Int8 { return pgtype.Int8{Int64: int64(n), Valid: n >= 0} }

// dedupe returns ss without repeats, in first-seen order.
func dedupe(ss []string) []string {
	seen := make(map[string]bool, len(ss))
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// The engine must fill every part's Store.
var (
	_ identity.Store    = (*Queries)(nil)
	_ events.Store      = (*Queries)(nil)
	_ property.Store    = (*Queries)(nil)
	_ auth.Store        = (*Queries)(nil)
	_ auth.AccountStore = (*Queries)(nil)
	_ auth.OAuthStore   = (*Queries)(nil)
)
