package fanout_test

import (
	"context"
	"testing"
	"time"

	"timd/internal/fanout"
	"timd/internal/im"
)

// TestHoldAfter checks the test hook the kill -9 end-to-end tests rely on:
// the fan-out delivers exactly HoldAfter recipients (across chunks), saves
// that progress and waits, Running, until the engine stops; an engine
// without the hook resumes and delivers the rest once.
func TestHoldAfter(t *testing.T) {
	st := openStore(t, t.TempDir())
	aud := everyThird(3000)
	createTask(t, st, "t1", aud, false)
	l := newLive()
	e := fanout.New(st, l, fanout.Options{Scan: 10 * time.Millisecond, Chunk: 700, SaveEvery: time.Hour, HoldAfter: 1000}, nil)
	e.Start(context.Background())
	deadline := time.Now().Add(20 * time.Second)
	for counts(t, st, "t1").Sent != 1000 {
		if time.Now().After(deadline) {
			t.Fatalf("sent %d, want the hold at 1000", counts(t, st, "t1").Sent)
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a held fan-out goes no further
	if n := len(l.times("t1")); n != 1000 {
		t.Fatalf("%d recipients delivered while held, want 1000", n)
	}
	e.Stop()
	if tk, _ := st.Task(context.Background(), app, "t1"); tk.State != im.TaskRunning {
		t.Fatalf("held task in state %d, want Running", tk.State)
	}
	startEngine(t, st, l, fanout.Options{})
	waitState(t, st, "t1", im.TaskDone)
	wantOnce(t, l, "t1", aud)
}
