package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"timd/internal/im"
)

// TestParseNarrow checks the decoding of a narrow read's answer: lines in
// any order, a RegistrationID winning over a UserID of the same id
// whichever comes first, and malformed answers refused rather than
// misread.
func TestParseNarrow(t *testing.T) {
	hits := make([]narrowHit, 4)
	out := "2 70 0 [\"u\"]\n0 10 0 \n2 71 1 [\"r\",\"x y\"]\n3 81 1 [\"r\"]\n3 80 0 [\"u\"]"
	if err := parseNarrow(out, hits); err != nil {
		t.Fatal(err)
	}
	want := []narrowHit{
		{found: true, typ: im.AcctUserID, key: 10, col: ""},
		{},
		{found: true, typ: im.AcctRegistrationID, key: 71, col: `["r","x y"]`},
		{found: true, typ: im.AcctRegistrationID, key: 81, col: `["r"]`},
	}
	for i := range want {
		if hits[i] != want[i] {
			t.Errorf("hit %d = %+v, want %+v", i, hits[i], want[i])
		}
	}
	if err := parseNarrow("", make([]narrowHit, 2)); err != nil {
		t.Errorf("empty answer: %v", err)
	}
	for _, bad := range []string{"4 1 0 []", "-1 1 0 []", "0 1 0", "x 1 0 []", "0 1 []"} {
		if err := parseNarrow(bad, make([]narrowHit, 4)); err == nil {
			t.Errorf("parseNarrow(%q) accepted", bad)
		}
	}
}

// TestNarrowReadPlan checks that the narrow reads look each id up through
// the (app, id, type) index instead of scanning the app's accounts.
func TestNarrowReadPlan(t *testing.T) {
	s := openOpt(t, defaultOptions())
	for _, q := range []string{attrsOfQuery, tagsOfQuery, attrsOfPlainQuery, tagsOfPlainQuery} {
		got := queryPlan(t, s, q, 1, `["61"]`)
		if !strings.Contains(got, "SEARCH a USING INDEX") || strings.Contains(got, "SCAN a") {
			t.Errorf("plan of %q: %s", q, got)
		}
	}
}

// TestNarrowReadsSeeOverlay checks that the narrow reads answer from the
// write-behind overlay when the accounts row lags behind it (nothing is
// folded while the store is open), and from the row once the store was
// folded and reopened.
func TestNarrowReadsSeeOverlay(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := open(ctx, dir, nil, noFold())
	if err != nil {
		t.Fatal(err)
	}
	ids := importN(t, s, 3)
	check := func(when string) {
		t.Helper()
		as, err := s.ReadAttrs(ctx, 1, ids)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := s.ReadTags(ctx, 1, ids)
		if err != nil {
			t.Fatal(err)
		}
		if !as[0].Found || as[0].Attrs[1] != "v" || len(ts[0].Tags) != 0 ||
			!ts[1].Found || len(ts[1].Tags) != 2 || ts[1].Tags[1] != "t2" || as[1].Attrs != (im.AttrValues{}) ||
			!as[2].Found || !ts[2].Found || as[2].Attrs != (im.AttrValues{}) || ts[2].Tags != nil {
			t.Fatalf("%s: attrs %+v, tags %+v", when, as, ts)
		}
	}
	errs, err := s.ApplyEdits(ctx, 1, []im.Edit{
		{Account: ids[0], Op: im.OpSetAttrs, Attrs: im.AttrValues{1: "v"}},
		{Account: ids[1], Op: im.OpAddTags, Tags: []string{"t1", "t2"}},
	}, im.EditLimits{})
	if err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("ApplyEdits: %v %v", errs, err)
	}
	var attrs, tags sql.NullString
	if err := s.rdb.QueryRow(`SELECT attrs, tags FROM accounts WHERE app = 1 AND id = ?`, ids[0]).Scan(&attrs, &tags); err != nil || attrs.Valid {
		t.Fatalf("row of %s before any fold: attrs %v, %v; want NULL (the overlay holds the change)", ids[0], attrs, err)
	}
	check("unfolded")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = open(ctx, dir, nil, defaultOptions()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := s.ov.len(); n != 0 {
		t.Fatalf("overlay after a folded close and reopen holds %d accounts", n)
	}
	check("folded")
}

// TestPlainIDs: the plain form is taken only for ids that JSON carries as
// they are, and then decodes to exactly those ids.
func TestPlainIDs(t *testing.T) {
	for _, c := range []struct {
		ids  []string
		want bool
	}{
		{[]string{"u1", "user_00042", "a b~!#$%&'()*+,-./:;<=>?@[]^`{|}"}, true},
		{[]string{}, true},
		{[]string{"ok", "quote\""}, false},
		{[]string{"back\\slash"}, false},
		{[]string{"ctl\x1f"}, false},
		{[]string{"del\x7f"}, false},
		{[]string{"ünï"}, false},
		{[]string{"bad\xff"}, false},
		{[]string{"nul\x00"}, false},
	} {
		got, ok := plainIDs(c.ids)
		if ok != c.want {
			t.Errorf("plainIDs(%q): ok %v, want %v", c.ids, ok, c.want)
			continue
		}
		if !ok {
			continue
		}
		var back []string
		if err := json.Unmarshal([]byte(got), &back); err != nil || !slices.Equal(back, c.ids) && len(c.ids) > 0 {
			t.Errorf("plainIDs(%q) = %s: decodes to %q, %v", c.ids, got, back, err)
		}
	}
}
