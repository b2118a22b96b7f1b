package cli

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"timd/internal/audience"
	"timd/internal/config"
	"timd/internal/fanout"
	"timd/internal/im"
	"timd/internal/offline"
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
	vendors   *offline.Dispatcher // nil without vendor senders
}

// newPushing wires the push services over store. live is the live
// delivery hub; nil delivers to nobody (every recipient offline).
// hold is the fan-out test hook (fanout.Options.HoldAfter; 0 off); owner
// names this node in fan-out leases (see leaseOwner); share is this node's
// part of the in-memory rate limits (service.PushConfig.RateShare).
// senders are the apps' vendor senders; nil sends nothing through
// vendors (recipients without a connection keep their inbox copy only).
func newPushing(cfg config.Config, store backend, index *audience.Index, live fanout.Live,
	reg prometheus.Registerer, log *slog.Logger, hold int64, owner string, share func() float64,
	indexSync service.IndexSyncer, senders offline.Senders, vopt offline.Options) *pushing {
	// Work one node at a time must do runs under a store lease on a
	// shared store; a SQLite store is this process's alone.
	var leases im.LeaseStore
	if config.IsPostgres(cfg.Store) {
		leases = store
	}
	engine := fanout.New(store, live, fanout.Options{Owner: owner, Rate: fanoutRates(cfg), Registerer: reg,
		HoldAfter: hold}, log)
	hooks := webhook.New(store, store, index, webhook.Options{Registerer: reg, Tokens: callbackTokens(cfg),
		Leases: leases, Owner: owner}, log)
	engine.SetHooks(hooks)
	var vendors *offline.Dispatcher
	if senders != nil {
		vopt.Owner = owner
		hooks.SetSends(store)
		vopt.OnResult = func(im.SendResult, *im.PushTask) { hooks.WakeSends() }
		vendors = offline.New(store, senders, vopt, log)
		engine.SetOutbox(store, vendors)
	}
	push := service.NewPush(store, store, index, engine, service.PushConfig{
		Limits: cfg.Limits, AppLimits: pushLimits(cfg), Audience: audience.DefaultOptions(), RateShare: share,
		IndexSync: indexSync, Log: log})
	sched := service.NewSched(store, push, nil)
	scheduler := fanout.NewScheduler(store, sched.Fire, fanout.SchedOptions{Leases: leases, Owner: owner}, log)
	sched.SetWake(scheduler.Wake)
	stats := service.NewStats(store, index, nil)
	if indexSync != nil {
		stats.SetIndexSync(indexSync)
	}
	stats.SetSends(store)
	return &pushing{push: push, sched: sched, stats: stats,
		engine: engine, hooks: hooks, scheduler: scheduler, vendors: vendors}
}

// start resumes unfinished fan-outs and webhooks and starts the scheduler.
func (p *pushing) start(ctx context.Context) {
	p.hooks.Start(ctx)
	if p.vendors != nil {
		p.vendors.Start(ctx)
	}
	p.engine.Start(ctx)
	p.scheduler.Start(ctx)
}

// stop ends the background work in order: no new scheduled pushes, then
// the fan-out (progress saved), then vendor sends, then the webhooks (cursors saved). Call it
// after the HTTP server has drained and before the store closes.
func (p *pushing) stop() {
	p.scheduler.Stop()
	p.engine.Stop()
	if p.vendors != nil {
		p.vendors.Stop() // sends in flight stay leased and go out after a restart
	}
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

// vendorLease reads TIMD_TEST_VENDOR_LEASE, a test hook and not a
// setting: how long a claimed vendor send stays reserved (default 60 s),
// so that the kill -9 end-to-end test sees the sends in flight at the
// kill go out again without waiting a minute.
func vendorLease(env Env, log *slog.Logger) time.Duration {
	v := env.Getenv("TIMD_TEST_VENDOR_LEASE")
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		log.Warn("ignoring TIMD_TEST_VENDOR_LEASE: not a positive duration", "value", v)
		return 0
	}
	log.Warn("test hook: vendor sends are leased for", "TIMD_TEST_VENDOR_LEASE", d)
	return d
}

// leaseOwner is this node's name in fan-out leases. A single node uses
// its host name, stable across restarts, so that a restarted timd resumes
// its own tasks at once. A cluster node adds its boot id (node, from the
// NATS bus): nodes on one host, or pods that share a host name, must
// never both hold a lease, and a killed node's tasks go to a live one once
// the lease runs out.
func leaseOwner(node string) string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "timd"
	}
	if node != "" {
		return h + "/" + node
	}
	return h
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

// callbackTokens are the configured apps' callback tokens, which sign
// their callbacks.
func callbackTokens(cfg config.Config) map[uint64]string {
	tokens := map[uint64]string{}
	for _, a := range cfg.Apps {
		if a.CallbackToken != "" {
			tokens[a.SDKAppID] = a.CallbackToken
		}
	}
	return tokens
}

// The wiring's contracts.
var (
	_ service.Fanout = (*fanout.Engine)(nil)
	_ fanout.Waker   = (*webhook.Dispatcher)(nil)
	_ webhook.Apps   = backend(nil)
	_ webhook.Names  = (*audience.Index)(nil)
)
