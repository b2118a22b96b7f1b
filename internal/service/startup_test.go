package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"timd/internal/audience"
	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/sqlite"
)

// snapStore is a real store in its own directory with n accounts and the
// property tests' schema, its changes feeding idx.
type snapStore struct {
	t      *testing.T
	dir    string
	st     *sqlite.Store
	idx    *audience.Index
	schema im.AttrSchema
	r      *rand.Rand
	n      int
}

func newSnapStore(t *testing.T, dir string, n int) *snapStore {
	t.Helper()
	s := seed(t)
	ss := &snapStore{t: t, dir: dir, n: n, r: rand.New(rand.NewPCG(s, s^0x5bd1e995))}
	ss.open()
	for i := 0; i < 4; i++ {
		ss.schema[i] = im.AttrSlot{Name: fmt.Sprint("a", i)}
	}
	ctx := context.Background()
	if err := ss.st.PutApp(ctx, im.App{SDKAppID: propApp, SecretKey: "k", Admins: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	if err := ss.st.PutAttrSchema(ctx, propApp, ss.schema); err != nil {
		t.Fatal(err)
	}
	in := make([]im.AccountInput, n)
	for i := range in {
		in[i] = im.AccountInput{UserID: fmt.Sprint("u", i)}
	}
	if _, err := ss.st.ImportAccounts(ctx, propApp, in); err != nil {
		t.Fatal(err)
	}
	return ss
}

func (ss *snapStore) open() {
	ss.t.Helper()
	st, err := sqlite.Open(context.Background(), ss.dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		ss.t.Fatal(err)
	}
	ss.st = st
	ss.t.Cleanup(func() { st.Close() })
	ss.idx = audience.New()
	st.SetChangeSink(ss.idx)
}

func (ss *snapStore) close() {
	ss.t.Helper()
	if err := ss.st.Close(); err != nil {
		ss.t.Fatal(err)
	}
}

// churn applies rounds of random edits, deletes and re-imports.
func (ss *snapStore) churn(rounds int) {
	ss.t.Helper()
	ctx := context.Background()
	for range rounds {
		edits := make([]im.Edit, 20)
		for i := range edits {
			edits[i] = randomEdit(ss.r, ss.n)
		}
		if _, err := ss.st.ApplyEdits(ctx, propApp, edits, im.EditLimits{}); err != nil {
			ss.t.Fatal(err)
		}
		ids := []string{fmt.Sprint("u", ss.r.IntN(ss.n)), fmt.Sprint("u", ss.r.IntN(ss.n))}
		if _, err := ss.st.DeleteAccounts(ctx, propApp, ids); err != nil {
			ss.t.Fatal(err)
		}
		if _, err := ss.st.ImportAccounts(ctx, propApp, []im.AccountInput{{UserID: ids[0]}}); err != nil {
			ss.t.Fatal(err)
		}
	}
}

func (ss *snapStore) src(idx *audience.Index) service.IndexSource {
	return service.IndexSource{Store: ss.st, Changes: ss.st, Index: idx, Snapshot: filepath.Join(ss.dir, "index.snap")}
}

func (ss *snapStore) save() {
	ss.t.Helper()
	if _, err := service.SaveSnapshot(context.Background(), ss.src(ss.idx), nil); err != nil {
		ss.t.Fatal(err)
	}
}

// load loads a fresh index as a restart would and checks it against a
// brute-force scan of the store and its position against the store's.
func (ss *snapStore) load() (service.LoadReport, *audience.Index) {
	ss.t.Helper()
	idx := audience.New()
	rep, err := service.LoadIndex(context.Background(), ss.src(idx))
	if err != nil {
		ss.t.Fatal(err)
	}
	compareConditions(ss.t, ss.st, idx, &ss.schema, ss.r, 25)
	checkSet(ss.t, ss.st, idx, &ss.schema, nil)
	pos, err := ss.st.ChangePosition(context.Background(), propApp)
	if err != nil || idx.Position(propApp) != pos {
		ss.t.Fatalf("index at position %d, store at %d (%v)", idx.Position(propApp), pos, err)
	}
	for _, id := range []string{"u0", "u1", fmt.Sprint("u", ss.n-1)} {
		_, inStore := ss.profile(id)
		_, inIndex := idx.Ordinal(propApp, id)
		if inStore != inIndex {
			ss.t.Fatalf("%s: in store %v, in index %v", id, inStore, inIndex)
		}
	}
	return rep, idx
}

func (ss *snapStore) profile(id string) (im.Profile, bool) {
	m, err := ss.st.Profiles(context.Background(), propApp, []string{id})
	if err != nil {
		ss.t.Fatal(err)
	}
	p, ok := m[id]
	return p, ok
}

func wantReport(t *testing.T, rep service.LoadReport, loaded, rebuilt int, replayed bool) {
	t.Helper()
	if rep.Loaded != loaded || rep.Rebuilt != rebuilt || (rep.Replayed > 0) != replayed {
		t.Fatalf("report %+v: want loaded %d, rebuilt %d, replayed %v", rep, loaded, rebuilt, replayed)
	}
}

// TestLoadIndexSnapshotThenReplay: no snapshot → rebuild; a snapshot that
// is current → load; a stale one → load and replay the changes after it.
// The index equals the store each time.
func TestLoadIndexSnapshotThenReplay(t *testing.T) {
	ss := newSnapStore(t, t.TempDir(), 400)
	ss.churn(10)
	rep, _ := ss.load()
	wantReport(t, rep, 0, 1, false)
	if !errors.Is(rep.SnapshotErr, os.ErrNotExist) {
		t.Fatalf("SnapshotErr %v, want not-exist", rep.SnapshotErr)
	}
	ss.save()
	rep, _ = ss.load()
	wantReport(t, rep, 1, 0, false)
	ss.churn(15) // stale now
	rep, _ = ss.load()
	wantReport(t, rep, 1, 0, true)

	// Across a real restart: the replay survives reopening the store.
	ss.close()
	ss.open()
	rep, _ = ss.load()
	wantReport(t, rep, 1, 0, true)
}

// TestLoadIndexCorruptSnapshot: a damaged or foreign snapshot is refused
// and the index is rebuilt from the store.
func TestLoadIndexCorruptSnapshot(t *testing.T) {
	ss := newSnapStore(t, t.TempDir(), 300)
	ss.churn(5)
	ss.save()
	path := filepath.Join(ss.dir, "index.snap")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"bit flip":  func() []byte { b := append([]byte(nil), good...); b[len(b)/2] ^= 4; return b }(),
		"truncated": good[:len(good)-9],
		"empty":     {},
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			ss.t = t
			rep, _ := ss.load()
			wantReport(t, rep, 0, 1, false)
			if !errors.Is(rep.SnapshotErr, audience.ErrSnapshot) {
				t.Fatalf("SnapshotErr %v, want ErrSnapshot", rep.SnapshotErr)
			}
		})
	}
	ss.t = t
	// A snapshot of another store.
	other := newSnapStore(t, t.TempDir(), 300)
	other.save()
	b, err := os.ReadFile(filepath.Join(other.dir, "index.snap"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, _ := ss.load()
	wantReport(t, rep, 0, 1, false)
}

// TestLoadIndexStaleBeyondReplay: a snapshot whose change log was trimmed
// by a newer snapshot, one whose position is beyond the store's (a store
// restored from an older copy), and one with more changes since than a
// replay should take are rebuilt instead.
func TestLoadIndexStaleBeyondReplay(t *testing.T) {
	ss := newSnapStore(t, t.TempDir(), 300)
	path := filepath.Join(ss.dir, "index.snap")
	ss.churn(3)
	ss.save()
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ss.churn(3)
	ss.save() // trims the log up to its own, newer position
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, _ := ss.load()
	wantReport(t, rep, 0, 1, false)

	// Position beyond the store: copy the store, move on, snapshot, and
	// put that snapshot next to the copy.
	ss.close()
	copyDir := t.TempDir()
	for _, name := range []string{sqlite.FileName} {
		b, err := os.ReadFile(filepath.Join(ss.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(copyDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ss.open()
	rep, _ = ss.load() // a new index for the reopened store
	ss.churn(3)
	ss.idx = audience.New()
	ss.st.SetChangeSink(ss.idx)
	if _, err := service.LoadIndex(context.Background(), ss.src(ss.idx)); err != nil {
		t.Fatal(err)
	}
	ss.save()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := &snapStore{t: t, dir: copyDir, r: ss.r, n: ss.n, schema: ss.schema}
	cp.open()
	if err := os.WriteFile(filepath.Join(copyDir, "index.snap"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, _ = cp.load()
	wantReport(t, rep, 0, 1, false)

	// Many more changes than accounts in the snapshot: rebuild.
	in := make([]im.AccountInput, 3000)
	for i := range in {
		in[i] = im.AccountInput{UserID: fmt.Sprint("new", i)}
	}
	if _, err := ss.st.ImportAccounts(context.Background(), propApp, in); err != nil {
		t.Fatal(err)
	}
	rep, _ = ss.load()
	wantReport(t, rep, 0, 1, false)
}
