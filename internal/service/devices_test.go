package service_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/sqlite"
)

func TestDevicesRegister(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.ImportAccounts(ctx, app, []im.AccountInput{{UserID: "alice"}, {UserID: "bob"}}); err != nil {
		t.Fatal(err)
	}
	d := service.NewDevices(st, nil)

	a, err := d.Register(ctx, app, "alice", "ios", "tok", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.ID) != 36 || a.Type != im.AcctRegistrationID || a.Owner != "alice" || a.Platform != "ios" || a.Token != "tok" {
		t.Fatalf("registered %+v", a)
	}
	b, err := d.Register(ctx, app, "alice", "ios", "tok", "")
	if err != nil || b.ID == a.ID || b.Ordinal == a.Ordinal {
		t.Fatalf("second device %+v, %v", b, err)
	}
	same, err := d.Register(ctx, app, "alice", "android", "tok2", a.ID)
	if err != nil || same.Ordinal != a.Ordinal || same.Platform != "android" {
		t.Fatalf("re-register %+v, %v", same, err)
	}
	// A device nobody owns cannot be claimed either.
	if _, err := st.RegisterDevice(ctx, app, im.Device{RegistrationID: "free-1", Platform: "web"}, im.DeviceLimits{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                          string
		owner, platform, token, regID string
	}{
		{"another user's", "bob", "ios", "", a.ID},
		{"a UserID", "alice", "ios", "", "bob"},
		{"the caller's own UserID", "alice", "ios", "", "alice"},
		{"an unowned device", "bob", "web", "", "free-1"},
		{"no platform", "alice", "", "", ""},
		{"platform with space", "alice", "i os", "", ""},
		{"platform too long", "alice", strings.Repeat("p", 33), "", ""},
		{"token too long", "alice", "ios", strings.Repeat("t", 1025), ""},
		{"token with control bytes", "alice", "ios", "a\nb", ""},
		{"regID too long", "alice", "ios", "", strings.Repeat("r", 65)},
		{"regID with slash", "alice", "ios", "", "a/b"},
	} {
		if _, err := d.Register(ctx, app, tc.owner, tc.platform, tc.token, tc.regID); im.CodeOf(err) != im.CodeAccountBadParam {
			t.Errorf("%s: error %v, want 70402", tc.name, err)
		}
	}
	if _, err := d.Register(ctx, app, "alice", strings.Repeat("p", 32), strings.Repeat("t", 1024), strings.Repeat("r", 64)); err != nil {
		t.Fatalf("limits exactly: %v", err)
	}
}

// TestDevicesSquatting is issue 8's squatting sequence at the service
// level: a user registers a device named like an account the admin has
// yet to import; the import still makes an account, and the device is
// gone.
func TestDevicesSquatting(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	apps := service.NewApps(st, st)
	auth := service.NewAuth(apps, st, nil)
	accounts := service.NewAccounts(st, auth, nil)
	if err := accounts.Import(ctx, app, im.AccountInput{UserID: "mallory"}); err != nil {
		t.Fatal(err)
	}
	d := service.NewDevices(st, nil)
	if _, err := d.Register(ctx, app, "mallory", "ios", "", "victim"); err != nil {
		t.Fatalf("register victim before its import: %v", err)
	}
	if err := accounts.Import(ctx, app, im.AccountInput{UserID: "victim"}); err != nil {
		t.Fatalf("import victim: %v", err)
	}
	if got, err := accounts.Check(ctx, app, []string{"victim"}); err != nil || !got[0] {
		t.Fatalf("Check(victim) = %v, %v; want imported", got, err)
	}
	if err := accounts.Kick(ctx, app, "victim"); err != nil {
		t.Errorf("Kick(victim): %v", err)
	}
	if got, _ := st.Accounts(ctx, app, []string{"victim"}); got["victim"].Type != im.AcctUserID || got["victim"].Owner != "" {
		t.Errorf("victim resolves to %+v, want the UserID", got["victim"])
	}
	if _, err := d.Register(ctx, app, "mallory", "ios", "", "victim"); im.CodeOf(err) != im.CodeAccountBadParam {
		t.Errorf("register victim after its import: %v, want 70402", err)
	}
}

// TestDevicesPerUser: one user registers at most the configured number of
// devices (default 20); 70398 past it; others are unaffected.
func TestDevicesPerUser(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tc := range []struct {
		name string
		conf int
		want int
	}{
		{"default", 0, im.DefaultDevicesPerUser},
		{"negative is the default", -1, im.DefaultDevicesPerUser},
		{"configured", 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := app + uint64(tc.conf+10)
			d := service.NewDevices(st, func(got uint64) int {
				if got != a {
					t.Errorf("limit asked for app %d, want %d", got, a)
				}
				return tc.conf
			})
			var ids []string
			for i := range tc.want {
				dev, err := d.Register(ctx, a, "alice", "ios", "", "")
				if err != nil {
					t.Fatalf("device %d: %v", i+1, err)
				}
				ids = append(ids, dev.ID)
			}
			if _, err := d.Register(ctx, a, "alice", "ios", "", ""); im.CodeOf(err) != im.CodeAccountLimit {
				t.Errorf("device %d: %v, want 70398", tc.want+1, err)
			}
			if _, err := d.Register(ctx, a, "alice", "android", "new", ids[0]); err != nil {
				t.Errorf("updating a device at the limit: %v", err)
			}
			if _, err := d.Register(ctx, a, "bob", "ios", "", ""); err != nil {
				t.Errorf("another user's device: %v", err)
			}
		})
	}
}
