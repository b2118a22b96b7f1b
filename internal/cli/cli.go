// Package cli implements timd's subcommands. It is the only package that
// wires concrete stores to the services.
package cli

import (
	"context"
	"fmt"
	"io"
)

const usage = `timd is a self-hosted server for Tencent Cloud Chat's push REST API.

Usage:
  timd serve   [--listen ADDR] [--store PATH] [--app SDKAPPID:KEY:ADMIN[,ADMIN...]]...
               [--limits on|off] [--log-level LEVEL] [--config FILE]
  timd usersig --sdkappid N --key KEY --identifier ID [--expire SECONDS]
  timd app     list|add|remove|rotate-key [--store PATH] ...   (timd app help)
  timd bench   --sdkappid N --key KEY [--addr URL] [--ops set_attr,get_attr,...]
               [--concurrency N] [--duration D] [--batch N] [--accounts N]
               [--live N [--push-every D | --push-once]] [--live-wait D]
  timd crashtest [--accounts N] [--writers N] [--kills N] [--duration-per-round D]
                 [--live N] [--seed N] [--store DIR] [--bin PATH]

Every serve flag can also be set as TIMD_<FLAG> (for example TIMD_LISTEN).
`

// Env is what a subcommand may touch of its process.
type Env struct {
	Args   []string
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
}

// Main runs the subcommand named by args[0] and returns the exit code.
func Main(ctx context.Context, env Env) int {
	if len(env.Args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return 2
	}
	var err error
	switch env.Args[0] {
	case "serve":
		err = serve(ctx, env, env.Args[1:])
	case "usersig":
		err = genUserSig(env, env.Args[1:])
	case "app":
		err = appCmd(ctx, env, env.Args[1:])
	case "bench":
		err = bench(ctx, env, env.Args[1:])
	case "crashtest":
		err = runCrashTest(ctx, env, env.Args[1:])
	case "bench-baseline-ws": // hidden: the child process of `timd bench --live N --push-once`
		err = benchBaselineWS(ctx, env)
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return 0
	default:
		fmt.Fprintf(env.Stderr, "timd: unknown command %q\n\n%s", env.Args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "timd %s: %v\n", env.Args[0], err)
		return 1
	}
	return 0
}
