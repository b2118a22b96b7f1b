package audience

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"timd/internal/im"
)

// seqd numbers a batch of changes as a store would: each app's Seq goes
// on from pos.
func seqd(changes []im.Change, pos *uint64) []im.Change {
	for i := range changes {
		*pos++
		changes[i].Seq = *pos
	}
	return changes
}

// TestSnapshotRoundTrip writes a snapshot of a randomly edited index of two
// apps, reads it back, installs it into a fresh Index and compares every
// set, the dictionary, conditions and the positions with the model.
func TestSnapshotRoundTrip(t *testing.T) {
	for _, seed := range seeds() {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			m1, m2 := newModel(7, seed), newModel(8, seed+1)
			x := New()
			var p1, p2 uint64
			for range 30 {
				x.Apply(seqd(m1.batch(1+m1.rnd.IntN(200)), &p1))
				x.Apply(seqd(m2.batch(1+m2.rnd.IntN(50)), &p2))
			}
			var buf bytes.Buffer
			if _, err := x.Snapshot("store-a").WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			// Writes after the snapshot do not reach it.
			x.Apply(seqd(m1.batch(10), new(uint64)))
			s, err := ReadSnapshot(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if s.StoreID != "store-a" || !slices.Equal(s.Apps(), []uint64{7, 8}) {
				t.Fatalf("store %q apps %v", s.StoreID, s.Apps())
			}
			if pos, _ := s.Position(7); pos != p1 {
				t.Fatalf("position of app 7 = %d, want %d", pos, p1)
			}
			y := New()
			y.Install(s, 7)
			y.Install(s, 8)
			if y.Position(8) != p2 {
				t.Fatalf("installed position %d, want %d", y.Position(8), p2)
			}
			checkIndex(t, y, m2, seed)
			checkConditions(t, y, m2, 50, seed)
			// The installed copy keeps working: apply the model's next edits.
			y.Apply(m2.batch(300))
			checkIndex(t, y, m2, seed)
			checkConditions(t, y, m2, 50, seed)
		})
	}
}

// TestSnapshotIsolated checks that a snapshot is not changed by later
// writes to the index, nor the index by installing the snapshot elsewhere.
func TestSnapshotIsolated(t *testing.T) {
	m := newModel(1, 5)
	x := New()
	x.Apply(m.batch(500))
	s := x.Snapshot("s")
	before, _ := s.Position(1)
	x.Apply(seqd(m.batch(500), new(uint64)))
	var b1, b2 bytes.Buffer
	if _, err := s.WriteTo(&b1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteTo(&b2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
		t.Fatal("two writes of one snapshot differ")
	}
	if p, _ := s.Position(1); p != before {
		t.Fatalf("snapshot position moved from %d to %d", before, p)
	}
	checkIndex(t, x, m, 5)
}

// TestReadSnapshotRejects checks that every kind of damage is refused with
// ErrSnapshot, never a panic or a half-loaded index.
func TestReadSnapshotRejects(t *testing.T) {
	m := newModel(3, 9)
	x := New()
	x.Apply(seqd(m.batch(400), new(uint64)))
	var buf bytes.Buffer
	if _, err := x.Snapshot("id").WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	mutate := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	cases := map[string][]byte{
		"empty":          nil,
		"magic":          mutate(func(b []byte) []byte { b[0] = 'X'; return b }),
		"version":        mutate(func(b []byte) []byte { b[8] = 99; return b }),
		"truncated":      good[:len(good)/2],
		"no checksum":    good[:len(good)-4],
		"trailing bytes": append(slices.Clone(good), 0),
		"checksum":       mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }),
	}
	for _, at := range []int{20, len(good) / 3, len(good) / 2, len(good) - 10} {
		cases[fmt.Sprintf("bit flip at %d", at)] = mutate(func(b []byte) []byte { b[at] ^= 0x10; return b })
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := ReadSnapshot(bytes.NewReader(b))
			if !errors.Is(err, ErrSnapshot) || s != nil {
				t.Fatalf("ReadSnapshot = %v, %v; want ErrSnapshot", s, err)
			}
		})
	}
}

// FuzzReadSnapshot checks that no input makes ReadSnapshot panic and that
// what it accepts can be written back identically.
func FuzzReadSnapshot(f *testing.F) {
	m := newModel(3, 11)
	x := New()
	x.Apply(seqd(m.batch(60), new(uint64)))
	var buf bytes.Buffer
	if _, err := x.Snapshot("id").WriteTo(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(snapMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ReadSnapshot(bytes.NewReader(b))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if _, err := s.WriteTo(&out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), b) {
			t.Fatal("accepted snapshot does not write back identically")
		}
	})
}

// TestRefresh checks that Refresh makes a stale copy equal to the model:
// the copy is taken, the model moves on, and the copy is refreshed with
// the ordinals changed since and their current state.
func TestRefresh(t *testing.T) {
	for _, seed := range seeds() {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			m := newModel(4, seed)
			x := New()
			x.Apply(m.batch(800))
			var buf bytes.Buffer
			if _, err := x.Snapshot("s").WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			changed := map[uint32]bool{}
			for _, c := range m.batch(600) {
				changed[c.Ordinal] = true
			}
			s, err := ReadSnapshot(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			y := New()
			y.Install(s, 4)
			var ords []uint32
			var profiles []im.Profile
			for o := range changed {
				ords = append(ords, o)
				if a, ok := m.accts[o]; ok {
					profiles = append(profiles, im.Profile{Account: im.Account{ID: a.id, Type: a.typ, Ordinal: o},
						Attrs: a.attrs, Tags: slices.Clone(a.tags)})
				}
			}
			slices.Sort(ords)
			y.Refresh(4, ords[:len(ords)/2], nil, 0) // a first, partial pass: deletions only
			y.Refresh(4, ords, profiles, 99)
			y.Refresh(4, ords, profiles, 98) // idempotent; the position never moves back
			if y.Position(4) != 99 {
				t.Fatalf("position %d, want 99", y.Position(4))
			}
			checkIndex(t, y, m, seed)
			checkConditions(t, y, m, 100, seed)
		})
	}
}

// TestSnapshotKeepsOwners checks that device ownership (Recipients)
// survives a snapshot, and that Refresh re-derives it from profiles.
func TestSnapshotKeepsOwners(t *testing.T) {
	const app = 7
	x := New()
	user := func(id string, ord uint32) im.Change {
		return im.Change{App: app, Op: im.ChangeUpsert, ID: id, Type: im.AcctUserID, Ordinal: ord}
	}
	dev := func(id, owner string, ord uint32) im.Change {
		return im.Change{App: app, Op: im.ChangeUpsert, ID: id, Type: im.AcctRegistrationID, Ordinal: ord, Owner: owner, NewTags: []string{"ios"}}
	}
	x.Apply([]im.Change{user("alice", 1), user("bob", 2), dev("a1", "alice", 3), dev("a2", "alice", 4), dev("b1", "bob", 5), dev("anon", "", 6)})
	var buf bytes.Buffer
	if _, err := x.Snapshot("s").WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	s, err := ReadSnapshot(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	y := New()
	y.Install(s, app)
	var schema im.AttrSchema
	recips := func(x *Index) []uint32 {
		aud, err := x.Evaluate(app, &schema, &im.Condition{TagsOr: []string{"ios"}}, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		return x.Recipients(app, aud).ToArray()
	}
	if got := recips(y); !slices.Equal(got, []uint32{1, 2, 6}) {
		t.Fatalf("recipients after load %v, want [1 2 6]", got)
	}
	// b1 changes hands to alice: a refresh from its profile re-derives it.
	y.Refresh(app, []uint32{5}, []im.Profile{{Account: im.Account{ID: "b1", Type: im.AcctRegistrationID, Ordinal: 5, Owner: "alice"},
		Tags: []string{"ios"}}}, 9)
	if got := recips(y); !slices.Equal(got, []uint32{1, 6}) {
		t.Fatalf("recipients after refresh %v, want [1 6]", got)
	}
}

// TestAdopt moves an app built in one Index into another: the target then
// answers from it at its position, the other apps of both stay, and the
// source no longer has it.
func TestAdopt(t *testing.T) {
	m := newModel(7, 1)
	side, live := New(), New()
	var pos, other uint64
	side.Apply(seqd(m.batch(300), &pos))
	live.Apply(seqd([]im.Change{{App: 7, Op: im.ChangeUpsert, ID: "stale", Ordinal: 99999, NewTags: []string{"old"}}}, new(uint64)))
	live.Apply(seqd([]im.Change{{App: 8, Op: im.ChangeUpsert, ID: "keep", Ordinal: 1}}, &other))
	if !live.Adopt(side, 7) {
		t.Fatal("Adopt found no app 7")
	}
	if live.Position(7) != pos || side.Position(7) != 0 || side.Count(7) != 0 {
		t.Fatalf("positions live %d side %d (count %d), want %d and 0", live.Position(7), side.Position(7), side.Count(7), pos)
	}
	if _, ok := live.Ordinal(7, "stale"); ok {
		t.Fatal("the replaced copy is still answering")
	}
	checkIndex(t, live, m, 1)
	if live.Count(8) != 1 {
		t.Fatal("another app of the target was touched")
	}
	if live.Adopt(side, 7) {
		t.Fatal("Adopt of an app the source no longer has reported true")
	}
}
