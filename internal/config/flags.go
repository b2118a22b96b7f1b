package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// FlagSet returns the flags of `timd serve` bound to a scratch
// configuration holding the defaults: for help output, which prints each
// flag with its default.
func FlagSet() *flag.FlagSet {
	c := Default()
	fs, _ := c.flagSet()
	return fs
}

// flagSet registers the flags of `timd serve` on a new flag set, each
// writing to c. Every flag but --config and --app is also a key of the
// configuration file. The returned appFlags collects --app values.
func (c *Config) flagSet() (*flag.FlagSet, *appFlags) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.String("config", "", "read settings from the JSON `FILE` (keys are these flags' names; flags and TIMD_* win)")
	fs.Var(&text{&c.Listen, checkListen}, "listen", "listen on `ADDR`, host:port (port 0 picks a free one)")
	fs.Var(&text{&c.Store, CheckStore}, "store",
		"keep the embedded SQLite store in the directory `DIR`, or use the PostgreSQL database at a postgres:// URL")
	apps := &appFlags{}
	fs.Var(apps, "app", "serve the app `SDKAPPID:SECRETKEY:ADMIN[,ADMIN...]` (repeatable; TIMD_APP: space-separated)")
	fs.Var(&onOff{&c.Limits}, "limits", "set to `on|off`; off lifts every rate limit and quota (benchmarks)")
	fs.Var(&onOff{&c.ConfiguredAppsOnly}, "configured-apps-only",
		"set to `on|off`; on refuses (70020) every stored app that --app and the config file do not name")
	fs.Var(&text{&c.LogLevel, func(s string) error { _, err := parseLevel(s); return err }}, "log-level",
		"log at `LEVEL`: debug, info, warn or error")
	fs.Var(&bytesValue{&c.BodyLimit, MinBodyLimit, MaxBodyLimit}, "body-limit",
		"refuse request bodies over `BYTES` with 60008")
	for _, d := range []struct {
		p          *Duration
		name, what string
	}{
		{&c.ReadHeaderTimeout, "read-header-timeout", "a client may take to send a request's header"},
		{&c.ReadTimeout, "read-timeout", "a client may take to send a whole request"},
		{&c.WriteTimeout, "write-timeout", "an answer may take"},
		{&c.IdleTimeout, "idle-timeout", "an idle keep-alive connection stays open"},
	} {
		fs.Var(&durationValue{d.p}, d.name, "the longest `DURATION` "+d.what)
	}
	fs.Var(&sizeValue{&c.StoreCache, 1 << 20, 1 << 40, false}, "store-cache",
		"the SQLite page cache of the store's writer connection, `SIZE` in bytes or with KiB, MiB or GiB")
	fs.Var(&sizeValue{&c.StoreReadCache, 1 << 20, 1 << 40, false}, "store-read-cache",
		"the SQLite page cache of each store read connection, `SIZE`")
	fs.Var(&sizeValue{&c.AudienceCache, 1 << 20, 1 << 40, false}, "audience-cache",
		"the decoded push audiences kept for catch-up and acks, at most `SIZE`")
	fs.Var(&sizeValue{&c.MemoryLimit, 64 << 20, 1 << 50, true}, "memory-limit",
		"the Go runtime's soft memory limit, `SIZE` such as 1GiB (0: none, or GOMEMLIMIT's)")
	fs.Var(&sizeValue{&c.GCHeapFloor, 4 << 20, 1 << 40, true}, "gc-heap-floor",
		"let the Go heap reach `SIZE` before a garbage collection starts, raising GOGC while the live heap is small (0: GOGC alone)")
	fs.Var(&text{&c.PprofListen, checkListen}, "pprof-listen",
		"serve Go's runtime profiles (/debug/pprof/) on `ADDR`, unauthenticated: keep it on loopback (default: off)")
	fs.Var(&skewValue{&c.UserSigSkew}, "usersig-skew",
		"refuse (70003) UserSigs dated more than `DURATION` ahead of this server's clock (0 to 1h)")
	fs.Var(&boundedDuration{&c.IndexSyncWait, MaxIndexSyncWait}, "index-sync-wait",
		"with a store shared by several nodes, let a push wait up to `DURATION` (0 to 1m; 0: never) for this node's audience index to reach the store's last account change")
	fs.Var(&text{&c.NATS, checkNATS}, "nats",
		"join the nodes sharing the store through the NATS server at `URL` (nats://host:port; default: a single node)")
	fs.Var(&text{&c.NATSPrefix, checkSubjectPrefix}, "nats-prefix",
		"begin every NATS subject with `PREFIX`: the same on every node of one cluster, different between clusters")
	fs.Var(&boundedDuration{&c.ChangeRetention, MaxChangeRetention}, "change-retention",
		"with a PostgreSQL store, keep account changes in the shared change log for `DURATION` (0: forever); one node at a time trims older ones, and a node stopped for longer rebuilds its index from a scan")
	fs.Var(&text{&c.Snapshot, nonEmpty}, "snapshot",
		"with a PostgreSQL store, keep this node's audience index snapshot in `FILE` (written every 5 min and at a clean stop, loaded at start; default: none, each start rebuilds from a scan)")
	fs.Var(&text{&c.TLSCert, nonEmpty}, "tls-cert", "serve HTTPS with the PEM certificate chain in `FILE` (needs --tls-key)")
	fs.Var(&text{&c.TLSKey, nonEmpty}, "tls-key", "the PEM private key `FILE` of --tls-cert")
	return fs, apps
}

// Load builds the configuration of `timd serve` from args, the TIMD_*
// environment (read through getenv) and an optional --config file, with
// flags taking precedence over the environment and the environment over
// the file. It returns an error wrapping flag.ErrHelp for -h and --help.
func Load(args []string, getenv func(string) string) (Config, error) {
	// The command line alone first: its syntax, --help and --config.
	scratch := Default()
	cmdline, _ := scratch.flagSet()
	if err := cmdline.Parse(args); err != nil {
		return Config{}, err
	}
	if cmdline.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", cmdline.Arg(0))
	}
	given := map[string]bool{}
	cmdline.Visit(func(f *flag.Flag) { given[f.Name] = true })

	cfg := Default()
	cfg.src = map[string]string{}
	fs, flagApps := cfg.flagSet()
	if path := first(cmdline.Lookup("config").Value.String(), getenv("TIMD_CONFIG")); path != "" {
		if err := cfg.readFile(fs, path); err != nil {
			return Config{}, err
		}
	}
	if err := cfg.readEnv(fs, given, getenv); err != nil {
		return Config{}, err
	}
	if err := fs.Parse(args); err != nil { // cannot fail: the same args parsed above
		return Config{}, err
	}
	fs.Visit(func(f *flag.Flag) { cfg.src[f.Name] = "--" + f.Name })

	appArgs := []string(*flagApps)
	source := "--app"
	if len(appArgs) == 0 {
		appArgs, source = strings.Fields(getenv("TIMD_APP")), "TIMD_APP"
	}
	var apps []AppConfig
	for _, s := range appArgs {
		a, err := ParseApp(s)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", source, err)
		}
		a.src = fmt.Sprintf("%s %d", source, a.SDKAppID)
		apps = append(apps, a)
	}
	// Merging keeps one app per SDKAppID: a duplicate within the file or
	// within the flags is an error, not a silent overwrite.
	if err := uniqueApps(cfg.Apps); err != nil {
		return Config{}, err
	}
	if err := uniqueApps(apps); err != nil {
		return Config{}, err
	}
	cfg.Apps = mergeApps(cfg.Apps, apps)
	return cfg, cfg.Validate()
}

// readEnv applies TIMD_<NAME> for every flag not given on the command
// line (--config and --app are read by Load).
func (c *Config) readEnv(fs *flag.FlagSet, given map[string]bool, getenv func(string) string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] || f.Name == "config" || f.Name == "app" {
			return
		}
		name := EnvName(f.Name)
		v := getenv(name)
		if v == "" {
			return
		}
		if e := f.Value.Set(v); e != nil {
			err = fmt.Errorf("%s: %v", name, e)
			return
		}
		c.src[f.Name] = name
	})
	return err
}

// EnvName is the environment variable of the flag name: TIMD_LOG_LEVEL
// for log-level.
func EnvName(flagName string) string {
	return "TIMD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// text is a string setting with a check.
type text struct {
	p     *string
	check func(string) error
}

func (v *text) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v *text) Set(s string) error {
	if err := v.check(s); err != nil {
		return err
	}
	*v.p = s
	return nil
}

func nonEmpty(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	return nil
}

// checkListen accepts host:port with a port from 0 to 65535 or a service
// name; it binds nothing.
func checkListen(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want host:port, such as 127.0.0.1:8080 or :0")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err == nil {
		return nil
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("port %q: want a number from 0 to 65535", port)
	}
	return nil
}

// onOff is the on|off setting --limits; it also reads true/false, 1/0 and
// yes/no (the file may hold a JSON boolean).
type onOff struct{ p *bool }

func (v *onOff) String() string {
	if v.p == nil || *v.p {
		return "on"
	}
	return "off"
}

func (v *onOff) Set(s string) error {
	switch strings.ToLower(s) {
	case "on", "true", "1", "yes":
		*v.p = true
	case "off", "false", "0", "no":
		*v.p = false
	default:
		return errors.New("want on or off")
	}
	return nil
}

// bytesValue is a byte count within [min, max].
type bytesValue struct {
	p        *int64
	min, max int64
}

func (v *bytesValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatInt(*v.p, 10)
}

func (v *bytesValue) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return errors.New("want a whole number of bytes")
	}
	if n < v.min || n > v.max {
		return fmt.Errorf("%d is out of range (%d to %d bytes)", n, v.min, v.max)
	}
	*v.p = n
	return nil
}

// sizeValue is a Bytes within [min, max], or 0 when zero is allowed.
type sizeValue struct {
	p        *Bytes
	min, max Bytes
	zero     bool
}

func (v *sizeValue) String() string {
	if v.p == nil || *v.p == 0 {
		return "0"
	}
	return v.p.String()
}

func (v *sizeValue) Set(s string) error {
	b, err := ParseBytes(s)
	if err != nil {
		return err
	}
	if (b != 0 || !v.zero) && (b < v.min || b > v.max) {
		zero := ""
		if v.zero {
			zero = "0 (none) or "
		}
		return fmt.Errorf("%s is out of range (%s%s to %s)", b, zero, v.min, v.max)
	}
	*v.p = b
	return nil
}

// durationValue is a positive duration of at most MaxTimeout.
type durationValue struct{ p *Duration }

func (v *durationValue) String() string {
	if v.p == nil {
		return "0s"
	}
	return v.p.String()
}

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a number and a unit, such as \"10s\" or \"2m\"")
	}
	if d <= 0 || d > MaxTimeout {
		return fmt.Errorf("%s is out of range (more than 0, at most %s)", d, MaxTimeout)
	}
	*v.p = Duration(d)
	return nil
}

// skewValue is a duration from 0 to MaxUserSigSkew.
type skewValue struct{ p *Duration }

func (v *skewValue) String() string {
	if v.p == nil {
		return "0s"
	}
	return v.p.String()
}

func (v *skewValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a number and a unit, such as \"30s\" or \"5m\"")
	}
	if d < 0 || d > MaxUserSigSkew {
		return fmt.Errorf("%s is out of range (0 to %s)", d, MaxUserSigSkew)
	}
	*v.p = Duration(d)
	return nil
}

// boundedDuration is a duration from 0 to max.
type boundedDuration struct {
	p   *Duration
	max time.Duration
}

func (v *boundedDuration) String() string {
	if v.p == nil {
		return "0s"
	}
	return v.p.String()
}

func (v *boundedDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a number and a unit, such as \"500ms\" or \"2s\"")
	}
	if d < 0 || d > v.max {
		return fmt.Errorf("%s is out of range (0 to %s)", d, v.max)
	}
	*v.p = Duration(d)
	return nil
}

// appFlags collects repeated --app flags unparsed: they are parsed after
// the flag set, because the flag package quotes a rejected value in its
// error, and an --app value holds a secret key.
type appFlags []string

func (f *appFlags) String() string { return "" }

func (f *appFlags) Set(s string) error {
	*f = append(*f, s)
	return nil
}

// ParseApp parses SDKAPPID:SECRETKEY:ADMIN[,ADMIN...]. Its errors never
// quote the secret key.
func ParseApp(s string) (AppConfig, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 {
		return AppConfig{}, errors.New("want SDKAPPID:SECRETKEY:ADMIN[,ADMIN...]")
	}
	id, err := strconv.ParseUint(parts[0], 10, 32)
	if err != nil || id == 0 {
		return AppConfig{}, fmt.Errorf("bad SDKAppID %q: want 1 to 4294967295", parts[0])
	}
	admins := strings.Split(parts[2], ",")
	return AppConfig{SDKAppID: id, SecretKey: parts[1], Admins: admins}, nil
}

// mergeApps overlays flag apps on file apps by SDKAppID, keeping file-only
// settings (rates, quotas, callback, vendors) for apps given in both.
func mergeApps(file []AppConfig, flags []AppConfig) []AppConfig {
	byID := map[uint64]AppConfig{}
	for _, a := range file {
		byID[a.SDKAppID] = a
	}
	for _, a := range flags {
		if old, ok := byID[a.SDKAppID]; ok {
			a.Rates, a.Quotas, a.CallbackURL = old.Rates, old.Quotas, old.CallbackURL
			a.CallbackToken, a.Vendors = old.CallbackToken, old.Vendors
			a.src += " (with " + old.src + ")"
		}
		byID[a.SDKAppID] = a
	}
	out := make([]AppConfig, 0, len(byID))
	for _, a := range byID {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SDKAppID < out[j].SDKAppID })
	return out
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
