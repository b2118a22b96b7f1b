package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"timd/internal/loadgen"
)

// bench drives a running timd with real UserSigs and prints throughput and
// latency; with --baseline it first measures a bare net/http handler that
// decodes the same JSON, in the same run, as the yardstick. With --live N,
// N WebSocket clients stay connected during the op mix, and --push-every
// pushes to a rotating Condition meanwhile, timing each push's receipt at
// the clients in its audience. --live N --push-once is the one-shot live
// measurement instead of the op mix.
func bench(ctx context.Context, env Env, args []string) error {
	fs := newFlags("bench")
	addr := fs.String("addr", "http://127.0.0.1:8080", "base URL of the timd to drive")
	restAddr := fs.String("rest-addr", "", "comma-separated base URLs of the cluster nodes the REST calls go to, round-robin per request (default --addr)")
	liveAddr := fs.String("live-addr", "", "with --live: comma-separated base URLs of the cluster nodes the clients connect to, round-robin (default --addr)")
	sdkappid := fs.Uint64("sdkappid", 0, "SDKAppID")
	key := fs.String("key", "", "the app's secret key")
	admin := fs.String("admin", "administrator", "admin identifier")
	ops := fs.String("ops", "set_attr", `comma-separated op mix: set_attr,get_attr,add_tag,get_tag,remove_attr ("" for none)`)
	conc := fs.Int("concurrency", 16, "concurrent clients")
	dur := fs.Duration("duration", 10*time.Second, "how long to run each phase")
	batch := fs.Int("batch", 100, "accounts per request (max 100)")
	accounts := fs.Int("accounts", 100_000, "account population")
	prepare := fs.Bool("prepare", true, "name attributes, import the accounts and give them tags and attributes first")
	baseline := fs.Bool("baseline", true, "also measure a bare net/http (or, with --push-once, WebSocket) server in the same run")
	live := fs.Int("live", 0, "keep N WebSocket clients connected during the run")
	pushEvery := fs.Duration("push-every", 0, "during the run, push to the next rotating Condition this often (0: never)")
	pushOnce := fs.Bool("push-once", false, "with --live: instead of the op mix, push once to everyone and time the receipts")
	liveWait := fs.Duration("live-wait", 30*time.Second, "with --live: how long to wait for receipts after the pushes")
	stormN := fs.Int("storm", 0, "reconnect storm: N clients dial within --storm-spread while --stored pushes are stored, and must each get every push owed to them")
	stored := fs.Int("stored", 100, "with --storm: stored pushes to make first, half to everyone, half by Condition (0: no storm, only prepare the accounts and, with --sync, measure /v1/sync)")
	spread := fs.Duration("storm-spread", time.Second, "with --storm: the dials are spread evenly over this")
	stormWait := fs.Duration("storm-wait", time.Minute, "with --storm: how long to wait for the clients to catch up")
	stormBatch := fs.Bool("storm-batch", true, "with --storm: clients connect with batch=1 (catch-up in pushes messages, one batched ack per message); false: one push frame and one ack per push")
	syncBench := fs.Bool("sync", false, "with --storm: afterwards, GET /v1/sync as the storm's accounts for --duration")
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if *sdkappid == 0 || *key == "" {
		return errUsage{errors.New("--sdkappid and --key are required")}
	}
	if *batch < 1 || *batch > 100 || *conc < 1 || *accounts < *batch || *live < 0 || (*pushOnce && *live == 0) {
		return errUsage{errors.New("need 1 <= --batch <= 100 <= --accounts, --concurrency >= 1, and --live N with --push-once")}
	}
	cfg := loadgen.Config{Base: strings.TrimRight(*addr, "/"), SDKAppID: *sdkappid, Key: *key, Admin: *admin,
		Ops: opList(*ops), Concurrency: *conc, Duration: *dur, Batch: *batch, Accounts: *accounts,
		Prefix: "bench", Progress: env.Stderr, PushEvery: *pushEvery, LiveBases: splitAddrs(*liveAddr),
		RESTBases: splitAddrs(*restAddr)}
	c, err := loadgen.NewClient(cfg)
	if err != nil {
		return err
	}
	if *pushOnce {
		return benchPushOnce(ctx, env, c, *live, *liveWait, *baseline)
	}
	if *stormN > 0 {
		return benchStorm(ctx, env, c, stormOpts{n: *stormN, stored: *stored, spread: *spread, wait: *stormWait,
			prepare: *prepare, accounts: *accounts, baseline: *baseline, sync: *syncBench, admin: *admin, batch: *stormBatch})
	}
	if *prepare {
		start := time.Now()
		if err := c.Prepare(ctx); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "prepared %d accounts with tags and attributes in %v\n", *accounts, time.Since(start).Round(time.Millisecond))
	}
	if *baseline && len(cfg.Ops) > 0 {
		if err := benchBaseline(ctx, env, cfg); err != nil {
			return err
		}
	}
	var l *loadgen.Listeners
	if *live > 0 {
		start := time.Now()
		if l, err = c.Listen(ctx, *live); err != nil {
			return err
		}
		defer l.Close()
		fmt.Fprintf(env.Stdout, "connected %d live clients in %v\n", *live, time.Since(start).Round(time.Millisecond))
	}
	fmt.Fprintf(env.Stdout, "timd at %s (concurrency %d, batch %d, %d live clients):\n", cfg.Base, *conc, *batch, *live)
	res, pushes := c.Run(ctx, l)
	printResults(env, res)
	if len(pushes) > 0 {
		printPushes(env, pushes, l, *liveWait)
	}
	return nil
}

// opList splits the --ops list; "" is no op.
func opList(s string) []string {
	var out []string
	for _, op := range strings.Split(s, ",") {
		if op = strings.TrimSpace(op); op != "" {
			out = append(out, op)
		}
	}
	return out
}

// benchBaseline runs the op mix against the bare net/http baseline.
func benchBaseline(ctx context.Context, env Env, cfg loadgen.Config) error {
	srv, base, err := loadgen.Baseline()
	if err != nil {
		return err
	}
	defer srv.Close()
	cfg.Base, cfg.PushEvery, cfg.RESTBases = base, 0, nil
	bc, err := loadgen.NewClient(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, "baseline (bare net/http, JSON decode and a same-shape answer):")
	res, _ := bc.Run(ctx, nil)
	printResults(env, res)
	return nil
}

func printResults(env Env, res []loadgen.Result) {
	for _, r := range res {
		fmt.Fprintln(env.Stdout, "  ", r)
		if r.FirstFail != "" {
			fmt.Fprintln(env.Stdout, "     first failure:", r.FirstFail)
		}
	}
}

// printPushes waits for the receipts and prints the push/receipt table.
func printPushes(env Env, pushes []loadgen.Push, l *loadgen.Listeners, wait time.Duration) {
	receipts := func(string) map[int]time.Time { return nil }
	n := 0
	if l != nil {
		l.Wait(pushes, wait)
		receipts, n = l.Receipts, l.N()
	}
	fmt.Fprintf(env.Stdout, "pushes (stored, rotating Condition) with %d live clients; receipt = push call start to frame read:\n", n)
	fmt.Fprintln(env.Stdout, "  ", loadgen.PushHeader)
	for _, r := range loadgen.Summarize(pushes, receipts) {
		fmt.Fprintln(env.Stdout, "  ", r)
		if r.FirstFail != "" && r.Kind != "all" {
			fmt.Fprintln(env.Stdout, "     first failure:", r.FirstFail)
		}
	}
	if l != nil {
		dups, ended := l.Health()
		fmt.Fprintf(env.Stdout, "live clients: %d repeated frames; connections lost during the run: %v\n", dups, ended)
	}
}

// splitAddrs splits a comma-separated list of base URLs (nil for "").
func splitAddrs(s string) []string {
	var out []string
	for a := range strings.SplitSeq(s, ",") {
		if a = strings.TrimRight(strings.TrimSpace(a), "/"); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// benchPushOnce is --live N --push-once: N clients, one online-only push
// to everyone, receipt times; with baseline, first the same measurement
// against a bare WebSocket broadcast server.
func benchPushOnce(ctx context.Context, env Env, c *loadgen.Client, n int, wait time.Duration, baseline bool) error {
	if baseline {
		res, err := liveBaseline(ctx, n, wait)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, "baseline (bare coder/websocket broadcast, child process):")
		fmt.Fprintln(env.Stdout, "  ", res)
	}
	l, err := c.Listen(ctx, n)
	if err != nil {
		return err
	}
	defer l.Close()
	res, err := c.PushOnce(ctx, l, wait)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, "timd:")
	fmt.Fprintln(env.Stdout, "  ", res)
	return nil
}

// liveBaseline runs the bare broadcast server in a child process (its own
// file descriptors, like timd) and measures it with the same clients.
func liveBaseline(ctx context.Context, n int, wait time.Duration) (loadgen.LiveResult, error) {
	self, err := os.Executable()
	if err != nil {
		return loadgen.LiveResult{}, err
	}
	cmd := exec.CommandContext(ctx, self, "bench-baseline-ws")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return loadgen.LiveResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return loadgen.LiveResult{}, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return loadgen.LiveResult{}, fmt.Errorf("baseline server: %w", err)
	}
	return loadgen.LiveBaseline(ctx, strings.TrimSpace(addr), n, wait)
}

// benchBaselineWS is the hidden child of `timd bench --live N --push-once`.
func benchBaselineWS(ctx context.Context, env Env) error {
	return loadgen.ServeBroadcastBaseline(ctx, func(addr string) { fmt.Fprintln(env.Stdout, addr) })
}

type stormOpts struct {
	n, stored, accounts     int
	spread, wait            time.Duration
	prepare, baseline, sync bool
	batch                   bool
	admin                   string
}

// benchStorm is --storm N: the N storm accounts are imported first, with
// --prepare the --accounts population too (so the app holds accounts+N);
// then the stored pushes are made, the storm is run against the bare
// WebSocket baseline in a child process and then against timd, and with
// --sync /v1/sync is measured against a bare net/http baseline.
func benchStorm(ctx context.Context, env Env, c *loadgen.Client, o stormOpts) error {
	start := time.Now()
	if o.prepare {
		if err := c.Prepare(ctx); err != nil {
			return err
		}
	}
	if err := c.PrepareLive(ctx, o.n); err != nil { // cheap, and the storm needs them
		return err
	}
	fmt.Fprintf(env.Stdout, "prepared %d storm accounts (and, with --prepare, %d others) in %v\n", o.n, o.accounts, time.Since(start).Round(time.Millisecond))
	if o.stored == 0 { // --stored 0: no storm; only prepare, and with --sync measure /v1/sync
		return benchSync(ctx, env, c, o)
	}
	start = time.Now()
	pushes, err := c.StorePushes(ctx, o.stored)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "stored %d pushes (half to everyone, half by Condition) in %v\n", len(pushes), time.Since(start).Round(time.Millisecond))
	if o.baseline {
		res, err := stormBaseline(ctx, o, pushes)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, "baseline (bare coder/websocket server writing the same frames, child process):")
		fmt.Fprintln(env.Stdout, "  ", res)
	}
	res, err := c.Storm(ctx, o.n, pushes, o.spread, o.wait, o.batch)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, "timd:")
	fmt.Fprintln(env.Stdout, "  ", res)
	return benchSync(ctx, env, c, o)
}

// benchSync measures /v1/sync as the storm's accounts, with --sync.
func benchSync(ctx context.Context, env Env, c *loadgen.Client, o stormOpts) error {
	if !o.sync {
		return nil
	}
	sres, answer, err := c.SyncBench(ctx, o.n)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "/v1/sync as the storm's accounts (answer %d bytes):\n", len(answer))
	if o.baseline {
		bres, err := c.SyncBaseline(ctx, answer)
		if err != nil {
			return err
		}
		printResults(env, []loadgen.Result{bres})
	}
	printResults(env, []loadgen.Result{sres})
	return nil
}

// stormBaseline runs the storm baseline server in a child process.
func stormBaseline(ctx context.Context, o stormOpts, pushes []loadgen.StoredPush) (loadgen.StormResult, error) {
	self, err := os.Executable()
	if err != nil {
		return loadgen.StormResult{}, err
	}
	spec, err := os.CreateTemp("", "timd-storm-*.json")
	if err != nil {
		return loadgen.StormResult{}, err
	}
	defer os.Remove(spec.Name())
	if err := loadgen.WriteStormSpec(spec, pushes, o.admin); err != nil {
		spec.Close()
		return loadgen.StormResult{}, err
	}
	if err := spec.Close(); err != nil {
		return loadgen.StormResult{}, err
	}
	cmd := exec.CommandContext(ctx, self, "bench-baseline-storm", spec.Name())
	out, err := cmd.StdoutPipe()
	if err != nil {
		return loadgen.StormResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return loadgen.StormResult{}, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return loadgen.StormResult{}, fmt.Errorf("storm baseline server: %w", err)
	}
	return loadgen.StormBaseline(ctx, strings.TrimSpace(addr), o.n, pushes, o.spread, o.wait, o.batch), nil
}

// benchBaselineStorm is the hidden child of `timd bench --storm N`: it
// serves the storm baseline for the spec file args[0].
func benchBaselineStorm(ctx context.Context, env Env, args []string) error {
	if len(args) != 1 {
		return errors.New("bench-baseline-storm SPECFILE")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	return loadgen.ServeStormBaseline(ctx, f, func(addr string) { fmt.Fprintln(env.Stdout, addr) })
}
