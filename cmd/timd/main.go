// Command timd is a self-hosted server for Tencent Cloud Chat's push REST
// API. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"timd/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, cli.Env{Args: os.Args[1:], Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
