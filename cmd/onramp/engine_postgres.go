package main

import (
	"context"
	"fmt"
	neturl "net/url"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onramp-dev/onramp/postgres"
)

func openPostgres(ctx context.Context, cfg Config) (*engine, error) {
	db, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{})
	if err != nil {
		return nil, err
	}
	return &engine{
		name: "postgres", read: db.Reader(), write: db.Writer(),
		inTx: func(ctx context.Context, fn func(store) error) error {
			return db.InTx(ctx, func(q *postgres.Queries) error { return fn(q) })
		},
		migrate: db.Migrate, ping: db.Ping, close: func() error { db.Close(); return nil }, isRetryable: postgres.IsRetryable,
		background: db.RunUpkeep,
	}, nil
}

// freshPostgres creates an empty database beside the one url names and
// returns its URL and a function that drops it.
func freshPostgres(ctx context.Context, url string) (string, func(), error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "", nil, fmt.Errorf("postgres url: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", nil, fmt.Errorf("postgres: %w", err)
	}
	name := fmt.Sprintf("onramp_bench_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		return "", nil, fmt.Errorf("postgres: create database: %w", err)
	}
	u, err := neturl.Parse(url)
	if err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), func() {
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		conn.Close(context.Background())
	}, nil
}

// analyzePostgres refreshes the planner's statistics, as autovacuum would
// a while after a bulk load.
func analyzePostgres(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("postgres: analyze: %w", err)
	}
	return nil
}
