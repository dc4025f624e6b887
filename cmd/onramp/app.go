package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/onramp-dev/onramp"
	"github.com/onramp-dev/onramp/auth"
	"github.com/onramp-dev/onramp/events"
	"github.com/onramp-dev/onramp/identity"
	"github.com/onramp-dev/onramp/jobs"
	"github.com/onramp-dev/onramp/property"
	"github.com/onramp-dev/onramp/sqlite"
)

// store is everything an engine offers: each part's Store.
type store interface {
	events.Store
	property.Store
	auth.Store
	auth.AccountStore
	auth.MFAStore
	auth.UpstreamStore
	auth.OAuthStore
	jobs.Store
}

// engine is an open database of either kind, seen through the parts'
// interfaces. main is the only place that knows both engines.
type engine struct {
	name        string
	read, write store
	inTx        func(ctx context.Context, fn func(store) error) error
	// ingestTx, if set, is inTx for ingest's groups, whose commits
	// syncCommits makes durable afterwards (events.Config.SyncCommits).
	ingestTx    func(ctx context.Context, fn func(store) error) error
	syncCommits func(ctx context.Context) error
	migrate     func(ctx context.Context) ([]int, error)
	ping        func(ctx context.Context) error
	close       func() error
	isRetryable func(error) bool
	// background, if set, is engine upkeep a server runs until shutdown.
	background func(ctx context.Context, log *slog.Logger)
}

func openEngine(ctx context.Context, cfg Config) (*engine, error) {
	if strings.HasPrefix(cfg.DatabaseURL, "postgres") {
		return openPostgres(ctx, cfg)
	}
	db, err := sqlite.Open(ctx, cfg.sqlitePath(), sqlite.Options{Synchronous: cfg.SQLiteSync, DedupeWindow: cfg.sqliteDedupeWindow})
	if err != nil {
		return nil, err
	}
	return &engine{
		name: "sqlite", read: db.Reader(), write: db.Writer(),
		inTx: func(ctx context.Context, fn func(store) error) error {
			return db.InTx(ctx, func(q *sqlite.Queries) error { return fn(q) })
		},
		ingestTx: func(ctx context.Context, fn func(store) error) error {
			return db.InTxUnsynced(ctx, func(q *sqlite.Queries) error { return fn(q) })
		},
		syncCommits: db.SyncWAL,
		migrate:     db.Migrate, ping: db.Ping, close: db.Close, isRetryable: sqlite.IsRetryable,
		background: func(ctx context.Context, log *slog.Logger) {
			// Often, so that the writer's WAL reset finds little left to copy.
			db.RunCheckpointer(ctx, 200*time.Millisecond, log)
		},
	}, nil
}

// ingestCommits is how ingest's transactions commit on eng, and, where
// they are not durable when they return (SQLite's InTxUnsynced), the flush
// that makes them so (events.Config.SyncCommits). The two go together:
// an unsynced transaction without its flush would acknowledge writes a
// power loss can take.
func ingestCommits(eng *engine) (events.TxFunc, func(context.Context) error) {
	if eng.ingestTx == nil || eng.syncCommits == nil {
		return func(ctx context.Context, fn func(events.Store) error) error {
			return eng.inTx(ctx, func(s store) error { return fn(s) })
		}, nil
	}
	return func(ctx context.Context, fn func(events.Store) error) error {
		return eng.ingestTx(ctx, func(s store) error { return fn(s) })
	}, eng.syncCommits
}

// app is the wired set of Services over one engine.
type app struct {
	cfg        Config
	log        *slog.Logger
	eng        *engine
	clock      onramp.Clock
	bus        onramp.Bus
	identity   *identity.Service
	events     *events.Service
	properties *property.Service
	tokens     *auth.Service
	accounts   *auth.Accounts
	oauth      *auth.OAuth
	jobs       *jobs.Service
}

// openApp opens the database, applies migrations and wires the Services.
func openApp(ctx context.Context, cfg Config, log *slog.Logger, bus onramp.Bus, metrics events.Metrics) (*app, error) {
	eng, err := openEngine(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := eng.migrate(ctx); err != nil {
		eng.close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	clock := onramp.SystemClock{}
	a := &app{cfg: cfg, log: log, eng: eng, clock: clock, bus: bus}
	a.identity = identity.NewService(eng.read, func(ctx context.Context, fn func(identity.Store) error) error {
		return eng.inTxRetrying(ctx, func(s store) error { return fn(s) })
	}, clock, log)
	ingestTx, syncCommits := ingestCommits(eng)
	a.events = events.NewService(events.Config{
		Read: eng.read,
		InTx: ingestTx, SyncCommits: syncCommits,
		Clock: clock, Log: log, Bus: bus, Metrics: metrics, IsRetryable: eng.isRetryable,
		SoleWriter: eng.name == "sqlite",
		// PostgreSQL's writers do not wait on each other: a group's events
		// commit while the next group is resolved.
		SplitCommit: eng.name == "postgres",
	})
	a.events.ConnectIdentity(a.identity)
	auth.EraseOnDelete(a.identity)
	a.jobs = jobs.NewService(jobs.Config{
		Read: eng.read,
		InTx: func(ctx context.Context, fn func(jobs.Store) error) error {
			return eng.inTx(ctx, func(s store) error { return fn(s) })
		},
		Ingest: a.events, Clock: clock, Log: log, IsRetryable: eng.isRetryable,
	})
	a.properties = property.NewService(eng.write, eng.read, clock, log)
	a.tokens = auth.NewService(eng.write, eng.read, clock, log)
	a.oauth, err = auth.NewOAuth(auth.OAuthConfig{
		Read: eng.read,
		InTx: func(ctx context.Context, fn func(auth.OAuthTxStore) error) error {
			return eng.inTx(ctx, func(s store) error { return fn(s) })
		},
		IsRetryable: eng.isRetryable, Properties: a.properties, Clock: clock, Log: log,
		Issuer: cfg.PublicURL, KeyEncryptionKey: cfg.keyEncryptionKey,
	})
	if err != nil {
		eng.close()
		return nil, err
	}
	return a, nil
}

// openAccounts wires the account rules (sign-up, sign-in, sessions,
// staff, audit) and loads their server keys. Only the commands that use
// them pay for it: making the hasher computes one argon2id hash.
func (a *app) openAccounts(ctx context.Context) error {
	hasher, err := auth.NewArgon2id(auth.Argon2idConfig{Params: a.cfg.Argon2})
	if err != nil {
		return err
	}
	a.accounts = auth.NewAccounts(auth.Config{
		Read: a.eng.read,
		InTx: func(ctx context.Context, fn func(auth.TxStore) error) error {
			return a.eng.inTxRetrying(ctx, func(s store) error { return fn(s) })
		},
		Identity: a.identity, Clock: a.clock, Log: a.log, Hasher: hasher, PublicURL: a.cfg.PublicURL,
		Upstream: newUpstreamConnector(a),
	})
	if err := a.accounts.Init(ctx); err != nil {
		return err
	}
	a.accounts.ConnectIdentity(a.identity)
	a.oauth.SetRecorder(a.accounts)
	return nil
}

func (a *app) Close() error { return a.eng.close() }

// inTxRetrying runs fn in a transaction and runs it again, a few times,
// when the engine says the failure was a race with another transaction
// (on Postgres: a serialization failure or a deadlock between two staff
// actions on the same people). The rules then see the winner's result:
// an undo racing another undo gets "already undone", not an error.
func (e *engine) inTxRetrying(ctx context.Context, fn func(store) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = e.inTx(ctx, fn); err == nil || !e.isRetryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
		}
	}
	return err
}
