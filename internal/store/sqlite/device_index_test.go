package sqlite

import (
	"context"
	"strings"
	"testing"
)

// TestMoveTokenUsesIndex: the statements that take a token or a Web Push
// endpoint from another device read the partial indexes, not every device
// of the app (a full scan made registration cost grow with the number of
// devices: 13 ms of CPU per registration at 50,000).
func TestMoveTokenUsesIndex(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for q, index := range map[string]string{moveTokenSQL: "push_devices_token", moveEndpointSQL: "push_devices_endpoint"} {
		rows, err := s.rdb.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, int64(1), "x", "r")
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, "USING INDEX "+index) {
			t.Errorf("plan of %q is %q; want a search USING INDEX %s", q, p, index)
		}
	}
}
