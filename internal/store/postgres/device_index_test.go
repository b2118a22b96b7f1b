package postgres

import (
	"context"
	"strings"
	"testing"
)

// TestMoveTokenUsesIndex: the statements that take a token or a Web Push
// endpoint from another device can read the partial indexes instead of
// every device of the app (a full scan made registration cost grow with
// the number of devices), and the trace's reads of one recipient's
// results and queued sends use indexes too. Sequential scans are priced out so that the
// plan shows whether an index applies at all, whatever the table's size.
func TestMoveTokenUsesIndex(t *testing.T) {
	sc := &schemas{url: testURL(t), made: map[string]string{}}
	s := sc.open(t, t.TempDir()).(*Store)
	defer s.Close()
	ctx := context.Background()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// 5,000 devices and results of one task, one per account, with
	// statistics, so the planner costs the trace's reads as it would in
	// a real store (on an empty table every plan costs the same).
	for _, q := range []string{
		`INSERT INTO push_devices (app, reg_id, target, owner, vendor, token)
			SELECT 1, 'r' || i, i, 'u' || i, 'apns', 'tok' || i FROM generate_series(1, 5000) AS i`,
		`INSERT INTO push_sends (app, task_id, reg_id, account, at) SELECT 1, 't', 'r' || i, 'u' || i, 0 FROM generate_series(1, 5000) AS i`,
		`INSERT INTO push_outbox (app, task_id, reg_id, due_at) SELECT 1, 't', 'r' || i, 0 FROM generate_series(1, 5000) AS i`,
		`ANALYZE push_devices`, `ANALYZE push_sends`, `ANALYZE push_outbox`,
		"SET LOCAL enable_seqscan = off",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for q, index := range map[string]string{moveTokenSQL: "push_devices_token", moveEndpointSQL: "push_devices_endpoint",
		accountSendsSQL: "push_sends_account", queuedSendsSQL: "push_devices_target"} {
		args := []any{int64(1), "x", "r"}
		switch q {
		case accountSendsSQL:
			args = []any{int64(1), "t", "u7"}
		case queuedSendsSQL:
			args = []any{int64(1), int64(7), "t"}
		}
		rows, err := tx.Query(ctx, "EXPLAIN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, index) || strings.Contains(p, "Seq Scan") {
			t.Errorf("plan of %q is %q; want a scan of index %s", q, p, index)
		}
	}
}
