package fanout_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/fanout"
	"timd/internal/im"
	"timd/internal/store/sqlite"
)

const app = 1400000001

func openStore(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// live records every Deliver call; ordinals in online are connected.
type live struct {
	mu      sync.Mutex
	online  *roaring.Bitmap
	calls   map[string][]*roaring.Bitmap
	revoked map[string]bool
	// gate, when set, is received from before each Deliver returns.
	gate chan struct{}
}

func newLive(online ...uint32) *live {
	return &live{online: roaring.BitmapOf(online...), calls: map[string][]*roaring.Bitmap{}, revoked: map[string]bool{}}
}

func (l *live) Deliver(t *im.PushTask, aud *roaring.Bitmap) int {
	l.mu.Lock()
	l.calls[t.ID] = append(l.calls[t.ID], aud.Clone())
	n := int(roaring.And(aud, l.online).GetCardinality())
	gate := l.gate
	l.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return n
}

func (l *live) Revoke(_ uint64, id string, _ *roaring.Bitmap) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.revoked[id] = true
}

func (l *live) Connected(uint64) *roaring.Bitmap {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.online.Clone()
}

// times returns how often each ordinal was delivered for task id.
func (l *live) times(id string) map[uint32]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[uint32]int{}
	for _, c := range l.calls[id] {
		for _, o := range c.ToArray() {
			out[o]++
		}
	}
	return out
}

func (l *live) ncalls(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls[id])
}

// waker counts wake-ups.
type waker struct{ n atomic.Int32 }

func (w *waker) Wake() { w.n.Add(1) }

// everyThird is every third ordinal from 1, n of them.
func everyThird(n int) *roaring.Bitmap {
	bm := roaring.New()
	for i := range n {
		bm.Add(uint32(1 + 3*i))
	}
	return bm
}

func createTask(t *testing.T, st im.PushStore, id string, aud *roaring.Bitmap, onlineOnly bool) im.PushTask {
	t.Helper()
	b, err := aud.ToBytes()
	if err != nil {
		t.Fatal(err)
	}
	task := im.PushTask{App: app, ID: id, Kind: im.PushCondition, MsgRandom: uint32(len(id)) + uint32(id[len(id)-1]),
		From: "admin", Offline: []byte(`{"Title":"x"}`), OnlineOnly: onlineOnly, CreatedAt: time.Now().Unix(),
		Audience: b, Total: int64(aud.GetCardinality()), State: im.TaskPending}
	out, created, err := st.CreateTask(context.Background(), task, 1<<62, im.TaskLimits{})
	if err != nil || !created {
		t.Fatalf("CreateTask: %v %v", created, err)
	}
	return out
}

func waitState(t *testing.T, st im.PushStore, id string, want im.TaskState) im.PushTask {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tk, err := st.Task(context.Background(), app, id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.State == want {
			return tk
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s in state %d, want %d", id, tk.State, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func counts(t *testing.T, st im.PushStore, id string) im.TaskCounts {
	t.Helper()
	c, err := st.Counts(context.Background(), app, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startEngine(t *testing.T, st im.PushStore, l fanout.Live, opt fanout.Options) *fanout.Engine {
	t.Helper()
	if opt.Scan == 0 {
		opt.Scan = 10 * time.Millisecond
	}
	e := fanout.New(st, l, opt, nil)
	e.Start(context.Background())
	t.Cleanup(e.Stop)
	return e
}

// wantOnce fails unless every ordinal of aud was delivered exactly once
// (and nothing else).
func wantOnce(t *testing.T, l *live, id string, aud *roaring.Bitmap) {
	t.Helper()
	times := l.times(id)
	if len(times) != int(aud.GetCardinality()) {
		t.Errorf("%d ordinals delivered, audience has %d", len(times), aud.GetCardinality())
	}
	for o, n := range times {
		if n != 1 || !aud.Contains(o) {
			t.Fatalf("ordinal %d delivered %d times (in audience: %v)", o, n, aud.Contains(o))
		}
	}
}

func TestFanoutStored(t *testing.T) {
	st := openStore(t, t.TempDir())
	aud := everyThird(200_000)
	l := newLive(1, 4, 7, 8, 600_001)
	w := &waker{}
	e := startEngine(t, st, l, fanout.Options{Chunk: 10_000})
	e.SetHooks(w)
	createTask(t, st, "t1", aud, false)
	e.Notify(app, "t1")
	tk := waitState(t, st, "t1", im.TaskDone)
	wantOnce(t, l, "t1", aud)
	if n := l.ncalls("t1"); n != 20 {
		t.Errorf("%d Deliver calls for 200k recipients in chunks of 10k, want 20", n)
	}
	if c := counts(t, st, "t1"); c.Total != 200_000 || c.Sent != 200_000 || c.Online != 3 {
		t.Errorf("counts = %+v; want total = sent = 200000, online 3", c)
	}
	online := roaring.New()
	if err := online.UnmarshalBinary(tk.Online); err != nil || !online.Equals(roaring.BitmapOf(1, 4, 7)) {
		t.Errorf("online set = %v, %v; want [1 4 7]", online.ToArray(), err)
	}
	if tk.Cursor != int64(aud.Maximum()) {
		t.Errorf("cursor %d, want %d", tk.Cursor, aud.Maximum())
	}
	time.Sleep(20 * time.Millisecond)
	if w.n.Load() == 0 {
		t.Error("webhooks not woken when the fan-out ended")
	}
}

func TestFanoutOnlineOnlyAndEmpty(t *testing.T) {
	st := openStore(t, t.TempDir())
	l := newLive(1, 4)
	startEngine(t, st, l, fanout.Options{})
	createTask(t, st, "live", everyThird(100), true)
	createTask(t, st, "empty", roaring.New(), false)
	waitState(t, st, "live", im.TaskDone)
	if c := counts(t, st, "live"); c.Total != 100 || c.Sent != 2 || c.Online != 2 {
		t.Errorf("online-only counts = %+v; want sent = online = 2 of 100", c)
	}
	tk := waitState(t, st, "empty", im.TaskDone)
	if c := counts(t, st, "empty"); c.Total != 0 || tk.Cursor != 0 || l.ncalls("empty") != 0 {
		t.Errorf("empty task: counts %+v cursor %d calls %d", c, tk.Cursor, l.ncalls("empty"))
	}
}

// TestFanoutResumeAfterCrash leaves a task Running, half done, leased by a
// node that died; once the lease expires another node re-claims it and
// delivers the rest, each recipient once.
func TestFanoutResumeAfterCrash(t *testing.T) {
	st := openStore(t, t.TempDir())
	ctx := context.Background()
	aud := everyThird(50_000)
	createTask(t, st, "t1", aud, false)
	half, _ := aud.Select(24_999)
	now := time.Now()
	if ok, err := st.ClaimTask(ctx, app, "t1", "dead-node", now.UnixMilli(), now.Add(300*time.Millisecond).UnixMilli()); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, err := st.SaveFanout(ctx, app, "t1", "dead-node", int64(half), im.TaskRunning,
		im.TaskCounts{Total: 50_000, Sent: 25_000, Online: 1}, mustBytes(roaring.BitmapOf(1))); err != nil {
		t.Fatal(err)
	}
	l := newLive(1, int64ToOrd(int64(half)+3))
	startEngine(t, st, l, fanout.Options{Owner: "n2", Chunk: 4096})
	time.Sleep(150 * time.Millisecond)
	if n := l.ncalls("t1"); n != 0 {
		t.Fatalf("a leased task was taken before its lease ended (%d calls)", n)
	}
	tk := waitState(t, st, "t1", im.TaskDone)
	rest := roaring.New()
	rest.AddRange(uint64(half)+1, uint64(aud.Maximum())+1)
	rest.And(aud)
	wantOnce(t, l, "t1", rest)
	if c := counts(t, st, "t1"); c.Total != 50_000 || c.Sent != 50_000 || c.Online != 2 {
		t.Errorf("counts after resume = %+v; want 50000 sent, 2 online", c)
	}
	online := roaring.New()
	_ = online.UnmarshalBinary(tk.Online)
	if online.GetCardinality() != 2 || tk.Owner != "" {
		t.Errorf("online %v owner %s", online.ToArray(), tk.Owner)
	}
}

func int64ToOrd(v int64) uint32 { return uint32(v) }

func mustBytes(bm *roaring.Bitmap) []byte {
	b, err := bm.ToBytes()
	if err != nil {
		panic(err)
	}
	return b
}

// TestFanoutStopAndResume stops an engine mid-task (paced) and checks that
// a new engine finishes it without delivering anyone twice.
func TestFanoutStopAndResume(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	aud := everyThird(3000)
	createTask(t, st, "t1", aud, false)
	l := newLive()
	e := fanout.New(st, l, fanout.Options{Scan: 10 * time.Millisecond, Rate: func(uint64) int { return 5000 }}, nil)
	e.Start(context.Background())
	for l.ncalls("t1") < 3 {
		time.Sleep(time.Millisecond)
	}
	e.Stop()
	tk, _ := st.Task(context.Background(), app, "t1")
	c := counts(t, st, "t1")
	if tk.State != im.TaskRunning || tk.Cursor <= 0 || tk.Cursor >= int64(aud.Maximum()) || c.Sent != int64(aud.Rank(uint32(tk.Cursor))) {
		t.Fatalf("after Stop: state %d cursor %d sent %d", tk.State, tk.Cursor, c.Sent)
	}
	l.mu.Lock()
	for _, c := range l.calls["t1"] {
		if c.GetCardinality() > 500 {
			t.Errorf("paced at 5000/s, a chunk of %d", c.GetCardinality())
		}
	}
	l.mu.Unlock()
	startEngine(t, st, l, fanout.Options{})
	waitState(t, st, "t1", im.TaskDone)
	wantOnce(t, l, "t1", aud)
	if c := counts(t, st, "t1"); c.Sent != 3000 {
		t.Errorf("sent %d after resume, want 3000", c.Sent)
	}
}

// TestFanoutRevoke revokes a task while it fans out: the fan-out stops,
// the live clients are told, the task stays Revoked.
func TestFanoutRevoke(t *testing.T) {
	st := openStore(t, t.TempDir())
	ctx := context.Background()
	aud := everyThird(100_000)
	task := createTask(t, st, "t1", aud, false)
	l := newLive()
	l.gate = make(chan struct{})
	e := startEngine(t, st, l, fanout.Options{Chunk: 1000})
	l.gate <- struct{}{} // let the first chunk through
	for l.ncalls("t1") < 2 {
		time.Sleep(time.Millisecond)
	}
	if err := st.RevokeTask(ctx, app, "t1", time.Now().Unix(), nil, im.TaskLimits{}); err != nil {
		t.Fatal(err)
	}
	e.Revoke(&task)
	close(l.gate)
	time.Sleep(100 * time.Millisecond)
	calls := l.ncalls("t1")
	time.Sleep(100 * time.Millisecond)
	if l.ncalls("t1") != calls || calls > 3 {
		t.Errorf("fan-out went on after the revoke: %d calls", l.ncalls("t1"))
	}
	tk, _ := st.Task(ctx, app, "t1")
	if tk.State != im.TaskRevoked || tk.Cursor >= int64(aud.Maximum()) {
		t.Errorf("state %d cursor %d after revoke", tk.State, tk.Cursor)
	}
	l.mu.Lock()
	told := l.revoked["t1"]
	l.mu.Unlock()
	if !told {
		t.Error("live clients not told of the revoke")
	}
	if un, _ := st.UnfinishedTasks(ctx); len(un) != 0 {
		t.Errorf("revoked task still unfinished: %d", len(un))
	}
}

// TestTwoNodes runs two engines on one store: every task is fanned out by
// exactly one of them.
func TestTwoNodes(t *testing.T) {
	st := openStore(t, t.TempDir())
	l := newLive()
	startEngine(t, st, l, fanout.Options{Owner: "a", Chunk: 500})
	startEngine(t, st, l, fanout.Options{Owner: "b", Chunk: 500})
	aud := everyThird(5000)
	for i := range 20 {
		createTask(t, st, fmt.Sprint("t", i), aud, false)
	}
	for i := range 20 {
		id := fmt.Sprint("t", i)
		waitState(t, st, id, im.TaskDone)
		wantOnce(t, l, id, aud)
	}
}

// lockedBuffer is a log sink the engine writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestFanoutStopsWhenLeaseTakenOver: a node stalled past its lease (here
// inside Deliver) while another node took the task over must not write
// its progress: its save is refused (im.ErrLeaseLost) and it stops the
// task, which stays the new owner's, untouched.
func TestFanoutStopsWhenLeaseTakenOver(t *testing.T) {
	st := openStore(t, t.TempDir())
	ctx := context.Background()
	l := newLive()
	gate := make(chan struct{})
	l.gate = gate
	logs := &lockedBuffer{}
	e := fanout.New(st, l, fanout.Options{Owner: "a", Lease: 200 * time.Millisecond, Scan: 10 * time.Millisecond, Chunk: 100},
		slog.New(slog.NewTextHandler(logs, nil)))
	e.Start(ctx)
	t.Cleanup(e.Stop)
	createTask(t, st, "t1", everyThird(30), false)
	deadline := time.Now().Add(60 * time.Second)
	for l.ncalls("t1") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the fan-out never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// a is stuck in Deliver; once its lease has run out, b takes over.
	for {
		now := time.Now()
		ok, err := st.ClaimTask(ctx, app, "t1", "b", now.UnixMilli(), now.Add(time.Hour).UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if now.After(deadline) {
			t.Fatal("the lease never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(gate)
	for !strings.Contains(logs.String(), "lease taken over") {
		if time.Now().After(deadline) {
			t.Fatalf("the engine did not stop on the lost lease; log:\n%s", logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	tk, err := st.Task(ctx, app, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if tk.State != im.TaskRunning || tk.Owner != "b" || tk.Cursor != 0 {
		t.Fatalf("after the takeover: state %v owner %q cursor %d; want Running, b, 0 (the old owner's save refused)",
			tk.State, tk.Owner, tk.Cursor)
	}
	if c := counts(t, st, "t1"); c.Sent != 0 {
		t.Errorf("the old owner's counts were saved: %+v", c)
	}
}
