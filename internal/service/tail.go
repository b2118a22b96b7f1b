package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"timd/internal/audience"
	"timd/internal/im"
)

// Following the change log of a store that other nodes write too.
//
// Every committed account, attribute and tag change has a per-app change
// position (im.Change.Seq, im.ChangeLog), written in the change's own
// transaction. An IndexTail keeps this node's audience index at those
// positions: it is the store's change sink (this node's own writes) and it
// tails the log (everyone's writes).
//
//   - A change of this node's own is applied at once when it is the next
//     position of its app (Seq = position+1); one at or below the position
//     is skipped (it is in the index already); one beyond it (another
//     node's change came first) is left to the tail, which re-reads it.
//   - The tail asks the log which ordinals changed after the index's
//     position, re-reads those accounts and refreshes them (Index.Refresh,
//     idempotent). A lost wake-up or a skipped position is therefore never
//     lost: the next round starts from the position, not from the message.
//   - An app whose log no longer reaches back to the position (trimmed), or
//     whose position is beyond the store's (another database), or that is
//     too far behind for point reads, is rebuilt from a store scan at a
//     known position on the side and swapped in (Index.Adopt), then
//     replayed from that position.
//
// Invariant: every account whose state in the index may differ from the
// store has a change above the app's index position. So an index at the
// store's position equals the store, which is what Sync (read your
// writes) waits for.

// TailConfig configures an IndexTail.
type TailConfig struct {
	// Poll is how often every app's position is compared with the store's
	// without a wake-up (default DefaultTailPoll). With a wake-up source
	// (NATS) it is only the safety net for lost wake-ups and can be long.
	Poll time.Duration
	// SyncWait bounds how long Sync waits for the index to reach the
	// store's position (default DefaultSyncWait).
	SyncWait time.Duration
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Defaults of TailConfig.
const (
	DefaultTailPoll = 100 * time.Millisecond
	DefaultSyncWait = 2 * time.Second
)

// ChangeAnnouncer tells other nodes that an app's change log moved, so
// that they tail it now rather than at their next poll (NATS).
type ChangeAnnouncer interface {
	AnnounceChange(app, seq uint64)
}

// IndexTail keeps src.Index equal to a store shared with other nodes. It
// implements im.ChangeSink: install it on the store instead of the index.
// Start it after LoadIndex; Stop it before the store closes.
type IndexTail struct {
	src IndexSource
	cfg TailConfig
	m   tailMetrics

	// mu serializes every write to the index: the sink's applies, the
	// tail's refreshes and adoptions. It is never held across a store read.
	mu   sync.Mutex
	apps map[uint64]*tailApp
	// moved is closed (and replaced) whenever a position advances.
	moved chan struct{}

	announce ChangeAnnouncer // may be nil

	wmu      sync.Mutex
	woken    map[uint64]bool
	wokenAll bool
	wakeCh   chan struct{}

	stop chan struct{}
	done chan struct{}
}

// tailApp is the tail's state of one app, guarded by IndexTail.mu.
type tailApp struct {
	// busy is set while the tail reads the app from the store: the sink
	// then leaves this node's changes to the tail (dirty), so that a
	// refresh never overwrites a newer local apply with an older read.
	busy, dirty bool
}

var (
	_ im.ChangeSink = (*IndexTail)(nil)
	_ Waker         = (*IndexTail)(nil)
)

// Waker is woken when an app's change log may have moved on another node.
type Waker interface {
	Wake(app uint64)
}

// NewIndexTail returns a tail of src (Store, Changes, Index and Logger are
// used). announce may be nil.
func NewIndexTail(src IndexSource, cfg TailConfig, announce ChangeAnnouncer) *IndexTail {
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultTailPoll
	}
	if cfg.SyncWait <= 0 {
		cfg.SyncWait = DefaultSyncWait
	}
	src.Progress = nil
	return &IndexTail{src: src, cfg: cfg, m: newTailMetrics(cfg.Registerer), apps: map[uint64]*tailApp{},
		moved: make(chan struct{}), announce: announce, woken: map[uint64]bool{},
		wakeCh: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// SetAnnouncer installs the announcer of this node's changes (nil: none).
// Call it before the store writes.
func (t *IndexTail) SetAnnouncer(a ChangeAnnouncer) { t.announce = a }

func (t *IndexTail) app(app uint64) *tailApp {
	a := t.apps[app]
	if a == nil {
		a = &tailApp{}
		t.apps[app] = a
	}
	return a
}

// Apply implements im.ChangeSink for this node's own committed changes:
// each is applied when it is its app's next position, skipped when the
// index has it, and left to the tail (which is woken) otherwise.
func (t *IndexTail) Apply(changes []im.Change) {
	var gaps, announced []uint64
	var last []uint64
	t.mu.Lock()
	advanced := false
	for i := 0; i < len(changes); {
		app := changes[i].App
		j := i + 1
		for j < len(changes) && changes[j].App == app {
			j++
		}
		run := changes[i:j]
		i = j
		announced, last = append(announced, app), append(last, run[len(run)-1].Seq)
		st := t.app(app)
		if st.busy {
			st.dirty = true
			continue
		}
		pos := t.src.Index.Position(app)
		k := 0
		for k < len(run) && run[k].Seq <= pos {
			k++
		}
		n := k
		for n < len(run) && run[n].Seq == pos+uint64(n-k)+1 {
			n++
		}
		if n > k {
			t.src.Index.Apply(run[k:n])
			advanced = true
			t.m.ownApplied.Add(float64(n - k))
		}
		t.m.ownSkipped.Add(float64(k))
		if n < len(run) {
			gaps = append(gaps, app)
		}
	}
	if advanced {
		t.broadcastLocked()
	}
	t.mu.Unlock()
	for _, app := range gaps {
		t.Wake(app)
	}
	if t.announce != nil {
		for k, app := range announced {
			t.announce.AnnounceChange(app, last[k])
		}
	}
}

// broadcastLocked wakes every Sync waiting for a position; t.mu is held.
func (t *IndexTail) broadcastLocked() {
	close(t.moved)
	t.moved = make(chan struct{})
}

// Wake asks the tail to read app's change log now (a wake-up from another
// node, or a gap seen by the sink). It never blocks.
func (t *IndexTail) Wake(app uint64) {
	t.wmu.Lock()
	t.woken[app] = true
	t.wmu.Unlock()
	select {
	case t.wakeCh <- struct{}{}:
	default:
	}
}

// WakeAll asks the tail to compare every app with the store now (the
// wake-up channel lost messages it cannot attribute to one app, or was
// down). It never blocks.
func (t *IndexTail) WakeAll() {
	t.wmu.Lock()
	t.wokenAll = true
	t.wmu.Unlock()
	select {
	case t.wakeCh <- struct{}{}:
	default:
	}
}

// Start runs the tail until Stop.
func (t *IndexTail) Start(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		<-t.stop
		cancel()
	}()
	go t.run(ctx)
}

// Stop ends the tail and waits for its round in progress.
func (t *IndexTail) Stop() {
	close(t.stop)
	<-t.done
}

func (t *IndexTail) run(ctx context.Context) {
	defer close(t.done)
	tick := time.NewTicker(t.cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.pollAll(ctx)
		case <-t.wakeCh:
			t.wmu.Lock()
			apps, all := t.woken, t.wokenAll
			t.woken, t.wokenAll = map[uint64]bool{}, false
			t.wmu.Unlock()
			if all {
				t.pollAll(ctx)
				continue
			}
			for app := range apps {
				t.follow(ctx, app)
			}
		}
	}
}

// pollAll brings every app of the store up to date.
func (t *IndexTail) pollAll(ctx context.Context) {
	apps, err := t.src.Store.Apps(ctx)
	if err != nil {
		t.fail(ctx, 0, err)
		return
	}
	for _, a := range apps {
		t.follow(ctx, a.SDKAppID)
	}
}

// follow brings app up to date and logs a failure (the next round
// retries).
func (t *IndexTail) follow(ctx context.Context, app uint64) {
	if err := t.CatchUp(ctx, app); err != nil {
		t.fail(ctx, app, err)
	}
}

func (t *IndexTail) fail(ctx context.Context, app uint64, err error) {
	if ctx.Err() != nil {
		return
	}
	t.m.errors.Inc()
	t.src.logger().Warn("audience index tail failed; retrying at the next round", "app", app, "err", err)
}

// CatchUp makes one pass over app's change log: it re-reads the accounts
// changed after the index's position and refreshes them, or rebuilds the
// app when the log cannot serve that position. Changes committed during
// the pass are left to the next pass (which it schedules when this node's
// own changes were among them). Run it from one goroutine at a time (the
// tail's loop, or a test with the loop not started).
func (t *IndexTail) CatchUp(ctx context.Context, app uint64) error {
	pos := t.src.Index.Position(app)
	cur, err := t.src.Changes.ChangePosition(ctx, app)
	if err != nil || cur == pos {
		return err
	}
	t.setBusy(app, true)
	defer t.setBusy(app, false)
	pos = t.src.Index.Position(app) // the sink may have moved it before busy
	ords, upTo, err := t.src.Changes.ChangedSince(ctx, app, pos)
	switch {
	case errors.Is(err, im.ErrChangesTrimmed):
		return t.rebuild(ctx, app, fmt.Sprintf("change log trimmed past position %d", pos))
	case errors.Is(err, im.ErrPositionAhead):
		return t.rebuild(ctx, app, fmt.Sprintf("index position %d is beyond the store's", pos))
	case err != nil:
		return err
	case uint64(len(ords)) > t.src.Index.Count(app)/replayShare+1000:
		return t.rebuild(ctx, app, fmt.Sprintf("%d accounts changed since position %d", len(ords), pos))
	}
	return t.refresh(ctx, app, ords, upTo)
}

// setBusy marks app as being read by the tail, or no longer; at the end
// of a pass during which the sink left changes to the tail, it wakes the
// tail again.
func (t *IndexTail) setBusy(app uint64, busy bool) {
	t.mu.Lock()
	st := t.app(app)
	st.busy = busy
	again := !busy && st.dirty
	if !busy {
		st.dirty = false
	}
	t.mu.Unlock()
	if again {
		t.Wake(app)
	}
}

// tailChunk is how many accounts one refresh reads and applies.
const tailChunk = 8192

// refresh re-reads the accounts ords of app and refreshes them; the app
// then stands at position upTo.
func (t *IndexTail) refresh(ctx context.Context, app uint64, ords []uint32, upTo uint64) error {
	for {
		n := min(len(ords), tailChunk)
		var profiles []im.Profile
		if n > 0 {
			err := t.src.Changes.ProfilesByOrdinal(ctx, app, ords[:n], func(p im.Profile) error {
				profiles = append(profiles, p)
				return nil
			})
			if err != nil {
				return err
			}
		}
		pos := uint64(0)
		if n == len(ords) {
			pos = upTo
		}
		t.mu.Lock()
		t.src.Index.Refresh(app, ords[:n], profiles, pos)
		if pos > 0 {
			t.broadcastLocked()
		}
		t.mu.Unlock()
		t.m.refreshed.Add(float64(n))
		if n == len(ords) {
			return nil
		}
		ords = ords[n:]
	}
}

// rebuild builds app's index from a store scan on the side (the live
// index keeps serving), swaps it in, and leaves it at the scan's position
// plus the replay of what changed during the scan.
func (t *IndexTail) rebuild(ctx context.Context, app uint64, why string) error {
	t.src.logger().Info("rebuilding app index from the store", "app", app, "reason", why)
	fresh := audience.New()
	side := t.src
	side.Index = fresh
	if err := side.rebuildApp(ctx, app); err != nil {
		return fmt.Errorf("rebuild app %d: %w", app, err)
	}
	t.mu.Lock()
	t.src.Index.Adopt(fresh, app)
	t.broadcastLocked()
	t.mu.Unlock()
	t.m.rebuilds.Inc()
	return nil
}

// Sync waits until the index of app has reached the store's current
// change position, so that a push resolved right after a write through any
// node sees that write (read your writes). It waits at most
// cfg.SyncWait: then it counts a timeout, logs it and returns nil, and the
// caller resolves the audience from the index as it is (every change up to
// its position, and possibly some after). It returns an error only when the
// store's position cannot be read or ctx ends.
func (t *IndexTail) Sync(ctx context.Context, app uint64) error {
	start := time.Now()
	want, err := t.src.Changes.ChangePosition(ctx, app)
	if err != nil {
		return err
	}
	if t.src.Index.Position(app) >= want {
		t.m.wait.Observe(time.Since(start).Seconds())
		return nil
	}
	t.Wake(app)
	timer := time.NewTimer(t.cfg.SyncWait)
	defer timer.Stop()
	for {
		t.mu.Lock()
		moved := t.moved
		t.mu.Unlock()
		if t.src.Index.Position(app) >= want {
			t.m.wait.Observe(time.Since(start).Seconds())
			return nil
		}
		select {
		case <-moved:
		case <-timer.C:
			t.m.wait.Observe(time.Since(start).Seconds())
			t.m.timeouts.Inc()
			t.src.logger().Warn("audience index behind the store after the read-your-writes wait; resolving from the index as it is",
				"app", app, "index_position", t.src.Index.Position(app), "store_position", want, "waited", t.cfg.SyncWait)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// tailMetrics are the tail's Prometheus metrics.
type tailMetrics struct {
	wait       prometheus.Histogram
	timeouts   prometheus.Counter
	refreshed  prometheus.Counter
	rebuilds   prometheus.Counter
	ownApplied prometheus.Counter
	ownSkipped prometheus.Counter
	errors     prometheus.Counter
}

func newTailMetrics(reg prometheus.Registerer) tailMetrics {
	m := tailMetrics{
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "timd_index_sync_wait_seconds",
			Help:    "Time a push waited for the audience index to reach the store's change position (read your writes).",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5}}),
		timeouts: prometheus.NewCounter(prometheus.CounterOpts{Name: "timd_index_sync_timeouts_total",
			Help: "Pushes resolved from an index still behind the store after the read-your-writes wait."}),
		refreshed: prometheus.NewCounter(prometheus.CounterOpts{Name: "timd_index_tail_refreshed_total",
			Help: "Accounts re-read from the store by the audience index tail."}),
		rebuilds: prometheus.NewCounter(prometheus.CounterOpts{Name: "timd_index_tail_rebuilds_total",
			Help: "App indexes rebuilt from a store scan by the tail (log trimmed, too far behind, or another store)."}),
		ownApplied: prometheus.NewCounter(prometheus.CounterOpts{Name: "timd_index_own_changes_applied_total",
			Help: "This node's own changes applied directly to the audience index."}),
		ownSkipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "timd_index_own_changes_skipped_total",
			Help: "This node's own changes the audience index already had (applied by the tail first)."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "timd_index_tail_errors_total",
			Help: "Failed audience index tail passes (retried at the next round)."}),
	}
	if reg != nil {
		reg.MustRegister(m.wait, m.timeouts, m.refreshed, m.rebuilds, m.ownApplied, m.ownSkipped, m.errors)
	}
	return m
}
