// Package cli implements timd's subcommands. It is the only package that
// wires concrete stores to the services.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Env is what a subcommand may touch of its process.
type Env struct {
	Args   []string
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
}

// command is one subcommand: `timd <name> <args>` runs run with the
// arguments after the name.
type command struct {
	name    string
	args    string // the synopsis after the name, for the usage text
	summary string // one line
	run     func(ctx context.Context, env Env, args []string) error
	hidden  bool
}

// commands lists timd's subcommands in the order `timd help` shows them.
// A new subcommand adds one line here; its flags come from newFlags and
// parseFlags, which give it --help.
func commands() []command {
	return []command{
		{name: "serve", args: "[flags]", summary: "run the server", run: serve},
		{name: "usersig", args: "--sdkappid N --key KEY --identifier ID [--expire SECONDS]",
			summary: "print a UserSig v2", run: genUserSig},
		{name: "app", args: "list|add|remove|rotate-key [--store DIR|URL] [flags]",
			summary: "list, add and remove the apps of a store and rotate their keys, stopped or running", run: appCmd},
		{name: "bench", args: "--sdkappid N --key KEY [flags]", summary: "drive a running timd and report throughput and latency", run: bench},
		{name: "migrate", args: "[--store DIR|URL]", summary: "bring a store's schema up to this build's (serve also does it at start-up)", run: migrate},
		{name: "import", args: "[flags] FILE", summary: "load accounts from a JSON Lines file into a stopped store or a running server", run: runImport},
		{name: "crashtest", args: "[flags]", summary: "kill -9 a timd child while it writes and check what survived", run: runCrashTest},
		{name: "version", args: "", summary: "print the module version and commit of this build", run: version},
		{name: "help", args: "[COMMAND]", summary: "show this text, or a command's flags", run: help},
		// The child process of `timd bench --live N --push-once`.
		{name: "bench-baseline-ws", run: func(ctx context.Context, env Env, _ []string) error { return benchBaselineWS(ctx, env) }, hidden: true},
		// The child process of `timd bench --storm N`.
		{name: "bench-baseline-storm", run: benchBaselineStorm, hidden: true},
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// usage is the text of `timd help`.
func usage() string {
	var b strings.Builder
	b.WriteString("timd is a self-hosted server for Tencent Cloud Chat's push REST API.\n\nUsage:\n")
	for _, c := range commands() {
		if !c.hidden {
			fmt.Fprintf(&b, "  timd %-10s %s\n", c.name, c.summary)
		}
	}
	b.WriteString("\nRun `timd COMMAND --help` for a command's flags. Every serve flag can also be\nset as TIMD_<FLAG> (for example TIMD_LISTEN) and in the --config file.\n")
	return b.String()
}

// errUsage marks an error in the command line: Main exits 2 and points at
// --help.
type errUsage struct{ err error }

func (e errUsage) Error() string { return e.err.Error() }
func (e errUsage) Unwrap() error { return e.err }

// Main runs the subcommand named by args[0] and returns the exit code:
// 0 on success and after --help, 1 when the command failed, 2 for a bad
// command line.
func Main(ctx context.Context, env Env) int {
	if len(env.Args) == 0 {
		fmt.Fprint(env.Stderr, usage())
		return 2
	}
	name := env.Args[0]
	if name == "-h" || name == "--help" || name == "-help" {
		name = "help"
	}
	if name == "--version" || name == "-version" {
		name = "version"
	}
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(env.Stderr, "timd: unknown command %q\n\n%s", name, usage())
		return 2
	}
	err := c.run(ctx, env, env.Args[1:])
	var bad errUsage
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &bad):
		fmt.Fprintf(env.Stderr, "timd %s: %v\nRun 'timd %s --help' for its flags.\n", name, err, name)
		return 2
	default:
		fmt.Fprintf(env.Stderr, "timd %s: %v\n", name, err)
		return 1
	}
}

// help prints the usage, or with a command name that command's help.
func help(_ context.Context, env Env, args []string) error {
	fs := newFlags("help")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		printHelp(env.Stdout, fs)
		return err
	} else if err != nil {
		return errUsage{err}
	}
	switch fs.NArg() {
	case 0:
		fmt.Fprint(env.Stdout, usage())
		return nil
	case 1:
	default:
		return errUsage{fmt.Errorf("unexpected argument %q", fs.Arg(1))}
	}
	c, ok := lookup(fs.Arg(0))
	if !ok || c.hidden {
		return errUsage{fmt.Errorf("unknown command %q", fs.Arg(0))}
	}
	return c.run(context.Background(), env, []string{"--help"})
}

// newFlags returns an empty flag set for the command name; parse it with
// parseFlags.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args into fs. On -h or --help it prints the command's
// help with every flag to stdout and returns flag.ErrHelp (Main exits 0);
// a bad flag or a stray argument is an errUsage (exit 2).
func parseFlags(env Env, fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printHelp(env.Stdout, fs)
		return flag.ErrHelp
	}
	if err != nil {
		return errUsage{err}
	}
	if fs.NArg() > 0 {
		return errUsage{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// printHelp writes `timd NAME ARGS`, the command's summary and every flag
// of fs with its meaning and default.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	c, _ := lookup(fs.Name())
	fmt.Fprintf(w, "Usage: timd %s %s\n\n%s.\n", c.name, c.args, upperFirst(c.summary))
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		if n++; n == 1 {
			fmt.Fprint(w, "\nFlags:\n")
		}
		arg, meaning := flag.UnquoteUsage(f)
		if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool {
			arg = ""
		}
		fmt.Fprintf(w, "  --%s %s\n      %s", f.Name, arg, meaning)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
