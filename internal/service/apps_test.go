package service

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"timd/internal/im"
	"timd/internal/store/sqlite"
	"timd/internal/usersig"
)

// TestAppsRefresh: a change another process makes to the store (`timd
// app` on a running server's store) reaches the directory, and Auth,
// within AppRefresh: a removed app answers 70020, a rotated key refuses
// sigs of the old key (even ones verified and cached before), and new
// admins become accounts.
func TestAppsRefresh(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	other, err := sqlite.OpenAppDir(ctx, dir) // what `timd app` opens
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	now := time.Unix(1_800_000_000, 0)
	apps := NewApps(st, st)
	apps.now = func() time.Time { return now }
	auth := NewAuth(apps, st, func() time.Time { return now })
	const id = 1400000077
	app := im.App{SDKAppID: id, SecretKey: "old-key", Admins: []string{"admin"}}
	if err := other.PutApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	oldSig, _ := usersig.Gen(id, "old-key", "admin", 86400, now.Unix()-10)
	if _, err := auth.Admin(ctx, Credential{SDKAppID: id, Identifier: "admin", Sig: oldSig}); err != nil {
		t.Fatalf("old key before rotation: %v", err)
	}
	if got, _ := st.Accounts(ctx, id, []string{"admin"}); got["admin"].Type != im.AcctUserID {
		t.Fatalf("the admin of a newly loaded app is no account: %+v", got)
	}

	app.SecretKey, app.Admins = "new-key", []string{"admin", "ops"}
	if err := other.PutApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	now = now.Add(AppRefresh / 2)
	if _, err := auth.Admin(ctx, Credential{SDKAppID: id, Identifier: "admin", Sig: oldSig}); err != nil {
		t.Fatalf("within AppRefresh the cached app may still answer: %v", err)
	}
	now = now.Add(AppRefresh)
	if _, err := auth.Admin(ctx, Credential{SDKAppID: id, Identifier: "admin", Sig: oldSig}); im.CodeOf(err) != im.CodeSigMismatch {
		t.Fatalf("old key after AppRefresh: %v, want 70009", err)
	}
	newSig, _ := usersig.Gen(id, "new-key", "ops", 86400, now.Unix()-10)
	if _, err := auth.Admin(ctx, Credential{SDKAppID: id, Identifier: "ops", Sig: newSig}); err != nil {
		t.Fatalf("new key: %v", err)
	}
	if got, _ := st.Accounts(ctx, id, []string{"ops"}); got["ops"].Type != im.AcctUserID {
		t.Errorf("an added admin is no account: %+v", got)
	}

	if err := other.DeleteApp(ctx, id); err != nil {
		t.Fatal(err)
	}
	now = now.Add(AppRefresh)
	if _, err := auth.Admin(ctx, Credential{SDKAppID: id, Identifier: "ops", Sig: newSig}); im.CodeOf(err) != im.CodeAppNotFound {
		t.Fatalf("removed app: %v, want 70020", err)
	}
	if err := other.DeleteApp(ctx, id); err == nil {
		t.Errorf("deleting a missing app succeeded")
	}
}

// TestAppsImportAdmins: Put makes every admin an imported account and
// leaves an admin that is an account already as it is.
func TestAppsImportAdmins(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const id = 1400000078
	if _, err := st.ImportAccounts(ctx, id, []im.AccountInput{{UserID: "ops", Nick: "Ops"}}); err != nil {
		t.Fatal(err)
	}
	apps := NewApps(st, st)
	if err := apps.Put(ctx, im.App{SDKAppID: id, SecretKey: "k", Admins: []string{"administrator", "ops"}}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Accounts(ctx, id, []string{"administrator", "ops"})
	if err != nil || got["administrator"].Type != im.AcctUserID || got["ops"].Nick != "Ops" || len(got) != 2 {
		t.Errorf("accounts after Put: %+v, %v", got, err)
	}
	if err := apps.Put(ctx, im.App{SDKAppID: id, SecretKey: "k"}); err == nil {
		t.Errorf("Put of an app without admins succeeded")
	}
	if err := NewApps(st, nil).Put(ctx, im.App{SDKAppID: id + 1, SecretKey: "k", Admins: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Accounts(ctx, id+1, []string{"x"}); len(got) != 0 {
		t.Errorf("a directory without an account store imported %+v", got)
	}
}

// TestAppsOnly: with Only, Get refuses every other stored app as unknown.
func TestAppsOnly(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	apps := NewApps(st, nil)
	for _, id := range []uint64{1400000001, 1400000002} {
		if err := apps.Put(ctx, im.App{SDKAppID: id, SecretKey: "k", Admins: []string{"a"}}); err != nil {
			t.Fatal(err)
		}
	}
	apps.Only([]uint64{1400000002})
	if _, err := apps.Get(ctx, 1400000001); im.CodeOf(err) != im.CodeAppNotFound {
		t.Errorf("excluded app: %v, want 70020", err)
	}
	if _, err := apps.Get(ctx, 1400000002); err != nil {
		t.Errorf("allowed app: %v", err)
	}
}
