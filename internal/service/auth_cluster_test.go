package service_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/sqlite"
)

// kickNodes returns node B's authenticator and node A's account service
// (kicks go through it), two nodes sharing one store.
func kickNodes(t *testing.T) (b *service.Auth, accts *service.Accounts) {
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
	a := service.NewAuth(apps, st, nil)
	return service.NewAuth(service.NewApps(st, st), st, nil), service.NewAccounts(st, a, nil)
}

// TestKickThroughAnotherNode: node B caches alice's KickedAt when her sig
// is first accepted. A kick through node A reaches B's cache only by an
// event (ForgetKick, what the relay does on the event), or at once when B
// does not trust its cache (SetKickTrust false, NATS down or a missed
// event). Auth.User reads the account on every call anyway, and enforces
// the later of its stored KickedAt and the cached one, so an end user's
// old sig is refused on B at once even without the event.
func TestKickThroughAnotherNode(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		trusted bool
		forget  func(b *service.Auth)
		want    int // B's answer to the old sig after the kick
	}{
		{"cached, no event: the account read sees the kick", true, func(*service.Auth) {}, im.CodeSigKicked},
		{"event forgets the entry", true, func(b *service.Auth) { b.ForgetKick(app, "alice") }, im.CodeSigKicked},
		{"gap forgets every entry", true, func(b *service.Auth) { b.ForgetKick(0, "") }, im.CodeSigKicked},
		{"cache not trusted", false, func(*service.Auth) {}, im.CodeSigKicked},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, accts := kickNodes(t)
			var trusted atomic.Bool
			trusted.Store(true)
			b.SetKickTrust(trusted.Load)
			sig := genSig(t, "alice", time.Now().Unix()-5)
			user := func() int {
				_, _, err := b.User(ctx, service.Credential{SDKAppID: app, Identifier: "alice", Sig: sig})
				return im.CodeOf(err)
			}
			if got := user(); got != 0 {
				t.Fatalf("before the kick: %d", got)
			}
			if err := accts.Kick(ctx, app, "alice"); err != nil {
				t.Fatal(err)
			}
			trusted.Store(c.trusted)
			c.forget(b)
			if got := user(); got != c.want {
				t.Fatalf("old sig on node B after the kick: %d, want %d", got, c.want)
			}
		})
	}
}
