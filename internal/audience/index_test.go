package audience

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/im"
)

var seedFlag = flag.Uint64("seed", 0, "run the randomized tests with this seed only")

// seeds returns the seeds of a randomized test: -seed when set, else three
// fixed ones and one from the clock.
func seeds() []uint64 {
	if *seedFlag != 0 {
		return []uint64{*seedFlag}
	}
	return []uint64{1, 2, 3, uint64(time.Now().UnixNano())}
}

// acct is one account of the model.
type acct struct {
	id    string
	typ   im.AcctType
	attrs im.AttrValues
	tags  []string
}

// model is the brute-force reference: every live account by ordinal. It
// produces the im.Change records a store would emit for each edit.
type model struct {
	app    uint64
	schema *im.AttrSchema
	accts  map[uint32]*acct
	pick   []uint32          // live ordinals the generator may edit or delete
	gone   map[uint32]string // deleted ordinals and their IDs
	next   uint32
	rnd    *rand.Rand
}

// Attribute domains of the model: slot → values. Slot 3 is bound to
// RegistrationIDs; slot 9 is undefined.
var modelDomains = [im.MaxAttrSlots][]string{
	{"f", "m", "x"},
	{"sz", "bj", "sh", "gz", "hz"},
	{"1", "2", "3", "4"},
	{"ios", "android"},
	{"a", "b"},
	{"v1", "v2", "v3"},
	{"en", "zh", "ja", "ko"},
	{"p", "q"},
	{"y", "n"},
	nil,
}

func modelSchema() *im.AttrSchema {
	var s im.AttrSchema
	for i, d := range modelDomains {
		if d != nil {
			s[i] = im.AttrSlot{Name: fmt.Sprintf("attr%d", i)}
		}
	}
	s[3].Type = im.AcctRegistrationID
	return &s
}

// modelTags is the tag pool: larger than im.MaxTagsPerUser, so that an
// account can hold the limit of distinct tags.
var modelTags = func() []string {
	tags := make([]string, im.MaxTagsPerUser+30)
	for i := range tags {
		tags[i] = fmt.Sprintf("tag%02d", i)
	}
	return tags
}()

func newModel(app uint64, seed uint64) *model {
	return &model{
		app:    app,
		schema: modelSchema(),
		accts:  map[uint32]*acct{},
		gone:   map[uint32]string{},
		next:   1,
		rnd:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

func (m *model) randTags(n int) []string {
	var tags []string
	for range n {
		t := modelTags[m.rnd.IntN(len(modelTags))]
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	return tags
}

// tagCount draws how many tags an account gets: mostly a handful, but one
// account in eight gets from 17 to the limit of im.MaxTagsPerUser, so that
// tagSet's map form (over 16 tags) runs as often as its list form.
func (m *model) tagCount() int {
	if m.rnd.IntN(8) == 0 {
		return 17 + m.rnd.IntN(im.MaxTagsPerUser-16)
	}
	return m.rnd.IntN(7)
}

// exactTags returns n distinct tags of the pool.
func (m *model) exactTags(n int) []string {
	perm := m.rnd.Perm(len(modelTags))[:n]
	tags := make([]string, n)
	for i, p := range perm {
		tags[i] = modelTags[p]
	}
	return tags
}

func (m *model) randAttrs(typ im.AcctType) im.AttrValues {
	var v im.AttrValues
	for s, d := range modelDomains {
		if d != nil && m.schema[s].Type == typ && m.rnd.IntN(10) < 7 {
			v[s] = d[m.rnd.IntN(len(d))]
		}
	}
	return v
}

// create adds an account and returns its change.
func (m *model) create() im.Change {
	typ := im.AcctUserID
	id := fmt.Sprintf("user%06d", m.next)
	if m.rnd.IntN(5) == 0 {
		typ, id = im.AcctRegistrationID, fmt.Sprintf("REG-%06d", m.next)
	}
	a := &acct{id: id, typ: typ, attrs: m.randAttrs(typ), tags: m.exactTags(m.tagCount())}
	ord := m.next
	m.next++
	m.accts[ord] = a
	m.pick = append(m.pick, ord)
	return im.Change{App: m.app, Op: im.ChangeUpsert, ID: a.id, Type: a.typ, Ordinal: ord,
		NewAttrs: a.attrs, NewTags: slices.Clone(a.tags)}
}

// update edits a random account's attributes and tags the ways the
// timpush commands do and returns its change.
func (m *model) update() im.Change {
	ord := m.pick[m.rnd.IntN(len(m.pick))]
	a := m.accts[ord]
	c := im.Change{App: m.app, Op: im.ChangeUpsert, ID: a.id, Type: a.typ, Ordinal: ord,
		OldAttrs: a.attrs, OldTags: slices.Clone(a.tags)}
	switch m.rnd.IntN(6) {
	case 0: // set_attr
		for s, v := range m.randAttrs(a.typ) {
			if v != "" {
				a.attrs[s] = v
			}
		}
	case 1: // remove_attr
		a.attrs[m.rnd.IntN(im.MaxAttrSlots)] = ""
	case 2: // add_tag, up to the per-user limit
		for _, t := range m.randTags(1 + m.rnd.IntN(3)) {
			if !slices.Contains(a.tags, t) && len(a.tags) < im.MaxTagsPerUser {
				a.tags = append(a.tags, t)
			}
		}
	case 3: // add_tag with Replace
		a.tags = m.exactTags(m.tagCount())
	case 4: // remove_tag: some of the account's own tags and some others
		drop := m.randTags(3)
		for _, t := range a.tags {
			if m.rnd.IntN(4) == 0 {
				drop = append(drop, t)
			}
		}
		a.tags = slices.DeleteFunc(slices.Clone(a.tags), func(t string) bool { return slices.Contains(drop, t) })
	case 5: // clear_all_tags
		a.tags = nil
	}
	c.NewAttrs, c.NewTags = a.attrs, slices.Clone(a.tags)
	return c
}

// remove deletes a random account and returns its change.
func (m *model) remove() im.Change {
	i := m.rnd.IntN(len(m.pick))
	ord := m.pick[i]
	m.pick[i] = m.pick[len(m.pick)-1]
	m.pick = m.pick[:len(m.pick)-1]
	a := m.accts[ord]
	delete(m.accts, ord)
	m.gone[ord] = a.id
	return im.Change{App: m.app, Op: im.ChangeDelete, ID: a.id, Type: a.typ, Ordinal: ord,
		OldAttrs: a.attrs, OldTags: slices.Clone(a.tags)}
}

// batch returns up to n random changes: only creates while the model is
// small, then 50% creates, 30% updates and 20% deletes.
func (m *model) batch(n int) []im.Change {
	changes := make([]im.Change, 0, n)
	for range n {
		r := m.rnd.IntN(10)
		switch {
		case len(m.pick) < 50 || r < 5:
			changes = append(changes, m.create())
		case r < 8:
			changes = append(changes, m.update())
		default:
			changes = append(changes, m.remove())
		}
	}
	return changes
}

func (a *acct) hasAll(tags []string) bool {
	for _, t := range tags {
		if !slices.Contains(a.tags, t) {
			return false
		}
	}
	return true
}

func (a *acct) hasAny(tags []string) bool {
	return slices.ContainsFunc(tags, func(t string) bool { return slices.Contains(a.tags, t) })
}

// matches is the brute-force reading of a valid Condition.
func (m *model) matches(a *acct, c *im.Condition, opt Options) bool {
	if c.Empty() {
		return true
	}
	if !a.hasAll(c.TagsAnd) || (len(c.TagsOr) > 0 && !a.hasAny(c.TagsOr)) {
		return false
	}
	if len(c.TagsNot) > 0 {
		if opt.TagsNotAll && a.hasAll(c.TagsNot) || !opt.TagsNotAll && a.hasAny(c.TagsNot) {
			return false
		}
	}
	for name, v := range c.AttrsAnd {
		if a.attrs[m.schema.Slot(name)] != v {
			return false
		}
	}
	if len(c.AttrsOr) == 0 {
		return true
	}
	for name, v := range c.AttrsOr {
		if a.attrs[m.schema.Slot(name)] == v {
			return true
		}
	}
	return false
}

func (m *model) eval(c *im.Condition, opt Options) []uint32 {
	ords := []uint32{}
	for ord, a := range m.accts {
		if m.matches(a, c, opt) {
			ords = append(ords, ord)
		}
	}
	slices.Sort(ords)
	return ords
}

// randTagList draws n tags from the pool plus two tags nobody has,
// avoiding those in not.
func (m *model) randTagList(n int, not []string) []string {
	var tags []string
	for range n {
		t := "absent" + fmt.Sprint(m.rnd.IntN(2))
		if m.rnd.IntN(8) != 0 {
			t = modelTags[m.rnd.IntN(len(modelTags))]
		}
		if !slices.Contains(not, t) {
			tags = append(tags, t)
		}
	}
	return tags
}

func (m *model) randAttrMap(n int) map[string]string {
	attrs := map[string]string{}
	for range n {
		s := m.rnd.IntN(im.MaxAttrSlots - 1)
		v := "absent"
		if m.rnd.IntN(8) != 0 {
			v = modelDomains[s][m.rnd.IntN(len(modelDomains[s]))]
		}
		attrs[m.schema[s].Name] = v
	}
	return attrs
}

// Condition shapes: which keys a Condition carries. Tags and attributes
// never mix (90030), so the valid shapes are nil, the empty object, every
// non-empty subset of TagsAnd/TagsOr/TagsNot and every non-empty subset of
// AttrsAnd/AttrsOr.
const (
	shapeTagsAnd = 1 << iota
	shapeTagsOr
	shapeTagsNot
	shapeAttrsAnd
	shapeAttrsOr
	shapeNil // a request without Condition
)

var conditionShapes = []int{
	shapeNil, 0,
	shapeTagsAnd, shapeTagsOr, shapeTagsNot,
	shapeTagsAnd | shapeTagsOr, shapeTagsAnd | shapeTagsNot, shapeTagsOr | shapeTagsNot,
	shapeTagsAnd | shapeTagsOr | shapeTagsNot,
	shapeAttrsAnd, shapeAttrsOr, shapeAttrsAnd | shapeAttrsOr,
}

// randCondition returns a valid Condition of a shape drawn uniformly from
// conditionShapes, with 1 to 10 (the limit) values per key.
func (m *model) randCondition() *im.Condition {
	return m.conditionOf(conditionShapes[m.rnd.IntN(len(conditionShapes))])
}

func (m *model) conditionOf(shape int) *im.Condition {
	size := func() int {
		if m.rnd.IntN(10) == 0 {
			return 5 + m.rnd.IntN(6)
		}
		return 1 + m.rnd.IntN(3)
	}
	if shape == shapeNil {
		return nil
	}
	c := &im.Condition{}
	if shape&shapeTagsAnd != 0 {
		c.TagsAnd = m.randTagList(size(), nil)
	}
	if shape&shapeTagsOr != 0 {
		// A tag in both TagsAnd and TagsOr is 90027; keep at least one.
		for len(c.TagsOr) == 0 {
			c.TagsOr = m.randTagList(size(), c.TagsAnd)
		}
	}
	if shape&shapeTagsNot != 0 {
		c.TagsNot = m.randTagList(size(), nil)
	}
	if shape&shapeAttrsAnd != 0 {
		c.AttrsAnd = m.randAttrMap(size())
	}
	if shape&shapeAttrsOr != 0 {
		c.AttrsOr = m.randAttrMap(size())
	}
	return c
}

// checkConditions evaluates n random conditions in both TagsNot modes
// against the model.
func checkConditions(t *testing.T, x *Index, m *model, n int, seed uint64) {
	t.Helper()
	for i := range n {
		c := m.randCondition()
		if i < len(conditionShapes) {
			c = m.conditionOf(conditionShapes[i]) // every shape at least once
		}
		for _, opt := range []Options{{TagsNotAll: true}, {TagsNotAll: false}} {
			bm, err := x.Evaluate(m.app, m.schema, c, opt)
			if err != nil {
				t.Fatalf("seed %d, condition %d %+v: Evaluate: %v", seed, i, c, err)
			}
			if got, want := bm.ToArray(), m.eval(c, opt); !slices.Equal(got, want) {
				t.Fatalf("seed %d, condition %d %+v, %+v:\nEvaluate = %v\nmodel    = %v", seed, i, c, opt, got, want)
			}
		}
	}
}

// checkIndex compares every set and the dictionary of x with the model.
func checkIndex(t *testing.T, x *Index, m *model, seed uint64) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
	}
	want := struct {
		all    []uint32
		byType [2][]uint32
		attrs  [im.MaxAttrSlots]map[string][]uint32
		tags   map[string][]uint32
	}{tags: map[string][]uint32{}}
	for s := range want.attrs {
		want.attrs[s] = map[string][]uint32{}
	}
	for ord, a := range m.accts {
		want.all = append(want.all, ord)
		want.byType[a.typ] = append(want.byType[a.typ], ord)
		for s, v := range a.attrs {
			if v != "" {
				want.attrs[s][v] = append(want.attrs[s][v], ord)
			}
		}
		for _, tag := range a.tags {
			want.tags[tag] = append(want.tags[tag], ord)
		}
	}
	if got := x.Count(m.app); got != uint64(len(m.accts)) {
		fail("Count = %d, want %d", got, len(m.accts))
	}
	a := x.app(m.app, false)
	a.mu.RLock()
	defer a.mu.RUnlock()
	sameSet(t, seed, "all", a.all, want.all)
	for typ := range a.byType {
		sameSet(t, seed, fmt.Sprintf("byType[%d]", typ), a.byType[typ], want.byType[typ])
	}
	for s := range a.attrs {
		sameSets(t, seed, fmt.Sprintf("attrs[%d]", s), a.attrs[s], want.attrs[s])
	}
	sameSets(t, seed, "tags", a.tags, want.tags)
	if a.dict.live != len(m.accts) {
		fail("dictionary holds %d IDs, want %d", a.dict.live, len(m.accts))
	}
	for ord, acc := range m.accts {
		if id, ok := a.dict.get(ord); !ok || id != acc.id {
			fail("ID(%d) = %q, %v; want %q", ord, id, ok, acc.id)
		}
		if got, ok := a.dict.find(acc.id, nil); !ok || got != ord {
			fail("Ordinal(%q) = %d, %v; want %d", acc.id, got, ok, ord)
		}
	}
	for ord, id := range m.gone {
		if got, ok := a.dict.get(ord); ok {
			fail("ID(deleted %d) = %q", ord, got)
		}
		if got, ok := a.dict.find(id, nil); ok {
			fail("Ordinal(deleted %q) = %d", id, got)
		}
	}
}

func sameSet(t *testing.T, seed uint64, what string, bm *roaring.Bitmap, want []uint32) {
	t.Helper()
	slices.Sort(want)
	if got := bm.ToArray(); !slices.Equal(got, want) {
		t.Fatalf("seed %d: %s = %v, want %v", seed, what, got, want)
	}
}

func sameSets(t *testing.T, seed uint64, what string, got map[string]*roaring.Bitmap, want map[string][]uint32) {
	t.Helper()
	keys := func(m any) []string {
		var ks []string
		switch m := m.(type) {
		case map[string]*roaring.Bitmap:
			for k := range m {
				ks = append(ks, k)
			}
		case map[string][]uint32:
			for k := range m {
				ks = append(ks, k)
			}
		}
		sort.Strings(ks)
		return ks
	}
	if g, w := keys(got), keys(want); !slices.Equal(g, w) {
		t.Fatalf("seed %d: %s keys = %v, want %v (empty sets must be dropped)", seed, what, g, w)
	}
	for k, bm := range got {
		sameSet(t, seed, what+"["+k+"]", bm, want[k])
	}
}

// TestIndexMatchesModel feeds random edits to the index and a brute-force
// model and compares every set, the dictionary, and hundreds of random
// conditions in both TagsNot modes.
func TestIndexMatchesModel(t *testing.T) {
	for _, seed := range seeds() {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			m := newModel(42, seed)
			x := New()
			for round := range 80 {
				x.Apply(m.batch(1 + m.rnd.IntN(300)))
				if round%20 == 19 {
					checkIndex(t, x, m, seed)
					checkConditions(t, x, m, 30, seed)
				}
			}
			if len(m.accts) < 1000 || len(m.gone) < 100 {
				t.Fatalf("seed %d: model has %d live and %d deleted accounts; want more", seed, len(m.accts), len(m.gone))
			}
			checkIndex(t, x, m, seed)
			checkConditions(t, x, m, 400, seed)
		})
	}
}

// TestApplyIdempotent checks that replaying a change, and changes of
// several apps in one batch, leave the index consistent.
func TestApplyIdempotent(t *testing.T) {
	seed := seeds()[0]
	m1, m2 := newModel(1, seed), newModel(2, seed+1)
	x := New()
	for range 20 {
		b1, b2 := m1.batch(50), m2.batch(50)
		mixed := slices.Concat(b1[:25], b2[:25], b1[25:], b2[25:])
		x.Apply(mixed)
		x.Apply(b2[len(b2)-1:]) // replay one change
	}
	checkIndex(t, x, m1, seed)
	checkIndex(t, x, m2, seed)
	x.Reset(1)
	if x.Count(1) != 0 || x.MemoryBytes(1) > 4096 {
		t.Fatalf("after Reset: Count = %d, MemoryBytes = %d", x.Count(1), x.MemoryBytes(1))
	}
	checkIndex(t, x, m2, seed)
	for _, c := range []uint64{x.Count(3), x.MemoryBytes(3)} {
		if c != 0 {
			t.Fatalf("unknown app reports %d", c)
		}
	}
	if _, ok := x.Ordinal(3, "user000001"); ok {
		t.Fatal("Ordinal of unknown app found")
	}
}

// TestDictionary exercises the ID dictionary directly: growth, deletion
// with backward shift, re-pointing an ordinal, duplicate IDs.
func TestDictionary(t *testing.T) {
	for _, seed := range seeds() {
		rnd := rand.New(rand.NewPCG(seed, 7))
		d := newDict()
		want := map[uint32]string{}
		for i := range 20000 {
			ord := uint32(rnd.IntN(5000))
			switch rnd.IntN(3) {
			case 0, 1:
				id := fmt.Sprintf("id-%d", rnd.IntN(6000))
				if _, dup := d.find(id, nil); dup {
					continue // IDs are unique per app, except across types
				}
				d.put(ord, id)
				want[ord] = id
			case 2:
				d.del(ord)
				delete(want, ord)
			}
			if i%1000 == 0 || i == 19999 {
				if d.live != len(want) {
					t.Fatalf("seed %d step %d: live = %d, want %d", seed, i, d.live, len(want))
				}
				for o, id := range want {
					if got, ok := d.find(id, nil); !ok || got != o {
						t.Fatalf("seed %d step %d: find(%q) = %d, %v; want %d", seed, i, id, got, ok, o)
					}
					if got, _ := d.get(o); got != id {
						t.Fatalf("seed %d step %d: get(%d) = %q, want %q", seed, i, o, got, id)
					}
				}
			}
		}
	}
	d := newDict()
	d.put(1, "same")
	d.put(2, "same")
	if o, _ := d.find("same", func(o uint32) bool { return o == 2 }); o != 2 {
		t.Fatalf("find with prefer = %d, want 2", o)
	}
	if o, _ := d.find("same", func(uint32) bool { return false }); o != 1 && o != 2 {
		t.Fatalf("find without preferred match = %d", o)
	}
}

// TestOrdinalPrefersRegistrationID covers a UserID and a RegistrationID
// sharing one string.
func TestOrdinalPrefersRegistrationID(t *testing.T) {
	x := New()
	x.Apply([]im.Change{
		{App: 1, Op: im.ChangeUpsert, ID: "dup", Type: im.AcctUserID, Ordinal: 1},
		{App: 1, Op: im.ChangeUpsert, ID: "dup", Type: im.AcctRegistrationID, Ordinal: 2},
	})
	if o, ok := x.Ordinal(1, "dup"); !ok || o != 2 {
		t.Fatalf("Ordinal = %d, %v; want 2", o, ok)
	}
	if ids := x.IDs(1, []uint32{2, 3, 1}); !slices.Equal(ids, []string{"dup", "", "dup"}) {
		t.Fatalf("IDs = %q", ids)
	}
}

// TestConcurrentEvaluate runs queries while one goroutine applies
// batches. Two accounts swap the tags "swapX" and "swapY" in two-change
// batches, so a reader that saw half a batch would count two holders of
// one tag and none of the other. Run it with -race.
func TestConcurrentEvaluate(t *testing.T) {
	seed := seeds()[len(seeds())-1]
	m := newModel(9, seed)
	x := New()
	x.Apply(m.batch(500))
	swapA, swapB := m.next, m.next+1
	m.next += 2
	m.accts[swapA] = &acct{id: "swapA", tags: []string{"swapX"}}
	m.accts[swapB] = &acct{id: "swapB", tags: []string{"swapY"}}
	x.Apply([]im.Change{
		{App: m.app, Op: im.ChangeUpsert, ID: "swapA", Ordinal: swapA, NewTags: []string{"swapX"}},
		{App: m.app, Op: im.ChangeUpsert, ID: "swapB", Ordinal: swapB, NewTags: []string{"swapY"}},
	})

	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(seed, uint64(r)))
			for !done.Load() {
				if err := readOnce(x, m.app, m.schema, rnd); err != nil {
					errs <- fmt.Errorf("seed %d reader %d: %w", seed, r, err)
					return
				}
			}
		}()
	}
	// The writer owns m; readers only use Index methods and m.app/m.schema.
	for i := range 300 {
		x.Apply(m.batch(1 + m.rnd.IntN(50)))
		a, b := m.accts[swapA], m.accts[swapB]
		c1 := im.Change{App: m.app, Op: im.ChangeUpsert, ID: a.id, Ordinal: swapA, OldTags: a.tags}
		c2 := im.Change{App: m.app, Op: im.ChangeUpsert, ID: b.id, Ordinal: swapB, OldTags: b.tags}
		a.tags, b.tags = b.tags, a.tags
		c1.NewTags, c2.NewTags = a.tags, b.tags
		x.Apply([]im.Change{c1, c2})
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkIndex(t, x, m, seed)
	checkConditions(t, x, m, 100, seed)
}

// readOnce runs one random query and checks the swap invariant.
func readOnce(x *Index, app uint64, schema *im.AttrSchema, rnd *rand.Rand) error {
	for _, tag := range []string{"swapX", "swapY"} {
		bm, err := x.Evaluate(app, schema, &im.Condition{TagsOr: []string{tag}}, DefaultOptions())
		if err != nil {
			return err
		}
		if n := bm.GetCardinality(); n != 1 {
			return fmt.Errorf("%s has %d holders, want 1: torn batch", tag, n)
		}
	}
	c := &im.Condition{TagsAnd: []string{modelTags[rnd.IntN(len(modelTags))]},
		TagsNot: []string{modelTags[rnd.IntN(len(modelTags))]}}
	if rnd.IntN(2) == 0 {
		c = &im.Condition{AttrsOr: map[string]string{"attr0": "f", "attr1": "sz"}}
	}
	bm, err := x.Evaluate(app, schema, c, Options{TagsNotAll: rnd.IntN(2) == 0})
	if err != nil {
		return err
	}
	ords := bm.ToArray()
	if len(ords) > 0 {
		o := ords[rnd.IntN(len(ords))]
		if id, ok := x.ID(app, o); ok {
			if got, ok := x.Ordinal(app, id); ok && got != o {
				return fmt.Errorf("Ordinal(ID(%d)=%q) = %d", o, id, got)
			}
		}
		x.IDs(app, ords[:min(len(ords), 100)])
	}
	x.Count(app)
	x.MemoryBytes(app)
	return nil
}

// TestEmptySetsDropped checks that a set is removed from its map when its
// last holder leaves it, by update or by delete.
func TestEmptySetsDropped(t *testing.T) {
	x := New()
	var attrs im.AttrValues
	attrs[2] = "rare"
	x.Apply([]im.Change{
		{App: 1, Op: im.ChangeUpsert, ID: "u1", Ordinal: 1, NewAttrs: attrs, NewTags: []string{"a", "b"}},
		{App: 1, Op: im.ChangeUpsert, ID: "u2", Ordinal: 2, NewTags: []string{"b"}},
	})
	x.Apply([]im.Change{
		{App: 1, Op: im.ChangeUpsert, ID: "u1", Ordinal: 1, OldAttrs: attrs, OldTags: []string{"a", "b"}, NewTags: []string{"b"}},
		{App: 1, Op: im.ChangeDelete, ID: "u2", Ordinal: 2, OldTags: []string{"b"}},
	})
	a := x.app(1, false)
	if len(a.attrs[2]) != 0 || len(a.tags) != 1 || a.tags["b"] == nil {
		t.Fatalf("attrs[2] = %v, tags = %v; want {}, {b}", a.attrs[2], a.tags)
	}
	x.Apply([]im.Change{{App: 1, Op: im.ChangeDelete, ID: "u1", Ordinal: 1, OldTags: []string{"b"}}})
	if len(a.tags) != 0 || !a.all.IsEmpty() || a.dict.live != 0 {
		t.Fatalf("after deleting everyone: tags = %v, all = %v, ids = %d", a.tags, a.all, a.dict.live)
	}
}
