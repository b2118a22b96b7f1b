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
		if p := queryPlan(t, s, q, int64(1), "x", "r"); !strings.Contains(p, "USING INDEX "+index) {
			t.Errorf("plan of %q is %q; want a search USING INDEX %s", q, p, index)
		}
	}
}

// TestTraceReadsUseIndexes: the trace's reads of one recipient's results
// and queued sends go through indexes, not through every result or queued
// send of the task (100,000 rows for a 100,000-device push).
func TestTraceReadsUseIndexes(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		q    string
		args []any
		want []string
	}{
		{accountSendsSQL, []any{int64(1), "t", "a"}, []string{"SEARCH push_sends USING INDEX push_sends_account (app=? AND task_id=? AND account=?)"}},
		{queuedSendsSQL, []any{int64(1), int64(2), "t"}, []string{"SEARCH d USING INDEX push_devices_target (app=? AND target=?)",
			"SEARCH o USING PRIMARY KEY (app=? AND task_id=? AND reg_id=?)"}},
	} {
		p := queryPlan(t, s, c.q, c.args...)
		for _, w := range c.want {
			if !strings.Contains(p, w) {
				t.Errorf("plan of %q is %q; want %q", c.q, p, w)
			}
		}
	}
}

// queryPlan returns SQLite's EXPLAIN QUERY PLAN of q with args, its steps
// joined by "; ".
func queryPlan(t *testing.T, s *Store, q string, args ...any) string {
	t.Helper()
	rows, err := s.rdb.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
}
