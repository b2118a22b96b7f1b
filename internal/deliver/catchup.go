package deliver

import (
	"context"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/coder/websocket"

	"timd/internal/bitmap"
	"timd/internal/im"
)

// pageKey names one catch-up read: the app's stored tasks after a Seq.
type pageKey struct {
	app   uint64
	after int64
}

// storeTimeout bounds one task-store read made for catch-up.
const storeTimeout = 10 * time.Second

// catchUp sends c the app's stored, unexpired, unrevoked pushes after
// since whose audience holds c's ordinal and that the account has not
// acknowledged yet, oldest first. Together with live delivery this gives
// every stored push to every connection at least once: c was registered
// before catch-up started, so a push fanned out after that reaches c live,
// and one fanned out before was stored before — a read that starts after
// the registration sees it.
//
// Reads are shared between connections (a restart reconnects everyone at
// once, mostly with since=0): a read is reused only by connections
// registered before it started (pages.get's epoch), and for at most a
// second.
//
// Frames are written directly, not through the live queue, so a long
// catch-up is paced by the client instead of overflowing the queue. When a
// store read fails the connection is closed with 1011 so that the client
// reconnects and catches up again.
func (c *conn) catchUp(ctx context.Context, since int64) {
	h := c.h
	after := since
	for {
		page, err := h.pages.get(ctx, pageKey{c.app, after}, c.epoch, storeTimeout,
			func(ctx context.Context) ([]im.PushTask, error) {
				return h.tasks.StoredTasks(ctx, c.app, after, h.opt.Now().Unix(), h.opt.CatchUpPage)
			})
		if err != nil {
			if ctx.Err() == nil {
				h.log.Error("catch-up: reading stored tasks failed", "app", c.app, "err", err)
				c.stop(websocket.StatusInternalError, "catch-up failed, reconnect")
			}
			return
		}
		now := h.opt.Now().Unix()
		for i := range page {
			t := &page[i]
			after = t.Seq
			if t.ExpiresAt != 0 && t.ExpiresAt <= now {
				continue
			}
			if !h.unacked(ctx, t, c.ord) {
				continue
			}
			if c.stopping() || c.write(ctx, PushFrame(t)) != nil {
				return
			}
		}
		if len(page) < h.opt.CatchUpPage {
			return
		}
	}
}

// unacked reports whether t's audience holds ord and ord has not
// acknowledged t: neither in the store's delivered set (cached until the
// next flush of t's acks, at most 2 s) nor among the acks waiting to be
// written. Should the delivered set be unreadable, the push counts as
// unacknowledged: a repeat is harmless, a loss is not.
func (h *Hub) unacked(ctx context.Context, t *im.PushTask, ord uint32) bool {
	aud, err := h.aud.Audience(t)
	if err != nil {
		h.log.Error("catch-up: skipping task with a corrupt audience", "app", t.App, "task", t.ID, "err", err)
		return false
	}
	if !aud.Contains(ord) || h.acks.waiting(taskKey{t.App, t.ID}, ord) {
		return false
	}
	acked, err := h.delivered.get(ctx, taskKey{t.App, t.ID}, 0, storeTimeout,
		func(ctx context.Context) (*roaring.Bitmap, error) {
			delivered, _, err := h.tasks.AckSets(ctx, t.App, t.ID)
			if err != nil {
				return nil, err
			}
			return bitmap.Decode(delivered)
		})
	return err != nil || !acked.Contains(ord)
}
