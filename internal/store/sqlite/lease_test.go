package sqlite

import (
	"context"
	"testing"

	"timd/internal/im"
)

// TestReleaseLeases: the leases an earlier process left in the store are
// released, so a new owner claims at once; finished tasks are untouched.
func TestReleaseLeases(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, id := range []string{"run", "done"} {
		if _, _, err := s.CreateTask(ctx, im.PushTask{App: 1, ID: id, MsgRandom: uint32(i + 1), State: im.TaskPending,
			CreatedAt: 1, Audience: []byte{}}, 0, im.TaskLimits{}); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.ClaimTask(ctx, 1, id, "host/old-boot", 1000, 1<<50); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	if _, err := s.SaveFanout(ctx, 1, "done", "host/old-boot", 0, im.TaskDone, im.TaskCounts{}, nil); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.ClaimTask(ctx, 1, "run", "host/new-boot", 2000, 3000); ok {
		t.Fatal("a live lease was granted before ReleaseLeases")
	}
	if err := s.ReleaseLeases(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ClaimTask(ctx, 1, "run", "host/new-boot", 2000, 3000); err != nil || !ok {
		t.Fatalf("claim after ReleaseLeases = %v, %v", ok, err)
	}
	if tk, _ := s.Task(ctx, 1, "done"); tk.State != im.TaskDone || tk.Owner != "" {
		t.Errorf("finished task after ReleaseLeases: %v %q", tk.State, tk.Owner)
	}
}
