package cli

import (
	"bytes"
	"context"
	"flag"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"

	"timd/internal/config"
)

func run(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Main(context.Background(), Env{Args: args, Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errOut})
	return code, out.String(), errOut.String()
}

// commandFlags are the flags each command documents; serve's are its
// configuration's flag set.
func commandFlags(t *testing.T) map[string][]string {
	var serve []string
	config.FlagSet().VisitAll(func(f *flag.Flag) { serve = append(serve, f.Name) })
	if len(serve) < 10 {
		t.Fatalf("serve has %d flags", len(serve))
	}
	return map[string][]string{
		"serve":     serve,
		"usersig":   {"sdkappid", "key", "identifier", "expire"},
		"bench":     {"addr", "sdkappid", "key", "admin", "ops", "concurrency", "duration", "batch", "accounts", "prepare", "baseline", "live", "push-every", "push-once", "live-wait"},
		"crashtest": {"store", "bin", "accounts", "writers", "kills", "duration-per-round", "live", "seed"},
		"app":       {"store", "sdkappid", "admin", "callback-url", "key"},
		"import":    {"store", "url", "sdkappid", "key", "admin", "attr-names", "batch", "concurrency", "skip-lines", "progress", "max-reported"},
		"migrate":   {"store"},
		"version":   nil,
		"help":      nil,
	}
}

// TestEveryCommandHelp: `timd CMD --help`, `-h` and `timd help CMD` print
// the command's usage and every flag to stdout, nothing to stderr, and
// exit 0, for every command.
func TestEveryCommandHelp(t *testing.T) {
	flags := commandFlags(t)
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		want, ok := flags[c.name]
		if !ok {
			t.Errorf("command %s: no flag list in this test", c.name)
			continue
		}
		var outputs []string
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			code, out, errOut := run(args...)
			if code != 0 || errOut != "" {
				t.Errorf("timd %v: exit %d, stderr %q", args, code, errOut)
			}
			if !strings.HasPrefix(out, "Usage: timd "+c.name) {
				t.Errorf("timd %v: stdout %q", args, out)
			}
			for _, f := range want {
				if !regexp.MustCompile(`(?m)^  --` + regexp.QuoteMeta(f) + `\b`).MatchString(out) {
					t.Errorf("timd %v: flag --%s missing from\n%s", args, f, out)
				}
			}
			outputs = append(outputs, out)
		}
		if c.name != "help" && (outputs[0] != outputs[1] || outputs[0] != outputs[2]) {
			t.Errorf("%s: --help, -h and help %s differ", c.name, c.name)
		}
	}
}

// TestUsage: no arguments, or an unknown command, print the usage to
// stderr and exit 2; `timd help` and `timd --help` print it to stdout and
// exit 0. The usage lists every command that is not hidden.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"bogus"}, {"help", "bogus"}} {
		if code, out, errOut := run(args...); code != 2 || out != "" || errOut == "" {
			t.Errorf("timd %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		code, out, errOut := run(args...)
		if code != 0 || errOut != "" {
			t.Errorf("timd %v: exit %d, stderr %q", args, code, errOut)
		}
		for _, c := range commands() {
			if strings.Contains(out, "timd "+c.name+" ") == c.hidden {
				t.Errorf("timd %v: command %s listed %v:\n%s", args, c.name, !c.hidden, out)
			}
		}
	}
}

// TestBadFlags: an unknown flag, a stray argument or a missing required
// flag exits 2 and points at --help; nothing goes to stdout.
func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"usersig", "--nope"},
		{"usersig", "--sdkappid", "1"},
		{"usersig", "--sdkappid", "1", "--key", "k", "--identifier", "a", "extra"},
		{"bench", "--concurrency", "x"},
		{"crashtest", "extra"},
		{"version", "--nope"},
		{"version", "extra"},
		{"app"},
		{"app", "drop"},
		{"app", "list", "extra"},
		{"app", "add", "--admin", "a"},
		{"app", "remove", "--sdkappid", "4294967296"},
		{"app", "rotate-key", "--sdkappid", "1", "--key", "a b"},
		{"app", "list", "--sdkappid", "1"},
	} {
		code, out, errOut := run(args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "timd "+args[0]+" --help") {
			t.Errorf("timd %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

// TestVersionCommand prints one line naming the module version and the
// commit (unknown in a test binary, which has no VCS stamp).
func TestVersionCommand(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, errOut := run(args...)
		if code != 0 || errOut != "" || !regexp.MustCompile(`^timd \S+ commit \S+.*\n$`).MatchString(out) {
			t.Errorf("timd %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

func TestVersionString(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, c := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, "timd version unknown commit unknown (no build information)"},
		{"-buildvcs=false", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "timd", Version: "(devel)"},
			Settings: vcs("-buildvcs", "false", "GOOS", "linux")}, true, "timd (devel) commit unknown go1.26.0"},
		{"no module version", &debug.BuildInfo{GoVersion: "go1.26.0"}, true, "timd unknown commit unknown go1.26.0"},
		{"clean checkout", &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Path: "timd", Version: "v1.2.0"},
			Settings: vcs("vcs", "git", "vcs.revision", "3f2a9c1d5e7b", "vcs.time", "2026-12-01T20:00:00Z", "vcs.modified", "false")},
			true, "timd v1.2.0 commit 3f2a9c1d5e7b 2026-12-01T20:00:00Z go1.26.1"},
		{"modified checkout", &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Path: "timd", Version: "v1.2.1-0.20261201200000-3f2a9c1d5e7b+dirty"},
			Settings: vcs("vcs.revision", "3f2a9c1d5e7b", "vcs.modified", "true")},
			true, "timd v1.2.1-0.20261201200000-3f2a9c1d5e7b+dirty commit 3f2a9c1d5e7b (modified) go1.26.1"},
	} {
		if got := versionString(c.info, c.ok); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestMigrateRefusesBadStore: `timd migrate` with a --store that is
// neither a directory nor a postgres:// URL with a host is a usage error
// (exit 2) that does not quote the URL.
func TestMigrateRefusesBadStore(t *testing.T) {
	for _, store := range []string{"mysql://u:secret@h/db", "postgres:///secret", ""} {
		code, _, errOut := run("migrate", "--store", store)
		if code != 2 || strings.Contains(errOut, "secret") {
			t.Errorf("migrate --store %q: exit %d, stderr %q", store, code, errOut)
		}
	}
}
