package deliver

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"timd/internal/im"
)

// conn is one live WebSocket of one account. Three goroutines serve it:
// the reader (the Accept caller's), the writer, and, right after the
// connect, the catch-up. stop asks all of them to end.
type conn struct {
	h        *Hub
	ws       *websocket.Conn
	app      uint64
	id       string
	ord      uint32
	platform string
	batch    bool   // catch-up writes pushes messages (the connect's batch=1)
	kickedAt int64  // the account's KickedAt when c authenticated
	epoch    uint64 // the hub's epoch once c was added (see catchUp)
	ctx      context.Context
	resync   atomic.Int32 // resyncs wanted or running, see Hub.Resync

	send    chan []byte // live frames; bounded, never blocks a sender
	sent    sentSet     // TaskIds already given to this connection
	limiter *rate.Limiter
	pinging atomic.Bool
	// catching is set while the connect-time catch-up runs or waits for
	// its turn; the heartbeat leaves c alone meanwhile (see writeLoop).
	catching atomic.Bool
	heard    atomic.Int64 // when the client's last frame was read (unix ns)
	caught   atomic.Int64 // when the connect-time catch-up ended (unix ns; 0: not yet)

	// live is set once the connect-time catch-up has reached the store's
	// head; until then live push frames of stored tasks are not queued
	// but noted (notes, notedSeq), and catch-up reads on until no note is
	// left that its reads may have missed (see catchUp). order guards
	// the switch: a note is taken, or the frame queued, under it.
	live     atomic.Bool
	since    int64 // the connect's since: pushes up to it are not catch-up's
	order    sync.Mutex
	notes    uint64 // stored push frames noted instead of queued
	notedSeq int64  // the highest Seq among them

	stopOnce sync.Once
	quit     chan struct{} // closed by stop
	code     websocket.StatusCode
	reason   string
	cancel   context.CancelFunc // tears the connection down (after CloseGrace)
	kill     *time.Timer
	done     chan struct{} // closed when every goroutine of c has ended
}

// Accept takes over an authenticated WebSocket request for acct, an
// imported UserID of app, connected from platform. The caller has checked
// the UserSig; Accept upgrades, registers the connection, sends the
// account's unacknowledged stored pushes after the optional `since` query
// parameter (a Seq, default 0), and serves the connection until it ends.
// With the query parameter batch=1 catch-up writes pushes messages
// instead of one push frame per push (see ParseBatch; the caller has
// validated it). When the hub is stopping it closes at once with 1001;
// when acct was kicked between its authentication and now, with 4001.
func (h *Hub) Accept(w http.ResponseWriter, r *http.Request, app im.App, acct im.Account, platform string) {
	q := r.URL.Query()
	since, _ := strconv.ParseInt(q.Get("since"), 10, 64)
	batch, _ := ParseBatch(q.Get("batch"))
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OriginPatterns:     h.opt.OriginPatterns,
		InsecureSkipVerify: len(h.opt.OriginPatterns) == 0,
	})
	if err != nil {
		h.log.Debug("websocket upgrade failed", "err", err)
		return
	}
	ws.SetReadLimit(h.opt.ReadLimit)
	c := &conn{h: h, ws: ws, app: app.SDKAppID, id: acct.ID, ord: acct.Ordinal, platform: platform, kickedAt: acct.KickedAt,
		batch:   batch,
		since:   max(since, 0),
		send:    make(chan []byte, h.opt.QueueSize),
		limiter: rate.NewLimiter(rate.Limit(h.opt.FrameRate), h.opt.FrameBurst),
		quit:    make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(h.base)
	defer cancel()
	c.cancel, c.ctx = cancel, ctx
	if !h.register(c, acct.KickedAt) {
		if h.isStopped() {
			_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
		} else {
			_ = ws.Close(StatusKicked, "kicked")
		}
		return
	}
	defer func() {
		h.unregister(c)
		close(c.done) // after unregister: Stop returns with Connections already down
	}()
	c.run(ctx, c.since)
}

// ParseBatch parses the batch query parameter of a connect: "1" asks for
// batched catch-up (pushes messages), "0" or "" (absent) for one push
// frame per push. Anything else is an error.
func ParseBatch(v string) (bool, error) {
	switch v {
	case "1":
		return true, nil
	case "0", "":
		return false, nil
	}
	return false, errors.New("batch must be 0 or 1")
}

func (h *Hub) isStopped() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.stopped
}

// run serves c until it ends.
func (c *conn) run(ctx context.Context, since int64) {
	defer c.cancel()
	var wg sync.WaitGroup
	c.catching.Store(true)
	wg.Go(func() { c.writeLoop(ctx) })
	wg.Go(func() {
		c.catchUp(ctx, since)
		c.caught.Store(time.Now().UnixNano()) // before catching is cleared: see writeLoop
		c.catching.Store(false)
	})
	c.readLoop(ctx)
	c.stop(websocket.StatusNormalClosure, "")
	wg.Wait()
	c.kill.Stop()
	_ = c.ws.CloseNow()
}

// stop asks c to close with code and reason; the first call wins. The
// writer sends the close frame; should the connection still be open after
// CloseGrace (a client that reads nothing), it is torn down.
func (c *conn) stop(code websocket.StatusCode, reason string) {
	c.stopOnce.Do(func() {
		c.code, c.reason = code, reason
		close(c.quit)
		c.kill = time.AfterFunc(c.h.opt.CloseGrace, c.cancel)
	})
}

func (c *conn) stopping() bool {
	select {
	case <-c.quit:
		return true
	default:
		return false
	}
}

// enqueue queues a live frame without blocking. A full queue closes c as
// a slow consumer. It reports whether the frame was queued. A push frame
// (task != "") that c was already given, live or by catch-up, is not
// queued again and counts as queued. The push frame of a stored task
// (seq > 0) after c's since that arrives while c's catch-up has not
// reached the store's head is noted instead, and counts as queued:
// catch-up sends it in its Seq order, so that it cannot overtake an older
// stored push. (One up to since, which the client said it has, is queued
// as it comes: a client that resumed from too far is not made to lose it.)
func (c *conn) enqueue(frame []byte, task string, seq int64) bool {
	if c.stopping() {
		return false
	}
	if seq > c.since && !c.live.Load() && c.note(seq) {
		return true
	}
	if task != "" && !c.sent.claim(task) {
		return true
	}
	select {
	case c.send <- frame:
		return true
	default:
		c.h.stats.slow.Add(1)
		c.stop(websocket.StatusPolicyViolation, "slow consumer")
		return false
	}
}

// note records a live stored push of Seq seq that catch-up must find,
// unless c went live meanwhile; it reports whether it did.
func (c *conn) note(seq int64) bool {
	c.order.Lock()
	defer c.order.Unlock()
	if c.live.Load() {
		return false
	}
	c.notes++
	c.notedSeq = max(c.notedSeq, seq)
	return true
}

// write writes one frame, bounded by WriteTimeout.
func (c *conn) write(ctx context.Context, frame []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.h.opt.WriteTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
		return err
	}
	c.h.stats.frames.Add(1)
	return nil
}

// writeLoop writes queued frames, pings every PingInterval, and sends the
// close frame once c is stopped.
func (c *conn) writeLoop(ctx context.Context) {
	tick := time.NewTicker(c.h.opt.PingInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.quit:
			_ = c.ws.Close(c.code, c.reason)
			return
		case <-ctx.Done():
			return
		case f := <-c.send:
			if err := c.write(ctx, f); err != nil {
				c.stop(websocket.StatusGoingAway, "write failed")
				return
			}
		case <-tick.C:
			if !c.pingDue(time.Now()) {
				continue
			}
			if !c.pinging.Swap(true) {
				go c.ping(ctx)
			}
		}
	}
}

// pingDue reports whether c should be pinged at now: its client has said
// nothing for PingInterval, and its catch-up ended at least PingInterval
// ago.
//
// Not while catching up: in a reconnect storm a connection may wait
// minutes for its catch-up turn (see gate) hearing nothing from its
// client, on a machine so loaded that a pong is read later than
// PongTimeout, by the client or by us. Closing it then would cut it off
// for waiting. A dead peer is still found: catch-up's writes fail or time
// out (WriteTimeout), and a full PingInterval after catch-up ends the
// heartbeat applies. Not sooner: the storm that made the client wait is
// still on when its own catch-up ends, and a ping sent at once met a
// pong later than PongTimeout (9 of 10,000 clients closed in a 20 s
// storm). The client's acks of the catch-up count as speaking meanwhile.
func (c *conn) pingDue(now time.Time) bool {
	if c.catching.Load() {
		return false
	}
	quiet := max(c.heard.Load(), c.caught.Load())
	return now.Sub(time.Unix(0, quiet)) >= c.h.opt.PingInterval
}

// ping sends one WebSocket ping and closes c when no pong arrives within
// PongTimeout and the client sent nothing else meanwhile either. A client
// that is busy reading a long catch-up on a loaded machine may answer late,
// but its acks show it is there: it is not cut off.
func (c *conn) ping(ctx context.Context) {
	defer c.pinging.Store(false)
	sent := time.Now().UnixNano()
	pctx, cancel := context.WithTimeout(ctx, c.h.opt.PongTimeout)
	defer cancel()
	if err := c.ws.Ping(pctx); err != nil && ctx.Err() == nil && !c.stopping() && c.heard.Load() < sent {
		c.h.stats.heartbeats.Add(1)
		c.stop(websocket.StatusPolicyViolation, "heartbeat timeout")
	}
}

// readLoop reads client frames until the connection fails or closes.
// Coder's Read answers pings and close frames; a frame over ReadLimit
// closes with 1009 inside Read.
func (c *conn) readLoop(ctx context.Context) {
	for {
		typ, b, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		c.heard.Store(time.Now().UnixNano())
		if typ != websocket.MessageText {
			c.stop(websocket.StatusUnsupportedData, "text frames only")
			return
		}
		if c.limiter.Wait(ctx) != nil { // over FrameRate: stop reading for a while
			return
		}
		f, err := DecodeClientFrame(b)
		if err != nil {
			c.stop(websocket.StatusPolicyViolation, "bad frame")
			return
		}
		switch f.Type {
		case TypePing:
			c.enqueue(pongFrame, "", 0)
		case TypeAck, TypeClick:
			if f.TaskIDs == nil {
				c.h.acks.note(ctx, c, f.TaskID, f.Type == TypeClick)
			}
			for _, id := range f.TaskIDs { // a batched ack: each counts as one
				c.h.acks.note(ctx, c, id, false)
			}
		}
	}
}
