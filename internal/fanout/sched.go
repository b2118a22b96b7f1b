package fanout

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"timd/internal/im"
)

// Fire dispatches a due scheduled task and returns the push TaskId. An
// *im.Error carrying a code is final (the task fails with it); any other
// error is transient (the task is tried again).
type Fire func(ctx context.Context, t im.SchedTask) (string, error)

// SchedOptions tune the Scheduler. Zero fields take the defaults.
type SchedOptions struct {
	Tick time.Duration // how often due tasks are looked for (default 1 s)
	// Retry is how long a task stays "dispatching" before it is tried
	// again (default 1 min). At Start every dispatching task is retried:
	// one scheduler runs per store, so they were left by a crash.
	Retry time.Duration
	// Leases, when set, makes the due pass one node's job among the nodes
	// that share the store: a pass runs only while this scheduler holds
	// the lease SchedLease as Owner (taken for ten Ticks, renewed at each
	// pass); another node takes over once it ends. nil: every pass runs
	// (one process on its store).
	Leases im.LeaseStore
	Owner  string
	Now    func() time.Time
}

// SchedLease is the im.LeaseStore name of the scheduler's due pass.
const SchedLease = "scheduler"

// Scheduler fires scheduled pushes when they fall due, including those
// that fell due while timd was down. A task moves pending → dispatching
// (persisted) → dispatched or failed; Fire is idempotent per task (the
// push TaskId is derived from the task's ID), so a dispatch cut short by
// a crash is simply repeated.
type Scheduler struct {
	store im.SchedStore
	fire  Fire
	opt   SchedOptions
	log   *slog.Logger
	wake  chan struct{}

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewScheduler returns a scheduler over store that dispatches with fire.
func NewScheduler(store im.SchedStore, fire Fire, opt SchedOptions, log *slog.Logger) *Scheduler {
	if opt.Tick <= 0 {
		opt.Tick = time.Second
	}
	if opt.Retry <= 0 {
		opt.Retry = time.Minute
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{store: store, fire: fire, opt: opt, log: log, wake: make(chan struct{}, 1)}
}

// Start runs the loop until ctx ends or Stop is called.
func (s *Scheduler) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Go(func() { s.loop(ctx) })
}

// Stop ends the loop after the dispatch in progress.
func (s *Scheduler) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// Wake makes the loop look for due tasks now.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Scheduler) loop(ctx context.Context) {
	tick := time.NewTicker(s.opt.Tick)
	defer tick.Stop()
	stale := s.opt.Now().Unix() // first pass: every dispatching task
	for {
		s.runDue(ctx, stale)
		stale = s.opt.Now().Add(-s.opt.Retry).Unix()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.wake:
		}
	}
}

// runDue dispatches every due task, a page at a time, while this node
// holds the scheduler lease (SchedOptions.Leases).
func (s *Scheduler) runDue(ctx context.Context, staleBefore int64) {
	for ctx.Err() == nil && s.holdLease(ctx) {
		now := s.opt.Now().Unix()
		due, err := s.store.DueSched(ctx, now, staleBefore, 64)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("scheduled tasks: read failed", "err", err)
			}
			return
		}
		progress := false
		for _, t := range due {
			if s.dispatch(ctx, t) {
				progress = true
			}
		}
		if len(due) < 64 || !progress {
			return
		}
	}
}

// holdLease takes or renews the scheduler lease; true without Leases.
func (s *Scheduler) holdLease(ctx context.Context) bool {
	l := s.opt.Leases
	if l == nil {
		return true
	}
	now := s.opt.Now()
	held, err := l.TakeLease(ctx, SchedLease, s.opt.Owner, now.UnixMilli(), now.Add(10*s.opt.Tick).UnixMilli())
	if err != nil && ctx.Err() == nil {
		s.log.Error("scheduled tasks: taking the lease failed", "err", err)
	}
	return held
}

// dispatch claims t (pending or stale dispatching → dispatching), fires it
// and records the outcome; it reports whether t left the due set.
func (s *Scheduler) dispatch(ctx context.Context, t im.SchedTask) bool {
	from := t.Status
	t.Status, t.UpdatedAt = im.SchedDispatching, s.opt.Now().Unix()
	if ok, err := s.store.MoveSched(ctx, from, t); err != nil || !ok {
		return false
	}
	id, err := s.fire(ctx, t)
	t.UpdatedAt = s.opt.Now().Unix()
	switch e, final := im.AsError(err); {
	case err == nil:
		t.Status, t.DispatchSuccess, t.PushTaskID = im.SchedDispatched, 1, id
	case final && e.Kind == im.KindCode:
		t.Status, t.DispatchErr = im.SchedFailed, e.Error()
	default:
		if ctx.Err() == nil {
			s.log.Error("scheduled task: dispatch failed; it will be retried", "sdkappid", t.App, "task", t.ID, "err", err)
		}
		return false // stays dispatching until Retry has passed
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := s.store.MoveSched(ctx, im.SchedDispatching, t); err != nil {
		s.log.Error("scheduled task: recording the dispatch failed", "sdkappid", t.App, "task", t.ID, "err", err)
		return false
	}
	s.log.Info("scheduled task dispatched", "sdkappid", t.App, "task", t.ID, "status", t.Status, "push", t.PushTaskID)
	return true
}
