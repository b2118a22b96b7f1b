package service_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/sqlite"
	"timd/internal/usersig"
)

const authKey = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"

// authClock is a settable clock.
type authClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *authClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *authClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newAuth returns an authenticator over the real SQLite store with app
// (admin "administrator", account "alice") and a settable clock.
func newAuth(t *testing.T) (*service.Auth, *service.Accounts, *authClock) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	apps := service.NewApps(st, st)
	if err := apps.Put(ctx, im.App{SDKAppID: app, SecretKey: authKey, Admins: []string{"administrator"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ImportAccounts(ctx, app, []im.AccountInput{{UserID: "alice"}}); err != nil {
		t.Fatal(err)
	}
	clock := &authClock{now: time.Now().Truncate(time.Second)}
	auth := service.NewAuth(apps, st, clock.Now)
	return auth, service.NewAccounts(st, auth, nil), clock
}

func genSig(t *testing.T, id string, at int64) string {
	t.Helper()
	s, err := usersig.Gen(app, authKey, id, 86400, at)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAuthThrottlesOnlyFailures: failures are counted per (app,
// identifier, address); past 20 in a minute that address's failures are
// 70050, a valid sig passes from every address, and the window ends.
func TestAuthThrottlesOnlyFailures(t *testing.T) {
	auth, _, clock := newAuth(t)
	ctx := context.Background()
	attacker, other := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("198.51.100.1")
	bad := genSig(t, "administrator", clock.Now().Unix())[:40] + "AAAA"
	cred := func(from netip.Addr, sig string) service.Credential {
		return service.Credential{SDKAppID: app, Identifier: "administrator", Sig: sig, From: from}
	}
	for i := range 25 {
		_, err := auth.Admin(ctx, cred(attacker, bad))
		want := im.CodeSigInvalid
		if i >= 20 {
			want = im.CodeSigThrottled
		}
		if got := im.CodeOf(err); got != want {
			t.Fatalf("failure %d: code %d, want %d", i+1, got, want)
		}
	}
	good := genSig(t, "administrator", clock.Now().Unix())
	for _, from := range []netip.Addr{attacker, other, {}} {
		if _, err := auth.Admin(ctx, cred(from, good)); err != nil {
			t.Fatalf("valid sig from %v: %v", from, err)
		}
	}
	if got := im.CodeOf(func() error { _, err := auth.Admin(ctx, cred(attacker, bad)); return err }()); got != im.CodeSigThrottled {
		t.Fatalf("attacker after a valid sig: %d", got)
	}
	if got := im.CodeOf(func() error { _, err := auth.Admin(ctx, cred(other, bad)); return err }()); got != im.CodeSigInvalid {
		t.Fatalf("another address's failure: %d", got)
	}
	// /v1 shares the count.
	if _, _, err := auth.User(ctx, service.Credential{SDKAppID: app, Identifier: "administrator", Sig: bad, From: attacker}); im.CodeOf(err) != im.CodeSigThrottled {
		t.Fatalf("User for the throttled caller: %v", err)
	}
	clock.Add(61 * time.Second)
	if _, err := auth.Admin(ctx, cred(attacker, bad)); im.CodeOf(err) != im.CodeSigInvalid {
		t.Fatalf("after the window: %v", err)
	}
}

// TestAuthMaxSkew: sigs dated ahead by more than the skew are 70003; the
// default is five minutes and SetMaxSkew changes it.
func TestAuthMaxSkew(t *testing.T) {
	auth, _, clock := newAuth(t)
	ctx := context.Background()
	now := clock.Now().Unix()
	try := func(at int64) int {
		_, err := auth.Admin(ctx, service.Credential{SDKAppID: app, Identifier: "administrator", Sig: genSig(t, "administrator", at)})
		return im.CodeOf(err)
	}
	for _, c := range []struct {
		skew time.Duration // 0: the default
		at   int64
		code int
	}{
		{0, now + 300, 0},
		{0, now + 301, im.CodeSigInvalid},
		{0, now + 365*86400, im.CodeSigInvalid},
		{time.Second, now + 1, 0},
		{time.Second, now + 2, im.CodeSigInvalid},
		{time.Hour, now + 3000, 0},
	} {
		if c.skew != 0 {
			auth.SetMaxSkew(c.skew)
		}
		if got := try(c.at); got != c.code {
			t.Errorf("skew %v, TLS.time now%+d: code %d, want %d", c.skew, c.at-now, got, c.code)
		}
	}
}

// TestAuthKickRefusesSigsAcceptedBefore: after a kick, every sig issued
// before it, and every sig accepted before it even when dated (within the
// skew) after the kick, is 70052; a sig newer than both works.
func TestAuthKickRefusesSigsAcceptedBefore(t *testing.T) {
	auth, accts, clock := newAuth(t)
	ctx := context.Background()
	now := clock.Now().Unix()
	user := func(sig string) int {
		_, _, err := auth.User(ctx, service.Credential{SDKAppID: app, Identifier: "alice", Sig: sig})
		return im.CodeOf(err)
	}
	before, ahead, unused := genSig(t, "alice", now-10), genSig(t, "alice", now+120), genSig(t, "alice", now+200)
	for _, s := range []string{before, ahead} {
		if got := user(s); got != 0 {
			t.Fatalf("before the kick: %d", got)
		}
	}
	if err := accts.Kick(ctx, app, "alice"); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"issued before": before, "dated ahead, used before": ahead, "same second as the kick": genSig(t, "alice", now)} {
		if got := user(s); got != im.CodeSigKicked {
			t.Errorf("%s: %d, want 70052", name, got)
		}
	}
	// A sig dated after every sig accepted so far is indistinguishable
	// from one made after the kick, and works.
	if got := user(unused); got != 0 {
		t.Errorf("newer sig: %d", got)
	}
}

// TestCallerAddr: the throttle key is the IP, IPv4-mapped addresses
// unmapped and IPv6 cut to its /64.
func TestCallerAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:4000":            "192.0.2.7",
		"[::ffff:192.0.2.7]:1":      "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:80": "2001:db8:1:2::",
		"[2001:db8:1:2::9]:81":      "2001:db8:1:2::",
		"[::1]:9":                   "::",
	} {
		if got := service.CallerAddr(in); got.String() != want {
			t.Errorf("CallerAddr(%q) = %v, want %s", in, got, want)
		}
	}
	for _, in := range []string{"", "pipe", "192.0.2.7"} {
		if got := service.CallerAddr(in); got.IsValid() {
			t.Errorf("CallerAddr(%q) = %v, want the zero Addr", in, got)
		}
	}
}

// TestAuthSigCacheNeverServesKickedExpiredOrRotated: a sig that verified
// once (and so sits in the verified-sig cache) is refused after a kick
// (70052), after it expires (70001) and after the app's key changes
// (70009), for REST and /v1 callers alike.
func TestAuthSigCacheNeverServesKickedExpiredOrRotated(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	apps := service.NewApps(st, st)
	if err := apps.Put(ctx, im.App{SDKAppID: app, SecretKey: authKey, Admins: []string{"administrator"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ImportAccounts(ctx, app, []im.AccountInput{{UserID: "alice"}, {UserID: "bob"}}); err != nil {
		t.Fatal(err)
	}
	clock := &authClock{now: time.Now().Truncate(time.Second)}
	auth := service.NewAuth(apps, st, clock.Now)
	accts := service.NewAccounts(st, auth, nil)
	user := func(id, sig string) int {
		_, _, err := auth.User(ctx, service.Credential{SDKAppID: app, Identifier: id, Sig: sig})
		return im.CodeOf(err)
	}
	admin := func(sig string) int {
		_, err := auth.Admin(ctx, service.Credential{SDKAppID: app, Identifier: "administrator", Sig: sig})
		return im.CodeOf(err)
	}
	now := clock.Now().Unix()
	alice, bob, adm := genSig(t, "alice", now-10), genSig(t, "bob", now-10), genSig(t, "administrator", now-10)
	for range 3 { // verified, then served from the cache
		if got, got2, got3 := user("alice", alice), user("bob", bob), admin(adm); got != 0 || got2 != 0 || got3 != 0 {
			t.Fatalf("fresh sigs: %d %d %d", got, got2, got3)
		}
	}
	if err := accts.Kick(ctx, app, "alice"); err != nil {
		t.Fatal(err)
	}
	if got := user("alice", alice); got != im.CodeSigKicked {
		t.Fatalf("cached sig after a kick: %d, want 70052", got)
	}
	if got := user("bob", bob); got != 0 {
		t.Fatalf("another account's cached sig after the kick: %d", got)
	}
	clock.Add(86400*time.Second + 11*time.Second)
	if got, got2 := user("bob", bob), admin(adm); got != im.CodeSigExpired || got2 != im.CodeSigExpired {
		t.Fatalf("cached sigs after expiry: %d %d, want 70001", got, got2)
	}
	now = clock.Now().Unix()
	bob, adm = genSig(t, "bob", now), genSig(t, "administrator", now)
	if got, got2 := user("bob", bob), admin(adm); got != 0 || got2 != 0 {
		t.Fatalf("new sigs: %d %d", got, got2)
	}
	rotated := "0" + authKey[1:]
	if err := apps.Put(ctx, im.App{SDKAppID: app, SecretKey: rotated, Admins: []string{"administrator"}}); err != nil {
		t.Fatal(err)
	}
	if got, got2 := user("bob", bob), admin(adm); got != im.CodeSigMismatch || got2 != im.CodeSigMismatch {
		t.Fatalf("cached sigs after the key changed: %d %d, want 70009", got, got2)
	}
}
