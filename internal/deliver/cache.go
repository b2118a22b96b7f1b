package deliver

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/bitmap"
)

// taskKey names one push task.
type taskKey struct {
	app uint64
	id  string
}

// AudienceSource reads a task's serialized audience (im.TaskStore has it).
type AudienceSource interface {
	TaskAudience(ctx context.Context, app uint64, id string) ([]byte, error)
}

// errCorrupt marks a stored bitmap that does not decode. Reading it again
// does not help, so callers that retry store reads give up on it.
var errCorrupt = errors.New("corrupt stored bitmap")

// AudienceCache holds decoded push task audiences, reading each from its
// source once: concurrent misses of one task share one read, and decoded
// bitmaps stay in an LRU bounded by their size in bytes. A task's audience
// never changes, so entries never go stale. Safe for concurrent use; the
// bitmaps it returns must not be modified.
type AudienceCache struct {
	src   AudienceSource
	lru   *lru[taskKey, *roaring.Bitmap]
	loads *shared[taskKey, *roaring.Bitmap]
}

// DefaultCacheBytes is the default bound of an AudienceCache: about two
// hundred decoded audiences of a tenth of 10M accounts each (`timd serve
// --audience-cache`).
const DefaultCacheBytes = 256 << 20

// loadTimeout bounds one store read made on behalf of waiting callers. A
// read that runs out is retried by the callers that still wait (see
// Hub.retry); the bound only keeps a wedged read from holding a store
// connection forever.
const loadTimeout = time.Minute

// NewAudienceCache returns a cache reading audiences from src and holding
// at most maxBytes of decoded bitmaps (DefaultCacheBytes when maxBytes <=
// 0). A single audience larger than the bound is read for each use and not
// kept.
func NewAudienceCache(src AudienceSource, maxBytes int64) *AudienceCache {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	return &AudienceCache{src: src, lru: newLRU[taskKey, *roaring.Bitmap](maxBytes),
		loads: newShared[taskKey, *roaring.Bitmap](0, 1024, time.Now, nil, loadTimeout)}
}

// Get returns the decoded audience of task id of app, reading it when it
// is not cached. An unknown task is im.ErrNotFound; a corrupt stored
// audience is an error that wraps errCorrupt.
func (c *AudienceCache) Get(ctx context.Context, app uint64, id string) (*roaring.Bitmap, error) {
	k := taskKey{app, id}
	if bm, ok := c.lru.get(k); ok {
		return bm, nil
	}
	return c.loads.get(ctx, k, 0, func(ctx context.Context) (*roaring.Bitmap, error) {
		if bm, ok := c.lru.get(k); ok { // loaded while this load waited its turn
			return bm, nil
		}
		b, err := c.src.TaskAudience(ctx, app, id)
		if err != nil {
			return nil, err
		}
		bm, err := bitmap.Decode(b)
		if err != nil {
			return nil, fmt.Errorf("task %s audience: %w: %v", id, errCorrupt, err)
		}
		c.lru.put(k, bm, int64(bm.GetSizeInBytes())+int64(len(id))+64)
		return bm, nil
	})
}

// Lookup returns the cached audience of a task, if present; it never reads
// the source.
func (c *AudienceCache) Lookup(app uint64, id string) (*roaring.Bitmap, bool) {
	return c.lru.get(taskKey{app, id})
}

// lru is a map bounded by the total size its callers assign to entries;
// the least recently used entries go first. An entry larger than the bound
// is not kept. Safe for concurrent use.
type lru[K comparable, V any] struct {
	max int64

	mu    sync.Mutex
	size  int64
	order *list.List // of *lruEntry, most recently used first
	m     map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key  K
	v    V
	size int64
}

func newLRU[K comparable, V any](maxBytes int64) *lru[K, V] {
	return &lru[K, V]{max: maxBytes, order: list.New(), m: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruEntry[K, V]).v, true
}

// put adds or replaces k's entry and reports whether it is kept.
func (c *lru[K, V]) put(k K, v V, size int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[k]; ok {
		e := el.Value.(*lruEntry[K, V])
		c.size -= e.size
		c.order.Remove(el)
		delete(c.m, k)
	}
	if size > c.max {
		return false
	}
	c.m[k] = c.order.PushFront(&lruEntry[K, V]{key: k, v: v, size: size})
	c.size += size
	for c.size > c.max {
		last := c.order.Back()
		e := last.Value.(*lruEntry[K, V])
		c.order.Remove(last)
		delete(c.m, e.key)
		c.size -= e.size
	}
	return true
}

// getOrPut returns k's entry, adding the value and size mk returns when
// there is none; the value is returned even if it could not be kept.
func (c *lru[K, V]) getOrPut(k K, mk func() (V, int64)) V {
	c.mu.Lock()
	if el, ok := c.m[k]; ok {
		c.order.MoveToFront(el)
		v := el.Value.(*lruEntry[K, V]).v
		c.mu.Unlock()
		return v
	}
	c.mu.Unlock()
	v, size := mk()
	c.mu.Lock()
	if el, ok := c.m[k]; ok { // another caller won
		v = el.Value.(*lruEntry[K, V]).v
		c.mu.Unlock()
		return v
	}
	c.mu.Unlock()
	c.put(k, v, size)
	return v
}

// resize updates the size of k's entry, evicting others if needed.
func (c *lru[K, V]) resize(k K, size int64) {
	c.mu.Lock()
	el, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		c.put(k, el.Value.(*lruEntry[K, V]).v, size)
	}
}

// shared runs loads for callers that would otherwise each read the same
// thing, one load per key at a time, and coalesces the rest: a caller joins
// the running load when it may use its result, and otherwise the one load
// queued behind it, which every later caller joins too. So however many
// callers arrive, a key has at most one load running and one waiting.
//
// A result may answer a caller while younger than ttl (0: only while the
// load runs) and, for callers that pass a minimum epoch, only if its load
// started at or after that epoch (see catchUp). Failed loads are not kept.
// Loads run on their own goroutine, detached from the callers' contexts
// but bounded by timeout, so a caller that leaves does not fail the others.
type shared[K comparable, V any] struct {
	ttl     time.Duration
	max     int
	now     func() time.Time
	epoch   func() uint64
	timeout time.Duration

	mu sync.Mutex
	m  map[K]*slot[V]
}

// slot is one key's loads: the last started (running or finished) and the
// one queued behind it.
type slot[V any] struct {
	last, next *flight[V]
}

type flight[V any] struct {
	done  chan struct{}
	epoch uint64    // epoch when the load started
	at    time.Time // when it finished; zero while loading
	v     V
	err   error
}

func newShared[K comparable, V any](ttl time.Duration, max int, now func() time.Time, epoch func() uint64,
	timeout time.Duration) *shared[K, V] {
	if epoch == nil {
		epoch = func() uint64 { return 0 }
	}
	return &shared[K, V]{ttl: ttl, max: max, now: now, epoch: epoch, timeout: timeout, m: map[K]*slot[V]{}}
}

// get returns the value for k from a load it may use, starting or queueing
// one when there is none. It returns early, with ctx's error, when ctx
// ends.
func (s *shared[K, V]) get(ctx context.Context, k K, minEpoch uint64,
	load func(context.Context) (V, error)) (V, error) {
	s.mu.Lock()
	sl := s.m[k]
	if sl == nil {
		s.prune()
		sl = &slot[V]{}
		s.m[k] = sl
	}
	var f *flight[V]
	switch {
	case sl.last != nil && s.usable(sl.last, minEpoch):
		f = sl.last
	case sl.next != nil:
		f = sl.next
	case sl.last != nil && sl.last.at.IsZero(): // running, but started too early for us
		f = &flight[V]{done: make(chan struct{})}
		sl.next = f
		prev := sl.last
		go func() {
			<-prev.done
			s.run(sl, f, load)
		}()
	default:
		f = &flight[V]{done: make(chan struct{})}
		sl.next = f
		go s.run(sl, f, load)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.v, f.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// run starts f, sl's queued load: its epoch is taken now, after every
// caller that joined it had registered.
func (s *shared[K, V]) run(sl *slot[V], f *flight[V], load func(context.Context) (V, error)) {
	s.mu.Lock()
	f.epoch = s.epoch()
	sl.last, sl.next = f, nil
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	v, err := load(ctx)
	cancel()
	s.mu.Lock()
	f.v, f.err, f.at = v, err, s.now()
	if err != nil && sl.last == f {
		sl.last = nil
	}
	s.mu.Unlock()
	close(f.done)
}

// usable reports whether f may answer a caller; s.mu is held.
func (s *shared[K, V]) usable(f *flight[V], minEpoch uint64) bool {
	if f.epoch < minEpoch {
		return false
	}
	return f.at.IsZero() || s.now().Sub(f.at) < s.ttl
}

// idle reports whether sl has nothing running or queued and no usable
// result; s.mu is held.
func (s *shared[K, V]) idle(sl *slot[V]) bool {
	return sl.next == nil && (sl.last == nil || (!sl.last.at.IsZero() && s.now().Sub(sl.last.at) >= s.ttl))
}

// prune makes room for one more key; s.mu is held. Keys with a load
// running or queued are kept whatever the bound: there are at most as
// many as callers waiting.
func (s *shared[K, V]) prune() {
	if len(s.m) < s.max {
		return
	}
	for k, sl := range s.m {
		if s.idle(sl) {
			delete(s.m, k)
		}
	}
	if len(s.m) < s.max {
		return
	}
	for k, sl := range s.m { // still full of fresh results: drop them
		if sl.next == nil && (sl.last == nil || !sl.last.at.IsZero()) {
			delete(s.m, k)
		}
	}
}
