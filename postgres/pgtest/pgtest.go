// Package pgtest gives tests a fresh PostgreSQL database when
// ONRAMP_TEST_POSTGRES_URL is set, so that every run starts empty and leaves
// nothing behind.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable holding the server's URL, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvURL = "ONRAMP_TEST_POSTGRES_URL"

// Database creates a database named onramp_test_<random> on the server of
// ONRAMP_TEST_POSTGRES_URL and returns its URL; it is dropped when t ends.
// Without the variable, t is skipped with a message naming what was
// skipped. With it, a server that cannot be reached fails t: CI sets the
// variable precisely so that the Postgres half is never silently skipped.
func Database(t testing.TB, what string) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Skipf("%s not set: %s skipped", EnvURL, what)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("%s is set but Postgres is unreachable: %v", EnvURL, err)
	}
	defer conn.Close(context.Background())
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "onramp_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

var schemas atomic.Int64

// Schema returns dbURL with a search_path naming a new, not yet created
// schema, so tests sharing one database each get empty tables (Migrate
// creates the schema).
func Schema(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		panic(fmt.Sprintf("pgtest: %v", err))
	}
	q := u.Query()
	q.Set("search_path", fmt.Sprintf("t%d", schemas.Add(1)))
	u.RawQuery = q.Encode()
	return u.String()
}
