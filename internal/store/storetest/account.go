package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"timd/internal/im"
)

func (h harness) testApps(t *testing.T) {
	f := h.fresh(t)
	_, err := f.s.App(f.ctx, testApp)
	wantNotFound(t, "App of unknown app", err)
	if apps, err := f.s.Apps(f.ctx); err != nil || len(apps) != 0 {
		t.Fatalf("Apps on empty store = %v, %v", apps, err)
	}

	a2 := im.App{SDKAppID: otherApp, SecretKey: "k2", Admins: []string{"admin"}, CreatedAt: 20}
	a1 := im.App{SDKAppID: testApp, SecretKey: "k1", Admins: []string{"admin", "ops"},
		CallbackURL: "https://example.com/cb", CreatedAt: 10}
	for _, a := range []im.App{a2, a1} {
		if err := f.s.PutApp(f.ctx, a); err != nil {
			t.Fatalf("PutApp: %v", err)
		}
	}
	got, err := f.s.App(f.ctx, testApp)
	if err != nil || !sameApp(got, a1) {
		t.Errorf("App = %+v, %v; want %+v", got, err, a1)
	}

	a1.SecretKey, a1.Admins, a1.CallbackURL = "k1b", []string{"root"}, ""
	if err := f.s.PutApp(f.ctx, a1); err != nil {
		t.Fatalf("PutApp (replace): %v", err)
	}
	apps, err := f.s.Apps(f.ctx)
	if err != nil {
		t.Fatalf("Apps: %v", err)
	}
	if len(apps) != 2 || !sameApp(apps[0], a1) || !sameApp(apps[1], a2) {
		t.Errorf("Apps = %+v, want [%+v %+v] ordered by SDKAppID", apps, a1, a2)
	}
	f.wantChanges()
}

func sameApp(a, b im.App) bool {
	return a.SDKAppID == b.SDKAppID && a.SecretKey == b.SecretKey && slices.Equal(a.Admins, b.Admins) &&
		a.CallbackURL == b.CallbackURL && a.CreatedAt == b.CreatedAt
}

func (h harness) testImport(t *testing.T) {
	f := h.fresh(t)
	in := []im.AccountInput{{UserID: "alice", Nick: "Alice", FaceURL: "https://a"}, {UserID: "bob"}}
	first, err := f.s.ImportAccounts(f.ctx, testApp, in)
	if err != nil {
		t.Fatalf("ImportAccounts: %v", err)
	}
	if first[0].ID != "alice" || first[0].Nick != "Alice" || first[0].FaceURL != "https://a" ||
		first[0].Type != im.AcctUserID || first[1].ID != "bob" {
		t.Errorf("ImportAccounts = %+v", first)
	}
	f.wantChanges(
		im.Change{App: testApp, Op: im.ChangeUpsert, ID: "alice", Type: im.AcctUserID, Ordinal: first[0].Ordinal},
		im.Change{App: testApp, Op: im.ChangeUpsert, ID: "bob", Type: im.AcctUserID, Ordinal: first[1].Ordinal},
	)

	// Re-import: same ordinals, Nick/FaceURL updated only where non-empty,
	// input order kept, a duplicate within the call is the same account.
	again, err := f.s.ImportAccounts(f.ctx, testApp, []im.AccountInput{
		{UserID: "bob", Nick: "Bob"}, {UserID: "alice", Nick: "Al"}, {UserID: "carol"}, {UserID: "carol", Nick: "C"},
	})
	if err != nil {
		t.Fatalf("ImportAccounts again: %v", err)
	}
	want := []im.Account{
		{ID: "bob", Ordinal: first[1].Ordinal, Nick: "Bob"},
		{ID: "alice", Ordinal: first[0].Ordinal, Nick: "Al", FaceURL: "https://a"},
		{ID: "carol", Ordinal: again[2].Ordinal},
		{ID: "carol", Ordinal: again[2].Ordinal, Nick: "C"},
	}
	if !slices.Equal(again, want) {
		t.Errorf("ImportAccounts again = %+v\nwant %+v", again, want)
	}
	f.wantChanges(im.Change{App: testApp, Op: im.ChangeUpsert, ID: "carol", Type: im.AcctUserID, Ordinal: again[2].Ordinal})

	accts, err := f.s.Accounts(f.ctx, testApp, []string{"alice", "carol", "ghost"})
	if err != nil {
		t.Fatalf("Accounts: %v", err)
	}
	if len(accts) != 2 || accts["alice"] != want[1] || accts["carol"] != want[3] {
		t.Errorf("Accounts = %+v", accts)
	}
	if out, err := f.s.ImportAccounts(f.ctx, testApp, nil); err != nil || len(out) != 0 {
		t.Errorf("ImportAccounts(nil) = %v, %v", out, err)
	}
}

func (h harness) testOrdinals(t *testing.T) {
	f := h.fresh(t)
	accts := f.importIDs(testApp, "a", "b", "c")
	for i, a := range accts {
		if a.Ordinal != uint32(i+1) {
			t.Errorf("ordinal of %s = %d, want %d (ordinals start at 1 and increase)", a.ID, a.Ordinal, i+1)
		}
	}
	dev := f.device(testApp, "dev")
	if dev.Ordinal != 4 {
		t.Errorf("device ordinal = %d, want 4 (one sequence per app for both types)", dev.Ordinal)
	}
	if other := f.importIDs(otherApp, "a"); other[0].Ordinal != 1 {
		t.Errorf("ordinal in another app = %d, want 1", other[0].Ordinal)
	}
	if _, err := f.s.DeleteAccounts(f.ctx, testApp, []string{"c", "b"}); err != nil {
		t.Fatalf("DeleteAccounts: %v", err)
	}
	next := f.importIDs(testApp, "c", "d")
	if next[0].Ordinal != 5 || next[1].Ordinal != 6 {
		t.Errorf("ordinals after delete = %d, %d; want 5, 6 (never reused)", next[0].Ordinal, next[1].Ordinal)
	}
	seen := map[uint32]string{}
	for _, p := range f.scan(testApp) {
		if prev, dup := seen[p.Account.Ordinal]; dup {
			t.Errorf("ordinal %d held by %s and %s", p.Account.Ordinal, prev, p.Account.ID)
		}
		seen[p.Account.Ordinal] = p.Account.ID
	}
}

func (h harness) testDelete(t *testing.T) {
	f := h.fresh(t)
	f.putSchema(testApp, userSchema)
	accts := f.importIDs(testApp, "a", "b")
	f.mustEdit(testApp, setAttrs("a", attrs(0, "f")), tagEdit(im.OpAddTags, "a", "x", "y"))
	// b owns a device with a tag of its own; a device of nobody survives.
	phone, err := f.s.RegisterDevice(f.ctx, testApp, im.Device{RegistrationID: "b-phone", Owner: "b", Platform: "ios"}, im.DeviceLimits{})
	if err != nil {
		t.Fatalf("RegisterDevice: %v", err)
	}
	free := f.device(testApp, "free")
	f.mustEdit(testApp, tagEdit(im.OpAddTags, "b-phone", "dev-tag"))
	f.rec.Take()

	existed, err := f.s.DeleteAccounts(f.ctx, testApp, []string{"a", "ghost", "b", "a"})
	if err != nil {
		t.Fatalf("DeleteAccounts: %v", err)
	}
	if !slices.Equal(existed, []bool{true, false, true, false}) {
		t.Errorf("DeleteAccounts existed = %v, want [true false true false]", existed)
	}
	f.wantChanges(
		im.Change{App: testApp, Op: im.ChangeDelete, ID: "a", Type: im.AcctUserID, Ordinal: accts[0].Ordinal,
			OldAttrs: attrs(0, "f"), OldTags: []string{"x", "y"}},
		im.Change{App: testApp, Op: im.ChangeDelete, ID: "b", Type: im.AcctUserID, Ordinal: accts[1].Ordinal},
		im.Change{App: testApp, Op: im.ChangeDelete, ID: "b-phone", Type: im.AcctRegistrationID, Ordinal: phone.Ordinal,
			OldTags: []string{"dev-tag"}},
	)
	got, err := f.s.Accounts(f.ctx, testApp, []string{"a", "b", "b-phone", "free"})
	if err != nil {
		t.Fatalf("Accounts: %v", err)
	}
	if len(got) != 1 || got["free"].Ordinal != free.Ordinal {
		t.Errorf("after delete Accounts = %+v, want only the device free", got)
	}
	// The device's tag was released: a UserID may bind it now.
	f.importIDs(testApp, "c")
	f.mustEdit(testApp, tagEdit(im.OpAddTags, "c", "dev-tag"))
	// The re-imported account starts empty, with a new ordinal.
	again := f.importIDs(testApp, "a")
	if again[0].Ordinal == accts[0].Ordinal {
		t.Errorf("re-imported account reused ordinal %d", again[0].Ordinal)
	}
	f.wantAttrs(testApp, "a", im.AttrValues{})
	f.wantTags(testApp, "a")
	if existed, err := f.s.DeleteAccounts(f.ctx, testApp, nil); err != nil || len(existed) != 0 {
		t.Errorf("DeleteAccounts(nil) = %v, %v", existed, err)
	}
}

func (h harness) testResolution(t *testing.T) {
	f := h.fresh(t)
	f.putSchema(testApp, userSchema)
	f.importIDs(testApp, "u")
	dev := f.device(testApp, "x")
	got, err := f.s.Accounts(f.ctx, testApp, []string{"x", "u"})
	if err != nil {
		t.Fatalf("Accounts: %v", err)
	}
	if got["x"].Type != im.AcctRegistrationID || got["x"].Ordinal != dev.Ordinal || got["u"].Type != im.AcctUserID {
		t.Errorf("Accounts = %+v; want x a RegistrationID, u a UserID", got)
	}
	// Edits and profiles address either type.
	f.mustEdit(testApp, setAttrs("x", attrs(3, "gold")), setAttrs("u", attrs(0, "f")))
	if p := f.profile(testApp, "x"); p.Account.Ordinal != dev.Ordinal || p.Attrs != attrs(3, "gold") {
		t.Errorf("Profiles(x) = %+v", p)
	}
	// Kick and DeleteAccounts address UserIDs only.
	wantNotFound(t, "Kick of a RegistrationID", f.s.Kick(f.ctx, testApp, "x", 100))
	if existed, err := f.s.DeleteAccounts(f.ctx, testApp, []string{"x"}); err != nil || existed[0] {
		t.Fatalf("DeleteAccounts(x) = %v, %v; want a RegistrationID untouched", existed, err)
	}
	if p := f.profile(testApp, "x"); p.Account.Type != im.AcctRegistrationID || p.Attrs != attrs(3, "gold") {
		t.Errorf("after DeleteAccounts(x), Profiles(x) = %+v; want the RegistrationID untouched", p)
	}
	// Accounts of another app are invisible.
	if got, err := f.s.Accounts(f.ctx, otherApp, []string{"x", "u"}); err != nil || len(got) != 0 {
		t.Errorf("Accounts in other app = %v, %v", got, err)
	}
}

// testImportDisplacesDevice: a device registered under a name before the
// admin imports that name never stands in for the account (the squatting
// hole of issue 8): the import deletes it with its attributes and tags.
func (h harness) testImportDisplacesDevice(t *testing.T) {
	f := h.fresh(t)
	f.putSchema(testApp, userSchema)
	f.importIDs(testApp, "mallory")
	squat, err := f.s.RegisterDevice(f.ctx, testApp, im.Device{RegistrationID: "victim", Owner: "mallory", Platform: "ios"}, im.DeviceLimits{})
	if err != nil {
		t.Fatalf("RegisterDevice(victim): %v", err)
	}
	f.mustEdit(testApp, setAttrs("victim", attrs(3, "gold")), tagEdit(im.OpAddTags, "victim", "squat-tag"))
	f.rec.Take()

	user := f.importIDs(testApp, "victim")[0]
	if user.Type != im.AcctUserID || user.Ordinal == squat.Ordinal {
		t.Fatalf("ImportAccounts(victim) = %+v", user)
	}
	f.wantChanges(
		im.Change{App: testApp, Op: im.ChangeDelete, ID: "victim", Type: im.AcctRegistrationID, Ordinal: squat.Ordinal,
			OldAttrs: attrs(3, "gold"), OldTags: []string{"squat-tag"}},
		im.Change{App: testApp, Op: im.ChangeUpsert, ID: "victim", Type: im.AcctUserID, Ordinal: user.Ordinal},
	)
	got, err := f.s.Accounts(f.ctx, testApp, []string{"victim"})
	if err != nil || got["victim"].Type != im.AcctUserID || got["victim"].Ordinal != user.Ordinal {
		t.Fatalf("Accounts(victim) = %+v, %v; want the UserID", got, err)
	}
	// Writes for victim now land on the account, and the squatter's tag
	// binding to RegistrationIDs was released.
	f.mustEdit(testApp, tagEdit(im.OpAddTags, "victim", "squat-tag"), setAttrs("victim", attrs(0, "f")))
	if p := f.profile(testApp, "victim"); p.Account.Ordinal != user.Ordinal || p.Attrs != attrs(0, "f") {
		t.Errorf("Profiles(victim) = %+v", p)
	}
	f.wantTags(testApp, "victim", "squat-tag")
	if len(f.scan(testApp)) != 2 {
		t.Errorf("ScanProfiles = %+v, want mallory and victim only", f.scan(testApp))
	}
	// The name can no longer be registered as a device, by anyone.
	for _, owner := range []string{"mallory", "victim", ""} {
		_, err := f.s.RegisterDevice(f.ctx, testApp, im.Device{RegistrationID: "victim", Owner: owner, Platform: "ios"}, im.DeviceLimits{})
		wantErr(t, "RegisterDevice of a UserID by "+owner, err, im.ErrExists)
	}
	// Another app's device of the same name is untouched.
	f.device(otherApp, "victim")
	f.importIDs(testApp, "victim")
	if got, _ := f.s.Accounts(f.ctx, otherApp, []string{"victim"}); got["victim"].Type != im.AcctRegistrationID {
		t.Errorf("import in one app displaced another app's device: %+v", got)
	}
	f.reopen()
	if got, _ := f.s.Accounts(f.ctx, testApp, []string{"victim"}); got["victim"].Type != im.AcctUserID {
		t.Errorf("after reopen Accounts(victim) = %+v", got)
	}
}

func (h harness) testKick(t *testing.T) {
	f := h.fresh(t)
	f.importIDs(testApp, "alice")
	f.device(testApp, "dev")
	if err := f.s.Kick(f.ctx, testApp, "alice", 1700000000); err != nil {
		t.Fatalf("Kick: %v", err)
	}
	got, err := f.s.Accounts(f.ctx, testApp, []string{"alice"})
	if err != nil || got["alice"].KickedAt != 1700000000 {
		t.Errorf("KickedAt = %d, %v; want 1700000000", got["alice"].KickedAt, err)
	}
	if err := f.s.Kick(f.ctx, testApp, "alice", 1600000000); err != nil {
		t.Fatalf("Kick (earlier): %v", err)
	}
	if got, _ := f.s.Accounts(f.ctx, testApp, []string{"alice"}); got["alice"].KickedAt != 1700000000 {
		t.Errorf("an earlier kick moved KickedAt back to %d", got["alice"].KickedAt)
	}
	wantNotFound(t, "Kick of unknown UserID", f.s.Kick(f.ctx, testApp, "ghost", 1))
	wantNotFound(t, "Kick of a RegistrationID", f.s.Kick(f.ctx, testApp, "dev", 1))
	wantNotFound(t, "Kick in another app", f.s.Kick(f.ctx, otherApp, "alice", 1))
	f.importIDs(testApp, "alice")
	if got, _ := f.s.Accounts(f.ctx, testApp, []string{"alice"}); got["alice"].KickedAt != 1700000000 {
		t.Errorf("re-import reset KickedAt to %d", got["alice"].KickedAt)
	}
	f.wantChanges(im.Change{App: testApp, Op: im.ChangeUpsert, ID: "alice", Ordinal: 1},
		im.Change{App: testApp, Op: im.ChangeUpsert, ID: "dev", Type: im.AcctRegistrationID, Ordinal: 2})
}

func (h harness) testRegisterDevice(t *testing.T) {
	f := h.fresh(t)
	d := im.Device{RegistrationID: "7E1B6A2C-4D3F-4C1B-9A77-0F2E5D3C8B11", Owner: "alice", Platform: "ios", Token: "t1"}
	a, err := f.s.RegisterDevice(f.ctx, testApp, d, im.DeviceLimits{})
	if err != nil {
		t.Fatalf("RegisterDevice: %v", err)
	}
	want := im.Account{ID: d.RegistrationID, Type: im.AcctRegistrationID, Ordinal: 1, Owner: "alice", Platform: "ios", Token: "t1"}
	if a != want {
		t.Errorf("RegisterDevice = %+v, want %+v", a, want)
	}
	f.wantChanges(im.Change{App: testApp, Op: im.ChangeUpsert, ID: d.RegistrationID, Type: im.AcctRegistrationID, Ordinal: 1, Owner: "alice"})

	d.Platform, d.Token = "android", "t2"
	a, err = f.s.RegisterDevice(f.ctx, testApp, d, im.DeviceLimits{})
	want.Platform, want.Token = "android", "t2"
	if err != nil || a != want {
		t.Errorf("RegisterDevice (update) = %+v, %v; want %+v", a, err, want)
	}
	if got, err := f.s.Accounts(f.ctx, testApp, []string{d.RegistrationID}); err != nil || got[d.RegistrationID] != want {
		t.Errorf("Accounts = %+v, %v; want %+v", got, err, want)
	}
	f.wantChanges() // an update changes no attribute or tag

	// Nobody else may take it over, not even to an empty owner.
	for _, owner := range []string{"bob", ""} {
		_, err := f.s.RegisterDevice(f.ctx, testApp, im.Device{RegistrationID: d.RegistrationID, Owner: owner, Platform: "ios", Token: "evil"}, im.DeviceLimits{})
		wantErr(t, "RegisterDevice of alice's device by "+owner, err, im.ErrExists)
	}
	if got, _ := f.s.Accounts(f.ctx, testApp, []string{d.RegistrationID}); got[d.RegistrationID] != want {
		t.Errorf("a refused registration changed the device: %+v", got[d.RegistrationID])
	}
	f.wantChanges()
}

func (h harness) testDeviceLimit(t *testing.T) {
	f := h.fresh(t)
	lim := im.DeviceLimits{PerOwner: 2}
	reg := func(id, owner string) error {
		_, err := f.s.RegisterDevice(f.ctx, testApp, im.Device{RegistrationID: id, Owner: owner, Platform: "ios"}, lim)
		return err
	}
	for _, id := range []string{"a1", "a2"} {
		if err := reg(id, "alice"); err != nil {
			t.Fatalf("RegisterDevice(%s): %v", id, err)
		}
	}
	wantErr(t, "third device of alice", reg("a3", "alice"), im.ErrTooMany)
	if err := reg("a2", "alice"); err != nil {
		t.Errorf("re-registering a device at the limit: %v", err)
	}
	if err := reg("b1", "bob"); err != nil {
		t.Errorf("another owner's first device: %v", err)
	}
	if _, err := f.s.RegisterDevice(f.ctx, otherApp, im.Device{RegistrationID: "a3", Owner: "alice", Platform: "ios"}, lim); err != nil {
		t.Errorf("alice's first device in another app: %v", err)
	}
	if got, _ := f.s.Accounts(f.ctx, testApp, []string{"a3"}); len(got) != 0 {
		t.Errorf("the refused device exists: %+v", got)
	}
	// Concurrent registrations cannot exceed the limit together.
	errs := make(chan error, 8)
	for i := range 8 {
		go func() { errs <- reg(fmt.Sprint("c", i), "carol") }()
	}
	ok := 0
	for range 8 {
		if err := <-errs; err == nil {
			ok++
		} else if !errors.Is(err, im.ErrTooMany) {
			t.Errorf("concurrent RegisterDevice: %v", err)
		}
	}
	if ok != 2 {
		t.Errorf("%d of 8 concurrent registrations succeeded, want 2", ok)
	}
}

// testImportBatch: one import mixing existing accounts, new ones, repeats
// of both and a name a device squats on gives the new accounts the app's
// next ordinals in input order, without gaps, answers every input as if
// the inputs were imported one by one, and emits the changes in that
// order.
func (h harness) testImportBatch(t *testing.T) {
	f := h.fresh(t)
	old := f.importIDs(testApp, "old1", "old2")
	dev := f.device(testApp, "squat")
	f.rec.Take()
	out, err := f.s.ImportAccounts(f.ctx, testApp, []im.AccountInput{
		{UserID: "new1", Nick: "N1"}, {UserID: "old1", Nick: "O1"}, {UserID: "squat"}, {UserID: "new1", FaceURL: "f"},
		{UserID: "new2"}, {UserID: "old1"}, {UserID: "new2", Nick: "N2"}, {UserID: "new3"},
	})
	if err != nil {
		t.Fatalf("ImportAccounts: %v", err)
	}
	next := dev.Ordinal + 1
	want := []im.Account{
		{ID: "new1", Ordinal: next, Nick: "N1"},
		{ID: "old1", Ordinal: old[0].Ordinal, Nick: "O1"},
		{ID: "squat", Ordinal: next + 1},
		{ID: "new1", Ordinal: next, Nick: "N1", FaceURL: "f"},
		{ID: "new2", Ordinal: next + 2},
		{ID: "old1", Ordinal: old[0].Ordinal, Nick: "O1"},
		{ID: "new2", Ordinal: next + 2, Nick: "N2"},
		{ID: "new3", Ordinal: next + 3},
	}
	if !slices.Equal(out, want) {
		t.Errorf("ImportAccounts =\n %+v\nwant\n %+v", out, want)
	}
	up := func(id string, ord uint32) im.Change {
		return im.Change{App: testApp, Op: im.ChangeUpsert, ID: id, Type: im.AcctUserID, Ordinal: ord}
	}
	f.wantChanges(up("new1", next),
		im.Change{App: testApp, Op: im.ChangeDelete, ID: "squat", Type: im.AcctRegistrationID, Ordinal: dev.Ordinal},
		up("squat", next+1), up("new2", next+2), up("new3", next+3))
	got, err := f.s.Accounts(f.ctx, testApp, []string{"new1", "new2", "old1", "squat", "old2"})
	if err != nil || got["new1"] != want[3] || got["new2"] != want[6] || got["old1"] != want[1] ||
		got["squat"] != want[2] || got["old2"] != old[1] {
		t.Errorf("Accounts = %+v, %v", got, err)
	}
	// The next import continues the sequence: nothing was reserved twice.
	if more := f.importIDs(testApp, "new4"); more[0].Ordinal != next+4 {
		t.Errorf("next ordinal = %d, want %d", more[0].Ordinal, next+4)
	}
	if d := f.device(testApp, "phone"); d.Ordinal != next+5 {
		t.Errorf("device ordinal = %d, want %d", d.Ordinal, next+5)
	}
}
