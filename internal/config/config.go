// Package config holds timd's configuration: defaults, loading (flags over
// environment over file), validation, and a redacted printout.
package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is the configuration of `timd serve`.
type Config struct {
	Listen   string      `json:"listen"`
	Store    string      `json:"store"`
	Limits   bool        `json:"limits"`
	LogLevel string      `json:"log_level"`
	Apps     []AppConfig `json:"apps"`
	// BodyLimit is the largest request body in bytes.
	BodyLimit int64 `json:"body_limit"`
	// ReadHeaderTimeout bounds how long a client may take to send a
	// request's header, ReadTimeout its whole request, WriteTimeout how
	// long a response may take, and IdleTimeout how long an idle
	// keep-alive connection stays open (http.Server's fields of the same
	// names). Each must be positive.
	ReadHeaderTimeout Duration `json:"read_header_timeout"`
	ReadTimeout       Duration `json:"read_timeout"`
	WriteTimeout      Duration `json:"write_timeout"`
	IdleTimeout       Duration `json:"idle_timeout"`
	// StoreCache is the SQLite page cache of the embedded store's writer
	// connection, StoreReadCache that of each of its read connections
	// (SQLite's cache_size). The store's other memory does not depend on
	// them; they are the knobs that trade RSS for fewer disk reads.
	StoreCache     Bytes `json:"store_cache"`
	StoreReadCache Bytes `json:"store_read_cache"`
	// MemoryLimit is the Go runtime's soft memory limit
	// (runtime/debug.SetMemoryLimit); 0 leaves the runtime's own, which
	// the GOMEMLIMIT environment variable sets. Near the limit the
	// garbage collector runs more often instead of growing the heap.
	MemoryLimit Bytes `json:"memory_limit"`
	// PprofListen, when set, serves Go's runtime profiles
	// (/debug/pprof/) on a second listener at this address; keep it on
	// loopback: the profiles are unauthenticated.
	PprofListen string `json:"pprof_listen"`
}

// Bytes is a size in bytes, written in JSON and flags as a number of
// bytes or a string with a unit: "512KiB", "64MiB", "1GiB" (also "B",
// "KB", "MB", "GB", taken as powers of 1024).
type Bytes int64

// ParseBytes parses a size such as "64MiB" or "1048576".
func ParseBytes(s string) (Bytes, error) {
	s = strings.TrimSpace(s)
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToUpper(strings.TrimSpace(s[len(num):]))
	mult := map[string]int64{"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20,
		"MIB": 1 << 20, "G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30}[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with KiB, MiB or GiB", s)
	}
	return Bytes(n * mult), nil
}

// UnmarshalJSON reads a number of bytes or a size string; null leaves b
// unchanged.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var n int64
	if err := json.Unmarshal(data, &n); err == nil {
		*b = Bytes(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return errors.New("a size must be a number of bytes or a string such as \"64MiB\"")
	}
	v, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// String writes the size in the largest unit that divides it.
func (b Bytes) String() string {
	for _, u := range []struct {
		name string
		n    Bytes
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && b%u.n == 0 {
			return strconv.FormatInt(int64(b/u.n), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// Duration is a time.Duration written in JSON as a Go duration string
// such as "10s" or "2m".
type Duration time.Duration

// UnmarshalJSON parses a duration string; null leaves d unchanged.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("a duration must be a string such as \"10s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want a number and a unit such as \"10s\"", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// String is the time.Duration form.
func (d Duration) String() string { return time.Duration(d).String() }

// AppConfig configures one app. Rates overrides the per-command rate limits
// (requests per second, keyed by "service/command"); Quotas overrides
// other per-app numbers such as "push_per_day".
type AppConfig struct {
	SDKAppID    uint64             `json:"sdkappid"`
	SecretKey   string             `json:"secret_key"`
	Admins      []string           `json:"admins"`
	CallbackURL string             `json:"callback_url,omitempty"`
	Rates       map[string]float64 `json:"rates,omitempty"`
	Quotas      map[string]int64   `json:"quotas,omitempty"`
}

// Default returns the defaults.
func Default() Config {
	return Config{
		Listen:    "127.0.0.1:8080",
		Store:     "./timd-data",
		Limits:    true,
		LogLevel:  "info",
		BodyLimit: 1 << 20,

		ReadHeaderTimeout: Duration(10 * time.Second),
		ReadTimeout:       Duration(30 * time.Second),
		WriteTimeout:      Duration(30 * time.Second),
		IdleTimeout:       Duration(120 * time.Second),

		StoreCache:     32 << 20,
		StoreReadCache: 8 << 20,
	}
}

// Load builds the configuration of `timd serve` from args, the TIMD_*
// environment (read through getenv) and an optional --config file, with
// flags taking precedence over the environment and the environment over
// the file.
func Load(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	file := fs.String("config", "", "JSON configuration file")
	listen := fs.String("listen", "", "listen address (default 127.0.0.1:8080)")
	store := fs.String("store", "", "embedded store directory (default ./timd-data)")
	limits := fs.String("limits", "", "on|off: enforce rate limits and quotas (default on)")
	logLevel := fs.String("log-level", "", "debug|info|warn|error (default info)")
	storeCache := fs.String("store-cache", "", "SQLite page cache of the store's writer connection (default 32MiB)")
	storeReadCache := fs.String("store-read-cache", "", "SQLite page cache of each store read connection (default 8MiB)")
	memoryLimit := fs.String("memory-limit", "", "Go soft memory limit, e.g. 1GiB (default: none, or GOMEMLIMIT)")
	pprofListen := fs.String("pprof-listen", "", "serve /debug/pprof/ on this address (default: off)")
	var appArgs appFlags
	fs.Var(&appArgs, "app", "SDKAPPID:SECRETKEY:ADMIN[,ADMIN...] (repeatable)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := Default()
	if path := first(*file, getenv("TIMD_CONFIG")); path != "" {
		if err := cfg.readFile(path); err != nil {
			return Config{}, err
		}
	}
	cfg.Listen = first(*listen, getenv("TIMD_LISTEN"), cfg.Listen)
	cfg.Store = first(*store, getenv("TIMD_STORE"), cfg.Store)
	cfg.LogLevel = first(*logLevel, getenv("TIMD_LOG_LEVEL"), cfg.LogLevel)
	cfg.PprofListen = first(*pprofListen, getenv("TIMD_PPROF_LISTEN"), cfg.PprofListen)
	if v := first(*limits, getenv("TIMD_LIMITS")); v != "" {
		on, err := parseOnOff(v)
		if err != nil {
			return Config{}, err
		}
		cfg.Limits = on
	}
	for _, sz := range []struct {
		dst      *Bytes
		flag, ev string
	}{{&cfg.StoreCache, *storeCache, "TIMD_STORE_CACHE"}, {&cfg.StoreReadCache, *storeReadCache, "TIMD_STORE_READ_CACHE"},
		{&cfg.MemoryLimit, *memoryLimit, "TIMD_MEMORY_LIMIT"}} {
		if v := first(sz.flag, getenv(sz.ev)); v != "" {
			b, err := ParseBytes(v)
			if err != nil {
				return Config{}, err
			}
			*sz.dst = b
		}
	}
	if len(appArgs) == 0 {
		appArgs = strings.Fields(getenv("TIMD_APP"))
	}
	var apps []AppConfig
	for _, s := range appArgs {
		a, err := ParseApp(s)
		if err != nil {
			return Config{}, err
		}
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

func (c *Config) readFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Listen == "" {
		return errors.New("config: listen address is empty")
	}
	if c.Store == "" {
		return errors.New("config: store path is empty")
	}
	if _, err := c.Level(); err != nil {
		return err
	}
	if c.BodyLimit < 1024 {
		return errors.New("config: body_limit must be at least 1024 bytes")
	}
	for _, t := range []struct {
		name string
		d    Duration
	}{{"read_header_timeout", c.ReadHeaderTimeout}, {"read_timeout", c.ReadTimeout},
		{"write_timeout", c.WriteTimeout}, {"idle_timeout", c.IdleTimeout}} {
		if t.d <= 0 {
			return fmt.Errorf("config: %s must be positive", t.name)
		}
	}
	if c.StoreCache < 1<<20 || c.StoreReadCache < 1<<20 {
		return errors.New("config: store_cache and store_read_cache must be at least 1MiB")
	}
	if c.MemoryLimit != 0 && c.MemoryLimit < 64<<20 {
		return errors.New("config: memory_limit must be 0 (none) or at least 64MiB")
	}
	if err := uniqueApps(c.Apps); err != nil {
		return err
	}
	for _, a := range c.Apps {
		if a.SDKAppID == 0 || a.SDKAppID > 1<<32-1 {
			return fmt.Errorf("config: sdkappid %d out of range", a.SDKAppID)
		}
		if a.SecretKey == "" {
			return fmt.Errorf("config: app %d has no secret key", a.SDKAppID)
		}
		if len(a.Admins) == 0 || len(a.Admins) > 10 {
			return fmt.Errorf("config: app %d needs 1 to 10 admins", a.SDKAppID)
		}
		for _, adm := range a.Admins {
			if adm == "" || len(adm) > 32 {
				return fmt.Errorf("config: app %d: admin %q must be 1 to 32 bytes", a.SDKAppID, adm)
			}
		}
		for k, r := range a.Rates {
			if r < 0 {
				return fmt.Errorf("config: app %d: rate %s is negative", a.SDKAppID, k)
			}
		}
	}
	return nil
}

// uniqueApps fails when two apps have the same SDKAppID.
func uniqueApps(apps []AppConfig) error {
	seen := map[uint64]bool{}
	for _, a := range apps {
		if seen[a.SDKAppID] {
			return fmt.Errorf("config: app %d configured twice", a.SDKAppID)
		}
		seen[a.SDKAppID] = true
	}
	return nil
}

// Level parses LogLevel.
func (c Config) Level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("config: log level %q: want debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

// String prints the configuration with secret keys redacted.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen=%s store=%s limits=%t log_level=%s body_limit=%d", c.Listen, c.Store, c.Limits, c.LogLevel, c.BodyLimit)
	fmt.Fprintf(&b, " read_header_timeout=%s read_timeout=%s write_timeout=%s idle_timeout=%s",
		c.ReadHeaderTimeout, c.ReadTimeout, c.WriteTimeout, c.IdleTimeout)
	fmt.Fprintf(&b, " store_cache=%s store_read_cache=%s memory_limit=%s", c.StoreCache, c.StoreReadCache, c.MemoryLimit)
	if c.PprofListen != "" {
		fmt.Fprintf(&b, " pprof_listen=%s", c.PprofListen)
	}
	for _, a := range c.Apps {
		fmt.Fprintf(&b, " app=%d:[redacted]:%s", a.SDKAppID, strings.Join(a.Admins, ","))
	}
	return b.String()
}

// appFlags collects repeated --app flags unparsed: they are parsed after
// the flag set, because the flag package quotes a rejected value in its
// error, and an --app value holds a secret key.
type appFlags []string

func (f *appFlags) String() string { return fmt.Sprintf("%d apps", len(*f)) }

func (f *appFlags) Set(s string) error {
	*f = append(*f, s)
	return nil
}

// ParseApp parses SDKAPPID:SECRETKEY:ADMIN[,ADMIN...]. Its errors never
// quote the secret key.
func ParseApp(s string) (AppConfig, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 {
		return AppConfig{}, errors.New("--app wants SDKAPPID:SECRETKEY:ADMIN[,ADMIN...]")
	}
	id, err := strconv.ParseUint(parts[0], 10, 32)
	if err != nil || id == 0 {
		return AppConfig{}, fmt.Errorf("--app: bad SDKAppID %q", parts[0])
	}
	admins := strings.Split(parts[2], ",")
	return AppConfig{SDKAppID: id, SecretKey: parts[1], Admins: admins}, nil
}

// mergeApps overlays flag apps on file apps by SDKAppID, keeping file-only
// settings (rates, quotas, callback) for apps given in both.
func mergeApps(file []AppConfig, flags []AppConfig) []AppConfig {
	byID := map[uint64]AppConfig{}
	for _, a := range file {
		byID[a.SDKAppID] = a
	}
	for _, a := range flags {
		if old, ok := byID[a.SDKAppID]; ok {
			a.Rates, a.Quotas, a.CallbackURL = old.Rates, old.Quotas, old.CallbackURL
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

func parseOnOff(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "true", "1", "yes":
		return true, nil
	case "off", "false", "0", "no":
		return false, nil
	}
	return false, fmt.Errorf("limits: want on or off, got %q", v)
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
