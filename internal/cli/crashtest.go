package cli

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"timd/internal/crashtest"
)

// runCrashTest runs `timd serve` as a child, kills it with SIGKILL while
// it writes and while it fans a push out, and checks what survived; it
// fails when any guarantee was broken.
func runCrashTest(ctx context.Context, env Env, args []string) error {
	fs := newFlags("crashtest")
	store := fs.String("store", "", "store directory (default: a fresh temporary one, removed after a pass)")
	bin := fs.String("bin", "", "timd binary to run as the server (default: this one)")
	accounts := fs.Int("accounts", 20_000, "account population")
	writers := fs.Int("writers", 8, "concurrent writers")
	kills := fs.Int("kills", 5, "kill -9 rounds while writing")
	round := fs.Duration("duration-per-round", 2*time.Second, "longest write time before a kill (each round kills at a random moment from a tenth of it)")
	live := fs.Int("live", 50, "live WebSocket clients during the fan-out kill")
	seed := fs.Uint64("seed", 0, "workload seed (default: random; printed)")
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if *bin == "" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		*bin = self
	}
	if *seed == 0 {
		*seed = rand.Uint64()
	}
	fmt.Fprintf(env.Stderr, "timd crashtest: seed %d\n", *seed)
	rep, err := crashtest.Run(ctx, crashtest.Config{Bin: *bin, Store: *store, Accounts: *accounts, Writers: *writers,
		Kills: *kills, Round: *round, Live: *live, Seed: *seed, Progress: env.Stderr})
	if rep != nil {
		rep.Print(env.Stdout)
	}
	if err != nil {
		return err
	}
	if n := len(rep.Violations); n > 0 {
		return errors.New(plural(n, "violation") + fmt.Sprintf(" (seed %d)", *seed))
	}
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
