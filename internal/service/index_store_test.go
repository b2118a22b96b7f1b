package service_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/audience"
	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/sqlite"
)

var indexSeed = flag.Uint64("index.seed", 0, "seed for the index-vs-store property tests (0: from the clock)")

const propApp = 1400000009

// openIndexed opens a real SQLite store whose committed changes feed a real
// audience index, with n imported accounts and attribute slots named.
func openIndexed(t *testing.T, n int) (*sqlite.Store, *audience.Index, im.AttrSchema) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	idx := audience.New()
	st.SetChangeSink(idx)
	var schema im.AttrSchema
	for i := 0; i < 4; i++ {
		schema[i] = im.AttrSlot{Name: fmt.Sprint("a", i)}
	}
	if err := st.PutApp(ctx, im.App{SDKAppID: propApp, SecretKey: "k", Admins: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutAttrSchema(ctx, propApp, schema); err != nil {
		t.Fatal(err)
	}
	in := make([]im.AccountInput, n)
	for i := range in {
		in[i] = im.AccountInput{UserID: fmt.Sprint("u", i)}
	}
	if _, err := st.ImportAccounts(ctx, propApp, in); err != nil {
		t.Fatal(err)
	}
	return st, idx, schema
}

// randomEdit returns an edit of one of the six operations over small
// domains so that conditions match non-trivial sets.
func randomEdit(r *rand.Rand, n int) im.Edit {
	e := im.Edit{Account: fmt.Sprint("u", r.IntN(n)), Op: im.EditOp(1 + r.IntN(6))}
	switch e.Op {
	case im.OpSetAttrs:
		for s := 0; s < 4; s++ {
			if r.IntN(2) == 0 {
				e.Attrs[s] = fmt.Sprint("v", r.IntN(3))
			}
		}
	case im.OpRemoveAttrs:
		e.Slots = []int{r.IntN(4)}
	case im.OpAddTags, im.OpReplaceTags, im.OpRemoveTags:
		for k := r.IntN(4); k > 0; k-- {
			e.Tags = append(e.Tags, fmt.Sprint("t", r.IntN(8)))
		}
	}
	return e
}

// randomCondition returns a valid Condition over the same domains.
func randomCondition(r *rand.Rand) *im.Condition {
	c := &im.Condition{}
	tags := func() []string {
		var out []string
		for k := 1 + r.IntN(3); k > 0; k-- {
			out = append(out, fmt.Sprint("t", r.IntN(8)))
		}
		return out
	}
	attrs := func() map[string]string {
		m := map[string]string{}
		for k := 1 + r.IntN(2); k > 0; k-- {
			m[fmt.Sprint("a", r.IntN(4))] = fmt.Sprint("v", r.IntN(3))
		}
		return m
	}
	switch r.IntN(7) {
	case 0:
		return nil
	case 1:
		c.TagsAnd = tags()
	case 2:
		c.TagsOr = tags()
	case 3:
		c.TagsOr, c.TagsNot = tags(), tags()
	case 4:
		c.AttrsAnd = attrs()
	case 5:
		c.AttrsOr = attrs()
	default:
		c.AttrsAnd, c.AttrsOr = attrs(), attrs()
	}
	for _, a := range c.TagsAnd {
		for i, o := range c.TagsOr {
			if a == o {
				c.TagsOr = append(c.TagsOr[:i], c.TagsOr[i+1:]...)
				break
			}
		}
	}
	return c
}

// bruteForce evaluates c by scanning every profile in the store.
func bruteForce(t *testing.T, st *sqlite.Store, schema *im.AttrSchema, c *im.Condition, notAll bool) *roaring.Bitmap {
	t.Helper()
	out := roaring.New()
	err := st.ScanProfiles(context.Background(), propApp, func(p im.Profile) error {
		if matches(p, schema, c, notAll) {
			out.Add(p.Account.Ordinal)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func matches(p im.Profile, schema *im.AttrSchema, c *im.Condition, notAll bool) bool {
	if c.Empty() {
		return true
	}
	has := map[string]bool{}
	for _, tg := range p.Tags {
		has[tg] = true
	}
	for _, tg := range c.TagsAnd {
		if !has[tg] {
			return false
		}
	}
	if len(c.TagsOr) > 0 && !anyOf(c.TagsOr, has) {
		return false
	}
	if len(c.TagsNot) > 0 {
		excluded := anyOf(c.TagsNot, has)
		if notAll {
			excluded = allOf(c.TagsNot, has)
		}
		if excluded {
			return false
		}
	}
	for name, v := range c.AttrsAnd {
		if p.Attrs[schema.Slot(name)] != v {
			return false
		}
	}
	if len(c.AttrsOr) > 0 {
		ok := false
		for name, v := range c.AttrsOr {
			ok = ok || p.Attrs[schema.Slot(name)] == v
		}
		if !ok {
			return false
		}
	}
	return true
}

func anyOf(tags []string, has map[string]bool) bool {
	for _, t := range tags {
		if has[t] {
			return true
		}
	}
	return false
}

func allOf(tags []string, has map[string]bool) bool {
	for _, t := range tags {
		if !has[t] {
			return false
		}
	}
	return true
}

func seed(t *testing.T) uint64 {
	s := *indexSeed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -args -index.seed=%d)", s, s)
	return s
}

// TestIndexEqualsStoreScan applies random edits through the real store and
// checks, for random conditions in both TagsNot readings, that the index
// answer equals a brute-force scan of the store — before and after a
// restart that rebuilds the index from the store.
func TestIndexEqualsStoreScan(t *testing.T) {
	const n = 300
	s := seed(t)
	r := rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
	st, idx, schema := openIndexed(t, n)
	ctx := context.Background()
	for round := 0; round < 40; round++ {
		edits := make([]im.Edit, 25)
		for i := range edits {
			edits[i] = randomEdit(r, n)
		}
		if _, err := st.ApplyEdits(ctx, propApp, edits, im.EditLimits{}); err != nil {
			t.Fatal(err)
		}
		if round%10 == 9 { // delete and re-import a few accounts
			ids := []string{fmt.Sprint("u", r.IntN(n)), fmt.Sprint("u", r.IntN(n))}
			if _, err := st.DeleteAccounts(ctx, propApp, ids); err != nil {
				t.Fatal(err)
			}
			if _, err := st.ImportAccounts(ctx, propApp, []im.AccountInput{{UserID: ids[0]}}); err != nil {
				t.Fatal(err)
			}
		}
		compareConditions(t, st, idx, &schema, r, 20)
	}
	rebuilt := audience.New()
	if _, err := service.RebuildIndex(ctx, st, rebuilt); err != nil {
		t.Fatal(err)
	}
	compareConditions(t, st, rebuilt, &schema, r, 200)
}

func compareConditions(t *testing.T, st *sqlite.Store, idx *audience.Index, schema *im.AttrSchema, r *rand.Rand, k int) {
	t.Helper()
	for i := 0; i < k; i++ {
		c := randomCondition(r)
		for _, notAll := range []bool{true, false} {
			got, err := idx.Evaluate(propApp, schema, c, audience.Options{TagsNotAll: notAll})
			if err != nil {
				t.Fatalf("condition %+v: %v", c, err)
			}
			want := bruteForce(t, st, schema, c, notAll)
			if !got.Equals(want) {
				t.Fatalf("condition %+v (TagsNotAll=%t): index %v, store scan %v", c, notAll, got.ToArray(), want.ToArray())
			}
		}
	}
}

// TestIndexEqualsStoreAfterConcurrentWriters runs many writers at once
// through the real store and then checks every tag and attribute set of
// the index against the store.
func TestIndexEqualsStoreAfterConcurrentWriters(t *testing.T) {
	const n = 500
	s := seed(t)
	st, idx, schema := openIndexed(t, n)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(s, w))
			for round := 0; round < 30; round++ {
				edits := make([]im.Edit, 1+r.IntN(30))
				for i := range edits {
					edits[i] = randomEdit(r, n)
				}
				if _, err := st.ApplyEdits(ctx, propApp, edits, im.EditLimits{}); err != nil {
					t.Error(err)
					return
				}
			}
		}(uint64(w))
	}
	wg.Wait()
	for tg := 0; tg < 8; tg++ {
		c := &im.Condition{TagsOr: []string{fmt.Sprint("t", tg)}}
		checkSet(t, st, idx, &schema, c)
	}
	for a := 0; a < 4; a++ {
		for v := 0; v < 3; v++ {
			checkSet(t, st, idx, &schema, &im.Condition{AttrsAnd: map[string]string{fmt.Sprint("a", a): fmt.Sprint("v", v)}})
		}
	}
	checkSet(t, st, idx, &schema, nil)
}

func checkSet(t *testing.T, st *sqlite.Store, idx *audience.Index, schema *im.AttrSchema, c *im.Condition) {
	t.Helper()
	got, err := idx.Evaluate(propApp, schema, c, audience.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if want := bruteForce(t, st, schema, c, true); !got.Equals(want) {
		t.Fatalf("%+v: index has %d, store %d", c, got.GetCardinality(), want.GetCardinality())
	}
}
