package deliver

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/bitmap"
	"timd/internal/im"
)

// taskKey names one push task.
type taskKey struct {
	app uint64
	id  string
}

// AudienceCache decodes push task audiences (im.PushTask.Audience) and
// keeps the decoded bitmaps in an LRU bounded by their size in bytes. A
// task's audience never changes, so entries never go stale. Safe for
// concurrent use; the bitmaps it returns must not be modified.
type AudienceCache struct {
	max int64

	mu    sync.Mutex
	size  int64
	order *list.List // of *audEntry, most recently used first
	m     map[taskKey]*list.Element
}

type audEntry struct {
	key  taskKey
	bm   *roaring.Bitmap
	size int64
}

// DefaultCacheBytes is the default bound of an AudienceCache: about fifty
// decoded audiences of 10M accounts each.
const DefaultCacheBytes = 64 << 20

// NewAudienceCache returns a cache holding at most maxBytes of decoded
// bitmaps (DefaultCacheBytes when maxBytes <= 0). A single audience larger
// than the bound is decoded for each use and not kept.
func NewAudienceCache(maxBytes int64) *AudienceCache {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	return &AudienceCache{max: maxBytes, order: list.New(), m: map[taskKey]*list.Element{}}
}

// Audience returns t's decoded audience. It fails only when the stored
// bitmap is corrupt.
func (c *AudienceCache) Audience(t *im.PushTask) (*roaring.Bitmap, error) {
	k := taskKey{t.App, t.ID}
	if bm, ok := c.Lookup(t.App, t.ID); ok {
		return bm, nil
	}
	bm, err := bitmap.Decode(t.Audience)
	if err != nil {
		return nil, fmt.Errorf("task %s audience: %w", t.ID, err)
	}
	c.put(k, bm)
	return bm, nil
}

// Contains reports whether ordinal ord is in t's audience.
func (c *AudienceCache) Contains(t *im.PushTask, ord uint32) (bool, error) {
	bm, err := c.Audience(t)
	if err != nil {
		return false, err
	}
	return bm.Contains(ord), nil
}

// Lookup returns the cached audience of a task, if present.
func (c *AudienceCache) Lookup(app uint64, id string) (*roaring.Bitmap, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[taskKey{app, id}]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*audEntry).bm, true
}

func (c *AudienceCache) put(k taskKey, bm *roaring.Bitmap) {
	size := int64(bm.GetSizeInBytes()) + int64(len(k.id)) + 64
	if size > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		return
	}
	c.m[k] = c.order.PushFront(&audEntry{key: k, bm: bm, size: size})
	c.size += size
	for c.size > c.max {
		last := c.order.Back()
		e := last.Value.(*audEntry)
		c.order.Remove(last)
		delete(c.m, e.key)
		c.size -= e.size
	}
}

// shared runs one load per key at a time and shares its result with every
// caller that may use it: a result is usable while younger than ttl and, for
// callers that pass a minimum epoch, only if its load started at or after
// that epoch (see catchUp). Failed loads are not kept. At most max results
// are kept.
type shared[K comparable, V any] struct {
	ttl   time.Duration
	max   int
	now   func() time.Time
	epoch func() uint64

	mu sync.Mutex
	m  map[K]*flight[V]
}

type flight[V any] struct {
	done  chan struct{}
	epoch uint64    // epoch when the load started
	at    time.Time // when it finished; zero while loading
	v     V
	err   error
}

func newShared[K comparable, V any](ttl time.Duration, max int, now func() time.Time, epoch func() uint64) *shared[K, V] {
	return &shared[K, V]{ttl: ttl, max: max, now: now, epoch: epoch, m: map[K]*flight[V]{}}
}

// get returns the value for k, loading it unless a usable load exists or
// is running. The load runs with a context detached from ctx's
// cancellation (other callers wait for it) but bounded by timeout.
func (s *shared[K, V]) get(ctx context.Context, k K, minEpoch uint64, timeout time.Duration,
	load func(context.Context) (V, error)) (V, error) {
	s.mu.Lock()
	f := s.m[k]
	if f == nil || !s.usable(f, minEpoch) {
		f = &flight[V]{done: make(chan struct{}), epoch: s.epoch()}
		s.prune()
		s.m[k] = f
		s.mu.Unlock()
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		v, err := load(lctx)
		cancel()
		s.mu.Lock()
		f.v, f.err, f.at = v, err, s.now()
		if err != nil && s.m[k] == f {
			delete(s.m, k)
		}
		s.mu.Unlock()
		close(f.done)
		return v, err
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

// forget drops k's result or running load, so that the next get loads
// it again.
func (s *shared[K, V]) forget(k K) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
}

// usable reports whether f may answer a caller; s.mu is held.
func (s *shared[K, V]) usable(f *flight[V], minEpoch uint64) bool {
	if f.epoch < minEpoch {
		return false
	}
	return f.at.IsZero() || s.now().Sub(f.at) < s.ttl
}

// prune makes room for one more entry; s.mu is held.
func (s *shared[K, V]) prune() {
	if len(s.m) < s.max {
		return
	}
	now := s.now()
	for k, f := range s.m {
		if !f.at.IsZero() && now.Sub(f.at) >= s.ttl {
			delete(s.m, k)
		}
	}
	if len(s.m) < s.max {
		return
	}
	for k, f := range s.m { // still full of fresh results: drop the finished ones
		if !f.at.IsZero() {
			delete(s.m, k)
		}
	}
}
