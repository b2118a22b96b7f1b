package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"timd/internal/im"
)

// testChangeLog checks im.ChangeLog: every backend numbers each app's
// changes 1, 2, 3, ... without gaps in commit order, keeps the position
// across a reopen, and can say which ordinals changed after a position.
func (h harness) testChangeLog(t *testing.T) {
	f := h.fresh(t)
	cl, ok := f.s.(im.ChangeLog)
	if !ok {
		t.Fatalf("%T does not implement im.ChangeLog", f.s)
	}
	id, err := cl.StoreID(f.ctx)
	if err != nil || id == "" {
		t.Fatalf("StoreID = %q, %v", id, err)
	}
	f.putSchema(testApp, userSchema)
	if pos, err := cl.ChangePosition(f.ctx, testApp); err != nil || pos != 0 {
		t.Fatalf("position of an app without changes = %d, %v", pos, err)
	}

	// A mix of writes, including ones that emit nothing or fail.
	ids := make([]string, 1200)
	for i := range ids {
		ids[i] = fmt.Sprint("u", i)
	}
	f.importIDs(testApp, ids...)
	f.importIDs(otherApp, "x", "y")
	f.device(testApp, "dev")
	f.mustEdit(testApp, setAttrs("u1", attrs(0, "f")), tagEdit(im.OpAddTags, "u2", "t"))
	f.edits(testApp, im.EditLimits{}, tagEdit(im.OpAddTags, "ghost", "t"), setAttrs("u1", attrs(0, "f")))
	if _, err := f.s.DeleteAccounts(f.ctx, testApp, []string{"u3", "nobody"}); err != nil {
		t.Fatal(err)
	}
	changes := f.rec.Take()
	seqs := map[uint64]uint64{}
	for i, c := range changes {
		if c.Seq != seqs[c.App]+1 {
			t.Fatalf("change %d (%s) has Seq %d after %d", i, changeString(c), c.Seq, seqs[c.App])
		}
		seqs[c.App] = c.Seq
	}
	if seqs[testApp] != 1200+1+2+1 || seqs[otherApp] != 2 {
		t.Fatalf("positions %v after 1204 and 2 changes", seqs)
	}
	f.reopen()
	for app, want := range seqs {
		if pos, err := cl2(f).ChangePosition(f.ctx, app); err != nil || pos != want {
			t.Fatalf("app %d: position after reopen %d, %v; want %d", app, pos, err, want)
		}
	}
	if id2, _ := cl2(f).StoreID(f.ctx); id2 != id {
		t.Fatalf("StoreID changed from %q to %q on reopen", id, id2)
	}
	f.mustEdit(testApp, tagEdit(im.OpAddTags, "u4", "t"))
	if c := f.rec.Take(); len(c) != 1 || c[0].Seq != seqs[testApp]+1 {
		t.Fatalf("first change after reopen: %+v, want Seq %d", c, seqs[testApp]+1)
	}
	seqs[testApp]++
	changes = append(changes, im.Change{App: testApp, Seq: seqs[testApp], Ordinal: 5})
	checkChangedSince(t, f, changes, seqs[testApp])

	// ProfilesByOrdinal reads what Profiles reads, skipping the deleted.
	var ords []uint32
	for o := uint32(1); o <= 1203; o++ {
		ords = append(ords, o)
	}
	var got []im.Profile
	if err := cl2(f).ProfilesByOrdinal(f.ctx, testApp, ords, func(p im.Profile) error {
		got = append(got, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	byID, err := f.s.Profiles(f.ctx, testApp, append(slices.Clone(ids), "dev"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(byID) {
		t.Fatalf("ProfilesByOrdinal found %d accounts, Profiles %d", len(got), len(byID))
	}
	for i, p := range got {
		if i > 0 && got[i-1].Account.Ordinal >= p.Account.Ordinal {
			t.Fatalf("ProfilesByOrdinal not ascending at %d", i)
		}
		if w := byID[p.Account.ID]; w.Account != p.Account || w.Attrs != p.Attrs || !slices.Equal(w.Tags, p.Tags) {
			t.Fatalf("ProfilesByOrdinal %+v, Profiles %+v", p, w)
		}
	}

	// Trimming forgets the log up to a position, and says so.
	cut := seqs[testApp] - 2
	if err := cl2(f).TrimChanges(f.ctx, testApp, cut); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cl2(f).ChangedSince(f.ctx, testApp, cut-1); !errors.Is(err, im.ErrChangesTrimmed) {
		t.Fatalf("ChangedSince before the trim: %v, want ErrChangesTrimmed", err)
	}
	got2, upTo, err := cl2(f).ChangedSince(f.ctx, testApp, cut)
	if err != nil || upTo != seqs[testApp] || !slices.Contains(got2, 5) {
		t.Fatalf("ChangedSince(%d) after the trim = %v, %d, %v", cut, got2, upTo, err)
	}
	// The other app is untouched by the trim.
	if o, _, err := cl2(f).ChangedSince(f.ctx, otherApp, 0); err != nil || len(o) != 2 {
		t.Fatalf("other app: %v, %v", o, err)
	}
}

func cl2(f *fixture) im.ChangeLog { return f.s.(im.ChangeLog) }

// checkChangedSince checks ChangedSince at every position: it returns at
// least the ordinals of the changes after it, no ordinal that never
// changed, and the current position.
func checkChangedSince(t *testing.T, f *fixture, changes []im.Change, pos uint64) {
	t.Helper()
	every := map[uint32]bool{}
	for _, c := range changes {
		if c.App == testApp {
			every[c.Ordinal] = true
		}
	}
	for after := uint64(0); after <= pos; after += max(1, pos/37) {
		got, upTo, err := cl2(f).ChangedSince(f.ctx, testApp, after)
		if err != nil || upTo != pos {
			t.Fatalf("ChangedSince(%d) = %d, %v; want position %d", after, upTo, err, pos)
		}
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("ChangedSince(%d) not ascending and unique", after)
		}
		for _, c := range changes {
			if c.App == testApp && c.Seq > after && !slices.Contains(got, c.Ordinal) {
				t.Fatalf("ChangedSince(%d) lacks ordinal %d of change %d", after, c.Ordinal, c.Seq)
			}
		}
		for _, o := range got {
			if !every[o] {
				t.Fatalf("ChangedSince(%d) names ordinal %d, which never changed", after, o)
			}
		}
	}
	if got, upTo, err := cl2(f).ChangedSince(f.ctx, testApp, pos); err != nil || len(got) != 0 || upTo != pos {
		t.Fatalf("ChangedSince(position) = %v, %d, %v; want nothing", got, upTo, err)
	}
	if _, _, err := cl2(f).ChangedSince(f.ctx, testApp, pos+1); !errors.Is(err, im.ErrPositionAhead) {
		t.Fatalf("ChangedSince(beyond) = %v, want ErrPositionAhead", err)
	}
}
