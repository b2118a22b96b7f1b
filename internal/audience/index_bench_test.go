package audience

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/im"
)

// Benchmark data: 10 attributes over small domains, 5 distinct tags per
// account from a pool of 200, UserIDs "user%08d", ordinals 1..n, values
// drawn uniformly. Run with
//
//	go test -run='^$' -bench=. -benchtime=3x ./internal/audience/
//	TIMD_BENCH_10M=1 go test -run='^$' -bench=Evaluate10M -benchtime=20x ./internal/audience/

// benchAttrs names each slot and its domain size.
var benchAttrs = [im.MaxAttrSlots]struct {
	name string
	n    int
}{
	{"gender", 3}, {"city", 100}, {"tier", 5}, {"age", 8}, {"lang", 20},
	{"os", 4}, {"country", 50}, {"plan", 3}, {"model", 30}, {"channel", 12},
}

const benchTagsPerAccount, benchTagPool = 5, 200

var (
	benchSchema = func() *im.AttrSchema {
		var s im.AttrSchema
		for i, a := range benchAttrs {
			s[i].Name = a.name
		}
		return &s
	}()
	benchValues = func() (v [im.MaxAttrSlots][]string) {
		for i, a := range benchAttrs {
			for j := range a.n {
				v[i] = append(v[i], fmt.Sprintf("%s%03d", a.name, j))
			}
		}
		return v
	}()
	benchTags = func() (tags []string) {
		for i := range benchTagPool {
			tags = append(tags, fmt.Sprintf("tag%03d", i))
		}
		return tags
	}()
)

// benchConditions are the queries of BenchmarkEvaluate*. The first two are
// the two-clause targets.
var benchConditions = []struct {
	name string
	c    *im.Condition
}{
	{"TagsAnd2", &im.Condition{TagsAnd: []string{"tag007", "tag042"}}},
	{"AttrsAnd2", &im.Condition{AttrsAnd: map[string]string{"gender": "gender001", "city": "city017"}}},
	{"AttrsAnd2Dense", &im.Condition{AttrsAnd: map[string]string{"gender": "gender001", "tier": "tier002"}}},
	{"TagsOr3Not2", &im.Condition{TagsOr: []string{"tag001", "tag002", "tag003"}, TagsNot: []string{"tag004", "tag005"}}},
	{"AttrsOr3", &im.Condition{AttrsOr: map[string]string{"city": "city001", "country": "country002", "model": "model003"}}},
	{"All", nil},
}

// benchProfile draws one account's attributes and tags.
func benchProfile(rnd *rand.Rand) (im.AttrValues, []string) {
	var attrs im.AttrValues
	for i := range attrs {
		attrs[i] = benchValues[i][rnd.IntN(len(benchValues[i]))]
	}
	tags := make([]string, 0, benchTagsPerAccount)
	for len(tags) < benchTagsPerAccount {
		if t := benchTags[rnd.IntN(benchTagPool)]; !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	return attrs, tags
}

// benchChanges calls fn with batches of 10,000 upserts that create n
// accounts; the batch is reused.
func benchChanges(n int, fn func([]im.Change)) {
	rnd := rand.New(rand.NewPCG(1, 2))
	batch := make([]im.Change, 0, 10000)
	for i := 1; i <= n; i++ {
		attrs, tags := benchProfile(rnd)
		batch = append(batch, im.Change{App: 1, Op: im.ChangeUpsert, ID: fmt.Sprintf("user%08d", i),
			Ordinal: uint32(i), NewAttrs: attrs, NewTags: tags})
		if len(batch) == cap(batch) || i == n {
			fn(batch)
			batch = batch[:0]
		}
	}
}

var (
	benchMu      sync.Mutex
	benchIndexes = map[int]*Index{}
)

// benchIndex returns a shared index of n accounts, built once.
func benchIndex(n int) *Index {
	benchMu.Lock()
	defer benchMu.Unlock()
	if x := benchIndexes[n]; x != nil {
		return x
	}
	x := New()
	benchChanges(n, x.Apply)
	benchIndexes[n] = x
	return x
}

func benchEvaluate(b *testing.B, n int) {
	x := benchIndex(n)
	for _, bc := range benchConditions {
		b.Run(bc.name, func(b *testing.B) {
			var matches uint64
			for b.Loop() {
				bm, err := x.Evaluate(1, benchSchema, bc.c, DefaultOptions())
				if err != nil {
					b.Fatal(err)
				}
				matches = bm.GetCardinality()
			}
			b.ReportMetric(float64(matches), "matches")
		})
	}
}

// BenchmarkEvaluate evaluates conditions over 1M accounts.
func BenchmarkEvaluate(b *testing.B) {
	benchEvaluate(b, 1_000_000)
}

// BenchmarkEvaluate10M evaluates conditions over 10M accounts. It needs
// about 2 GiB and a minute to build; set TIMD_BENCH_10M=1 to run it.
func BenchmarkEvaluate10M(b *testing.B) {
	if os.Getenv("TIMD_BENCH_10M") != "1" {
		b.Skip("set TIMD_BENCH_10M=1 to run")
	}
	benchEvaluate(b, 10_000_000)
}

// benchRow is a profile of the naive baseline.
type benchRow struct {
	ord   uint32
	attrs im.AttrValues
	tags  []string
}

// BenchmarkNaiveScan is the baseline: the same conditions answered by a
// brute-force scan over 1M profiles held in a slice.
func BenchmarkNaiveScan(b *testing.B) {
	rows := make([]benchRow, 0, 1_000_000)
	benchChanges(1_000_000, func(batch []im.Change) {
		for _, c := range batch {
			rows = append(rows, benchRow{c.Ordinal, c.NewAttrs, c.NewTags})
		}
	})
	for _, bc := range benchConditions {
		b.Run(bc.name, func(b *testing.B) {
			match := naiveMatcher(benchSchema, bc.c, DefaultOptions())
			var out []uint32
			for b.Loop() {
				out = out[:0]
				for i := range rows {
					if match(&rows[i]) {
						out = append(out, rows[i].ord)
					}
				}
			}
			b.ReportMetric(float64(len(out)), "matches")
		})
	}
}

// naiveMatcher compiles c, resolving attribute names to slots once, into
// a predicate over one row.
func naiveMatcher(schema *im.AttrSchema, c *im.Condition, opt Options) func(*benchRow) bool {
	if c.Empty() {
		return func(*benchRow) bool { return true }
	}
	type pair struct {
		slot int
		v    string
	}
	resolve := func(m map[string]string) (ps []pair) {
		for name, v := range m {
			ps = append(ps, pair{schema.Slot(name), v})
		}
		return ps
	}
	and, or := resolve(c.AttrsAnd), resolve(c.AttrsOr)
	return func(r *benchRow) bool {
		a := acct{tags: r.tags}
		if !a.hasAll(c.TagsAnd) || len(c.TagsOr) > 0 && !a.hasAny(c.TagsOr) {
			return false
		}
		if len(c.TagsNot) > 0 && (opt.TagsNotAll && a.hasAll(c.TagsNot) || !opt.TagsNotAll && a.hasAny(c.TagsNot)) {
			return false
		}
		for _, p := range and {
			if r.attrs[p.slot] != p.v {
				return false
			}
		}
		for _, p := range or {
			if r.attrs[p.slot] == p.v {
				return true
			}
		}
		return len(or) == 0
	}
}

// BenchmarkBuild applies 1M new accounts of 10 attributes and 5 tags to an
// empty index and reports the index size per account, both as estimated by
// MemoryBytes and as the live-heap growth after GC.
func BenchmarkBuild(b *testing.B) {
	const n = 1_000_000
	var batches [][]im.Change
	benchChanges(n, func(batch []im.Change) { batches = append(batches, slices.Clone(batch)) })
	var est, heap float64
	for b.Loop() {
		b.StopTimer()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		x := New()
		for _, batch := range batches {
			x.Apply(batch)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		est = float64(x.MemoryBytes(1)) / n
		heap = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / n
		runtime.KeepAlive(x)
		b.StartTimer()
	}
	b.ReportMetric(est, "est-B/account")
	b.ReportMetric(heap, "heap-B/account")
}

// BenchmarkAnd2 compares roaring's intersection of two tags held by 2.5%
// of the accounts (array containers) with and2's flat-bitset probe, over
// 1M accounts and, with TIMD_BENCH_10M=1, over 10M.
func BenchmarkAnd2(b *testing.B) {
	sizes := []int{1_000_000}
	if os.Getenv("TIMD_BENCH_10M") == "1" {
		sizes = append(sizes, 10_000_000)
	}
	for _, n := range sizes {
		a := benchIndex(n).app(1, false)
		s, t := a.tags["tag007"], a.tags["tag042"]
		b.Run(fmt.Sprintf("%dM/roaring", n/1_000_000), func(b *testing.B) {
			for b.Loop() {
				roaring.And(s, t)
			}
		})
		b.Run(fmt.Sprintf("%dM/and2", n/1_000_000), func(b *testing.B) {
			for b.Loop() {
				and2(s, t)
			}
		})
	}
}
