package deliver

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"timd/internal/im"
)

// Options tune a Hub. Zero fields take the defaults in brackets.
type Options struct {
	// QueueSize is each connection's send queue in frames [256]. A live
	// frame that does not fit closes the connection (1008 "slow consumer").
	QueueSize int
	// PingInterval is the time between WebSocket pings [30s], sent only to
	// a connection whose client sent no frame for that long; one that
	// neither answers nor sends anything within PongTimeout [10s] is closed.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// WriteTimeout bounds one frame write [10s].
	WriteTimeout time.Duration
	// CloseGrace is how long a closing connection may take over its close
	// handshake before it is torn down [2s].
	CloseGrace time.Duration
	// ReadLimit is the largest client frame in bytes [16384: a batched ack
	// of MaxAckIDs TaskIds of MaxTaskIDLen bytes fits]; a larger one
	// closes the connection with 1009.
	ReadLimit int64
	// FrameRate and FrameBurst bound the client frames read per connection
	// [1000/s, burst 2000]; beyond them the hub stops reading that
	// connection for a while, so TCP slows the client down.
	FrameRate  float64
	FrameBurst int
	// AckInterval is how often batched acks and clicks are written [200ms].
	AckInterval time.Duration
	// CatchUpPage is how many stored tasks one catch-up read fetches [100].
	CatchUpPage int
	// CatchUps bounds the connections that check and write a page of
	// their catch-up at once [8 × GOMAXPROCS]; the others wait their turn,
	// never cut off for it (see gate).
	CatchUps int
	// CacheBytes bounds the decoded audiences kept [DefaultCacheBytes],
	// and, separately, the acknowledgement sets kept for catch-up.
	CacheBytes int64
	// OriginPatterns, when set, restricts the browser origins allowed to
	// connect (websocket.AcceptOptions). When empty every origin may
	// connect: a connection authenticates with the UserSig in its URL, not
	// with ambient cookies, so cross-site requests gain nothing.
	OriginPatterns []string
	// Registerer, when set, receives the hub's Prometheus metrics.
	Registerer prometheus.Registerer
	// Now is the clock [time.Now].
	Now func() time.Time
}

func (o *Options) defaults() {
	setDefault(&o.QueueSize, 256)
	setDefault(&o.PingInterval, 30*time.Second)
	setDefault(&o.PongTimeout, 10*time.Second)
	setDefault(&o.WriteTimeout, 10*time.Second)
	setDefault(&o.CloseGrace, 2*time.Second)
	setDefault(&o.ReadLimit, 16<<10)
	setDefault(&o.FrameRate, 1000)
	setDefault(&o.FrameBurst, 2000)
	setDefault(&o.AckInterval, 200*time.Millisecond)
	setDefault(&o.CatchUpPage, 100)
	setDefault(&o.CatchUps, defaultCatchUps())
	setDefault(&o.CacheBytes, DefaultCacheBytes)
	if o.Now == nil {
		o.Now = time.Now
	}
}

func setDefault[T int | int64 | float64 | time.Duration](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}

// Close codes the hub uses besides the standard ones.
const (
	// StatusKicked closes the connections of a kicked or deleted account.
	StatusKicked websocket.StatusCode = 4001
)

// Hub holds the live client connections of every app, indexed by account
// ordinal, and delivers push frames to them. It implements
// service.Presence (Online, Kick).
type Hub struct {
	tasks im.TaskStore
	opt   Options
	log   *slog.Logger

	aud    *AudienceCache
	acked  *ackCache
	frames *lru[taskKey, []byte]      // rendered push frames of stored tasks
	pages  *shared[pageKey, []stored] // shared catch-up reads, 1 s
	acks   *ackBatcher
	// catchUps bounds the catch-ups working at once (Options.CatchUps).
	catchUps *gate

	base   context.Context // parent of every connection's context
	cancel context.CancelFunc

	mu      sync.RWMutex
	apps    map[uint64]*appConns
	kicks   map[userKey]int64 // recent kicks (unix s), see Accept
	stopped bool
	epoch   atomic.Uint64 // counts stored fan-outs, revokes and fresh-read demands, see catchUp

	flusher   sync.WaitGroup
	stopFlush context.CancelFunc

	stats stats
	hooks atomic.Pointer[hooks] // nil in production
}

// hooks let tests hold a catch-up at a known point (export_test.go).
type hooks struct {
	// page runs after a catch-up of account id read a page of n heads
	// after a Seq, before it is sent.
	page func(id string, after int64, n int)
	// reread runs when a catch-up of id must read on because of a live
	// push it noted.
	reread func(id string)
}

type userKey struct {
	app uint64
	id  string
}

// appConns are one app's live connections.
type appConns struct {
	mu     sync.RWMutex
	online *roaring.Bitmap // ordinals with at least one connection
	byOrd  map[uint32][]*conn
	byID   map[string][]*conn
}

// NewHub returns a hub reading stored tasks and recording acks in tasks.
// aud decodes task audiences; the server shares one with its inbox
// (service.Inbox), so each audience is read and decoded once. nil makes a
// private cache of opt.CacheBytes over tasks. Call Start before serving
// connections.
func NewHub(tasks im.TaskStore, aud *AudienceCache, opt Options, log *slog.Logger) *Hub {
	opt.defaults()
	if aud == nil {
		aud = NewAudienceCache(tasks, opt.CacheBytes)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, cancel := context.WithCancel(context.Background())
	h := &Hub{tasks: tasks, opt: opt, log: log,
		aud: aud, acked: newAckCache(tasks, opt.CacheBytes),
		frames: newLRU[taskKey, []byte](frameCacheBytes),
		base:   base, cancel: cancel, apps: map[uint64]*appConns{}, kicks: map[userKey]int64{}}
	// Catch-ups mostly read the same few pages (most clients reconnect
	// with since=0 or a recent Seq), so few are kept.
	h.pages = newShared[pageKey, []stored](time.Second, 64, opt.Now, h.epoch.Load, loadTimeout)
	h.acks = newAckBatcher(h)
	h.catchUps = newGate(opt.CatchUps)
	if opt.Registerer != nil {
		h.stats.register(opt.Registerer, h.catchUps)
	}
	return h
}

// frameCacheBytes bounds the rendered frames of stored pushes a hub keeps:
// a thousand pushes of the largest body.
const frameCacheBytes = 12 << 20

// Audiences returns the hub's audience cache, for other readers of stored
// pushes in the process (the inbox) to share.
func (h *Hub) Audiences() *AudienceCache { return h.aud }

// Start runs the ack flusher until ctx ends or Stop is called.
// Heartbeats run per connection from Accept.
func (h *Hub) Start(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	h.stopFlush = cancel
	h.flusher.Go(func() { h.acks.run(ctx) })
}

// Stop closes every connection (1001 "server shutting down"), waits up to
// CloseGrace for them to end, then writes the pending acks. Connections
// that arrive later are closed at once.
func (h *Hub) Stop() {
	h.mu.Lock()
	h.stopped = true
	var all []*conn
	for _, a := range h.apps {
		a.mu.RLock()
		for _, cs := range a.byOrd {
			all = append(all, cs...)
		}
		a.mu.RUnlock()
	}
	h.mu.Unlock()
	for _, c := range all {
		c.stop(websocket.StatusGoingAway, "server shutting down")
	}
	deadline := time.After(h.opt.CloseGrace + time.Second)
	for _, c := range all {
		select {
		case <-c.done:
		case <-deadline:
		}
	}
	h.cancel()
	if h.stopFlush != nil {
		h.stopFlush()
		h.flusher.Wait()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.acks.flush(ctx, true)
}

// Deliver sends t's push frame to every live connection whose account
// ordinal is in aud and returns how many distinct accounts it reached. It
// never blocks on a client: a connection whose queue is full is closed as
// a slow consumer and not counted.
func (h *Hub) Deliver(t *im.PushTask, aud *roaring.Bitmap) int {
	if t.Stored() {
		// Before anything else, and before any connection can be seen: a
		// catch-up read that started before now may lack t, so no
		// connection registering from now on may reuse it (see catchUp).
		h.epoch.Add(1)
	}
	a := h.app(t.App, false)
	if a == nil || aud == nil {
		return 0
	}
	head := t.Head()
	if t.Stored() {
		// catch-ups and /v1/sync reuse the frame; a connection still
		// catching up gets it from its catch-up, in Seq order
		return a.each(aud, h.Frame(&head), t.ID, head.Seq)
	}
	// Online-only: no catch-up can find it, so it is queued at once, also
	// on a connection still catching up (docs/client-api.md).
	return a.each(aud, PushFrame(&head), t.ID, 0)
}

// Frame returns t's push frame (PushFrame) from the hub's bounded cache of
// rendered frames, rendering it on a miss: a stored push's frame is
// rendered once and sent to every connection that catches up and every
// /v1/sync that lists it. A task's head never changes, so entries never go
// stale. The caller must not modify the frame.
func (h *Hub) Frame(t *im.TaskHead) []byte {
	return h.frames.getOrPut(taskKey{t.App, t.ID}, func() ([]byte, int64) {
		f := PushFrame(t)
		return f, int64(len(f)+len(t.ID)) + 64
	})
}

// Connected returns a snapshot of app's ordinals that have at least one
// live connection (the fan-out engine uses it to tell online from offline
// recipients). The caller owns the bitmap.
func (h *Hub) Connected(app uint64) *roaring.Bitmap {
	a := h.app(app, false)
	if a == nil {
		return roaring.New()
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.online.Clone()
}

// Revoke tells the live connections in aud to drop task id with a
// {"Type":"revoke","TaskId":id} frame.
func (h *Hub) Revoke(app uint64, id string, aud *roaring.Bitmap) {
	h.epoch.Add(1) // a catch-up read that started before now may hold the task
	if a := h.app(app, false); a != nil && aud != nil {
		a.each(aud, revokeFrame(id), "", 0)
	}
}

// each queues frame on the connections of the ordinals in aud (see
// conn.enqueue for task and seq) and returns how many ordinals had at
// least one connection take it. Intersecting with the online set costs
// O(containers), so a 10M audience with few connections is as cheap as a
// small one.
func (a *appConns) each(aud *roaring.Bitmap, frame []byte, task string, seq int64) int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.online.IsEmpty() {
		return 0
	}
	reached := 0
	it := roaring.And(aud, a.online).Iterator()
	for it.HasNext() {
		ok := false
		for _, c := range a.byOrd[it.Next()] {
			if c.enqueue(frame, task, seq) {
				ok = true
			}
		}
		if ok {
			reached++
		}
	}
	return reached
}

// Online returns, for each of ids with live connections, one platform per
// connection. It implements service.Presence.
func (h *Hub) Online(app uint64, ids []string) map[string][]string {
	out := map[string][]string{}
	a := h.app(app, false)
	if a == nil {
		return out
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, id := range ids {
		for _, c := range a.byID[id] {
			if !c.stopping() {
				out[id] = append(out[id], c.platform)
			}
		}
	}
	return out
}

// Kick closes every live connection of the UserID with 4001 "kicked". It
// implements service.Presence; the accounts service calls it after a kick
// or a delete.
func (h *Hub) Kick(app uint64, id string) {
	h.noteKick(userKey{app, id})
	a := h.app(app, false)
	if a == nil {
		return
	}
	a.mu.RLock()
	cs := append([]*conn(nil), a.byID[id]...)
	a.mu.RUnlock()
	for _, c := range cs {
		c.stop(StatusKicked, "kicked")
	}
}

// kickMemory is how long Kick is remembered to refuse a connection that
// authenticated just before the kick but registers just after it.
const kickMemory = 5 * time.Second

func (h *Hub) noteKick(k userKey) {
	now := h.opt.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for old, at := range h.kicks {
		if now.Unix()-at > int64(kickMemory/time.Second) {
			delete(h.kicks, old)
		}
	}
	h.kicks[k] = now.Unix()
}

// app returns app's connections, creating them when create is set, or nil.
func (h *Hub) app(app uint64, create bool) *appConns {
	h.mu.RLock()
	a := h.apps[app]
	h.mu.RUnlock()
	if a != nil || !create {
		return a
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if a = h.apps[app]; a == nil {
		a = &appConns{online: roaring.New(), byOrd: map[uint32][]*conn{}, byID: map[string][]*conn{}}
		h.apps[app] = a
	}
	return a
}

// register adds c unless the hub is stopping or c's account was kicked
// after it authenticated; it reports whether it did. A kick recorded in
// the store is at or before the kick's hub time, so an account read before
// the kick has KickedAt at least a second older (two, allowing for the
// clock ticking between the two).
func (h *Hub) register(c *conn, kickedAt int64) bool {
	a := h.app(c.app, true)
	h.mu.RLock() // held across the checks and the insert: Stop and Kick see c or refuse it
	defer h.mu.RUnlock()
	if h.stopped {
		return false
	}
	if at, ok := h.kicks[userKey{c.app, c.id}]; ok && at > kickedAt+1 {
		return false
	}
	a.mu.Lock()
	a.byOrd[c.ord] = append(a.byOrd[c.ord], c)
	a.byID[c.id] = append(a.byID[c.id], c)
	a.online.Add(c.ord)
	a.mu.Unlock()
	c.epoch = h.epoch.Load()
	h.stats.conns.Add(1)
	return true
}

func (h *Hub) unregister(c *conn) {
	a := h.app(c.app, false)
	a.mu.Lock()
	a.byOrd[c.ord] = without(a.byOrd[c.ord], c)
	if len(a.byOrd[c.ord]) == 0 {
		delete(a.byOrd, c.ord)
		a.online.Remove(c.ord)
	}
	a.byID[c.id] = without(a.byID[c.id], c)
	if len(a.byID[c.id]) == 0 {
		delete(a.byID, c.id)
	}
	a.mu.Unlock()
	h.stats.conns.Add(-1)
}

func without(cs []*conn, c *conn) []*conn {
	out := cs[:0]
	for _, x := range cs {
		if x != c {
			out = append(out, x)
		}
	}
	clear(cs[len(out):])
	return out
}
