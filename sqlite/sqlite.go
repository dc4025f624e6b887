// Package sqlite implements every part's Store on SQLite (modernc.org/sqlite,
// pure Go): one database file in the data folder, WAL mode, one writer
// connection and a small pool of readers.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/internal/migrate"
	"github.com/onramp-dev/onramp/internal/seen"
	"github.com/onramp-dev/onramp/property"
	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is an open Onramp database.
type DB struct {
	// pairs remembers person_properties rows known to exist (see
	// notePersonProperties). Added to after commits, cleared by
	// DeletePersons.
	pairs *seen.Set
	path  string
	w     *sql.DB // writer pool: the pinned connection below and one spare
	r     *sql.DB // readers see the last committed state (WAL)

	// wconn is the writer connection transactions run on, pinned so its
	// prepared statements live as long as it does. wmu serialises the
	// transactions on it.
	wmu   sync.Mutex
	wconn *sql.Conn
	// walChecked is when InTx last looked at the WAL's size. Guarded by wmu.
	walChecked time.Time
	// maxWAL is the WAL size past which the writer resets it (see InTx).
	maxWAL int64
	// walBytes is how much the WAL held at the last background
	// checkpoint (frames × page size), for resetWAL.
	walBytes atomic.Int64
	pageSize int64
	// ckptMu keeps the background checkpointer and the writer's WAL reset
	// apart: SQLite runs one checkpoint at a time and answers a second
	// one with SQLITE_BUSY.
	ckptMu sync.Mutex
	// dataVersion is wconn's last reading of PRAGMA data_version, which
	// changes when another connection commits. Guarded by wmu.
	dataVersion int64
	// rstmts caches prepared statements of the read pool (database/sql
	// prepares each on every connection it runs on, once).
	rmu    sync.Mutex
	rstmts map[string]*sql.Stmt
	// stmts caches prepared statements on wconn. Parsing a 100-row INSERT
	// costs about as much as running it, and ingest repeats the same few
	// statements all day. Guarded by wmu.
	stmts map[string]*sql.Stmt
	// dedupe is the window of recent message ids (dedupe.go). Guarded by
	// wmu.
	dedupe *dedupeWindow
	// timeline is the backlog of events without timeline rows
	// (timeline_index.go).
	timeline *timelineBacklog
	// walSync flushes the WAL for wconn's commits, which leave that to it
	// (walsync.go); nil unless Options.Synchronous is FULL.
	walSync *walSync
}

// Options tune Open.
type Options struct {
	// Synchronous is the SQLite synchronous pragma: FULL (default) makes
	// every acknowledged commit survive power loss; NORMAL only process
	// crashes. (With FULL the transactions of InTx flush the WAL after
	// their commit rather than inside it: see walsync.go.)
	Synchronous string
	Readers     int
	// MaxWAL is the WAL size in bytes past which the writer resets the WAL
	// after a commit (default 64 MB).
	MaxWAL int64
	// MmapSize is how much of the database file SQLite reads through
	// memory mapping instead of read calls (default 1 GiB). Timeline reads
	// jump between pages; with mmap each jump is a memory access, not a
	// system call and a copy.
	MmapSize int64
	// DedupeWindow is how many of the most recent events' message ids a
	// retried message is checked against (default DefaultDedupeWindow).
	DedupeWindow int
	// PageSize is the page size of a database file created by Open
	// (default 4096); an existing file keeps its own.
	PageSize int
}

// busyTimeoutMS is how long a connection waits for another one's lock.
const busyTimeoutMS = 10000

// Open opens (creating if needed) the database file at path.
func Open(ctx context.Context, path string, opt Options) (*DB, error) {
	if opt.Synchronous == "" {
		opt.Synchronous = "FULL"
	}
	if opt.Readers <= 0 {
		opt.Readers = 4
	}
	if opt.MaxWAL <= 0 {
		opt.MaxWAL = 64 << 20
	}
	if opt.MmapSize <= 0 {
		opt.MmapSize = 1 << 30
	}
	if opt.DedupeWindow <= 0 {
		opt.DedupeWindow = DefaultDedupeWindow
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create data folder: %w", err)
	}
	if opt.PageSize <= 0 {
		opt.PageSize = 4096
	}
	if err := createWithPageSize(ctx, path, opt.PageSize); err != nil {
		return nil, err
	}
	pragmas := []string{"busy_timeout(" + strconv.Itoa(busyTimeoutMS) + ")", "journal_mode(WAL)", "synchronous(" + opt.Synchronous + ")", "temp_store(MEMORY)", "cache_size(-16000)", "mmap_size(" + strconv.FormatInt(opt.MmapSize, 10) + ")"}
	dsn := func(extra ...string) string {
		q := url.Values{}
		for _, p := range append(pragmas, extra...) {
			q.Add("_pragma", p)
		}
		return "file:" + path + "?" + q.Encode()
	}
	// The writers never checkpoint on commit: a checkpoint copies the WAL
	// into the database and fsyncs it, and doing that inside an ingest
	// commit stalls every waiting request. RunCheckpointer does it beside.
	// journal_size_limit cuts the WAL file back to maxWAL when the log
	// restarts (see resetWAL).
	w, err := sql.Open("sqlite", dsn("wal_autocheckpoint(0)", "journal_size_limit("+strconv.FormatInt(opt.MaxWAL, 10)+")"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	// Two writer connections: one pinned for transactions, one for the
	// occasional statement outside them. SQLite's lock and busy_timeout
	// order them.
	// Two writer connections: one pinned for transactions, one for the
	// occasional statement outside them. SQLite's lock and busy_timeout
	// order them.
	w.SetMaxOpenConns(2)
	w.SetMaxIdleConns(2)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	wconn, err := w.Conn(ctx)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	var pageSize int64
	if err := wconn.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		wconn.Close()
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	var ws *walSync
	if strings.EqualFold(opt.Synchronous, "FULL") {
		// The transactions on wconn flush the WAL after COMMIT instead of
		// inside it (walsync.go); the spare connection stays at FULL.
		if _, err := wconn.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err != nil {
			wconn.Close()
			w.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		if ws, err = openWALSync(path); err != nil {
			wconn.Close()
			w.Close()
			return nil, err
		}
	}
	r, err := sql.Open("sqlite", dsn("query_only(1)"))
	if err != nil {
		ws.close()
		wconn.Close()
		w.Close()
		return nil, fmt.Errorf("sqlite: open readers: %w", err)
	}
	r.SetMaxOpenConns(opt.Readers)
	r.SetMaxIdleConns(opt.Readers)
	return &DB{path: path, w: w, r: r, wconn: wconn, stmts: map[string]*sql.Stmt{}, rstmts: map[string]*sql.Stmt{}, maxWAL: opt.MaxWAL, pageSize: pageSize, dedupe: newDedupeWindow(opt.DedupeWindow), pairs: events.NewKnownPersonProperties(), timeline: newTimelineBacklog(), walSync: ws}, nil
}

// createWithPageSize creates the database file at path, if there is none,
// with pages of size bytes. (A page_size pragma among the connection's
// others left new files at 4 KiB: the page size is fixed by the first
// write, and the driver's own setup writes first.)
func createWithPageSize(ctx context.Context, path string, size int) error {
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	c, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "PRAGMA page_size = "+strconv.Itoa(size)+"; PRAGMA journal_mode = WAL"); err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	return nil
}

// Close closes the database.
func (db *DB) Close() error {
	// Index what the timeline backlog holds, so that the next start has
	// nothing to rebuild. A failure leaves that to the next start.
	flushErr := db.FlushTimeline(context.Background())
	db.wmu.Lock()
	defer db.wmu.Unlock()
	for _, st := range db.stmts {
		st.Close()
	}
	db.stmts = map[string]*sql.Stmt{}
	db.rmu.Lock()
	for _, st := range db.rstmts {
		st.Close()
	}
	db.rstmts = map[string]*sql.Stmt{}
	db.rmu.Unlock()
	return errors.Join(flushErr, db.wconn.Close(), db.r.Close(), db.w.Close(), db.walSync.close())
}

// prepared returns the prepared statement for query on wconn. The caller
// holds wmu (it runs inside InTx).
func (db *DB) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := db.stmts[query]; ok {
		return st, nil
	}
	if len(db.stmts) >= 256 {
		// Statement texts depend on batch sizes; keep the cache bounded.
		for q, st := range db.stmts {
			st.Close()
			delete(db.stmts, q)
		}
	}
	st, err := db.wconn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	db.stmts[query] = st
	return st, nil
}

// RunCheckpointer copies the WAL into the database file in the background
// until ctx ends, with a PASSIVE checkpoint every interval, which never
// blocks the writer; InTx restarts the WAL itself when it grows past the
// limit. A process that does not run it (the CLI) leaves checkpoints to the
// server, or to SQLite when the last connection closes.
func (db *DB) RunCheckpointer(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		db.ckptMu.Lock()
		var busy, logPages, done int64
		err := db.w.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logPages, &done)
		if err == nil {
			db.walBytes.Store(logPages * db.pageSize)
		}
		db.ckptMu.Unlock()
		if err != nil && ctx.Err() == nil {
			log.Warn("sqlite checkpoint", "err", err)
		}
		if err := db.sweepWhenIdle(ctx); err != nil && ctx.Err() == nil {
			log.Warn("sqlite timeline sweep", "err", err)
		}
	}
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

// Ping checks that the database answers.
// A failed flush of the WAL fails it for good (see walSync.failed).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.walSync.broken(); err != nil {
		return err
	}
	return db.r.PingContext(ctx)
}

// Migrate applies pending migrations and returns the versions it applied.
func (db *DB) Migrate(ctx context.Context) ([]int, error) {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	ms, err := migrate.Load(sub)
	if err != nil {
		return nil, err
	}
	if _, err := db.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return nil, fmt.Errorf("sqlite: migrate: %w", err)
	}
	var applied []int
	for _, m := range ms {
		err := db.InTx(ctx, func(q *Queries) error {
			var n int
			if err := q.x.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := q.x.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := q.x.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.Version, m.Name, time.Now().UnixMicro()); err != nil {
				return err
			}
			applied = append(applied, m.Version)
			return nil
		})
		if err != nil {
			return applied, fmt.Errorf("sqlite: migrate: %w", err)
		}
	}
	return applied, nil
}

// execer is what both *sql.DB and *sql.Tx offer.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Queries implements every part's Store over a connection or a transaction.
type Queries struct {
	x execer
	// db is set inside InTx, where hot statements run prepared on the
	// writer; rdb on the read pool, where they run prepared on readers.
	db  *DB
	rdb *DB
	// staged holds the message hashes this transaction inserted, for the
	// dedupe window once it commits; dedupeReady says the window has read
	// what other connections appended (both inside InTx only).
	staged      []recentMessage
	stagedSums  map[uint64]int64
	dedupeReady bool
	// loadedWindow is the window this transaction loaded, installed on
	// commit.
	loadedWindow *dedupeWindow
	// stagedPairs are the person_properties rows this transaction wrote,
	// for db.pairs once it commits.
	stagedPairs []uint64
	// timeline is what this transaction did to the timeline backlog, for
	// db.timeline once it commits.
	timeline timelineTx
	// home is the database of Reader and Writer Queries, for the few
	// operations that must run in a write transaction wherever they are
	// called from.
	home *DB
}

// readPrepared returns the read pool's prepared statement for query.
func (db *DB) readPrepared(ctx context.Context, query string) (*sql.Stmt, error) {
	db.rmu.Lock()
	defer db.rmu.Unlock()
	if st, ok := db.rstmts[query]; ok {
		return st, nil
	}
	if len(db.rstmts) >= 256 {
		for q, st := range db.rstmts {
			st.Close()
			delete(db.rstmts, q)
		}
	}
	st, err := db.r.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	db.rstmts[query] = st
	return st, nil
}

// ChangedElsewhere reports whether another connection (another process,
// or this process's spare writer) committed since the last call. Only
// meaningful inside InTx; elsewhere it says true, which is always safe.
func (q *Queries) ChangedElsewhere(ctx context.Context) (bool, error) {
	if q.db == nil {
		return true, nil
	}
	var v int64
	if err := q.db.wconn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return true, fmt.Errorf("sqlite: data_version: %w", err)
	}
	changed := v != q.db.dataVersion
	q.db.dataVersion = v
	return changed, nil
}

// execHot runs a statement that ingest repeats all the time: prepared
// once on the writer connection, reused in every transaction.
func (q *Queries) execHot(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if q.db == nil {
		return q.x.ExecContext(ctx, query, args...)
	}
	st, err := q.db.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// queryRowHot is queryHot for one row.
func (q *Queries) queryRowHot(ctx context.Context, query string, args ...any) *sql.Row {
	if q.rdb != nil {
		if st, err := q.rdb.readPrepared(ctx, query); err == nil {
			return st.QueryRowContext(ctx, args...)
		}
	} else if q.db != nil {
		if st, err := q.db.prepared(ctx, query); err == nil {
			return st.QueryRowContext(ctx, args...)
		}
	}
	return q.x.QueryRowContext(ctx, query, args...)
}

// queryHot is execHot for queries.
func (q *Queries) queryHot(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if q.rdb != nil {
		st, err := q.rdb.readPrepared(ctx, query)
		if err != nil {
			return nil, err
		}
		return st.QueryContext(ctx, args...)
	}
	if q.db == nil {
		return q.x.QueryContext(ctx, query, args...)
	}
	st, err := q.db.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// Reader returns Queries on the read pool. Writes through it fail.
func (db *DB) Reader() *Queries { return &Queries{x: db.r, rdb: db, home: db} }

// Writer returns Queries that write outside an explicit transaction (each
// statement commits on its own).
func (db *DB) Writer() *Queries { return &Queries{x: db.w, home: db} }

// InTx runs fn in one write transaction, committed if fn returns nil and
// durable (as Options.Synchronous says) when InTx returns. The
// transaction is BEGIN IMMEDIATE on the pinned writer connection: it takes
// SQLite's write lock at once, so it never fails half-way on a busy upgrade.
func (db *DB) InTx(ctx context.Context, fn func(*Queries) error) error {
	if err := db.inTx(ctx, sweepDue, fn); err != nil {
		return err
	}
	return db.SyncWAL(context.WithoutCancel(ctx))
}

// InTxUnsynced is InTx whose commit may still be only in the operating
// system's cache when it returns: it survives a crash of the process, and
// a crash of the machine once SyncWAL has returned. The caller must not
// acknowledge the transaction's writes to anyone before that. Ingest uses
// it to write the next group while the last one is being flushed.
func (db *DB) InTxUnsynced(ctx context.Context, fn func(*Queries) error) error {
	return db.inTx(ctx, sweepDue, fn)
}

// inTx is InTx that sweeps the timeline backlog as mode says before it
// commits.
func (db *DB) inTx(ctx context.Context, mode sweepMode, fn func(*Queries) error) (err error) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	// After a failed flush nothing more is written (see walSync.failed).
	if err := db.walSync.broken(); err != nil {
		return err
	}
	// BEGIN runs without ctx's cancellation: the driver answers ctx.Err()
	// for a statement that did run when ctx ends just after it, and a BEGIN
	// reported as failed but in fact open would leave the pinned connection
	// inside a transaction for good. Its wait is bounded by busy_timeout.
	if _, err := db.execControl(context.WithoutCancel(ctx), "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	done := false
	defer func() {
		if !done {
			// fn panicked or failed: undo everything. The rollback must run
			// even when ctx is cancelled.
			if _, rerr := db.wconn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil && err == nil {
				err = fmt.Errorf("sqlite: rollback: %w", rerr)
			}
		}
	}()
	q := &Queries{x: db.wconn, db: db}
	if err := fn(q); err != nil {
		return err
	}
	if err := q.sweepTimeline(ctx, mode); err != nil {
		return err
	}
	if _, err := db.execControl(context.WithoutCancel(ctx), "COMMIT"); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	done = true
	db.commitDedupe(q.loadedWindow, q.staged)
	db.pairs.Add(q.stagedPairs)
	db.timeline.commit(&q.timeline, time.Now())
	db.resetWAL(ctx)
	return nil
}

// execControl runs BEGIN or COMMIT as a statement prepared once on the
// pinned writer: parsing them afresh for every transaction cost more CPU
// than some of the transactions' own statements. The caller holds wmu.
func (db *DB) execControl(ctx context.Context, query string) (sql.Result, error) {
	st, err := db.prepared(ctx, query)
	if err != nil {
		return db.wconn.ExecContext(ctx, query)
	}
	return st.ExecContext(ctx)
}

// resetWAL keeps the WAL from growing without bound under sustained
// writes. The background PASSIVE checkpoints copy frames into the database
// but can never restart a WAL that the writer appends to all the time;
// only a checkpoint between two write transactions can. So the writer,
// after a commit and at most four times a second, looks at how much the
// WAL holds and, past a sixteenth of maxWAL, runs a RESTART checkpoint
// itself: short, because the background checkpoints (five a second in the
// server) already copied most frames, and the next commit writes from the
// start of the file again. Small and frequent, and RESTART rather than
// TRUNCATE: cutting and regrowing an 80 MB file made each reset a
// 35–65 ms stall of every waiting request (10–12 ms with RESTART; p99 of
// ingest at 10,000 events/s went from 110–170 ms to 36–80 ms in most
// runs); journal_size_limit still cuts the file back to maxWAL when the
// log restarts. Without the background checkpointer (the CLI) the file
// size is the measure. If a background checkpoint is running, or a reader
// still reads frames the restart would drop, it tries again at the next
// check, unless the WAL is four times over the limit, when it waits.
// The caller holds wmu.
func (db *DB) resetWAL(ctx context.Context) {
	if time.Since(db.walChecked) < 250*time.Millisecond {
		return
	}
	db.walChecked = time.Now()
	held := db.walBytes.Load()
	if held < db.maxWAL/16 {
		fi, err := os.Stat(db.path + "-wal")
		if err != nil || fi.Size() <= db.maxWAL {
			return
		}
		held = fi.Size()
	}
	if held > 4*db.maxWAL {
		db.ckptMu.Lock()
	} else if !db.ckptMu.TryLock() {
		return
	}
	defer db.ckptMu.Unlock()
	var busy, logPages, done int
	bg := context.WithoutCancel(ctx)
	if held <= 4*db.maxWAL {
		// A reader still in the WAL would make RESTART wait for it (the
		// busy handler) while every ingest request waits on wmu: give up
		// at once and try again at the next check.
		_, _ = db.wconn.ExecContext(bg, "PRAGMA busy_timeout = 0")
		defer db.wconn.ExecContext(bg, "PRAGMA busy_timeout = "+strconv.Itoa(busyTimeoutMS))
	}
	// A failure here only means the WAL stays big a little longer.
	if err := db.wconn.QueryRowContext(bg, "PRAGMA wal_checkpoint(RESTART)").Scan(&busy, &logPages, &done); err == nil && busy == 0 {
		db.walBytes.Store(0)
	}
}

// IsRetryable reports errors after which the same transaction may succeed:
// a busy database (another process held the lock past busy_timeout).
func IsRetryable(err error) bool {
	var se *sqlitedrv.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

func isUnique(err error) bool {
	var se *sqlitedrv.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

func notFound(what string) error { return onramp.Errorf(onramp.ENOTFOUND, "No such %s.", what) }

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMicro(v.Int64).UTC()
	return &t
}

// placeholders returns "?, ?, …" with n marks.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// padded returns the size an IN list of n items is padded to, so that a few
// statement texts serve every batch size (repeating an item in an IN list
// changes nothing).
func padded(n int) int {
	p := 8
	for p < n {
		p *= 2
	}
	return p
}

// padArgs repeats the last group of width args until there are size groups.
func padArgs(args []any, width, size int) []any {
	last := args[len(args)-width:]
	for len(args) < size*width {
		args = append(args, last...)
	}
	return args
}

// chunk calls fn with slices of at most size items.
func chunk[T any](items []T, size int, fn func([]T) error) error {
	for len(items) > 0 {
		n := min(size, len(items))
		if err := fn(items[:n]); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
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
