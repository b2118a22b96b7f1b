package cli

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
)

// version prints the build's module version, VCS commit and Go version.
func version(_ context.Context, env Env, args []string) error {
	if err := parseFlags(env, newFlags("version"), args); err != nil {
		return err
	}
	info, ok := debug.ReadBuildInfo()
	fmt.Fprintln(env.Stdout, versionString(info, ok))
	return nil
}

// versionString describes a build: "timd v1.2.0 commit 3f2a9c1d5e7b
// (modified) 2026-12-01T20:00:00Z go1.26.0". A part the build does not
// record says so: a binary built with -buildvcs=false, or by `go run`
// outside a checkout, has "commit unknown".
func versionString(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return "timd version unknown commit unknown (no build information)"
	}
	mod := info.Main.Version
	if mod == "" {
		mod = "unknown"
	}
	var rev, when, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	parts := []string{"timd", mod}
	if rev == "" {
		parts = append(parts, "commit unknown")
	} else {
		parts = append(parts, "commit "+rev)
		if modified == "true" {
			parts = append(parts, "(modified)")
		}
		if when != "" {
			parts = append(parts, when)
		}
	}
	if info.GoVersion != "" {
		parts = append(parts, info.GoVersion)
	}
	return strings.Join(parts, " ")
}

// buildVersion is versionString of this binary, for the start-up log.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	return versionString(info, ok)
}
