// Package config holds timd's configuration: defaults, loading (flags over
// environment over file), validation, and a redacted printout.
//
// Every setting has one name, the name of its `timd serve` flag. The
// environment variable is TIMD_ and the name in upper case with `-` as `_`
// (TIMD_LOG_LEVEL), and the configuration file's key is the name itself
// (`log-level`); in file keys `_` may stand for `-` (`log_level`, the
// spelling of earlier timd versions). Apps, which no flag but --app sets,
// are the file's `apps` list. Values are checked where they are read, and
// an error names where the value came from (the file and key, the variable
// or the flag) and why it was refused.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is the configuration of `timd serve`.
type Config struct {
	Listen   string
	Store    string
	Limits   bool
	LogLevel string
	Apps     []AppConfig
	// BodyLimit is the largest request body in bytes.
	BodyLimit int64
	// ReadHeaderTimeout bounds how long a client may take to send a
	// request's header, ReadTimeout its whole request, WriteTimeout how
	// long a response may take, and IdleTimeout how long an idle
	// keep-alive connection stays open (http.Server's fields of the same
	// names). Each must be positive.
	ReadHeaderTimeout Duration
	ReadTimeout       Duration
	WriteTimeout      Duration
	IdleTimeout       Duration
	// TLSCert and TLSKey are the PEM certificate chain and private key
	// files; with both set timd serves HTTPS (and WSS) only.
	TLSCert string
	TLSKey  string
	// StoreCache is the SQLite page cache of the embedded store's writer
	// connection, StoreReadCache that of each of its read connections
	// (SQLite's cache_size). The store's other memory does not depend on
	// them; they are the knobs that trade RSS for fewer disk reads.
	StoreCache     Bytes
	StoreReadCache Bytes
	// MemoryLimit is the Go runtime's soft memory limit
	// (runtime/debug.SetMemoryLimit); 0 leaves the runtime's own, which
	// the GOMEMLIMIT environment variable sets. Near the limit the
	// garbage collector runs more often instead of growing the heap.
	MemoryLimit Bytes
	// GCHeapFloor is the heap size below which the Go garbage collector
	// does not start a cycle (internal/gcfloor): while the live heap is
	// small, GOGC is raised so that the next cycle waits for the heap to
	// reach it. 0 leaves GOGC alone. A bulk load then collects a few times
	// a second instead of ten times or more, and pushes during it wait
	// less (BENCHMARKS.md).
	GCHeapFloor Bytes
	// AudienceCache bounds the decoded push audiences kept for catch-up
	// and acks (deliver.NewAudienceCache). A push by Condition to 10M
	// accounts decodes to about 1.25 MB; when the stored pushes' audiences
	// do not fit, a reconnect storm reads and decodes them again and
	// again, since every client checks them in the same order.
	AudienceCache Bytes
	// PprofListen, when set, serves Go's runtime profiles
	// (/debug/pprof/) on a second listener at this address; keep it on
	// loopback: the profiles are unauthenticated.
	PprofListen string
	// ConfiguredAppsOnly refuses (70020) every stored app that the
	// configuration (--app or the file's apps) does not name, instead of
	// serving it with its stored key.
	ConfiguredAppsOnly bool
	// UserSigSkew is how far a UserSig's TLS.time may lie ahead of this
	// server's clock; a sig dated further ahead is refused with 70003.
	// From 0 to MaxUserSigSkew; the default is five minutes.
	UserSigSkew Duration
	// IndexSyncWait bounds how long a push waits for this node's audience
	// index to reach the store's last account change when several nodes
	// share the store (read your writes); 0 never waits. From 0 to
	// MaxIndexSyncWait; the default is two seconds.
	IndexSyncWait Duration
	// NATS is the NATS server URL (nats://host:port, or several
	// comma-separated) that joins this node to the others sharing its
	// store; empty runs a single node. NATSPrefix is the first token of
	// every subject, shared by the nodes of one cluster.
	NATS       string
	NATSPrefix string
	// ChangeRetention is how long the change log of a store shared by
	// several nodes (PostgreSQL) keeps each account change: older ones
	// are trimmed on a schedule, by one node at a time. A node stopped or
	// behind for longer rebuilds its index from a store scan. 0 never
	// trims. SQLite ignores it (a snapshot trims its log).
	ChangeRetention Duration
	// Snapshot is the audience index snapshot file of a node on
	// PostgreSQL: written every 5 minutes and at a clean stop, loaded at
	// start. Empty keeps none (every start rebuilds from a scan). SQLite
	// keeps index.snap in its store directory and refuses this setting.
	Snapshot string

	// src records where each setting last came from, by flag name, for
	// error messages: "config FILE: key \"name\"", "TIMD_X" or "--name".
	src map[string]string
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

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// String is the time.Duration form.
func (d Duration) String() string { return time.Duration(d).String() }

// AppConfig configures one app. Rates overrides the per-command rate limits
// (requests per second, keyed by "service/command"); Quotas overrides
// other per-app numbers, keyed by the names of Quotas (such as
// "push_per_day").
type AppConfig struct {
	SDKAppID    uint64
	SecretKey   string
	Admins      []string
	CallbackURL string
	// CallbackToken is the app's callback authentication token: when set,
	// callbacks carry RequestTime and Sign (webhook.SignURL). Secret.
	CallbackToken string
	// Vendors are the app's push-vendor credentials (offline delivery).
	Vendors Vendors
	Rates   map[string]float64
	Quotas  map[string]int64

	// src names where the app was configured, for error messages.
	src string
}

// Quota describes one per-app quota key of the configuration file.
type Quota struct {
	Name string // key in AppConfig.Quotas (and, with `-` for `_`, in the file)
	Max  int64  // largest value; the least is 0, which disables the quota
}

// Quotas are the keys an app's "quotas" may hold. service.PushLimitsFrom
// reads all but fanout_per_second, which paces the fan-out engine, and
// devices_per_user, which bounds device registration.
var Quotas = []Quota{
	{"push_interval_ms", 24 * 3600 * 1000},
	{"push_per_day", 1 << 31},
	{"legacy_push_per_day", 1 << 31},
	{"batch_per_second", 1 << 31},
	{"revoke_interval_ms", 24 * 3600 * 1000},
	{"push_body_bytes", 64 << 20},
	{"fanout_per_second", 1 << 31},
	// devices_per_user bounds /v1/device/register per user; 0 means the
	// default (20), never unbounded (service.NewDevices).
	{"devices_per_user", 1000},
}

// Limits of the settings.
const (
	MinBodyLimit = 1 << 10
	MaxBodyLimit = 64 << 20
	MaxTimeout   = 24 * time.Hour
	// MaxUserSigSkew bounds --usersig-skew: a sig dated hours ahead would
	// outlive a kick by as much.
	MaxUserSigSkew = time.Hour
	// MaxIndexSyncWait bounds --index-sync-wait: a push is an HTTP request.
	MaxIndexSyncWait = time.Minute
	// MaxChangeRetention bounds --change-retention.
	MaxChangeRetention = 366 * 24 * time.Hour
	MaxAdmins          = 10
	MaxAdminLen        = 32
	MaxRate            = 1e6
)

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
		AudienceCache:  256 << 20,
		GCHeapFloor:    128 << 20,
		StoreReadCache: 8 << 20,

		UserSigSkew:   Duration(5 * time.Minute),
		IndexSyncWait: Duration(2 * time.Second),

		NATSPrefix:      "timd",
		ChangeRetention: Duration(24 * time.Hour),
	}
}

// Validate checks what no single setting can: the TLS pair, and each app
// as a whole once the file's and the flags' apps are merged. Each setting
// was range-checked when it was read.
func (c Config) Validate() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("%s: --tls-cert and --tls-key go together: give both or neither", c.source("tls-cert", "tls-key"))
	}
	if c.Snapshot != "" && !IsPostgres(c.Store) {
		return fmt.Errorf("%s: --snapshot is for a PostgreSQL store; SQLite keeps its snapshot in the store directory",
			c.source("snapshot"))
	}
	if err := uniqueApps(c.Apps); err != nil {
		return err
	}
	for _, a := range c.Apps {
		if err := a.validate(); err != nil {
			return err
		}
	}
	return nil
}

// source names where the first of keys that was set came from.
func (c Config) source(keys ...string) string {
	for _, k := range keys {
		if s, ok := c.src[k]; ok {
			return s
		}
	}
	return "config"
}

// validate checks one merged app. Its errors never quote the secret key.
func (a AppConfig) validate() error {
	where := a.src
	if where == "" {
		where = fmt.Sprintf("app %d", a.SDKAppID)
	}
	switch {
	case a.SDKAppID == 0 || a.SDKAppID > 1<<32-1:
		return fmt.Errorf("%s: sdkappid %d out of range (1 to 4294967295)", where, a.SDKAppID)
	case a.SecretKey == "":
		return fmt.Errorf("%s: app %d has no secret key", where, a.SDKAppID)
	case len(a.Admins) == 0 || len(a.Admins) > MaxAdmins:
		return fmt.Errorf("%s: app %d needs 1 to %d admins, has %d", where, a.SDKAppID, MaxAdmins, len(a.Admins))
	}
	for _, adm := range a.Admins {
		if adm == "" || len(adm) > MaxAdminLen {
			return fmt.Errorf("%s: app %d: admin %q must be 1 to %d bytes", where, a.SDKAppID, adm, MaxAdminLen)
		}
	}
	return nil
}

// CheckRates refuses a rate override for a command that is not one of
// commands ("service/command"): a misspelt key would otherwise leave the
// real command at its default rate without a word.
func (c Config) CheckRates(commands []string) error {
	for _, a := range c.Apps {
		keys := make([]string, 0, len(a.Rates))
		for k := range a.Rates {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if !slices.Contains(commands, k) {
				return fmt.Errorf("%s: rates: unknown command %q (want service/command, such as \"timpush/set_attr\")", a.src, k)
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
			return fmt.Errorf("%s: app %d configured twice", a.src, a.SDKAppID)
		}
		seen[a.SDKAppID] = true
	}
	return nil
}

// Level parses LogLevel.
func (c Config) Level() (slog.Level, error) { return parseLevel(c.LogLevel) }

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
		if err := l.UnmarshalText([]byte(s)); err == nil {
			return l, nil
		}
	}
	return 0, errors.New("want debug, info, warn or error")
}

// TLS reports whether timd serves HTTPS.
func (c Config) TLS() bool { return c.TLSCert != "" }

// String prints the configuration with secret keys redacted.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen=%s store=%s limits=%t log-level=%s body-limit=%d", c.Listen, StoreName(c.Store), c.Limits, c.LogLevel, c.BodyLimit)
	fmt.Fprintf(&b, " read-header-timeout=%s read-timeout=%s write-timeout=%s idle-timeout=%s",
		c.ReadHeaderTimeout, c.ReadTimeout, c.WriteTimeout, c.IdleTimeout)
	fmt.Fprintf(&b, " store-cache=%s store-read-cache=%s memory-limit=%s gc-heap-floor=%s audience-cache=%s", c.StoreCache, c.StoreReadCache, c.MemoryLimit, c.GCHeapFloor, c.AudienceCache)
	if c.ConfiguredAppsOnly {
		b.WriteString(" configured-apps-only=on")
	}
	fmt.Fprintf(&b, " usersig-skew=%s", c.UserSigSkew)
	fmt.Fprintf(&b, " index-sync-wait=%s", c.IndexSyncWait)
	if c.TLS() {
		fmt.Fprintf(&b, " tls-cert=%s tls-key=%s", c.TLSCert, c.TLSKey)
	}
	if c.PprofListen != "" {
		fmt.Fprintf(&b, " pprof-listen=%s", c.PprofListen)
	}
	if c.NATS != "" {
		fmt.Fprintf(&b, " nats=%s nats-prefix=%s", redactURLs(c.NATS), c.NATSPrefix)
	}
	if IsPostgres(c.Store) {
		fmt.Fprintf(&b, " change-retention=%s", c.ChangeRetention)
	}
	if c.Snapshot != "" {
		fmt.Fprintf(&b, " snapshot=%s", c.Snapshot)
	}
	for _, a := range c.Apps {
		fmt.Fprintf(&b, " app=%d:[redacted]:%s", a.SDKAppID, strings.Join(a.Admins, ","))
	}
	return b.String()
}

// checkCallbackURL accepts an absolute http or https URL.
func checkCallbackURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an absolute http:// or https:// URL")
	}
	return nil
}

// checkNATS accepts one or more comma-separated nats:// or tls:// URLs
// with a host.
func checkNATS(s string) error {
	for one := range strings.SplitSeq(s, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			return errors.New("want nats://host:port (or tls://), several separated by commas")
		}
	}
	return nil
}

// checkSubjectPrefix accepts dot-separated tokens of 1 to 64 letters,
// digits, '_' and '-': no NATS wildcards.
func checkSubjectPrefix(s string) error {
	for tok := range strings.SplitSeq(s, ".") {
		ok := tok != "" && len(tok) <= 64
		for _, r := range tok {
			ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
		}
		if !ok {
			return errors.New("want dot-separated tokens of 1 to 64 letters, digits, _ or -")
		}
	}
	return nil
}

// redactURLs hides the passwords of comma-separated URLs.
func redactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("[redacted]")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
