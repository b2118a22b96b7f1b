package postgres

import (
	"context"
	"io/fs"
	"strconv"
	"strings"
	"testing"
)

// twoHandles opens two stores on one fresh schema, as two nodes would.
func twoHandles(t *testing.T) (*Store, *Store) {
	t.Helper()
	sc := &schemas{url: testURL(t), made: map[string]string{}}
	dir := t.TempDir()
	a := sc.open(t, dir).(*Store)
	b := sc.open(t, dir).(*Store)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// The two-handle cases of Seq order, MsgRandom dedup, acks, leases and
// ordinals are in the conformance suite (storetest's TwoHandles*).

// TestMigrateOnce opens a schema twice: each migration is recorded once.
func TestMigrateOnce(t *testing.T) {
	a, _ := twoHandles(t)
	var n, v int
	if err := a.pool.QueryRow(context.Background(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatal(names, err)
	}
	last, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(names[len(names)-1], "migrations/"), "_", 2)[0])
	if n != len(names) || v != last {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d rows, up to version %d", n, v, len(names), last)
	}
}
