package fanout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"timd/internal/audience"
	"timd/internal/fanout"
	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/sqlite"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// schedEnv is a store with accounts, the push and sched services on a fake
// clock, and (once started) a scheduler.
type schedEnv struct {
	t     *testing.T
	dir   string
	st    *sqlite.Store
	idx   *audience.Index
	clock *clock
	sched *service.Sched
	loop  *fanout.Scheduler
}

func newSchedEnv(t *testing.T) *schedEnv {
	e := &schedEnv{t: t, dir: t.TempDir(), clock: &clock{now: time.Now().Truncate(time.Second)}}
	e.open()
	in := []im.AccountInput{{UserID: "a"}, {UserID: "b"}}
	if _, err := e.st.ImportAccounts(context.Background(), app, in); err != nil {
		t.Fatal(err)
	}
	return e
}

// open opens the store and the services, as a (re)started process does.
func (e *schedEnv) open() {
	st, err := sqlite.Open(context.Background(), e.dir, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.st = st
	e.idx = audience.New()
	st.SetChangeSink(e.idx)
	if _, err := service.RebuildIndex(context.Background(), st, e.idx); err != nil {
		e.t.Fatal(err)
	}
	if err := st.PutApp(context.Background(), im.App{SDKAppID: app, SecretKey: "k", Admins: []string{"admin"}}); err != nil {
		e.t.Fatal(err)
	}
	push := service.NewPush(st, st, e.idx, nil, service.PushConfig{Now: e.clock.Now})
	e.sched = service.NewSched(st, push, e.clock.Now)
}

func (e *schedEnv) start() {
	e.loop = fanout.NewScheduler(e.st, e.sched.Fire, fanout.SchedOptions{Tick: 5 * time.Millisecond, Now: e.clock.Now}, nil)
	e.loop.Start(context.Background())
}

// crash stops the loop and closes the store.
func (e *schedEnv) crash() {
	if e.loop != nil {
		e.loop.Stop()
		e.loop = nil
	}
	e.st.Close()
}

func (e *schedEnv) close() { e.crash() }

func (e *schedEnv) add(after time.Duration) int64 {
	e.t.Helper()
	at := e.clock.Now().Add(after).Truncate(time.Second).Unix()
	id, err := e.sched.Add(context.Background(), app, "admin", service.SchedSpec{Type: im.SchedAll, SchedAt: at,
		Content: &service.PushRequest{Kind: im.PushCondition, Offline: json.RawMessage(`{"Title":"x"}`)}})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *schedEnv) get(id int64) im.SchedTask {
	e.t.Helper()
	t, err := e.st.Sched(context.Background(), app, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return t
}

func (e *schedEnv) wait(id int64, want im.SchedStatus) im.SchedTask {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		t := e.get(id)
		if t.Status == want {
			return t
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("scheduled task %d: %s, want %s", id, t.Status, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (e *schedEnv) pushes() int {
	n, err := e.st.CountTasks(context.Background(), app, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestSchedulerFiresOnTime(t *testing.T) {
	e := newSchedEnv(t)
	defer e.close()
	id := e.add(time.Minute)
	e.start()
	e.clock.Advance(59 * time.Second)
	time.Sleep(30 * time.Millisecond)
	if s := e.get(id).Status; s != im.SchedPending || e.pushes() != 0 {
		t.Fatalf("fired early: %s, %d pushes", s, e.pushes())
	}
	e.clock.Advance(time.Second)
	got := e.wait(id, im.SchedDispatched)
	tk, err := e.st.Task(context.Background(), app, got.PushTaskID)
	if err != nil || tk.Total != 2 || tk.CreatedAt != e.clock.Now().Unix() || got.DispatchSuccess != 1 {
		t.Fatalf("push %+v, %v; sched %+v", tk, err, got)
	}
}

// TestSchedulerAfterRestart: a task that fell due while timd was down
// fires at the next start, once.
func TestSchedulerAfterRestart(t *testing.T) {
	e := newSchedEnv(t)
	defer e.close()
	id := e.add(time.Minute)
	e.start()
	e.crash()
	e.clock.Advance(time.Hour)
	e.open()
	e.start()
	e.wait(id, im.SchedDispatched)
	if n := e.pushes(); n != 1 {
		t.Fatalf("%d pushes, want 1", n)
	}
}

// TestSchedulerCrashMidDispatch: a task left dispatching by a crash, with
// or without its push created, ends dispatched with exactly one push.
func TestSchedulerCrashMidDispatch(t *testing.T) {
	for _, pushed := range []bool{false, true} {
		t.Run(fmt.Sprint("pushed=", pushed), func(t *testing.T) {
			e := newSchedEnv(t)
			defer e.close()
			id := e.add(time.Minute)
			e.clock.Advance(time.Minute)
			task := e.get(id)
			task.Status = im.SchedDispatching
			if ok, err := e.st.MoveSched(context.Background(), im.SchedPending, task); err != nil || !ok {
				t.Fatal(ok, err)
			}
			if pushed {
				if _, err := e.sched.Fire(context.Background(), task); err != nil {
					t.Fatal(err)
				}
			}
			e.crash()
			e.open()
			e.start()
			got := e.wait(id, im.SchedDispatched)
			if n := e.pushes(); n != 1 || got.PushTaskID != fmt.Sprint("sched_", id) {
				t.Fatalf("%d pushes, push %s", n, got.PushTaskID)
			}
		})
	}
}

// TestSchedulerLeaseOneNode runs two schedulers, as two nodes, on one
// store with the scheduler lease: every due task is fired by the lease
// holder alone, once; when the holder stops, the other takes over once
// the lease has ended.
func TestSchedulerLeaseOneNode(t *testing.T) {
	e := newSchedEnv(t)
	defer e.close()
	var mu sync.Mutex
	firedBy := map[string][]int64{}
	node := func(owner string) *fanout.Scheduler {
		fire := func(ctx context.Context, st im.SchedTask) (string, error) {
			mu.Lock()
			firedBy[owner] = append(firedBy[owner], st.ID)
			mu.Unlock()
			return e.sched.Fire(ctx, st)
		}
		s := fanout.NewScheduler(e.st, fire, fanout.SchedOptions{Tick: 5 * time.Millisecond, Now: e.clock.Now,
			Leases: e.st, Owner: owner}, nil)
		s.Start(context.Background())
		return s
	}
	var ids []int64
	for range 5 {
		ids = append(ids, e.add(time.Minute))
	}
	// The fake clock stands still while both nodes start and race for
	// the lease, so the holder's lease never ends under it.
	e.clock.Advance(time.Minute)
	a, b := node("a"), node("b")
	defer func() { a.Stop(); b.Stop() }() // Stop twice is harmless
	for _, id := range ids {
		e.wait(id, im.SchedDispatched)
	}
	mu.Lock()
	if len(firedBy) != 1 || len(firedBy["a"])+len(firedBy["b"]) != 5 {
		t.Fatalf("fired by %v; want all 5 by one node, once each", firedBy)
	}
	holder := "a"
	if len(firedBy["b"]) > 0 {
		holder = "b"
	}
	clear(firedBy)
	mu.Unlock()
	other := "b"
	if holder == "b" {
		a, b, other = b, a, "a"
	}
	a.Stop() // the holder goes away; its lease ends 10 ticks later
	id := e.add(time.Minute)
	e.clock.Advance(time.Minute)
	e.wait(id, im.SchedDispatched)
	mu.Lock()
	defer mu.Unlock()
	if len(firedBy[other]) != 1 || len(firedBy[holder]) != 0 {
		t.Fatalf("after the holder stopped: fired by %v; want one by %s", firedBy, other)
	}
	if n := e.pushes(); n != 6 {
		t.Fatalf("%d pushes, want 6", n)
	}
}
