package deliver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/bitmap"
	"timd/internal/im"
)

// ackBatcher collects acks and clicks per task and writes them to the task
// store every AckInterval, so that a push acknowledged by a million clients
// costs a few writes per second rather than a million.
type ackBatcher struct {
	h *Hub

	mu      sync.Mutex
	pending map[taskKey]*ackSet
}

type ackSet struct {
	delivered *roaring.Bitmap
	clicked   *roaring.Bitmap
}

func newAckBatcher(h *Hub) *ackBatcher {
	return &ackBatcher{h: h, pending: map[taskKey]*ackSet{}}
}

// note records an ack (or, with click, a click, which implies delivery)
// of task id by c's account. It is ignored unless the task exists in c's
// app and its audience contains c's ordinal: a client can acknowledge only
// its own pushes. The ack counts at once for catch-up (Hub.acked) and is
// written with the next flush.
func (b *ackBatcher) note(ctx context.Context, c *conn, id string, click bool) {
	// A failing store read is retried (the client's reader waits), so a
	// transient failure never drops an ack: a dropped ack would make the
	// push owed again at the next connect.
	var aud *roaring.Bitmap
	err := b.h.retry(ctx, "read task audience for an ack", c.app, func() (err error) {
		aud, err = b.h.aud.Get(ctx, c.app, id)
		return err
	})
	if err != nil {
		if !errors.Is(err, im.ErrNotFound) && ctx.Err() == nil {
			b.h.log.Warn("ack: cannot read task", "app", c.app, "task", id, "err", err)
		}
		return
	}
	if !aud.Contains(c.ord) {
		return
	}
	k := taskKey{c.app, id}
	b.h.acked.add(k, c.ord)
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.pending[k]
	if s == nil {
		s = &ackSet{delivered: roaring.New(), clicked: roaring.New()}
		b.pending[k] = s
	}
	s.delivered.Add(c.ord)
	if click {
		s.clicked.Add(c.ord)
	}
}

// run flushes every AckInterval until ctx ends.
func (b *ackBatcher) run(ctx context.Context) {
	t := time.NewTicker(b.h.opt.AckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.flush(ctx, false)
		}
	}
}

// flush writes the pending sets. A set that fails to write is kept for the
// next flush, unless final.
func (b *ackBatcher) flush(ctx context.Context, final bool) {
	b.mu.Lock()
	batch := b.pending
	b.pending = map[taskKey]*ackSet{}
	b.mu.Unlock()
	for k, s := range batch {
		err := b.h.tasks.RecordAcks(ctx, k.app, k.id, s.delivered.ToArray(), s.clicked.ToArray())
		if err == nil {
			b.h.stats.acks.Add(s.delivered.GetCardinality() + s.clicked.GetCardinality())
			b.h.acked.account(k)
			continue
		}
		if final || errors.Is(err, im.ErrNotFound) {
			b.h.log.Error("acks lost", "app", k.app, "task", k.id, "acks", s.delivered.GetCardinality(), "err", err)
			continue
		}
		if ctx.Err() == nil {
			b.h.log.Warn("recording acks failed, will retry", "app", k.app, "task", k.id, "err", err)
		}
		b.requeue(k, s)
	}
}

func (b *ackBatcher) requeue(k taskKey, s *ackSet) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur := b.pending[k]; cur != nil {
		cur.delivered.Or(s.delivered)
		cur.clicked.Or(s.clicked)
		return
	}
	b.pending[k] = s
}

// ackCache is the acknowledgement state catch-up consults: per task, the
// set of ordinals that acknowledged it, read from the store once per
// process and kept current by every ack this hub takes (added as it
// arrives, before it is written). So a reconnect storm reads each task's
// delivered set once, not once per connection, and an ack flush does not
// invalidate anything. Entries live in an LRU bounded in bytes; an evicted
// task is read again when next needed.
//
// Acks taken by other nodes after the read are not seen: such a client may
// get a push it already acknowledged once more, which delivery allows (at
// least once), never one less.
type ackCache struct {
	src   im.TaskStore
	lru   *lru[taskKey, *ackState]
	loads *shared[taskKey, struct{}]
}

// ackState is one task's acknowledged ordinals. set holds the acks taken
// here; once loaded it also holds the stored ones.
type ackState struct {
	mu     sync.RWMutex
	set    *roaring.Bitmap
	loaded bool
}

// ackEntryBytes is what an ackState costs before its bitmap is known.
const ackEntryBytes = 256

func newAckCache(src im.TaskStore, maxBytes int64) *ackCache {
	return &ackCache{src: src, lru: newLRU[taskKey, *ackState](maxBytes),
		loads: newShared[taskKey, struct{}](0, 1024, time.Now, nil, loadTimeout)}
}

func (a *ackCache) state(k taskKey) *ackState {
	return a.lru.getOrPut(k, func() (*ackState, int64) { return &ackState{set: roaring.New()}, ackEntryBytes })
}

// add records that ord acknowledged k.
func (a *ackCache) add(k taskKey, ord uint32) {
	st := a.state(k)
	st.mu.Lock()
	st.set.Add(ord)
	st.mu.Unlock()
}

// account updates the size the LRU charges for k's entry, which acks
// added since it was last charged have grown.
func (a *ackCache) account(k taskKey) {
	st, ok := a.lru.get(k)
	if !ok {
		return
	}
	st.mu.RLock()
	size := int64(st.set.GetSizeInBytes()) + ackEntryBytes
	st.mu.RUnlock()
	a.lru.resize(k, size)
}

// has reports whether ord acknowledged k, reading k's stored set first if
// this process has not. A store failure is returned (the caller retries);
// a corrupt stored set wraps errCorrupt.
func (a *ackCache) has(ctx context.Context, k taskKey, ord uint32) (bool, error) {
	st := a.state(k)
	st.mu.RLock()
	loaded, in := st.loaded, st.set.Contains(ord)
	st.mu.RUnlock()
	if in || loaded {
		return in, nil
	}
	_, err := a.loads.get(ctx, k, 0, func(ctx context.Context) (struct{}, error) {
		st := a.state(k) // the entry may have been evicted and replaced meanwhile
		st.mu.RLock()
		loaded := st.loaded
		st.mu.RUnlock()
		if loaded {
			return struct{}{}, nil
		}
		d, _, err := a.src.AckSets(ctx, k.app, k.id)
		if err != nil {
			return struct{}{}, err
		}
		stored, err := bitmap.Decode(d)
		if err != nil {
			return struct{}{}, fmt.Errorf("task %s delivered set: %w: %v", k.id, errCorrupt, err)
		}
		st.mu.Lock()
		st.set.Or(stored)
		st.loaded = true
		size := int64(st.set.GetSizeInBytes()) + ackEntryBytes
		st.mu.Unlock()
		a.lru.resize(k, size)
		return struct{}{}, nil
	})
	if err != nil {
		return false, err
	}
	st = a.state(k)
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.set.Contains(ord), nil
}
