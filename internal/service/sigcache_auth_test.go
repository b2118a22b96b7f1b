package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"timd/internal/im"
	"timd/internal/store/sqlite"
	"timd/internal/usersig"
)

// TestSigCacheRefusalsAndJunkFlood: a sig in the verified-sig cache is
// still refused for what full verification refuses (another identifier,
// another app, after expiry, under a rotated key), and a flood of junk
// sigs, for the victim's identity and for made-up ones, adds nothing to
// the cache and evicts nothing from it.
func TestSigCacheRefusalsAndJunkFlood(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const key = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	const app1, app2 = 1400000001, 1400000002
	apps := NewApps(st, st)
	for _, id := range []uint64{app1, app2} {
		if err := apps.Put(ctx, im.App{SDKAppID: id, SecretKey: key, Admins: []string{"administrator"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.ImportAccounts(ctx, id, []im.AccountInput{{UserID: "alice"}, {UserID: "bob"}}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().Truncate(time.Second)
	clock := now
	a := NewAuth(apps, st, func() time.Time { return clock })
	sig, err := usersig.Gen(app1, key, "alice", 3600, now.Unix()-10)
	if err != nil {
		t.Fatal(err)
	}
	user := func(app uint64, id, s string, from string) int {
		_, _, err := a.User(ctx, Credential{SDKAppID: app, Identifier: id, Sig: s, From: netip.MustParseAddr(from)})
		return im.CodeOf(err)
	}
	if got := user(app1, "alice", sig, "10.0.0.1"); got != 0 || a.good.len() != 1 {
		t.Fatalf("fresh sig: %d, %d cached", got, a.good.len())
	}
	// A junk flood from many addresses: never cached, evicts nothing.
	for i := range 3000 {
		id := "alice"
		if i%2 == 1 {
			id = fmt.Sprint("nobody", i)
		}
		junk := sig[:len(sig)-4] + fmt.Sprintf("%04d", i%10000)
		if got := user(app1, id, junk, fmt.Sprintf("10.1.%d.%d", i/250, i%250)); got == 0 {
			t.Fatalf("junk sig %d accepted", i)
		}
	}
	if n := a.good.len(); n != 1 {
		t.Fatalf("%d sigs cached after the junk flood, want 1", n)
	}
	if _, ok := a.good.get(hashSig(app1, "alice", sig), key, now.Unix()); !ok {
		t.Fatal("the junk flood evicted the good sig")
	}
	for _, tc := range []struct {
		name   string
		app    uint64
		id     string
		after  time.Duration
		rotate bool
		want   int
	}{
		{"cached, as issued", app1, "alice", 0, false, 0},
		{"other identifier", app1, "bob", 0, false, im.CodeSigIdentifier},
		{"other app (same key)", app2, "alice", 0, false, im.CodeSigSDKAppID},
		{"at expiry", app1, "alice", 3600*time.Second - 10*time.Second, false, 0},
		{"expired", app1, "alice", 3600*time.Second - 9*time.Second, false, im.CodeSigExpired},
		{"key rotated", app1, "alice", 0, true, im.CodeSigMismatch},
	} {
		clock = now.Add(tc.after)
		if tc.rotate {
			if err := apps.Put(ctx, im.App{SDKAppID: app1, SecretKey: "0" + key[1:], Admins: []string{"administrator"}}); err != nil {
				t.Fatal(err)
			}
		}
		if got := user(tc.app, tc.id, sig, "10.9.9.9"); got != tc.want {
			t.Errorf("%s: code %d, want %d", tc.name, got, tc.want)
		}
	}
}
