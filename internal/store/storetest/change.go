package storetest

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"

	"timd/internal/im"
)

func (h harness) testChangeFeed(t *testing.T) {
	f := h.fresh(t)
	f.putSchema(testApp, userSchema)
	if err := f.s.PutApp(f.ctx, im.App{SDKAppID: testApp, SecretKey: "k", Admins: []string{"admin"}}); err != nil {
		t.Fatalf("PutApp: %v", err)
	}
	f.wantChanges() // apps and schemas are not account changes

	a := f.importIDs(testApp, "a")[0]
	f.wantChanges(im.Change{App: testApp, Op: im.ChangeUpsert, ID: "a", Type: im.AcctUserID, Ordinal: a.Ordinal})
	d := f.device(testApp, "d")
	f.wantChanges(im.Change{App: testApp, Op: im.ChangeUpsert, ID: "d", Type: im.AcctRegistrationID, Ordinal: d.Ordinal})

	f.mustEdit(testApp,
		setAttrs("a", attrs(0, "f", 1, "Berlin")),
		tagEdit(im.OpAddTags, "a", "x", "y"),
		tagEdit(im.OpAddTags, "d", "z"),
		removeAttrs("a", 0),
	)
	f.wantChanges(
		im.Change{App: testApp, Op: im.ChangeUpsert, ID: "a", Ordinal: a.Ordinal,
			NewAttrs: attrs(0, "f", 1, "Berlin")},
		im.Change{App: testApp, Op: im.ChangeUpsert, ID: "a", Ordinal: a.Ordinal,
			OldAttrs: attrs(0, "f", 1, "Berlin"), NewAttrs: attrs(0, "f", 1, "Berlin"), NewTags: []string{"x", "y"}},
		im.Change{App: testApp, Op: im.ChangeUpsert, ID: "d", Type: im.AcctRegistrationID, Ordinal: d.Ordinal,
			NewTags: []string{"z"}},
		im.Change{App: testApp, Op: im.ChangeUpsert, ID: "a", Ordinal: a.Ordinal,
			OldAttrs: attrs(0, "f", 1, "Berlin"), NewAttrs: attrs(1, "Berlin"),
			OldTags: []string{"x", "y"}, NewTags: []string{"x", "y"}},
	)

	// Writes that change no attribute or tag emit nothing.
	f.mustEdit(testApp, tagEdit(im.OpAddTags, "a", "x"), setAttrs("a", attrs(1, "Berlin")))
	f.importIDs(testApp, "a")
	if _, err := f.s.ImportAccounts(f.ctx, testApp, []im.AccountInput{{UserID: "a", Nick: "A"}}); err != nil {
		t.Fatalf("ImportAccounts: %v", err)
	}
	if _, err := f.s.RegisterDevice(f.ctx, testApp, im.Device{RegistrationID: "d", Token: "new"}, im.DeviceLimits{}); err != nil {
		t.Fatalf("RegisterDevice: %v", err)
	}
	if err := f.s.Kick(f.ctx, testApp, "a", 5); err != nil {
		t.Fatalf("Kick: %v", err)
	}
	if _, err := f.s.DeleteAccounts(f.ctx, testApp, []string{"ghost", "d"}); err != nil {
		t.Fatalf("DeleteAccounts: %v", err)
	}
	f.wantChanges()

	f.mustEdit(testApp, tagEdit(im.OpReplaceTags, "a", "y", "w"))
	if _, err := f.s.DeleteAccounts(f.ctx, testApp, []string{"a"}); err != nil {
		t.Fatalf("DeleteAccounts: %v", err)
	}
	f.wantChanges(
		im.Change{App: testApp, Op: im.ChangeUpsert, ID: "a", Ordinal: a.Ordinal,
			OldAttrs: attrs(1, "Berlin"), NewAttrs: attrs(1, "Berlin"),
			OldTags: []string{"x", "y"}, NewTags: []string{"y", "w"}},
		im.Change{App: testApp, Op: im.ChangeDelete, ID: "a", Ordinal: a.Ordinal,
			OldAttrs: attrs(1, "Berlin"), OldTags: []string{"y", "w"}},
	)
}

// replay applies a change feed to a model keyed by ordinal, checking that
// each change starts from the state the previous ones left.
func replay(t *testing.T, changes []im.Change) map[uint32]im.Profile {
	t.Helper()
	state := map[uint32]im.Profile{}
	for i, c := range changes {
		cur, exists := state[c.Ordinal]
		switch {
		case c.Op == im.ChangeDelete && !exists:
			t.Fatalf("change %d deletes unknown ordinal %d", i, c.Ordinal)
		case exists && (cur.Account.ID != c.ID || cur.Account.Type != c.Type):
			t.Fatalf("change %d: ordinal %d is %s/%d, change names %s/%d", i, c.Ordinal,
				cur.Account.ID, cur.Account.Type, c.ID, c.Type)
		case cur.Attrs != c.OldAttrs || !slices.Equal(cur.Tags, c.OldTags):
			t.Fatalf("change %d %s does not start from the state %q %q", i, changeString(c), cur.Attrs, cur.Tags)
		}
		if c.Op == im.ChangeDelete {
			delete(state, c.Ordinal)
			continue
		}
		state[c.Ordinal] = im.Profile{Account: im.Account{ID: c.ID, Type: c.Type, Ordinal: c.Ordinal},
			Attrs: c.NewAttrs, Tags: slices.Clone(c.NewTags)}
	}
	return state
}

func (h harness) testConcurrent(t *testing.T) {
	f := h.fresh(t)
	f.putSchema(testApp, userSchema)
	f.importIDs(testApp, "shared")
	const workers, perWorker, rounds = 16, 10, 20

	type want struct {
		attrs im.AttrValues
		tags  []string
	}
	wants := make([]map[string]*want, workers)
	var wg sync.WaitGroup
	errc := make(chan error, workers+2)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			errc <- f.reader(stop)
		}()
	}
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- f.worker(g, perWorker, rounds, func(id string, a im.AttrValues, tags []string) {
				if wants[g] == nil {
					wants[g] = map[string]*want{}
				}
				wants[g][id] = &want{a, tags}
			})
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}

	ps := f.scan(testApp)
	if len(ps) != 1+workers*perWorker {
		t.Fatalf("ScanProfiles returned %d accounts, want %d", len(ps), 1+workers*perWorker)
	}
	byID := map[string]im.Profile{}
	for i, p := range ps {
		if i > 0 && p.Account.Ordinal <= ps[i-1].Account.Ordinal {
			t.Errorf("ordinals not unique and increasing: %d after %d", p.Account.Ordinal, ps[i-1].Account.Ordinal)
		}
		byID[p.Account.ID] = p
	}
	for g := range workers {
		for id, w := range wants[g] {
			p := byID[id]
			if p.Attrs != w.attrs || !slices.Equal(p.Tags, w.tags) {
				t.Errorf("%s = %q %q, want %q %q", id, p.Attrs, p.Tags, w.attrs, w.tags)
			}
		}
	}
	shared := slices.Clone(byID["shared"].Tags)
	sort.Strings(shared)
	var wantShared []string
	for g := range workers {
		wantShared = append(wantShared, fmt.Sprintf("w%02d", g))
	}
	if !slices.Equal(shared, wantShared) {
		t.Errorf("shared tags = %q, want %q", shared, wantShared)
	}

	// Replaying the change feed in order must rebuild exactly the stored state.
	state := replay(t, f.rec.Take())
	if len(state) != len(ps) {
		t.Errorf("change feed describes %d accounts, store has %d", len(state), len(ps))
	}
	for _, p := range ps {
		s := state[p.Account.Ordinal]
		if s.Account.ID != p.Account.ID || s.Attrs != p.Attrs || !slices.Equal(s.Tags, p.Tags) {
			t.Errorf("feed replay of %d = %s %q %q, store has %s %q %q", p.Account.Ordinal,
				s.Account.ID, s.Attrs, s.Tags, p.Account.ID, p.Attrs, p.Tags)
		}
	}
}

// reader reads while the workers write, until stop is closed, and checks
// what it sees is well-formed: attributes a worker wrote, tags of the right
// worker, accounts in ordinal order.
func (f *fixture) reader(stop <-chan struct{}) error {
	check := func(p im.Profile) error {
		for slot, v := range p.Attrs {
			if v != "" && (len(v) < 2 || v[0] != 'r') {
				return fmt.Errorf("%s: attribute %d = %q, never written", p.Account.ID, slot, v)
			}
		}
		for _, tag := range p.Tags {
			if p.Account.ID != "shared" && (len(tag) < 3 || tag[:3] != p.Account.ID[:3]) {
				return fmt.Errorf("%s: tag %q of another worker", p.Account.ID, tag)
			}
		}
		return nil
	}
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		var last uint32
		err := f.s.ScanProfiles(f.ctx, testApp, func(p im.Profile) error {
			if p.Account.Ordinal <= last {
				return fmt.Errorf("ScanProfiles: ordinal %d after %d", p.Account.Ordinal, last)
			}
			last = p.Account.Ordinal
			return check(p)
		})
		if err != nil {
			return err
		}
		ps, err := f.s.Profiles(f.ctx, testApp, []string{"shared", "w00-00", "w01-00", "w01-01"})
		if err != nil {
			return err
		}
		for _, p := range ps {
			if err := check(p); err != nil {
				return err
			}
		}
	}
}

// worker imports its own accounts (odd workers register devices too), edits
// them for some rounds while also tagging the shared account, and reports
// the state it expects each of its accounts to end in.
func (f *fixture) worker(g, n, rounds int, expect func(id string, a im.AttrValues, tags []string)) error {
	ids := make([]string, n)
	in := make([]im.AccountInput, n)
	for k := range ids {
		ids[k] = fmt.Sprintf("w%02d-%02d", g, k)
		in[k] = im.AccountInput{UserID: ids[k]}
	}
	if g%2 == 1 {
		// Devices carry RegistrationID-bound slot 3; register half of them.
		for k := 0; k < n; k += 2 {
			if _, err := f.s.RegisterDevice(f.ctx, testApp, im.Device{RegistrationID: ids[k]}, im.DeviceLimits{}); err != nil {
				return err
			}
			in[k] = im.AccountInput{}
		}
	}
	var users []im.AccountInput
	for _, ai := range in {
		if ai.UserID != "" {
			users = append(users, ai)
		}
	}
	if _, err := f.s.ImportAccounts(f.ctx, testApp, users); err != nil {
		return err
	}
	model := make([]struct {
		attrs im.AttrValues
		tags  []string
	}, n)
	for r := range rounds {
		var edits []im.Edit
		for k, id := range ids {
			slot := r % 3
			if in[k].UserID == "" {
				slot = 3
			}
			var a im.AttrValues
			a[slot] = fmt.Sprintf("r%d", r)
			edits = append(edits, setAttrs(id, a))
			model[k].attrs[slot] = a[slot]
			tag := fmt.Sprintf("w%02d-t%d", g, r%4)
			if in[k].UserID == "" {
				tag += "-dev"
			}
			switch r % 5 {
			case 4:
				edits = append(edits, tagEdit(im.OpRemoveTags, id, tag))
				model[k].tags = slices.DeleteFunc(model[k].tags, func(s string) bool { return s == tag })
			default:
				edits = append(edits, tagEdit(im.OpAddTags, id, tag))
				if !slices.Contains(model[k].tags, tag) {
					model[k].tags = append(model[k].tags, tag)
				}
			}
		}
		edits = append(edits, tagEdit(im.OpAddTags, "shared", fmt.Sprintf("w%02d", g)))
		errs, err := f.s.ApplyEdits(f.ctx, testApp, edits, im.EditLimits{})
		if err != nil {
			return err
		}
		for i, e := range errs {
			if e != nil {
				return fmt.Errorf("worker %d round %d edit %+v: %v", g, r, edits[i], e)
			}
		}
		// Read your writes through the narrow reads while other workers
		// write and the store folds: every account is the worker's own.
		as, err := f.s.ReadAttrs(f.ctx, testApp, ids)
		if err != nil {
			return err
		}
		ts, err := f.s.ReadTags(f.ctx, testApp, ids)
		if err != nil {
			return err
		}
		for k, id := range ids {
			if !as[k].Found || as[k].Attrs != model[k].attrs || !ts[k].Found || !slices.Equal(ts[k].Tags, model[k].tags) {
				return fmt.Errorf("worker %d round %d: %s reads %+v %+v, want %q %q", g, r, id, as[k], ts[k], model[k].attrs, model[k].tags)
			}
		}
	}
	for k, id := range ids {
		expect(id, model[k].attrs, model[k].tags)
	}
	return nil
}

func (h harness) testReopen(t *testing.T) {
	f := h.fresh(t)
	app := im.App{SDKAppID: testApp, SecretKey: "k", Admins: []string{"admin"}, CallbackURL: "https://cb", CreatedAt: 7}
	if err := f.s.PutApp(f.ctx, app); err != nil {
		t.Fatalf("PutApp: %v", err)
	}
	f.putSchema(testApp, userSchema)
	f.importIDs(testApp, "a", "b", "c")
	f.device(testApp, "d")
	f.mustEdit(testApp, setAttrs("a", attrs(0, "f", 2, "vip")), tagEdit(im.OpAddTags, "a", "t1", "t0"),
		tagEdit(im.OpAddTags, "b", "t1"), setAttrs("d", attrs(3, "gold")), tagEdit(im.OpAddTags, "d", "dt"))
	if err := f.s.Kick(f.ctx, testApp, "b", 99); err != nil {
		t.Fatalf("Kick: %v", err)
	}
	e := f.importIDs(testApp, "e")[0] // the highest ordinal, deleted before closing
	if _, err := f.s.DeleteAccounts(f.ctx, testApp, []string{"c", "e"}); err != nil {
		t.Fatalf("DeleteAccounts: %v", err)
	}
	before := f.scan(testApp)

	f.reopen()
	after := f.scan(testApp)
	if len(after) != len(before) {
		t.Fatalf("after reopen %d accounts, before %d", len(after), len(before))
	}
	for i := range before {
		b, a := before[i], after[i]
		if b.Account != a.Account || b.Attrs != a.Attrs || !slices.Equal(b.Tags, a.Tags) {
			t.Errorf("after reopen %+v, before %+v", a, b)
		}
	}
	if got, err := f.s.App(f.ctx, testApp); err != nil || !sameApp(got, app) {
		t.Errorf("App after reopen = %+v, %v", got, err)
	}
	if s, err := f.s.AttrSchema(f.ctx, testApp); err != nil || s != userSchema {
		t.Errorf("AttrSchema after reopen = %+v, %v", s, err)
	}
	if next := f.importIDs(testApp, "f")[0]; next.Ordinal <= e.Ordinal {
		t.Errorf("after reopen new ordinal %d, want > %d (never reused)", next.Ordinal, e.Ordinal)
	}
	// The tag registry survived: t1 is still bound to UserIDs, dt to devices.
	codes := f.edits(testApp, im.EditLimits{TagsPerApp: 3},
		tagEdit(im.OpAddTags, "d", "t1"), tagEdit(im.OpAddTags, "f", "dt"), tagEdit(im.OpAddTags, "f", "new"))
	if !slices.Equal(codes, []int{im.CodeAccountTypeBound, im.CodeAccountTypeBound, im.CodeTooManyTags}) {
		t.Errorf("edits after reopen: codes %v", codes)
	}
}
