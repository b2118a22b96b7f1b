package deliver

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/im"
)

func TestSharedLoads(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	var epoch atomic.Uint64
	s := newShared[string, int](time.Second, 2, func() time.Time { return now }, epoch.Load)
	loads := 0
	load := func(v int, err error) func(context.Context) (int, error) {
		return func(context.Context) (int, error) { loads++; return v, err }
	}
	get := func(k string, minEpoch uint64, v int) int {
		t.Helper()
		got, err := s.get(ctx, k, minEpoch, time.Second, load(v, nil))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if get("a", 0, 1) != 1 || get("a", 0, 2) != 1 || loads != 1 {
		t.Fatalf("a fresh result is not shared (loads %d)", loads)
	}
	// A caller registered after the load started needs a newer one.
	epoch.Store(5)
	if get("a", 5, 3) != 3 || get("a", 5, 4) != 3 || get("a", 0, 9) != 3 {
		t.Fatal("epoch not respected")
	}
	now = now.Add(time.Second)
	if get("a", 0, 6) != 6 {
		t.Fatal("expired result reused")
	}
	s.forget("a")
	if get("a", 0, 7) != 7 {
		t.Fatal("forgotten result reused")
	}
	// Failed loads are not kept.
	boom := errors.New("boom")
	if _, err := s.get(ctx, "b", 0, time.Second, load(0, boom)); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if get("b", 0, 8) != 8 {
		t.Fatal("failure was cached")
	}
	// Bounded: finished entries make room.
	for _, k := range []string{"c", "d", "e", "f"} {
		get(k, 0, 1)
	}
	if n := len(s.m); n > 2 {
		t.Fatalf("%d entries kept, max 2", n)
	}
}

func TestSharedWaitersShareOneLoad(t *testing.T) {
	s := newShared[string, int](time.Second, 10, time.Now, func() uint64 { return 0 })
	release := make(chan struct{})
	var loads atomic.Int32
	load := func(context.Context) (int, error) { loads.Add(1); <-release; return 42, nil }
	results := make(chan int, 10)
	for range 10 {
		go func() {
			v, _ := s.get(context.Background(), "k", 0, time.Second, load)
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

func (s *shared[K, V]) snapshot() map[K]*flight[V] {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[K]*flight[V]{}
	for k, v := range s.m {
		out[k] = v
	}
	return out
}

func TestAudienceCache(t *testing.T) {
	task := func(id string, ords ...uint32) *im.PushTask {
		b, _ := roaring.BitmapOf(ords...).ToBytes()
		return &im.PushTask{App: 1, ID: id, Audience: b}
	}
	c := NewAudienceCache(200) // room for two small audiences
	for i, id := range []string{"a", "b", "c", "d"} {
		ok, err := c.Contains(task(id, uint32(i)), uint32(i))
		if err != nil || !ok {
			t.Fatalf("Contains(%s) = %v, %v", id, ok, err)
		}
	}
	if _, ok := c.Lookup(1, "a"); ok {
		t.Fatal("least recently used entry not evicted")
	}
	if _, ok := c.Lookup(1, "d"); !ok {
		t.Fatal("newest entry missing")
	}
	if c.size > c.max {
		t.Fatalf("size %d over %d", c.size, c.max)
	}
	if _, err := c.Audience(&im.PushTask{App: 1, ID: "bad", Audience: []byte{1, 2, 3}}); err == nil {
		t.Fatal("corrupt audience accepted")
	}
	if ok, err := c.Contains(&im.PushTask{App: 1, ID: "empty"}, 0); ok || err != nil {
		t.Fatalf("empty audience: %v, %v", ok, err)
	}
}
