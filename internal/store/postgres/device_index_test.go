package postgres

import (
	"context"
	"strings"
	"testing"
)

// TestMoveTokenUsesIndex: the statements that take a token or a Web Push
// endpoint from another device can read the partial indexes instead of
// every device of the app (a full scan made registration cost grow with
// the number of devices). Sequential scans are priced out so that the
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
	if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	for q, index := range map[string]string{moveTokenSQL: "push_devices_token", moveEndpointSQL: "push_devices_endpoint"} {
		rows, err := tx.Query(ctx, "EXPLAIN "+q, int64(1), "x", "r")
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
