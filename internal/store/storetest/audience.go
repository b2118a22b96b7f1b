package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"timd/internal/im"
)

func (h harness) testAttrSchema(t *testing.T) {
	f := h.fresh(t)
	s, err := f.s.AttrSchema(f.ctx, testApp)
	if err != nil || s != (im.AttrSchema{}) {
		t.Errorf("AttrSchema of new app = %+v, %v; want all undefined", s, err)
	}
	want := im.AttrSchema{0: {Name: "gender"}, 2: {Name: "city"}, 9: {Name: "tier", Type: im.AcctRegistrationID}}
	f.putSchema(testApp, want)
	if s, err := f.s.AttrSchema(f.ctx, testApp); err != nil || s != want {
		t.Errorf("AttrSchema = %+v, %v; want %+v", s, err, want)
	}
	want[2] = im.AttrSlot{}
	want[5] = im.AttrSlot{Name: "level"}
	f.putSchema(testApp, want)
	if s, err := f.s.AttrSchema(f.ctx, testApp); err != nil || s != want {
		t.Errorf("AttrSchema after replace = %+v, %v; want %+v", s, err, want)
	}
	if s, err := f.s.AttrSchema(f.ctx, otherApp); err != nil || s != (im.AttrSchema{}) {
		t.Errorf("AttrSchema of other app = %+v, %v", s, err)
	}
	f.wantChanges()
}

func (h harness) testEditOps(t *testing.T) {
	f := h.fresh(t)
	f.putSchema(testApp, userSchema)
	f.importIDs(testApp, "u")

	t.Run("SetAttrsMerges", func(t *testing.T) {
		f.t = t
		f.mustEdit(testApp, setAttrs("u", attrs(0, "f", 1, "Berlin")))
		f.mustEdit(testApp, setAttrs("u", attrs(1, "Paris", 2, "vip")))
		f.wantAttrs(testApp, "u", attrs(0, "f", 1, "Paris", 2, "vip"))
	})
	t.Run("RemoveAttrs", func(t *testing.T) {
		f.t = t
		f.mustEdit(testApp, removeAttrs("u", 1))
		f.wantAttrs(testApp, "u", attrs(0, "f", 2, "vip"))
		f.mustEdit(testApp, removeAttrs("u", 1, 2)) // 1 is already absent
		f.wantAttrs(testApp, "u", attrs(0, "f"))
	})
	t.Run("AddTagsKeepsOrderAndIsIdempotent", func(t *testing.T) {
		f.t = t
		f.mustEdit(testApp, tagEdit(im.OpAddTags, "u", "b", "a", "b"))
		f.mustEdit(testApp, tagEdit(im.OpAddTags, "u", "c", "a"))
		f.wantTags(testApp, "u", "b", "a", "c")
	})
	t.Run("RemoveTags", func(t *testing.T) {
		f.t = t
		f.mustEdit(testApp, tagEdit(im.OpRemoveTags, "u", "a", "absent"))
		f.wantTags(testApp, "u", "b", "c")
	})
	t.Run("ReplaceTags", func(t *testing.T) {
		f.t = t
		f.mustEdit(testApp, tagEdit(im.OpReplaceTags, "u", "z", "c", "z", "y"))
		f.wantTags(testApp, "u", "z", "c", "y")
		f.mustEdit(testApp, tagEdit(im.OpReplaceTags, "u", "y", "z"))
		f.wantTags(testApp, "u", "y", "z")
	})
	t.Run("ClearTags", func(t *testing.T) {
		f.t = t
		f.mustEdit(testApp, im.Edit{Account: "u", Op: im.OpClearTags})
		f.wantTags(testApp, "u")
		f.wantAttrs(testApp, "u", attrs(0, "f")) // attributes untouched
	})
	t.Run("NoOpEditsSucceed", func(t *testing.T) {
		f.t = t
		f.rec.Take()
		f.mustEdit(testApp,
			im.Edit{Account: "u", Op: im.OpClearTags},
			tagEdit(im.OpRemoveTags, "u", "nothing"),
			removeAttrs("u", 1),
			setAttrs("u", attrs(0, "f")),
			setAttrs("u", im.AttrValues{}),
		)
		f.wantChanges()
	})
	t.Run("EmptyBatch", func(t *testing.T) {
		f.t = t
		errs, err := f.s.ApplyEdits(f.ctx, testApp, nil, im.EditLimits{})
		if err != nil || len(errs) != 0 {
			t.Errorf("ApplyEdits(nil) = %v, %v", errs, err)
		}
	})
	t.Run("LaterEditsSeeEarlierOnes", func(t *testing.T) {
		f.t = t
		f.mustEdit(testApp,
			tagEdit(im.OpAddTags, "u", "p"),
			tagEdit(im.OpAddTags, "u", "q"),
			tagEdit(im.OpRemoveTags, "u", "p"),
			setAttrs("u", attrs(1, "Oslo")),
			removeAttrs("u", 0),
		)
		f.wantTags(testApp, "u", "q")
		f.wantAttrs(testApp, "u", attrs(1, "Oslo"))
	})
}

func (h harness) testEditErrors(t *testing.T) {
	f := h.fresh(t)
	f.putSchema(testApp, userSchema)
	f.importIDs(testApp, "u", "v")
	f.device(testApp, "dev")
	f.rec.Take()
	lim := im.EditLimits{TagsPerUser: 3, TagsPerApp: 5}
	check := func(name string, want int, e im.Edit) {
		t.Helper()
		if got := f.edits(testApp, lim, e)[0]; got != want {
			t.Errorf("%s: code %d, want %d", name, got, want)
		}
	}
	check("set on unknown account", im.CodeAccountNotFound, setAttrs("ghost", attrs(0, "x")))
	check("tag unknown account", im.CodeAccountNotFound, tagEdit(im.OpAddTags, "ghost", "t"))
	check("clear unknown account", im.CodeAccountNotFound, im.Edit{Account: "ghost", Op: im.OpClearTags})
	if got := f.edits(otherApp, lim, setAttrs("u", attrs(0, "x")))[0]; got != im.CodeAccountNotFound {
		t.Errorf("account of another app: code %d, want %d", got, im.CodeAccountNotFound)
	}

	check("UserID slot on RegistrationID", im.CodeAccountTypeBound, setAttrs("dev", attrs(0, "x")))
	check("RegistrationID slot on UserID", im.CodeAccountTypeBound, setAttrs("u", attrs(0, "ok", 3, "gold")))
	check("remove RegistrationID slot on UserID", im.CodeAccountTypeBound, removeAttrs("u", 3))
	f.wantAttrs(testApp, "u", im.AttrValues{}) // the failing set left slot 0 alone

	f.mustEdit(testApp, tagEdit(im.OpAddTags, "u", "user-tag"))
	f.mustEdit(testApp, tagEdit(im.OpAddTags, "dev", "dev-tag"))
	check("UserID tag on RegistrationID", im.CodeAccountTypeBound, tagEdit(im.OpAddTags, "dev", "user-tag"))
	check("RegistrationID tag on UserID (replace)", im.CodeAccountTypeBound, tagEdit(im.OpReplaceTags, "v", "fine", "dev-tag"))
	f.wantTags(testApp, "v")

	f.mustEdit(testApp, tagEdit(im.OpAddTags, "u", "b", "c")) // u: user-tag b c
	check("fourth tag of a user", im.CodeTooManyTags, tagEdit(im.OpAddTags, "u", "d"))
	check("replace with four tags", im.CodeTooManyTags, tagEdit(im.OpReplaceTags, "v", "1", "2", "3", "4"))
	check("adding tags already held is fine at the limit", 0, tagEdit(im.OpAddTags, "u", "b", "c"))
	f.wantTags(testApp, "u", "user-tag", "b", "c")

	// The app now has user-tag, dev-tag, b, c: one more distinct tag fits.
	check("fifth distinct tag", 0, tagEdit(im.OpAddTags, "v", "e"))
	check("sixth distinct tag", im.CodeTooManyTags, tagEdit(im.OpAddTags, "v", "f"))
	check("existing tags do not count", 0, tagEdit(im.OpAddTags, "v", "b", "c"))
	f.wantTags(testApp, "v", "e", "b", "c")
	// Replacing the only holder of e with f releases e in the same edit.
	check("replace that releases as many tags as it creates", 0, tagEdit(im.OpReplaceTags, "v", "f", "b"))
	f.wantTags(testApp, "v", "f", "b")
}

func (h harness) testPartialSuccess(t *testing.T) {
	f := h.fresh(t)
	f.putSchema(testApp, userSchema)
	accts := f.importIDs(testApp, "a", "b", "c")
	dev := f.device(testApp, "dev")
	f.mustEdit(testApp, tagEdit(im.OpAddTags, "dev", "dev-tag"), setAttrs("b", attrs(1, "Rome")))
	f.rec.Take()

	codes := f.edits(testApp, im.EditLimits{TagsPerUser: 2},
		setAttrs("a", attrs(0, "f")),                   // ok
		setAttrs("ghost", attrs(0, "m")),               // 70107
		setAttrs("b", attrs(0, "m", 3, "gold")),        // 90035: nothing of it applied
		tagEdit(im.OpAddTags, "c", "x", "dev-tag"),     // 90035: x not added either
		tagEdit(im.OpAddTags, "c", "y", "z", "w"),      // 90032
		tagEdit(im.OpAddTags, "c", "y"),                // ok
		setAttrs("dev", attrs(3, "gold")),              // ok
		tagEdit(im.OpReplaceTags, "a", "1", "2", "3"),  // 90032
		tagEdit(im.OpAddTags, "a", "1"),                // ok
		im.Edit{Account: "ghost", Op: im.OpRemoveTags}, // 70107
		removeAttrs("b", 1),                            // ok
	)
	want := []int{0, im.CodeAccountNotFound, im.CodeAccountTypeBound, im.CodeAccountTypeBound, im.CodeTooManyTags,
		0, 0, im.CodeTooManyTags, 0, im.CodeAccountNotFound, 0}
	for i := range want {
		if codes[i] != want[i] {
			t.Errorf("edit %d: code %d, want %d", i, codes[i], want[i])
		}
	}
	f.wantAttrs(testApp, "a", attrs(0, "f"))
	f.wantTags(testApp, "a", "1")
	f.wantAttrs(testApp, "b", im.AttrValues{})
	f.wantTags(testApp, "c", "y")
	f.wantAttrs(testApp, "dev", attrs(3, "gold"))
	f.wantChanges(
		im.Change{App: testApp, Op: im.ChangeUpsert, ID: "a", Ordinal: accts[0].Ordinal, NewAttrs: attrs(0, "f")},
		im.Change{App: testApp, Op: im.ChangeUpsert, ID: "c", Ordinal: accts[2].Ordinal, NewTags: []string{"y"}},
		im.Change{App: testApp, Op: im.ChangeUpsert, ID: "dev", Type: im.AcctRegistrationID, Ordinal: dev.Ordinal,
			NewAttrs: attrs(3, "gold"), OldTags: []string{"dev-tag"}, NewTags: []string{"dev-tag"}},
		im.Change{App: testApp, Op: im.ChangeUpsert, ID: "a", Ordinal: accts[0].Ordinal,
			OldAttrs: attrs(0, "f"), NewAttrs: attrs(0, "f"), NewTags: []string{"1"}},
		im.Change{App: testApp, Op: im.ChangeUpsert, ID: "b", Ordinal: accts[1].Ordinal, OldAttrs: attrs(1, "Rome")},
	)
}

func (h harness) testTagRegistry(t *testing.T) {
	f := h.fresh(t)
	f.importIDs(testApp, "u1", "u2")
	f.device(testApp, "d1")
	bound := func(e im.Edit) bool {
		t.Helper()
		return f.edits(testApp, im.EditLimits{}, e)[0] == im.CodeAccountTypeBound
	}

	// A tag stays bound while any account holds it.
	f.mustEdit(testApp, tagEdit(im.OpAddTags, "u1", "t"), tagEdit(im.OpAddTags, "u2", "t"))
	f.mustEdit(testApp, tagEdit(im.OpRemoveTags, "u1", "t"))
	if !bound(tagEdit(im.OpAddTags, "d1", "t")) {
		t.Errorf("tag released while u2 still holds it")
	}
	// Each way of dropping the last holder releases it.
	for _, release := range []func(){
		func() { f.mustEdit(testApp, tagEdit(im.OpRemoveTags, "u2", "t")) },
		func() { f.mustEdit(testApp, im.Edit{Account: "u2", Op: im.OpClearTags}) },
		func() { f.mustEdit(testApp, tagEdit(im.OpReplaceTags, "u2", "other")) },
		func() {
			if _, err := f.s.DeleteAccounts(f.ctx, testApp, []string{"u2"}); err != nil {
				t.Fatalf("DeleteAccounts: %v", err)
			}
			f.importIDs(testApp, "u2")
		},
	} {
		f.mustEdit(testApp, tagEdit(im.OpAddTags, "u2", "t"))
		release()
		if bound(tagEdit(im.OpAddTags, "d1", "t")) {
			t.Fatalf("tag not released after its last holder dropped it")
		}
		// Now bound to RegistrationIDs; release it again for the next round.
		if !bound(tagEdit(im.OpAddTags, "u1", "t")) {
			t.Errorf("tag re-bound to RegistrationIDs still accepted a UserID")
		}
		f.mustEdit(testApp, tagEdit(im.OpRemoveTags, "d1", "t"))
	}

	// Deleting accounts releases their tags from the per-app limit.
	lim := im.EditLimits{TagsPerApp: 2}
	f.mustEdit(testApp, im.Edit{Account: "u1", Op: im.OpClearTags}, im.Edit{Account: "u2", Op: im.OpClearTags})
	if c := f.edits(testApp, lim, tagEdit(im.OpAddTags, "u1", "a", "b")); c[0] != 0 {
		t.Fatalf("two tags under a limit of two: code %d", c[0])
	}
	if c := f.edits(testApp, lim, tagEdit(im.OpAddTags, "u2", "c")); c[0] != im.CodeTooManyTags {
		t.Errorf("third distinct tag: code %d, want %d", c[0], im.CodeTooManyTags)
	}
	if _, err := f.s.DeleteAccounts(f.ctx, testApp, []string{"u1"}); err != nil {
		t.Fatalf("DeleteAccounts: %v", err)
	}
	if c := f.edits(testApp, lim, tagEdit(im.OpAddTags, "u2", "c", "d")); c[0] != 0 {
		t.Errorf("tags after the holder was deleted: code %d, want 0", c[0])
	}

	// Within one batch, each edit sees the registry the edits before it
	// left: a tag released by one edit may be re-bound by the next, and a
	// dropped tag frees its place under the per-app limit.
	f.mustEdit(testApp, im.Edit{Account: "u2", Op: im.OpClearTags})
	f.mustEdit(testApp, tagEdit(im.OpAddTags, "u2", "x"), tagEdit(im.OpAddTags, "u2", "y"))
	codes := f.edits(testApp, lim,
		tagEdit(im.OpAddTags, "d1", "x"),    // x is bound to UserIDs: refused
		tagEdit(im.OpRemoveTags, "u2", "x"), // x's last holder lets go
		tagEdit(im.OpAddTags, "d1", "x"),    // so a RegistrationID may take it
		tagEdit(im.OpAddTags, "u2", "z"),    // x and y exist: a third is refused
		tagEdit(im.OpRemoveTags, "u2", "y"), // y goes
		tagEdit(im.OpAddTags, "u2", "z"),    // and z fits
		tagEdit(im.OpAddTags, "u2", "w"),    // but not a fourth
	)
	if want := []int{im.CodeAccountTypeBound, 0, 0, im.CodeTooManyTags, 0, 0, im.CodeTooManyTags}; !slices.Equal(codes, want) {
		t.Errorf("one batch over the registry: codes %v, want %v", codes, want)
	}
	f.wantTags(testApp, "d1", "x")
	f.wantTags(testApp, "u2", "z")
	f.importIDs(testApp, "u3")
	if !bound(tagEdit(im.OpAddTags, "u3", "x")) {
		t.Errorf("x re-bound to RegistrationIDs in the batch still accepted a UserID")
	}
}

func (h harness) testScanProfiles(t *testing.T) {
	f := h.fresh(t)
	f.putSchema(testApp, userSchema)
	f.importIDs(testApp, "c", "a", "b")
	f.device(testApp, "d")
	f.importIDs(otherApp, "zzz")
	f.mustEdit(testApp, setAttrs("a", attrs(2, "vip")), tagEdit(im.OpAddTags, "b", "t2", "t1"))
	if _, err := f.s.DeleteAccounts(f.ctx, testApp, []string{"c"}); err != nil {
		t.Fatalf("DeleteAccounts: %v", err)
	}
	ps := f.scan(testApp)
	var ids []string
	for i, p := range ps {
		ids = append(ids, p.Account.ID)
		if i > 0 && p.Account.Ordinal <= ps[i-1].Account.Ordinal {
			t.Errorf("ScanProfiles not in ordinal order: %d after %d", p.Account.Ordinal, ps[i-1].Account.Ordinal)
		}
	}
	if len(ps) != 3 || ids[0] != "a" || ids[1] != "b" || ids[2] != "d" {
		t.Fatalf("ScanProfiles ids = %v, want [a b d]", ids)
	}
	if ps[0].Attrs != attrs(2, "vip") || len(ps[1].Tags) != 2 || ps[1].Tags[0] != "t2" ||
		ps[2].Account.Type != im.AcctRegistrationID || ps[2].Account.Platform != "android" {
		t.Errorf("ScanProfiles = %+v", ps)
	}
	stop := errors.New("stop")
	n := 0
	err := f.s.ScanProfiles(f.ctx, testApp, func(im.Profile) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("ScanProfiles with failing fn = %v after %d calls; want fn's error after 1", err, n)
	}
	if err := f.s.ScanProfiles(f.ctx, 42, func(im.Profile) error { return stop }); err != nil {
		t.Errorf("ScanProfiles of empty app = %v", err)
	}
}

func (h harness) testContext(t *testing.T) {
	f := h.fresh(t)
	f.putSchema(testApp, userSchema)
	f.importIDs(testApp, "u")
	f.rec.Take()
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	if _, err := f.s.ApplyEdits(ctx, testApp, []im.Edit{setAttrs("u", attrs(0, "x"))}, im.EditLimits{}); err == nil {
		t.Errorf("ApplyEdits with a canceled context succeeded")
	}
	if _, err := f.s.ImportAccounts(ctx, testApp, []im.AccountInput{{UserID: "new"}}); err == nil {
		t.Errorf("ImportAccounts with a canceled context succeeded")
	}
	f.wantAttrs(testApp, "u", im.AttrValues{})
	if got, _ := f.s.Accounts(f.ctx, testApp, []string{"new"}); len(got) != 0 {
		t.Errorf("ImportAccounts with a canceled context created %v", got)
	}
	f.wantChanges()
}

// testBulkLoad: timd import's path creates new accounts and updates
// existing ones, gives them attributes and tags, and refuses an account
// whose edit breaks a rule without touching it or the others.
func (h harness) testBulkLoad(t *testing.T) {
	f := h.fresh(t)
	bl, ok := f.s.(im.BulkLoader)
	if !ok {
		t.Skip("the store has no bulk loader")
	}
	f.putSchema(testApp, userSchema)
	f.importIDs(testApp, "old")
	f.device(testApp, "dev")
	f.mustEdit(testApp, tagEdit(im.OpAddTags, "dev", "devtag"), tagEdit(im.OpAddTags, "old", "keep"))
	errs, err := bl.BulkLoad(f.ctx, testApp, []im.BulkAccount{
		{UserID: "n1", Nick: "N1", Attrs: attrs(0, "f", 1, "Oslo"), Tags: []string{"a", "b"}},
		{UserID: "old", Attrs: attrs(2, "gold"), Tags: []string{"a"}},
		{UserID: "bad", Tags: []string{"devtag"}}, // bound to RegistrationIDs
		{UserID: "bad2", Attrs: attrs(3, "x")},    // a RegistrationID slot
		{UserID: "n2", Tags: []string{"b", "c"}},
	}, im.EditLimits{})
	if err != nil {
		t.Fatalf("BulkLoad: %v", err)
	}
	codes := make([]int, len(errs))
	for i, e := range errs {
		var ie *im.Error
		if errors.As(e, &ie) {
			codes[i] = ie.Code
		} else if e != nil {
			codes[i] = -1
		}
	}
	if want := []int{0, 0, im.CodeAccountTypeBound, im.CodeAccountTypeBound, 0}; !slices.Equal(codes, want) {
		t.Fatalf("BulkLoad codes %v, want %v", codes, want)
	}
	f.wantAttrs(testApp, "n1", attrs(0, "f", 1, "Oslo"))
	f.wantTags(testApp, "n1", "a", "b")
	f.wantAttrs(testApp, "old", attrs(2, "gold"))
	f.wantTags(testApp, "old", "keep", "a")
	f.wantTags(testApp, "n2", "b", "c")
	ps, err := f.s.Profiles(f.ctx, testApp, []string{"bad", "bad2", "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ps["bad"]; ok {
		t.Errorf("a refused account was created: %+v", ps["bad"])
	}
	if _, ok := ps["bad2"]; ok {
		t.Errorf("a refused account was created: %+v", ps["bad2"])
	}
	if ps["n1"].Account.Nick != "N1" {
		t.Errorf("n1 = %+v", ps["n1"].Account)
	}
	// Loading the same lines again changes nothing.
	if errs, err := bl.BulkLoad(f.ctx, testApp, []im.BulkAccount{{UserID: "n2", Tags: []string{"b", "c"}}}, im.EditLimits{}); err != nil || errs[0] != nil {
		t.Fatalf("BulkLoad again: %v %v", errs, err)
	}
	f.wantTags(testApp, "n2", "b", "c")
}

// testNarrowReads checks ReadAttrs and ReadTags: one entry per id in the
// order asked (repeats included), Found false for unknown, deleted and
// other apps' ids, ids and values that need escaping, both account types,
// and a full request of 100 ids in an order unlike the store's.
func (h harness) testNarrowReads(t *testing.T) {
	f := h.fresh(t)
	f.putSchema(testApp, userSchema)
	odd := []string{"ctl\x01id", `quote"back\slash`, "ünï漢", "<&>", "sp ace"}
	f.importIDs(testApp, append([]string{"a", "b", "c"}, odd...)...)
	f.device(testApp, "d")
	f.importIDs(otherApp, "a")
	oddTag := "t\x01\"\\<&>\u2028é"
	f.mustEdit(testApp,
		setAttrs("a", attrs(0, "f", 2, "vip")), tagEdit(im.OpAddTags, "a", "t2", "t1"),
		setAttrs("d", attrs(3, "gold")), tagEdit(im.OpAddTags, "d", "dt"),
		tagEdit(im.OpAddTags, "c", "gone"),
		setAttrs(odd[0], attrs(1, oddTag)), tagEdit(im.OpAddTags, odd[0], oddTag, "plain"),
	)
	for i, id := range odd[1:] {
		f.mustEdit(testApp, tagEdit(im.OpAddTags, id, fmt.Sprint("odd", i)), setAttrs(id, attrs(0, id)))
	}
	f.mustEdit(otherApp, tagEdit(im.OpAddTags, "a", "other"))
	if _, err := f.s.DeleteAccounts(f.ctx, testApp, []string{"c"}); err != nil {
		t.Fatalf("DeleteAccounts: %v", err)
	}

	type want struct {
		found bool
		attrs im.AttrValues
		tags  []string
	}
	check := func(app uint64, ids []string, wants []want) {
		t.Helper()
		as, err := f.s.ReadAttrs(f.ctx, app, ids)
		if err != nil || len(as) != len(ids) {
			t.Fatalf("ReadAttrs(%q) = %d entries, %v; want %d", ids, len(as), err, len(ids))
		}
		ts, err := f.s.ReadTags(f.ctx, app, ids)
		if err != nil || len(ts) != len(ids) {
			t.Fatalf("ReadTags(%q) = %d entries, %v; want %d", ids, len(ts), err, len(ids))
		}
		for i, w := range wants {
			if as[i].Found != w.found || as[i].Attrs != w.attrs {
				t.Errorf("ReadAttrs %d (%q) = %+v; want %+v", i, ids[i], as[i], w)
			}
			if ts[i].Found != w.found || !slices.Equal(ts[i].Tags, w.tags) {
				t.Errorf("ReadTags %d (%q) = %+v; want %+v", i, ids[i], ts[i], w)
			}
		}
	}
	a := want{true, attrs(0, "f", 2, "vip"), []string{"t2", "t1"}}
	d := want{true, attrs(3, "gold"), []string{"dt"}}
	b := want{found: true}
	check(testApp, []string{"a", "zz", "d", "a", "b", "c", "A"}, []want{a, {}, d, a, b, {}, {}})
	check(testApp, odd, []want{
		{true, attrs(1, oddTag), []string{oddTag, "plain"}},
		{true, attrs(0, odd[1]), []string{"odd0"}},
		{true, attrs(0, odd[2]), []string{"odd1"}},
		{true, attrs(0, odd[3]), []string{"odd2"}},
		{true, attrs(0, odd[4]), []string{"odd3"}},
	})
	check(otherApp, []string{"a", "d", "b"}, []want{{found: true, tags: []string{"other"}}, {}, {}})
	check(testApp, nil, nil)

	// A full request, read in the reverse of the import order, right after
	// the writes (read-your-writes before any fold).
	ids := make([]string, im.MaxAccountsPerCall)
	for i := range ids {
		ids[i] = fmt.Sprintf("n%03d", i)
	}
	f.importIDs(testApp, ids...)
	var edits []im.Edit
	wants := make([]want, len(ids))
	for i, id := range ids {
		tag := fmt.Sprint("g", i%7)
		edits = append(edits, tagEdit(im.OpAddTags, id, tag, id), setAttrs(id, attrs(i%3, id)))
		wants[len(ids)-1-i] = want{true, attrs(i%3, id), []string{tag, id}}
	}
	f.mustEdit(testApp, edits...)
	rev := slices.Clone(ids)
	slices.Reverse(rev)
	check(testApp, rev, wants)
}
