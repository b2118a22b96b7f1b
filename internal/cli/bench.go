package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"timd/internal/loadgen"
)

// bench drives a running timd with real UserSigs and prints throughput and
// latency; with --baseline it first measures a bare net/http handler that
// decodes the same JSON, in the same run, as the yardstick.
func bench(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	addr := fs.String("addr", "http://127.0.0.1:8080", "base URL of the timd to drive")
	sdkappid := fs.Uint64("sdkappid", 0, "SDKAppID")
	key := fs.String("key", "", "the app's secret key")
	admin := fs.String("admin", "administrator", "admin identifier")
	ops := fs.String("ops", "set_attr", "comma-separated op mix: set_attr,get_attr,add_tag,get_tag,remove_attr")
	conc := fs.Int("concurrency", 16, "concurrent clients")
	dur := fs.Duration("duration", 10*time.Second, "how long to run each phase")
	batch := fs.Int("batch", 100, "accounts per request (max 100)")
	accounts := fs.Int("accounts", 100_000, "account population")
	prepare := fs.Bool("prepare", true, "name attributes and import the accounts first")
	baseline := fs.Bool("baseline", true, "also measure a bare net/http handler in the same run")
	live := fs.Int("live", 0, "instead of the op mix: connect N WebSocket clients, push once to all, and measure receipt latency")
	liveWait := fs.Duration("live-wait", 30*time.Second, "with --live: how long to wait for every client")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sdkappid == 0 || *key == "" {
		return errors.New("--sdkappid and --key are required")
	}
	if *batch < 1 || *batch > 100 || *conc < 1 || *accounts < *batch {
		return errors.New("need 1 <= --batch <= 100 <= --accounts and --concurrency >= 1")
	}
	cfg := loadgen.Config{Base: strings.TrimRight(*addr, "/"), SDKAppID: *sdkappid, Key: *key, Admin: *admin,
		Ops: strings.Split(*ops, ","), Concurrency: *conc, Duration: *dur, Batch: *batch,
		Accounts: *accounts, Prefix: "bench", Progress: env.Stderr}
	c, err := loadgen.NewClient(cfg)
	if err != nil {
		return err
	}
	if *live > 0 {
		if *baseline {
			res, err := liveBaseline(ctx, *live, *liveWait)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, "baseline (bare coder/websocket broadcast, child process):")
			fmt.Fprintln(env.Stdout, "  ", res)
		}
		res, err := c.Live(ctx, *live, *liveWait)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, "timd:")
		fmt.Fprintln(env.Stdout, "  ", res)
		return nil
	}
	if *prepare {
		start := time.Now()
		if err := c.Prepare(ctx); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "prepared %d accounts in %v\n", *accounts, time.Since(start).Round(time.Millisecond))
	}
	if *baseline {
		srv, base, err := loadgen.Baseline()
		if err != nil {
			return err
		}
		bcfg := cfg
		bcfg.Base = base
		bc, err := loadgen.NewClient(bcfg)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, "baseline (bare net/http, JSON decode only):")
		for _, r := range bc.Run(ctx) {
			fmt.Fprintln(env.Stdout, "  ", r)
		}
		srv.Close()
	}
	fmt.Fprintf(env.Stdout, "timd at %s (concurrency %d, batch %d):\n", cfg.Base, *conc, *batch)
	for _, r := range c.Run(ctx) {
		fmt.Fprintln(env.Stdout, "  ", r)
		if r.FirstFail != "" {
			fmt.Fprintln(env.Stdout, "     first failure:", r.FirstFail)
		}
	}
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

// benchBaselineWS is the hidden child of `timd bench --live`.
func benchBaselineWS(ctx context.Context, env Env) error {
	return loadgen.ServeBroadcastBaseline(ctx, func(addr string) { fmt.Fprintln(env.Stdout, addr) })
}
