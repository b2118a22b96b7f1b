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
	d := service.NewDevices(st)

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
	// An unowned device (registered without a user) may be claimed.
	if _, err := st.RegisterDevice(ctx, app, im.Device{RegistrationID: "free-1", Platform: "web"}); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Register(ctx, app, "bob", "web", "", "free-1"); err != nil || got.Owner != "bob" {
		t.Fatalf("claim unowned: %+v, %v", got, err)
	}
	for _, tc := range []struct {
		name                          string
		owner, platform, token, regID string
	}{
		{"another user's", "bob", "ios", "", a.ID},
		{"a UserID", "alice", "ios", "", "bob"},
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
