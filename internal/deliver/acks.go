package deliver

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

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
// its own pushes.
func (b *ackBatcher) note(ctx context.Context, c *conn, id string, click bool) {
	aud, err := b.h.audienceOf(ctx, c.app, id)
	if err != nil {
		if !errors.Is(err, im.ErrNotFound) && ctx.Err() == nil {
			b.h.log.Warn("ack: cannot read task", "app", c.app, "task", id, "err", err)
		}
		return
	}
	if !aud.Contains(c.ord) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.pending[taskKey{c.app, id}]
	if s == nil {
		s = &ackSet{delivered: roaring.New(), clicked: roaring.New()}
		b.pending[taskKey{c.app, id}] = s
	}
	s.delivered.Add(c.ord)
	if click {
		s.clicked.Add(c.ord)
	}
}

// audienceOf returns the decoded audience of a task of app, reading the
// task when it is not cached. An unknown task is im.ErrNotFound.
func (h *Hub) audienceOf(ctx context.Context, app uint64, id string) (*roaring.Bitmap, error) {
	if bm, ok := h.aud.Lookup(app, id); ok {
		return bm, nil
	}
	t, err := h.tasks.Task(ctx, app, id)
	if err != nil {
		return nil, err
	}
	return h.aud.Audience(&t)
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
			b.h.delivered.forget(k)
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

// waiting reports whether ord's ack of a task is waiting to be written.
func (b *ackBatcher) waiting(k taskKey, ord uint32) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.pending[k]
	return s != nil && s.delivered.Contains(ord)
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
