// Package fanout runs accepted pushes in the background: the Engine fans
// each persisted task out to the live connections of its audience and
// records its progress, and the Scheduler fires scheduled pushes on time.
//
// A task is a row of the store, never one row per recipient: for a stored
// push the row already is every recipient's copy, so the fan-out is only
// the live pass (Live.Deliver) and the bookkeeping. Work is persisted and
// leased, so any node sharing the store can pick up a task whose owner
// died: the Engine claims Pending and Running tasks whose lease ended,
// resumes from the saved cursor, and renews its lease while it works.
// Live delivery is at least once across a crash (the chunk being
// delivered when the process died is delivered again); clients drop
// repeats by TaskId.
package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"timd/internal/bitmap"
	"timd/internal/im"
)

// Live is the live-delivery hub (package deliver implements it).
type Live interface {
	// Deliver sends t's push frame to every live connection whose ordinal
	// is in audience; returns distinct accounts reached. Never blocks on
	// slow clients.
	Deliver(t *im.PushTask, audience *roaring.Bitmap) int
	// Revoke tells live connections in audience to drop task id.
	Revoke(app uint64, id string, audience *roaring.Bitmap)
}

// connected is the optional part of Live: a snapshot of the ordinals with
// a live connection. Without it every recipient counts as offline.
type connected interface {
	Connected(app uint64) *roaring.Bitmap
}

// Offline is a Live with no connections: every recipient is offline.
type Offline struct{}

// Deliver reaches nobody.
func (Offline) Deliver(*im.PushTask, *roaring.Bitmap) int { return 0 }

// Revoke has nobody to tell.
func (Offline) Revoke(uint64, string, *roaring.Bitmap) {}

// Options tune the Engine. Zero fields take the defaults.
type Options struct {
	Owner     string        // this node's lease owner name (default "timd")
	Workers   int           // concurrent tasks (default 4)
	Lease     time.Duration // lease length, renewed while working (default 30 s)
	Scan      time.Duration // how often unfinished tasks are looked for (default 2 s)
	Chunk     int           // recipients per Live.Deliver call (default 65536)
	SaveEvery time.Duration // least time between two progress saves (default 250 ms)
	// Rate returns an app's fan-out pace in recipients per second (0: as
	// fast as possible). It paces the live pass, for example to spread a
	// push to millions of connected clients.
	Rate func(app uint64) int
	Now  func() time.Time
	// HoldAfter is a test hook (0: off): once a task's fan-out has passed
	// this many recipients, its worker saves its progress and waits until
	// the engine stops. The kill -9 end-to-end tests set it (through
	// TIMD_TEST_FANOUT_HOLD) so that the kill lands mid-fan-out for sure.
	HoldAfter int64
	// Registerer receives the engine's metrics; nil registers none.
	Registerer prometheus.Registerer
}

func (o *Options) defaults() {
	if o.Owner == "" {
		o.Owner = "timd"
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Scan <= 0 {
		o.Scan = 2 * time.Second
	}
	if o.Chunk <= 0 {
		o.Chunk = 1 << 16
	}
	if o.SaveEvery <= 0 {
		o.SaveEvery = 250 * time.Millisecond
	}
	if o.Rate == nil {
		o.Rate = func(uint64) int { return 0 }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Waker is told when a task's fan-out has ended (the webhook dispatcher).
type Waker interface{ Wake() }

type taskKey struct {
	app uint64
	id  string
}

// Engine fans tasks out. It implements service.Fanout.
type Engine struct {
	store im.PushStore
	live  Live
	opt   Options
	log   *slog.Logger
	hooks Waker
	m     *metrics

	queue chan taskKey

	// outbox receives the vendor sends of recipients without a live
	// connection (nil: none); vendorWake is told when it queued some.
	outbox     im.Outbox
	vendorWake Waker

	mu       sync.Mutex
	inflight map[taskKey]context.CancelFunc // tasks a worker of this engine holds
	revoked  map[taskKey]bool               // revoked while running here

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns an engine over store delivering through live (nil: Offline).
func New(store im.PushStore, live Live, opt Options, log *slog.Logger) *Engine {
	opt.defaults()
	if live == nil {
		live = Offline{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{store: store, live: live, opt: opt, log: log, m: newMetrics(opt.Registerer),
		queue: make(chan taskKey, 1024), inflight: map[taskKey]context.CancelFunc{}, revoked: map[taskKey]bool{}}
}

// SetHooks installs the webhook dispatcher to wake when a fan-out ends.
func (e *Engine) SetHooks(w Waker) { e.hooks = w }

// SetOutbox installs vendor delivery: for a task with a VendorUntil still
// ahead, each chunk's recipients without a live connection get one queued
// send per vendor device (im.Outbox.EnqueueOffline) before the cursor
// moves past them, and wake is told. Call it before Start.
func (e *Engine) SetOutbox(o im.Outbox, wake Waker) { e.outbox, e.vendorWake = o, wake }

// Start runs the workers and the scanner until ctx ends or Stop is called.
// The first scan runs at once, so tasks left by a previous process resume
// immediately.
func (e *Engine) Start(ctx context.Context) {
	ctx, e.cancel = context.WithCancel(ctx)
	for range e.opt.Workers {
		e.wg.Go(func() { e.work(ctx) })
	}
	e.wg.Go(func() { e.scanLoop(ctx) })
}

// Stop ends the loops; workers save their progress and keep their lease
// (its owner, restarted, resumes at once; another node after it ends).
func (e *Engine) Stop() {
	if e.cancel != nil {
		e.cancel()
	}
	e.wg.Wait()
}

// Notify queues a new task; when the queue is full the next scan finds it.
func (e *Engine) Notify(app uint64, id string) {
	select {
	case e.queue <- taskKey{app, id}:
	default:
	}
}

// Revoke stops t's fan-out if this engine runs it and tells the live
// connections of its audience to drop it. The task is already Revoked in
// the store, so no engine claims it again, and a worker of another node
// sees the revoke at its next progress save.
func (e *Engine) Revoke(t *im.PushTask) {
	k := taskKey{t.App, t.ID}
	e.mu.Lock()
	if stop, ok := e.inflight[k]; ok {
		e.revoked[k] = true
		stop()
	}
	e.mu.Unlock()
	aud, err := bitmap.Decode(t.Audience)
	if err != nil {
		e.log.Error("revoke: bad audience", "sdkappid", t.App, "task", t.ID, "err", err)
		return
	}
	e.live.Revoke(t.App, t.ID, aud)
}

func (e *Engine) scanLoop(ctx context.Context) {
	tick := time.NewTicker(e.opt.Scan)
	defer tick.Stop()
	for {
		e.scan(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// scan queues the unfinished tasks this engine may claim.
func (e *Engine) scan(ctx context.Context) {
	ts, err := e.store.UnfinishedTasks(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("fan-out scan failed", "err", err)
		}
		return
	}
	now := e.opt.Now().UnixMilli()
	for _, t := range ts {
		if t.Owner != "" && t.Owner != e.opt.Owner && t.LeaseUntil > now {
			continue
		}
		select {
		case e.queue <- taskKey{t.App, t.ID}:
		default:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (e *Engine) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case k := <-e.queue:
			e.run(ctx, k)
		}
	}
}

// run claims and fans out one task unless a worker here already has it.
func (e *Engine) run(ctx context.Context, k taskKey) {
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	e.mu.Lock()
	if _, busy := e.inflight[k]; busy {
		e.mu.Unlock()
		return
	}
	e.inflight[k] = stop
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.inflight, k)
		delete(e.revoked, k)
		e.mu.Unlock()
	}()
	err := e.fanout(tctx, k)
	revoked := e.wasRevoked(k) || errors.Is(err, errRevoked)
	if revoked && e.hooks != nil {
		e.hooks.Wake() // the last cursor is saved: events of those reached
	}
	switch {
	case err == nil, ctx.Err() != nil, revoked:
	case errors.Is(err, errLost), errors.Is(err, im.ErrLeaseLost):
		e.log.Info("fan-out lease taken over by another node", "sdkappid", k.app, "task", k.id)
	default:
		e.log.Error("fan-out failed; it will be retried", "sdkappid", k.app, "task", k.id, "err", err)
	}
}

func (e *Engine) wasRevoked(k taskKey) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.revoked[k]
}

// errLost means the lease went to another node.
var errLost = errors.New("lease lost")

// run state of one task.
type job struct {
	t       im.PushTask
	aud     *roaring.Bitmap
	conn    *roaring.Bitmap // connected snapshot, nil when unknown
	counts  im.TaskCounts
	online  *roaring.Bitmap // online recipients not yet saved
	vendor  *roaring.Bitmap // recipients with a vendor device; nil: no vendor sends
	saved   time.Time
	leaseAt time.Time // when the lease was last renewed
	pace    *rate.Limiter
	chunk   int
}

// fanout claims k and delivers it from its cursor to the end.
func (e *Engine) fanout(ctx context.Context, k taskKey) error {
	now := e.opt.Now()
	ok, err := e.store.ClaimTask(ctx, k.app, k.id, e.opt.Owner, now.UnixMilli(), now.Add(e.opt.Lease).UnixMilli())
	if err != nil || !ok {
		return err
	}
	j, err := e.load(ctx, k, now)
	if err != nil || j == nil {
		return err
	}
	if j.t.Cursor > 0 {
		e.log.Info("resuming fan-out", "sdkappid", k.app, "task", k.id, "cursor", j.t.Cursor, "total", j.counts.Total)
	}
	start := time.Now()
	for {
		done, err := e.step(ctx, j)
		if err != nil {
			return err
		}
		if done {
			break
		}
	}
	e.m.tasks.Inc()
	e.m.seconds.Observe(time.Since(start).Seconds())
	if e.hooks != nil {
		e.hooks.Wake()
	}
	return nil
}

// load reads the claimed task and marks it Running; nil when there is
// nothing to do.
func (e *Engine) load(ctx context.Context, k taskKey, now time.Time) (*job, error) {
	t, err := e.store.Task(ctx, k.app, k.id)
	if err != nil || t.Finished() {
		return nil, err
	}
	c, err := e.store.Counts(ctx, k.app, k.id)
	if err != nil {
		return nil, err
	}
	aud, err := bitmap.Decode(t.Audience)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", t.ID, err)
	}
	c.Total = int64(aud.GetCardinality())
	j := &job{t: t, aud: aud, counts: c, online: roaring.New(), saved: now, leaseAt: now, chunk: e.opt.Chunk}
	if cl, ok := e.live.(connected); ok {
		j.conn = cl.Connected(k.app)
	}
	if e.outbox != nil && t.VendorUntil > now.Unix() {
		ts, err := e.outbox.VendorTargets(ctx, k.app)
		if err != nil {
			return nil, fmt.Errorf("vendor targets: %w", err)
		}
		j.vendor = roaring.BitmapOf(ts...)
	}
	if r := e.opt.Rate(k.app); r > 0 {
		j.chunk = max(1, min(j.chunk, r/10))
		j.pace = rate.NewLimiter(rate.Limit(r), j.chunk)
	}
	if t.State == im.TaskPending {
		st, err := e.store.SaveFanout(ctx, k.app, k.id, e.opt.Owner, t.Cursor, im.TaskRunning, c, nil)
		if err != nil || st == im.TaskRevoked {
			return nil, err
		}
	}
	return j, nil
}

// step delivers the next chunk after the cursor and saves progress when
// due; it reports whether the task is finished.
func (e *Engine) step(ctx context.Context, j *job) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, errors.Join(err, e.save(j, im.TaskRunning))
	}
	size := j.chunk
	if h := e.opt.HoldAfter; h > 0 {
		passed := int64(0)
		if j.t.Cursor > 0 {
			passed = int64(j.aud.Rank(uint32(min(j.t.Cursor, math.MaxUint32))))
		}
		if passed >= h {
			return false, e.hold(ctx, j)
		}
		size = int(min(int64(size), h-passed))
	}
	chunk, last := nextChunk(j.aud, j.t.Cursor, size)
	if j.pace != nil && chunk.GetCardinality() > 0 {
		if err := j.pace.WaitN(ctx, int(chunk.GetCardinality())); err != nil {
			return false, errors.Join(ctx.Err(), e.save(j, im.TaskRunning))
		}
	}
	n := int64(chunk.GetCardinality())
	if err := e.enqueueOffline(ctx, j, chunk); err != nil {
		return false, errors.Join(err, e.save(j, im.TaskRunning))
	}
	reached := int64(0)
	if n > 0 {
		reached = int64(e.live.Deliver(&j.t, chunk))
		if j.conn != nil {
			j.online.Or(roaring.And(chunk, j.conn))
		}
	}
	j.t.Cursor = last
	j.counts.Online += reached
	if j.t.Stored() {
		j.counts.Sent += n
	} else {
		j.counts.Sent += reached
	}
	e.m.recipients.Add(float64(n))
	if last >= math.MaxUint32 || n == 0 {
		return true, e.save(j, im.TaskDone)
	}
	if e.opt.Now().Sub(j.saved) >= e.opt.SaveEvery {
		if err := e.save(j, im.TaskRunning); err != nil {
			return false, err
		}
		return false, e.renew(ctx, j)
	}
	return false, nil
}

// enqueueOffline queues the vendor sends of chunk's recipients that have no
// live connection, unless the task may not go through vendors (any more).
// Only recipients with a vendor device (j.vendor, read when the fan-out
// started or resumed) are asked about: handing the store every ordinal of
// a 10M audience cost more than the rest of the fan-out together. A device
// registered after that gets no send for this push. It runs before the
// cursor moves past chunk, so a crash never skips one; a resumed fan-out
// queues again, and the outbox keeps one send per task and device.
func (e *Engine) enqueueOffline(ctx context.Context, j *job, chunk *roaring.Bitmap) error {
	now := e.opt.Now()
	if e.outbox == nil || j.vendor == nil || j.vendor.IsEmpty() || chunk.IsEmpty() || j.t.VendorUntil <= now.Unix() {
		return nil
	}
	off := roaring.And(chunk, j.vendor)
	if j.conn != nil {
		off.AndNot(j.conn)
	}
	if off.IsEmpty() {
		return nil
	}
	n, err := e.outbox.EnqueueOffline(ctx, j.t.App, j.t.ID, off.ToArray(), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("queue vendor sends: %w", err)
	}
	if n > 0 && e.vendorWake != nil {
		e.vendorWake.Wake()
	}
	return nil
}

// hold is the HoldAfter test hook: it saves the progress, logs that the
// fan-out is held, and waits for the engine to stop.
func (e *Engine) hold(ctx context.Context, j *job) error {
	if err := e.save(j, im.TaskRunning); err != nil {
		return err
	}
	e.log.Warn("fan-out held by the test hook TIMD_TEST_FANOUT_HOLD", "sdkappid", j.t.App, "task", j.t.ID,
		"sent", j.counts.Sent, "total", j.counts.Total)
	<-ctx.Done()
	return ctx.Err()
}

// nextChunk returns the audience ordinals after cursor, at most size of
// them, and the new cursor: the last one returned, or MaxUint32 when the
// audience is exhausted.
func nextChunk(aud *roaring.Bitmap, cursor int64, size int) (*roaring.Bitmap, int64) {
	done := int64(aud.Rank(uint32(min(cursor, math.MaxUint32)))) // ordinals <= cursor
	if cursor <= 0 {
		done = 0
	}
	total := int64(aud.GetCardinality())
	if done >= total {
		return roaring.New(), math.MaxUint32
	}
	end := min(done+int64(size), total)
	hi, _ := aud.Select(uint32(end - 1))
	lo := uint64(max(cursor+1, 0))
	chunk := roaring.New()
	chunk.AddRange(lo, uint64(hi)+1)
	chunk.And(aud)
	if end == total {
		return chunk, math.MaxUint32
	}
	return chunk, int64(hi)
}

// save records the cursor, counts and newly seen online recipients. A
// revoke observed here ends the task's work.
func (e *Engine) save(j *job, state im.TaskState) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var online []byte
	if !j.online.IsEmpty() {
		j.online.RunOptimize()
		b, err := j.online.ToBytes()
		if err != nil {
			return err
		}
		online = b
	}
	cursor := j.t.Cursor
	if state == im.TaskDone {
		cursor = 0
		if !j.aud.IsEmpty() {
			cursor = int64(j.aud.Maximum())
		}
	}
	st, err := e.store.SaveFanout(ctx, j.t.App, j.t.ID, e.opt.Owner, cursor, state, j.counts, online)
	if err != nil {
		return err
	}
	j.online.Clear()
	j.saved = e.opt.Now()
	if st == im.TaskRevoked {
		return errRevoked
	}
	return nil
}

// errRevoked ends a task revoked while it ran.
var errRevoked = errors.New("task revoked")

// renew extends the lease when half of it has passed.
func (e *Engine) renew(ctx context.Context, j *job) error {
	now := e.opt.Now()
	if now.Sub(j.leaseAt) < e.opt.Lease/2 {
		return nil
	}
	ok, err := e.store.ClaimTask(ctx, j.t.App, j.t.ID, e.opt.Owner, now.UnixMilli(), now.Add(e.opt.Lease).UnixMilli())
	if err != nil {
		return err
	}
	if !ok {
		return errLost
	}
	j.leaseAt = now
	return nil
}

type metrics struct {
	tasks      prometheus.Counter
	recipients prometheus.Counter
	seconds    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		tasks: prometheus.NewCounter(prometheus.CounterOpts{Name: "timd_fanout_tasks_total",
			Help: "Push tasks whose fan-out finished."}),
		recipients: prometheus.NewCounter(prometheus.CounterOpts{Name: "timd_fanout_recipients_total",
			Help: "Recipients fanned out to (stored or live)."}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "timd_fanout_task_seconds",
			Help: "Time from a worker's claim to the end of a task's fan-out.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
	}
	if reg != nil {
		reg.MustRegister(m.tasks, m.recipients, m.seconds)
	}
	return m
}
