package deliver

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/coder/websocket"

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
// acknowledged yet, in Seq order, then switches c to live delivery and
// writes a caughtup frame with the Seq it reached.
//
// Together with live delivery this gives every stored push to c once and
// in Seq order, up to the switch. c is registered before catch-up starts,
// so a stored push fanned out before that was stored before, and the
// first read, which starts after the registration, sees it. A stored
// push fanned out to c while it catches up is not queued but noted
// (conn.enqueue): it was stored before its fan-out, so a read that starts
// after the note finds it. When the reads reach the store's head, c
// switches to live under c.order unless a note is left whose Seq is past
// the cursor and that no read started after; then it reads on from its
// cursor, from a fresh read, and checks again. So nothing noted is lost,
// nothing is written twice (c.sent), and no live stored push overtakes an
// older one that catch-up has still to send. Pushes keep coming only as
// fast as they are accepted, so the reads reach the head: each round
// reads only what was stored during the one before.
//
// What it costs does not grow with audiences or connections: the store
// reads task heads only, and those reads are shared. The hub's epoch
// moves on each stored push's fan-out (Hub.Deliver) and each revoke, before
// they look at any connection, and c.epoch is the epoch once c was
// registered. A read is reused only by connections whose epoch is not
// newer than the epoch it started in: no stored push was fanned out and
// none revoked between its start and their registration, so anything it
// lacks was fanned out after they registered, and noted. While a read
// runs that a connection may not use, the connections that arrive all
// wait for the one read queued behind it; in a reconnect storm with no
// pushes going on, one read a second (the cache's TTL) serves them all. Each task's audience and acknowledgement set are read
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
	h := c.h
	after, minEpoch, covered := since, c.epoch, uint64(0)
	for {
		var ok bool
		if after, ok = c.catchUpFrom(ctx, after, minEpoch); !ok {
			return // c is closing
		}
		if c.goLive(after, &covered) {
			break
		}
		if hk := h.hooks.Load(); hk != nil && hk.reread != nil {
			hk.reread(c.id)
		}
		minEpoch = h.epoch.Add(1) // the next read must start after the notes taken so far
	}
	if c.write(ctx, CaughtUpFrame(after)) != nil {
		c.stop(websocket.StatusGoingAway, "write failed")
	}
}

// goLive switches c to live delivery unless a push noted while it caught
// up may have been missed by its reads: one with a Seq past after, noted
// after the reads that covered the first *covered notes had started. In
// that case it marks every note so far as covered by the next read and
// reports false.
func (c *conn) goLive(after int64, covered *uint64) bool {
	c.order.Lock()
	defer c.order.Unlock()
	if c.notes == *covered || c.notedSeq <= after {
		c.live.Store(true)
		return true
	}
	*covered = c.notes
	return false
}

// noteResync makes a connection still catching up read the store afresh
// before it goes live (see Hub.Resync); it reports false when c is live.
func (c *conn) noteResync() bool {
	return c.note(math.MaxInt64)
}

// catchUpFrom sends c what it is owed of the stored pushes after after,
// page by page until a short page shows the store's head, reusing only
// store reads that started at or after minEpoch. It returns the Seq it
// reached, and false when c is closing.
func (c *conn) catchUpFrom(ctx context.Context, after int64, minEpoch uint64) (int64, bool) {
	h := c.h
	for {
		var page []stored
		err := h.retry(ctx, "read stored task heads", c.app, func() (err error) {
			page, err = h.pages.get(ctx, pageKey{c.app, after}, minEpoch, func(ctx context.Context) ([]stored, error) {
				return h.storedAfter(ctx, c.app, after)
			})
			return err
		})
		if err != nil {
			return after, false
		}
		if hk := h.hooks.Load(); hk != nil && hk.page != nil {
			hk.page(c.id, after, len(page))
		}
		if !h.catchUps.enter(ctx, c.quit) {
			return after, false
		}
		var ok bool
		after, ok = c.sendPage(ctx, page, after)
		h.catchUps.leave()
		if !ok {
			return after, false
		}
		if len(page) < h.opt.CatchUpPage {
			return after, true
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
//
// On a batched connection (batch=1) the owed push frames of the page go
// out as pushes messages (AppendPushesFrame), in Seq order, each at most
// MaxPushesBytes unless it carries a single larger push; a push is
// claimed (c.sent) before it joins a message, as it is before its own
// frame is written otherwise.
func (c *conn) sendPage(ctx context.Context, page []stored, after int64) (int64, bool) {
	h := c.h
	now := h.opt.Now().Unix()
	var b pushesBuf
	defer b.release()
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
		if c.stopping() {
			return after, false
		}
		if !c.batch {
			if c.write(ctx, p.frame) != nil {
				return after, false
			}
			continue
		}
		if b.full(p.frame) && c.flush(ctx, &b) != nil {
			return after, false
		}
		b.add(p.frame)
	}
	if c.flush(ctx, &b) != nil {
		return after, false
	}
	return after, true
}

var errStopping = errors.New("connection closing")

// pushesBuf builds one pushes message, in a buffer from pushesPool: in a
// reconnect storm every connection builds one of tens of KiB, which would
// otherwise all be garbage.
type pushesBuf struct {
	buf *[]byte
	msg []byte // the message so far, without its closing; empty when no push
	n   int    // pushes in msg
}

var pushesPool = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// release returns b's buffer to pushesPool, unless a push larger than
// MaxPushesBytes grew it.
func (b *pushesBuf) release() {
	if b.buf != nil && cap(b.msg) <= 2*MaxPushesBytes {
		*b.buf = b.msg[:0]
		pushesPool.Put(b.buf)
	}
	b.buf, b.msg = nil, nil
}

// full reports whether adding frame would take a message that already
// holds a push over MaxPushesBytes.
func (b *pushesBuf) full(frame []byte) bool {
	return b.n > 0 && len(b.msg)+1+len(frame)+len(pushesClose) > MaxPushesBytes
}

func (b *pushesBuf) add(frame []byte) {
	if b.buf == nil {
		b.buf = pushesPool.Get().(*[]byte)
		b.msg = *b.buf
	}
	if b.n == 0 {
		b.msg = append(b.msg[:0], pushesOpen...)
	} else {
		b.msg = append(b.msg, ',')
	}
	b.msg = append(b.msg, frame...)
	b.n++
}

// flush writes b's message, if it holds a push, and empties b. It fails
// when c is closing.
func (c *conn) flush(ctx context.Context, b *pushesBuf) error {
	if b.n == 0 {
		return nil
	}
	if c.stopping() {
		return errStopping
	}
	b.msg = append(b.msg, pushesClose...)
	b.n = 0
	return c.write(ctx, b.msg)
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
// has not acknowledged it. The acknowledgements are read first: a task's
// delivered set holds only the accounts that were live, while its
// audience can be millions (1.25 MB decoded for a tenth of 10M), so a
// client reconnecting after a restart does not make the audiences of the
// pushes it has acknowledged be read and decoded again. A task whose
// stored audience or delivered set is corrupt is skipped, respectively
// sent (a repeat is harmless, a loss is not). The error is ctx's, once it
// ends.
func (h *Hub) owed(ctx context.Context, p *stored, ord uint32) (bool, error) {
	k := taskKey{p.head.App, p.head.ID}
	var acked bool
	ackErr := h.retry(ctx, "read task acknowledgements", k.app, func() (err error) {
		acked, err = h.acked.has(ctx, k, ord)
		return err
	})
	switch {
	case ctx.Err() != nil:
		return false, ctx.Err()
	case ackErr == nil && acked:
		return false, nil
	}
	// Not acknowledged, or its delivered set is corrupt or gone: owed if
	// the audience holds ord.
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
	}
	return in, nil
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
