// Package testenv finds the real services that timd's tests run against:
// the PostgreSQL database in TIMD_TEST_POSTGRES and the NATS server in
// TIMD_TEST_NATS. Each helper skips the test with a message saying what
// to set when its service is not configured or does not answer, so the
// README's test command passes on a machine without them; .ci/run sets
// both and starts the servers.
//
// Only tests import this package.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresURL returns TIMD_TEST_POSTGRES, or skips tb when it is unset or
// the server does not answer within 10 s.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("TIMD_TEST_POSTGRES")
	if u == "" {
		tb.Skip("TIMD_TEST_POSTGRES is not set (e.g. postgres://postgres@127.0.0.1:5432/test); skipping a test against a real PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		tb.Skipf("PostgreSQL at TIMD_TEST_POSTGRES is unreachable: %v", err)
	}
	_ = conn.Close(ctx)
	return u
}

// Schema creates a new, empty schema named prefix plus random hex on the
// database at base and drops it (with everything in it) when tb ends.
func Schema(tb testing.TB, base, prefix string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	name := prefix + randomHex(8)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+name); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("connect to drop schema %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP SCHEMA `+name+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// PostgresStore returns a postgres:// URL that selects, through its
// search_path, a new schema of its own on TIMD_TEST_POSTGRES (dropped when
// tb ends), or skips tb without PostgreSQL. Several timd processes given
// the same URL share one store, as nodes do.
func PostgresStore(tb testing.TB, prefix string) string {
	tb.Helper()
	base := PostgresURL(tb)
	schema := Schema(tb, base, prefix)
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// NATSURL returns TIMD_TEST_NATS, or skips tb when it is unset.
func NATSURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("TIMD_TEST_NATS")
	if u == "" {
		tb.Skip("TIMD_TEST_NATS is not set (e.g. nats://127.0.0.1:4222); skipping a test against a real NATS server")
	}
	return u
}

// Prefix returns prefix plus random hex: a NATS subject prefix (or any
// name) that no other test run shares.
func Prefix(prefix string) string { return prefix + randomHex(6) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
