package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"timd/internal/audience"
	"timd/internal/config"
	"timd/internal/fanout"
	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/webhook"
)

// pushing is the sending side of the push service: the services behind
// the /v4 push commands and the background work they start (fan-out
// engine, webhook dispatcher, scheduler).
type pushing struct {
	push      *service.Push
	sched     *service.Sched
	stats     *service.Stats
	engine    *fanout.Engine
	hooks     *webhook.Dispatcher
	scheduler *fanout.Scheduler
}

// newPushing wires the push services over store. live is the live
// delivery hub; nil delivers to nobody (every recipient offline).
// hold is the fan-out test hook (fanout.Options.HoldAfter; 0 off).
func newPushing(cfg config.Config, store backend, index *audience.Index, live fanout.Live,
	reg prometheus.Registerer, log *slog.Logger, hold int64) *pushing {
	owner := bootID()
	// Work one node at a time must do runs under a store lease on a
	// shared store; a SQLite store is this process's alone.
	var leases im.LeaseStore
	if config.IsPostgres(cfg.Store) {
		leases = store
	}
	engine := fanout.New(store, live, fanout.Options{Owner: owner, Rate: fanoutRates(cfg), Registerer: reg,
		HoldAfter: hold}, log)
	hooks := webhook.New(store, store, index, webhook.Options{Registerer: reg, Leases: leases, Owner: owner}, log)
	engine.SetHooks(hooks)
	push := service.NewPush(store, store, index, engine, service.PushConfig{
		Limits: cfg.Limits, AppLimits: pushLimits(cfg), Audience: audience.DefaultOptions(), Log: log})
	sched := service.NewSched(store, push, nil)
	scheduler := fanout.NewScheduler(store, sched.Fire, fanout.SchedOptions{Leases: leases, Owner: owner}, log)
	sched.SetWake(scheduler.Wake)
	return &pushing{push: push, sched: sched, stats: service.NewStats(store, index, nil),
		engine: engine, hooks: hooks, scheduler: scheduler}
}

// start resumes unfinished fan-outs and webhooks and starts the scheduler.
func (p *pushing) start(ctx context.Context) {
	p.hooks.Start(ctx)
	p.engine.Start(ctx)
	p.scheduler.Start(ctx)
}

// stop ends the background work in order: no new scheduled pushes, then
// the fan-out (progress saved), then the webhooks (cursors saved). Call it
// after the HTTP server has drained and before the store closes.
func (p *pushing) stop() {
	p.scheduler.Stop()
	p.engine.Stop()
	p.hooks.Stop()
}

// fanoutHold reads TIMD_TEST_FANOUT_HOLD, a test hook and not a setting:
// when it is a positive number N, every fan-out stops after N recipients
// and waits, so that the kill -9 end-to-end tests kill the server in the
// middle of a fan-out for sure. Its use is logged as a warning.
func fanoutHold(env Env, log *slog.Logger) int64 {
	v := env.Getenv("TIMD_TEST_FANOUT_HOLD")
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		log.Warn("ignoring TIMD_TEST_FANOUT_HOLD: not a positive number", "value", v)
		return 0
	}
	log.Warn("test hook: every fan-out holds after N recipients", "TIMD_TEST_FANOUT_HOLD", n)
	return n
}

// bootID is this process's lease owner: the host name (for people reading
// the store) and 16 random hex digits drawn at start, so that two
// processes never share an owner, not even two pods with one host name or
// a restart of the same node. A SQLite store releases the leases of
// earlier processes when it opens (sqlite.Store.ReleaseLeases); on
// PostgreSQL a restarted node's tasks are taken over when their lease
// expires.
func bootID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "timd"
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return h + "/" + hex.EncodeToString(b)
}

// pushLimits returns each app's push limits from its quotas.
func pushLimits(cfg config.Config) func(uint64) service.PushLimits {
	lim := map[uint64]service.PushLimits{}
	for _, a := range cfg.Apps {
		lim[a.SDKAppID] = service.PushLimitsFrom(a.Quotas)
	}
	return func(app uint64) service.PushLimits {
		if l, ok := lim[app]; ok {
			return l
		}
		return service.DefaultPushLimits()
	}
}

// fanoutRates returns each app's "fanout_per_second" pace (0: unpaced).
func fanoutRates(cfg config.Config) func(uint64) int {
	rates := map[uint64]int{}
	for _, a := range cfg.Apps {
		rates[a.SDKAppID] = int(a.Quotas["fanout_per_second"])
	}
	return func(app uint64) int { return rates[app] }
}

// The wiring's contracts.
var (
	_ service.Fanout = (*fanout.Engine)(nil)
	_ fanout.Waker   = (*webhook.Dispatcher)(nil)
	_ webhook.Apps   = backend(nil)
	_ webhook.Names  = (*audience.Index)(nil)
)
