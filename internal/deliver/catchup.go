package deliver

import (
	"context"
	"errors"
	"time"

	"timd/internal/im"
)

// pageKey names one catch-up read: the app's stored task heads after a Seq.
type pageKey struct {
	app   uint64
	after int64
}

// stored is one stored push as catch-up sends it: its head and its frame,
// rendered once per process.
type stored struct {
	head  im.TaskHead
	frame []byte
}

// catchUp sends c the app's stored, unexpired, unrevoked pushes after
// since whose audience holds c's ordinal and that the account has not
// acknowledged yet, oldest first. Together with live delivery this gives
// every stored push to every connection at least once: c was registered
// before catch-up started, so a push fanned out after that reaches c live,
// and one fanned out before was stored before — a read that starts after
// the registration sees it.
//
// What it costs does not grow with audiences or connections: the store
// reads task heads only, and those reads are shared — a read is reused
// only by connections registered before it started (c.epoch), and while
// one runs the connections that arrive later all wait for the one read
// queued behind it. Each task's audience and acknowledgement set are read
// once per process (AudienceCache, ackCache), and its frame is rendered
// once.
//
// Frames are written directly, not through the live queue, so a long
// catch-up is paced by the client instead of overflowing the queue. At
// most Options.CatchUps connections check and write a page at once; the
// others wait for a slot (see gate), however long that takes.
//
// When the store is slow, catch-up waits for it; when a read fails, it
// retries with backoff (Hub.retry) for as long as the connection is open.
// A connection is never closed because the store could not answer.
func (c *conn) catchUp(ctx context.Context, since int64) {
	c.catchUpFrom(ctx, since, c.epoch)
}

// catchUpFrom is catchUp reusing only store reads that started at or
// after minEpoch (Hub.Resync passes a new one: it must see the store as it
// is now).
func (c *conn) catchUpFrom(ctx context.Context, since int64, minEpoch uint64) {
	h := c.h
	after := since
	for {
		var page []stored
		err := h.retry(ctx, "read stored task heads", c.app, func() (err error) {
			page, err = h.pages.get(ctx, pageKey{c.app, after}, minEpoch, func(ctx context.Context) ([]stored, error) {
				return h.storedAfter(ctx, c.app, after)
			})
			return err
		})
		if err != nil {
			return // c is closing
		}
		if !h.catchUps.enter(ctx, c.quit) {
			return // c is closing
		}
		var ok bool
		after, ok = c.sendPage(ctx, page, after)
		h.catchUps.leave()
		if !ok || len(page) < h.opt.CatchUpPage {
			return
		}
	}
}

// sendPage sends c the tasks of page it is owed, holding one of the hub's
// catch-up slots (see gate): the slot is taken per page, not per
// catch-up, so that a long catch-up lets the others take turns. It returns
// the Seq to read on from, and false when c is closing. The owed checks
// may wait for a store read while holding the slot: the connections that
// queue behind it need the same task's audience and acknowledgements,
// which that one read (shared by all) brings.
func (c *conn) sendPage(ctx context.Context, page []stored, after int64) (int64, bool) {
	h := c.h
	now := h.opt.Now().Unix()
	for i := range page {
		p := &page[i]
		after = p.head.Seq
		if p.head.ExpiresAt != 0 && p.head.ExpiresAt <= now {
			continue
		}
		owed, err := h.owed(ctx, p, c.ord)
		if err != nil {
			return after, false // c is closing
		}
		if !owed || !c.sent.claim(p.head.ID) {
			continue
		}
		if c.stopping() || c.write(ctx, p.frame) != nil {
			return after, false
		}
	}
	return after, true
}

// storedAfter reads one page of the app's stored task heads after a Seq
// and renders their frames, reusing those rendered before.
func (h *Hub) storedAfter(ctx context.Context, app uint64, after int64) ([]stored, error) {
	heads, err := h.tasks.StoredHeads(ctx, app, after, h.opt.Now().Unix(), h.opt.CatchUpPage)
	if err != nil {
		return nil, err
	}
	out := make([]stored, len(heads))
	for i := range heads {
		hd := &heads[i]
		out[i] = stored{head: *hd, frame: h.Frame(hd)}
	}
	return out, nil
}

// owed reports whether p is owed to ord: its audience holds ord and ord
// has not acknowledged it. A task whose stored audience or delivered set
// is corrupt is skipped, respectively sent (a repeat is harmless, a loss
// is not). The error is ctx's, once it ends.
func (h *Hub) owed(ctx context.Context, p *stored, ord uint32) (bool, error) {
	k := taskKey{p.head.App, p.head.ID}
	var in bool
	err := h.retry(ctx, "read task audience", k.app, func() error {
		aud, err := h.aud.Get(ctx, k.app, k.id)
		if err == nil {
			in = aud.Contains(ord)
		}
		return err
	})
	switch {
	case ctx.Err() != nil:
		return false, ctx.Err()
	case errors.Is(err, errCorrupt):
		h.log.Error("catch-up: skipping task with a corrupt audience", "app", k.app, "task", k.id, "err", err)
		return false, nil
	case err != nil: // the task is gone: nothing is owed
		return false, nil
	case !in:
		return false, nil
	}
	var acked bool
	err = h.retry(ctx, "read task acknowledgements", k.app, func() (err error) {
		acked, err = h.acked.has(ctx, k, ord)
		return err
	})
	switch {
	case ctx.Err() != nil:
		return false, ctx.Err()
	case err != nil: // corrupt or gone: send
		return true, nil
	}
	return !acked, nil
}

// Retry backoff bounds for store reads made for catch-up.
const (
	retryFirst = 20 * time.Millisecond
	retryMax   = 2 * time.Second
)

// retry runs read until it succeeds, fails for good (im.ErrNotFound, a
// corrupt bitmap) or ctx ends, backing off between attempts from
// retryFirst to retryMax. It returns read's last error, or ctx's.
func (h *Hub) retry(ctx context.Context, what string, app uint64, read func() error) error {
	wait := retryFirst
	for attempt := 0; ; attempt++ {
		err := read()
		if err == nil || errors.Is(err, im.ErrNotFound) || errors.Is(err, errCorrupt) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		h.stats.retries.Add(1)
		if attempt == 0 {
			h.log.Warn("catch-up: store read failed; the client waits and it is retried", "what", what, "app", app, "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, retryMax)
	}
}
