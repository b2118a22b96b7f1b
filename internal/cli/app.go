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

	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/sqlite"
)

const appUsage = `Usage:
  timd app list       [--store DIR]
  timd app add        [--store DIR] --sdkappid N --admin ID[,ID...] [--key KEY] [--callback-url URL]
  timd app remove     [--store DIR] --sdkappid N
  timd app rotate-key [--store DIR] --sdkappid N [--key KEY]

Manages the apps stored in a store, whether or not a server runs on it; a
running server sees each change within %s. add and rotate-key make a
random key unless --key is given, and print a made key once; list never
prints keys, only a fingerprint (the first 8 hex digits of its SHA-256).
An app that serve's --app or config names is written again from there at
each start: change the configuration too.
`

// appCmd runs `timd app <list|add|remove|rotate-key>`.
func appCmd(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		fmt.Fprintf(env.Stderr, appUsage, service.AppRefresh)
		return errors.New("missing subcommand")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("app "+sub, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	store := fs.String("store", firstSet(env.Getenv("TIMD_STORE"), "./timd-data"), "store directory")
	var sdkappid *uint64
	var key, admins, callback *string
	switch sub {
	case "list":
	case "add":
		sdkappid = fs.Uint64("sdkappid", 0, "SDKAppID, 1 to 4294967295")
		admins = fs.String("admin", "", "admin UserIDs, comma-separated (1 to 10)")
		key = fs.String("key", "", "secret key (default: a new random one, printed once)")
		callback = fs.String("callback-url", "", "webhook URL (optional)")
	case "remove":
		sdkappid = fs.Uint64("sdkappid", 0, "SDKAppID")
	case "rotate-key":
		sdkappid = fs.Uint64("sdkappid", 0, "SDKAppID")
		key = fs.String("key", "", "the new secret key (default: a new random one, printed once)")
	case "help", "-h", "--help":
		fmt.Fprintf(env.Stdout, appUsage, service.AppRefresh)
		return nil
	default:
		fmt.Fprintf(env.Stderr, appUsage, service.AppRefresh)
		return fmt.Errorf("unknown subcommand %q", sub)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if sdkappid != nil && (*sdkappid == 0 || *sdkappid > 1<<32-1) {
		return errors.New("--sdkappid is required: 1 to 4294967295")
	}
	if key != nil && *key != "" && !validKey(*key) {
		return errors.New("--key must be 1 to 256 printable characters without spaces")
	}
	dir, err := sqlite.OpenAppDir(ctx, *store)
	if err != nil {
		return fmt.Errorf("open store %s: %w", *store, err)
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

func listApps(ctx context.Context, env Env, dir *sqlite.AppDir) error {
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

func addApp(ctx context.Context, env Env, dir *sqlite.AppDir, app im.App) error {
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

func rotateKey(ctx context.Context, env Env, dir *sqlite.AppDir, id uint64, key string) error {
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
