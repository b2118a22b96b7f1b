package postgres

import (
	"context"
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
	if n != 3 || v != 3 {
		t.Fatalf("schema_migrations has %d rows up to %d, want 3 rows, up to version 3", n, v)
	}
}
