package deliver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"timd/internal/deliver/delivertest"
	"timd/internal/im"
)

func TestSharedLoads(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var epoch atomic.Uint64
	s := newShared[string, int](time.Second, 2, clock, epoch.Load, time.Second)
	var loads atomic.Int32
	load := func(v int, err error) func(context.Context) (int, error) {
		return func(context.Context) (int, error) { loads.Add(1); return v, err }
	}
	get := func(k string, minEpoch uint64, v int) int {
		t.Helper()
		got, err := s.get(ctx, k, minEpoch, load(v, nil))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if get("a", 0, 1) != 1 || get("a", 0, 2) != 1 || loads.Load() != 1 {
		t.Fatalf("a fresh result is not shared (loads %d)", loads.Load())
	}
	// A caller registered after the load started needs a newer one.
	epoch.Store(5)
	if get("a", 5, 3) != 3 || get("a", 5, 4) != 3 || get("a", 0, 9) != 3 {
		t.Fatal("epoch not respected")
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if get("a", 0, 6) != 6 {
		t.Fatal("expired result reused")
	}
	// Failed loads are not kept.
	boom := errors.New("boom")
	if _, err := s.get(ctx, "b", 0, load(0, boom)); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if get("b", 0, 8) != 8 {
		t.Fatal("failure was cached")
	}
	// Bounded: finished entries make room.
	for _, k := range []string{"c", "d", "e", "f"} {
		get(k, 0, 1)
	}
	if n := len(s.snapshot()); n > 2 {
		t.Fatalf("%d entries kept, max 2", n)
	}
	// A caller that leaves gets its context's error; the load goes on.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.get(cctx, "g", 0, func(context.Context) (int, error) { time.Sleep(10 * time.Millisecond); return 1, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
}

func TestSharedWaitersShareOneLoad(t *testing.T) {
	s := newShared[string, int](time.Second, 10, time.Now, nil, time.Second)
	release := make(chan struct{})
	var loads atomic.Int32
	load := func(context.Context) (int, error) { loads.Add(1); <-release; return 42, nil }
	results := make(chan int, 10)
	for range 10 {
		go func() {
			v, _ := s.get(context.Background(), "k", 0, load)
			results <- v
		}()
	}
	for len(s.snapshot()) == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	for range 10 {
		if v := <-results; v != 42 {
			t.Fatalf("got %d", v)
		}
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("%d loads, want 1", n)
	}
}

// TestSharedCoalescesLateCallers: callers that registered after the
// running load started cannot use it; however many they are, they share
// one load, which starts after theirs registrations and after the running
// one ends.
func TestSharedCoalescesLateCallers(t *testing.T) {
	var epoch atomic.Uint64
	s := newShared[string, int](time.Second, 10, time.Now, epoch.Load, time.Second)
	var loads, running, overlap atomic.Int32
	releases := make(chan struct{}, 10)
	load := func(context.Context) (int, error) {
		if running.Add(1) > 1 {
			overlap.Add(1)
		}
		defer running.Add(-1)
		n := loads.Add(1)
		<-releases
		return int(n), nil
	}
	first := make(chan int, 1)
	go func() { v, _ := s.get(context.Background(), "k", 0, load); first <- v }()
	for loads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	const late = 50
	results := make(chan int, late)
	var joined sync.WaitGroup
	for range late {
		joined.Add(1)
		go func() {
			min := epoch.Add(1) // registered after the first load started
			joined.Done()
			v, _ := s.get(context.Background(), "k", min, load)
			results <- v
		}()
	}
	joined.Wait()
	time.Sleep(30 * time.Millisecond) // let them all reach get
	releases <- struct{}{}
	releases <- struct{}{}
	if v := <-first; v != 1 {
		t.Fatalf("first caller got load %d", v)
	}
	for range late {
		if v := <-results; v != 2 {
			t.Fatalf("late caller got load %d, want the one queued load (2)", v)
		}
	}
	if n, o := loads.Load(), overlap.Load(); n != 2 || o != 0 {
		t.Fatalf("%d loads (%d overlapping), want 2, none overlapping", n, o)
	}
}

func (s *shared[K, V]) snapshot() map[K]*slot[V] {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[K]*slot[V]{}
	for k, v := range s.m {
		out[k] = v
	}
	return out
}

// countingTasks counts the audience and acknowledgement reads.
type countingTasks struct {
	*delivertest.Faulty // the real SQLite store
	audReads, ackReads  atomic.Int32
	delay               time.Duration
}

func (c *countingTasks) TaskAudience(ctx context.Context, app uint64, id string) ([]byte, error) {
	c.audReads.Add(1)
	time.Sleep(c.delay)
	return c.Faulty.TaskAudience(ctx, app, id)
}

func (c *countingTasks) AckSets(ctx context.Context, app uint64, id string) ([]byte, []byte, error) {
	c.ackReads.Add(1)
	time.Sleep(c.delay)
	return c.Faulty.AckSets(ctx, app, id)
}

func TestAudienceCache(t *testing.T) {
	ctx := context.Background()
	src := &countingTasks{Faulty: delivertest.OpenFaulty(t), delay: 5 * time.Millisecond}
	for i, id := range []string{"a", "b", "c", "d"} {
		src.Add(im.PushTask{App: 1, ID: id}, uint32(i))
	}
	c := NewAudienceCache(src, 200) // room for two small audiences
	// Concurrent misses of one task share one read.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			bm, err := c.Get(ctx, 1, "a")
			if err != nil || !bm.Contains(0) {
				t.Errorf("Get(a) = %v, %v", bm, err)
			}
		})
	}
	wg.Wait()
	if n := src.audReads.Load(); n != 1 {
		t.Fatalf("%d reads for 20 concurrent misses, want 1", n)
	}
	for i, id := range []string{"a", "b", "c", "d"} {
		bm, err := c.Get(ctx, 1, id)
		if err != nil || !bm.Contains(uint32(i)) {
			t.Fatalf("Get(%s) = %v, %v", id, bm, err)
		}
	}
	if _, ok := c.Lookup(1, "a"); ok {
		t.Fatal("least recently used entry not evicted")
	}
	if _, ok := c.Lookup(1, "d"); !ok {
		t.Fatal("newest entry missing")
	}
	if c.lru.size > c.lru.max {
		t.Fatalf("size %d over %d", c.lru.size, c.lru.max)
	}
	before := src.audReads.Load()
	if _, err := c.Get(ctx, 1, "d"); err != nil || src.audReads.Load() != before {
		t.Fatalf("cached audience read again: %v", err)
	}
	if _, err := c.Get(ctx, 1, "nope"); !errors.Is(err, im.ErrNotFound) {
		t.Fatalf("unknown task: %v", err)
	}
	// A damaged audience row: the store keeps whatever bytes it was given.
	bad := delivertest.OpenFaulty(t)
	if _, _, err := bad.CreateTask(ctx, im.PushTask{App: 1, ID: "bad", State: im.TaskDone, Audience: []byte{1, 2, 3}}, 1<<62, im.TaskLimits{}); err != nil {
		t.Fatal(err)
	}
	bc := NewAudienceCache(bad, 0)
	if _, err := bc.Get(ctx, 1, "bad"); !errors.Is(err, errCorrupt) {
		t.Fatalf("corrupt audience: %v", err)
	}
}

// TestAckCacheReadsOncePerTask: a task's delivered set is read once
// however many connections ask, and acks taken here count at once without
// invalidating it.
func TestAckCacheReadsOncePerTask(t *testing.T) {
	ctx := context.Background()
	src := &countingTasks{Faulty: delivertest.OpenFaulty(t), delay: 5 * time.Millisecond}
	src.Add(im.PushTask{App: 1, ID: "t"}, 1, 2, 3, 4)
	if err := src.RecordAcks(ctx, 1, "t", []uint32{1}, nil); err != nil {
		t.Fatal(err)
	}
	a := newAckCache(src, 1<<20)
	k := taskKey{1, "t"}
	a.add(k, 3) // taken here before the stored set was read
	var wg sync.WaitGroup
	for ord := range uint32(5) {
		for range 10 {
			wg.Go(func() {
				got, err := a.has(ctx, k, ord)
				if want := ord == 1 || ord == 3; err != nil || got != want {
					t.Errorf("has(%d) = %v, %v; want %v", ord, got, err, want)
				}
			})
		}
	}
	wg.Wait()
	if n := src.ackReads.Load(); n != 1 {
		t.Fatalf("%d reads of the delivered set, want 1", n)
	}
	a.add(k, 4)
	a.account(k)
	if got, _ := a.has(ctx, k, 4); !got || src.ackReads.Load() != 1 {
		t.Fatalf("ack taken after the read: %v, reads %d", got, src.ackReads.Load())
	}
	if _, err := a.has(ctx, taskKey{1, "nope"}, 1); !errors.Is(err, im.ErrNotFound) {
		t.Fatalf("unknown task: %v", err)
	}
	// Bounded: many tasks do not grow the cache past its bound.
	small := newAckCache(src, 4*ackEntryBytes)
	for i := range 100 {
		small.add(taskKey{1, fmt.Sprint(i)}, 1)
	}
	if small.lru.size > small.lru.max {
		t.Fatalf("ack cache %d bytes over %d", small.lru.size, small.lru.max)
	}
}
