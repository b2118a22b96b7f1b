package cli

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"timd/internal/config"
	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/postgres"
	"timd/internal/store/sqlite"
)

// appNotes follows the flags in `timd app --help`.
const appNotes = `
Subcommands:
  list        SDKAppID, admins, key fingerprint, callback URL and creation time
              of every stored app; never a key
  add         store a new app (--sdkappid, --admin; --key, --callback-url)
  remove      delete an app (--sdkappid); its accounts and pushes stay
  rotate-key  give an app a new key (--sdkappid; --key)

They work on a stopped store and beside a running server, which sees each
change within %s. add and rotate-key make a random key unless --key is
given, and print a made key once. An app that serve's --app or config file
names is written again from there at each start: change it there too.
`

// appFlags defines on fs the flags of `timd app` that sub uses (all of
// them for the help text).
func appFlags(fs *flag.FlagSet, env Env, sub string) (store *string, sdkappid *uint64, admins, key, callback *string) {
	store = fs.String("store", firstSet(env.Getenv("TIMD_STORE"), "./timd-data"), "the store: a SQLite directory or a postgres:// URL")
	all := sub == ""
	if all || sub != "list" {
		sdkappid = fs.Uint64("sdkappid", 0, "the app's SDKAppID, 1 to 4294967295")
	}
	if all || sub == "add" {
		admins = fs.String("admin", "", "add: admin UserIDs, comma-separated, 1 to 10")
		callback = fs.String("callback-url", "", "add: webhook URL (optional)")
	}
	if all || sub == "add" || sub == "rotate-key" {
		key = fs.String("key", "", "add, rotate-key: the secret key (default: a new random one, printed once)")
	}
	return store, sdkappid, admins, key, callback
}

// appDir is the app table of a store.
type appDir interface {
	im.AppStore
	Close() error
}

// openAppDir opens the apps of the store at store: a PostgreSQL database
// for a postgres:// URL (which runs its migrations), otherwise the apps
// of a SQLite directory, beside a running server or not.
func openAppDir(ctx context.Context, store string) (appDir, error) {
	if config.IsPostgres(store) {
		return postgres.Open(ctx, store, postgres.Options{})
	}
	if err := config.CheckStore(store); err != nil {
		return nil, err
	}
	return sqlite.OpenAppDir(ctx, store)
}

// appCmd runs `timd app <list|add|remove|rotate-key>`.
func appCmd(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return errUsage{errors.New("missing subcommand: list, add, remove or rotate-key")}
	}
	sub := args[0]
	switch sub {
	case "-h", "--help", "-help", "help":
		fs := newFlags("app")
		appFlags(fs, env, "")
		printHelp(env.Stdout, fs)
		fmt.Fprintf(env.Stdout, appNotes, service.AppRefresh)
		return flag.ErrHelp
	case "list", "add", "remove", "rotate-key":
	default:
		return errUsage{fmt.Errorf("unknown subcommand %q: want list, add, remove or rotate-key", sub)}
	}
	fs := newFlags("app")
	store, sdkappid, admins, key, callback := appFlags(fs, env, sub)
	if err := parseFlags(env, fs, args[1:]); err != nil {
		return err
	}
	if sdkappid != nil && (*sdkappid == 0 || *sdkappid > 1<<32-1) {
		return errUsage{errors.New("--sdkappid is required: 1 to 4294967295")}
	}
	if key != nil && *key != "" && !validKey(*key) {
		return errUsage{errors.New("--key must be 1 to 256 printable characters without spaces")}
	}
	dir, err := openAppDir(ctx, *store)
	if err != nil {
		return fmt.Errorf("open store %s: %w", config.StoreName(*store), err)
	}
	defer dir.Close()
	switch sub {
	case "list":
		return listApps(ctx, env, dir)
	case "add":
		return addApp(ctx, env, dir, im.App{SDKAppID: *sdkappid, SecretKey: *key, Admins: splitAdmins(*admins),
			CallbackURL: *callback, CreatedAt: time.Now().Unix()})
	case "remove":
		if err := dir.DeleteApp(ctx, *sdkappid); err != nil {
			return notFound(err, *sdkappid)
		}
		fmt.Fprintf(env.Stdout, "removed app %d (its accounts and pushes stay in the store); a running server refuses it within %s\n",
			*sdkappid, service.AppRefresh)
		return nil
	default:
		return rotateKey(ctx, env, dir, *sdkappid, *key)
	}
}

func listApps(ctx context.Context, env Env, dir appDir) error {
	apps, err := dir.Apps(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SDKAPPID\tADMINS\tKEY\tCALLBACK\tCREATED")
	for _, a := range apps {
		created := "-"
		if a.CreatedAt > 0 {
			created = time.Unix(a.CreatedAt, 0).UTC().Format(time.RFC3339)
		}
		cb := a.CallbackURL
		if cb == "" {
			cb = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", a.SDKAppID, strings.Join(a.Admins, ","), fingerprint(a.SecretKey), cb, created)
	}
	return tw.Flush()
}

func addApp(ctx context.Context, env Env, dir appDir, app im.App) error {
	if _, err := dir.App(ctx, app.SDKAppID); err == nil {
		return fmt.Errorf("app %d exists; use `timd app rotate-key` to change its key", app.SDKAppID)
	} else if !errors.Is(err, im.ErrNotFound) {
		return err
	}
	made := app.SecretKey == ""
	if made {
		app.SecretKey = newKey()
	}
	if err := app.Validate(); err != nil {
		return err
	}
	if err := dir.PutApp(ctx, app); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "added app %d with admins %s (they become accounts when a server loads the app)\n",
		app.SDKAppID, strings.Join(app.Admins, ","))
	printKey(env, made, app.SecretKey)
	return nil
}

func rotateKey(ctx context.Context, env Env, dir appDir, id uint64, key string) error {
	app, err := dir.App(ctx, id)
	if err != nil {
		return notFound(err, id)
	}
	made := key == ""
	if made {
		key = newKey()
	}
	app.SecretKey = key
	if err := dir.PutApp(ctx, app); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "rotated the key of app %d; a running server accepts only UserSigs of the new key within %s\n",
		id, service.AppRefresh)
	printKey(env, made, key)
	return nil
}

// printKey shows a key timd made, once; a key the operator gave is never
// echoed.
func printKey(env Env, made bool, key string) {
	if made {
		fmt.Fprintf(env.Stdout, "SecretKey: %s  (shown only this once)\n", key)
	} else {
		fmt.Fprintf(env.Stdout, "key fingerprint: %s\n", fingerprint(key))
	}
}

func notFound(err error, id uint64) error {
	if errors.Is(err, im.ErrNotFound) {
		return fmt.Errorf("no app %d in the store", id)
	}
	return err
}

// fingerprint identifies a key without revealing it.
func fingerprint(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:4])
}

// newKey returns a random 256-bit key in hex, the shape of Tencent's.
func newKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func validKey(k string) bool {
	if len(k) > 256 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] > '~' {
			return false
		}
	}
	return true
}

func splitAdmins(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// firstSet returns the first non-empty value.
func firstSet(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
