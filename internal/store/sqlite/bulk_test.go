package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"timd/internal/im"
)

func bulkStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	schema := im.AttrSchema{{Name: "city"}, {Name: "sex"}, {Name: "dev", Type: im.AcctRegistrationID}}
	if err := s.PutAttrSchema(context.Background(), 1, schema); err != nil {
		t.Fatal(err)
	}
	return s
}

type recSink struct{ changes []im.Change }

func (r *recSink) Apply(c []im.Change) { r.changes = append(r.changes, c...) }

// TestBulkLoad checks the bulk path against the per-request paths: the
// same profiles, tag registry, limits, type binding and change feed, and
// that loading again changes nothing.
func TestBulkLoad(t *testing.T) {
	ctx := context.Background()
	s := bulkStore(t)
	rec := &recSink{}
	s.SetChangeSink(rec)
	// An existing account the overlay holds, one it does not, and a
	// RegistrationID that binds tag "devtag" to type 1.
	if _, err := s.ImportAccounts(ctx, 1, []im.AccountInput{{UserID: "old1", Nick: "O"}, {UserID: "old2"}}); err != nil {
		t.Fatal(err)
	}
	s.mustEdit(t, im.Edit{Account: "old1", Op: im.OpAddTags, Tags: []string{"a"}})
	if _, err := s.RegisterDevice(ctx, 1, im.Device{RegistrationID: "R"}, im.DeviceLimits{}); err != nil {
		t.Fatal(err)
	}
	s.mustEdit(t, im.Edit{Account: "R", Op: im.OpAddTags, Tags: []string{"devtag"}})
	rec.changes = nil
	before, err := s.Profiles(ctx, 1, []string{"old1", "old2"})
	if err != nil {
		t.Fatal(err)
	}

	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprint("m", i)
	}
	in := []im.BulkAccount{
		{UserID: "new1", Nick: "N", FaceURL: "F", Attrs: im.AttrValues{0: "sz"}, Tags: []string{"a", "b", "a"}},
		{UserID: "old1", Attrs: im.AttrValues{1: "f"}, Tags: []string{"c"}},
		{UserID: "old2", Nick: "two"},
		{UserID: "bad1", Attrs: im.AttrValues{2: "x"}},    // 90035: slot bound to RegistrationIDs
		{UserID: "bad2", Tags: []string{"devtag"}},        // 90035: tag bound to RegistrationIDs
		{UserID: "bad3", Tags: many},                      // 90032: over 100 tags
		{UserID: "new1", Tags: []string{"d"}, Nick: "N2"}, // the same id again sees the first
		{UserID: "new2"},
	}
	errs, err := s.BulkLoad(ctx, 1, in, im.EditLimits{})
	if err != nil {
		t.Fatal(err)
	}
	codes := make([]int, len(errs))
	for i, e := range errs {
		codes[i] = im.CodeOf(e)
	}
	if want := []int{0, 0, 0, 90035, 90035, 90032, 0, 0}; !slices.Equal(codes, want) {
		t.Fatalf("codes %v, want %v", codes, want)
	}
	got, err := s.Profiles(ctx, 1, []string{"new1", "old1", "old2", "bad1", "bad2", "bad3", "new2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("accounts %v: failed lines must create nothing", got)
	}
	n1 := got["new1"]
	if n1.Account.Nick != "N2" || n1.Account.FaceURL != "F" || n1.Attrs != (im.AttrValues{0: "sz"}) || !slices.Equal(n1.Tags, []string{"a", "b", "d"}) {
		t.Fatalf("new1 = %+v", n1)
	}
	if o := got["old1"]; o.Account.Nick != "O" || o.Attrs != (im.AttrValues{1: "f"}) || !slices.Equal(o.Tags, []string{"a", "c"}) {
		t.Fatalf("old1 = %+v", o)
	}
	if o := got["old2"]; o.Account.Nick != "two" {
		t.Fatalf("old2 = %+v", o)
	}
	// The change feed says the same as the store, in order, with positions.
	state := map[uint32]im.Profile{}
	for _, p := range before {
		state[p.Account.Ordinal] = p
	}
	for i, c := range rec.changes {
		if c.Seq == 0 || (i > 0 && c.Seq != rec.changes[i-1].Seq+1) {
			t.Fatalf("change %d has Seq %d", i, c.Seq)
		}
		if p := state[c.Ordinal]; p.Attrs != c.OldAttrs || !slices.Equal(p.Tags, c.OldTags) {
			t.Fatalf("change %d does not start from the previous state", i)
		}
		state[c.Ordinal] = im.Profile{Attrs: c.NewAttrs, Tags: c.NewTags}
	}
	for _, id := range []string{"new1", "old1", "new2"} {
		p := got[id]
		if st := state[p.Account.Ordinal]; st.Attrs != p.Attrs || !slices.Equal(st.Tags, p.Tags) {
			t.Fatalf("%s: feed %+v, store %+v", id, st, p)
		}
	}
	// The registry counts what the accounts carry: releasing tags through
	// the per-request path drops them to zero.
	if codes := s.mustEditCodes(t, im.Edit{Account: "new1", Op: im.OpClearTags}, im.Edit{Account: "old1", Op: im.OpClearTags}); !slices.Equal(codes, []int{0, 0}) {
		t.Fatal(codes)
	}
	var n int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM tags WHERE app = 1`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("tags left: %d, %v; want only devtag", n, err)
	}
	// Loading the same lines again changes nothing.
	rec.changes = nil
	if _, err := s.BulkLoad(ctx, 1, in[:3], im.EditLimits{}); err != nil {
		t.Fatal(err)
	}
	rec.changes = nil
	if _, err := s.BulkLoad(ctx, 1, in[:3], im.EditLimits{}); err != nil {
		t.Fatal(err)
	}
	if len(rec.changes) != 0 {
		t.Fatalf("a repeated load changed %d accounts", len(rec.changes))
	}
}

// TestBulkLoadAppTagLimit checks the per-app distinct tag limit.
func TestBulkLoadAppTagLimit(t *testing.T) {
	s := bulkStore(t)
	errs, err := s.BulkLoad(context.Background(), 1, []im.BulkAccount{
		{UserID: "a", Tags: []string{"t1", "t2"}},
		{UserID: "b", Tags: []string{"t3"}},
		{UserID: "c", Tags: []string{"t1"}},
	}, im.EditLimits{TagsPerApp: 2})
	if err != nil {
		t.Fatal(err)
	}
	if c := []int{im.CodeOf(errs[0]), im.CodeOf(errs[1]), im.CodeOf(errs[2])}; !slices.Equal(c, []int{0, 90032, 0}) {
		t.Fatalf("codes %v", c)
	}
}

func (s *Store) mustEdit(t *testing.T, edits ...im.Edit) {
	t.Helper()
	for i, c := range s.mustEditCodes(t, edits...) {
		if c != 0 {
			t.Fatalf("edit %d: %d", i, c)
		}
	}
}

func (s *Store) mustEditCodes(t *testing.T, edits ...im.Edit) []int {
	t.Helper()
	errs, err := s.ApplyEdits(context.Background(), 1, edits, im.EditLimits{})
	if err != nil {
		t.Fatal(err)
	}
	codes := make([]int, len(errs))
	for i, e := range errs {
		codes[i] = im.CodeOf(e)
	}
	return codes
}

// TestBulkModeLoad loads 1,234 accounts (the 500-, 20- and 1-row inserts)
// into a store opened with Config.Bulk, whose writer does not fsync each
// commit, and checks that Close leaves an empty WAL and a store that opens
// normally with every account and its attributes and tags.
func TestBulkModeLoad(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenConfig(ctx, dir, nil, Config{Bulk: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutAttrSchema(ctx, 1, im.AttrSchema{{Name: "city"}}); err != nil {
		t.Fatal(err)
	}
	var sync int
	if err := s.w.do(ctx, 1, func(w *wtx) ([]im.Change, error) {
		return nil, w.queryRow(`PRAGMA synchronous`).Scan(&sync)
	}); err != nil {
		t.Fatal(err)
	}
	if sync != 1 {
		t.Errorf("bulk writer has synchronous=%d, want NORMAL (1)", sync)
	}
	const n = 1234
	in := make([]im.BulkAccount, n)
	for i := range in {
		in[i] = im.BulkAccount{UserID: fmt.Sprint("u", i), Nick: fmt.Sprint("n", i), Attrs: im.AttrValues{0: fmt.Sprint("c", i%3)},
			Tags: []string{fmt.Sprint("t", i%10)}}
	}
	if errs, err := s.BulkLoad(ctx, 1, in, im.EditLimits{}); err != nil || slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
		t.Fatal(err, errs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, FileName+"-wal")); err == nil && fi.Size() != 0 {
		t.Errorf("WAL has %d bytes after a bulk-mode Close, want 0 (checkpointed)", fi.Size())
	}
	s, err = Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids := []string{"u0", "u499", "u500", "u999", "u1000", "u1219", "u1220", "u1233"}
	got, err := s.Profiles(ctx, 1, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ids) {
		t.Fatalf("found %d of %d accounts", len(got), len(ids))
	}
	for id, p := range got {
		var i int
		fmt.Sscanf(id, "u%d", &i)
		if p.Account.Nick != fmt.Sprint("n", i) || p.Attrs[0] != fmt.Sprint("c", i%3) || !slices.Equal(p.Tags, []string{fmt.Sprint("t", i%10)}) {
			t.Errorf("account %s: %+v", id, p)
		}
	}
	var count int
	if err := s.rdb.QueryRow(`SELECT count(*), count(DISTINCT ordinal) FROM accounts WHERE app = 1`).Scan(&count, new(int)); err != nil || count != n {
		t.Fatalf("%d accounts in the store (%v), want %d", count, err, n)
	}
}
