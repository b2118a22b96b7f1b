package audience

import (
	"cmp"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

// intersect returns a new bitmap, the intersection of bms (at least one).
// It starts from the two smallest sets, so that intermediate results stay
// small, and intersects those two with and2.
func intersect(bms []*roaring.Bitmap) *roaring.Bitmap {
	if len(bms) == 1 {
		return bms[0].Clone()
	}
	slices.SortFunc(bms, func(p, q *roaring.Bitmap) int {
		return cmp.Compare(p.GetCardinality(), q.GetCardinality())
	})
	res := and2(bms[0], bms[1])
	for _, bm := range bms[2:] {
		if res.IsEmpty() {
			break
		}
		res.And(bm)
	}
	return res
}

// and2 returns a new bitmap, s ∩ t, for |s| ≤ |t|.
//
// roaring intersects two array containers (chunks holding fewer than 4096
// of 65536 values, as a tag held by a few percent of accounts) with a
// branchy merge of several ns a value: two such tags over 10M accounts take
// about 2.4 ms. When both sets are mostly array containers of similar size,
// and2 instead spreads t into a flat bitset (DenseSize words, allocated per
// call: 1.25 MB at 10M ordinals) and probes it with every value of s,
// branch-free: about 0.85 ms (BenchmarkAnd2). Otherwise (a tiny s, which
// roaring gallops through, or bitmap containers, which it intersects word by
// word) it leaves the work to roaring.
func and2(s, t *roaring.Bitmap) *roaring.Bitmap {
	if !denseWins(s, t) {
		return roaring.And(s, t)
	}
	return andDense(s, t)
}

// denseWins reports whether andDense beats roaring.And: s is not tiny, t is
// not far larger (galloping), the scratch bitset is small next to s, and
// both hold most values in array containers.
func denseWins(s, t *roaring.Bitmap) bool {
	cs, ct := s.GetCardinality(), t.GetCardinality()
	if cs < 4096 || ct > 64*cs || t.DenseSize() > 32*cs {
		return false
	}
	ss, ts := s.Stats(), t.Stats()
	return 2*ss.ArrayContainerValues >= cs && 2*ts.ArrayContainerValues >= ct
}

// andDense computes s ∩ t by probing a flat bitset of t.
func andDense(s, t *roaring.Bitmap) *roaring.Bitmap {
	res := roaring.New()
	if t.IsEmpty() {
		return res
	}
	dense := make([]uint64, t.DenseSize())
	t.WriteDenseTo(dense)
	buf := make([]uint32, 4096)
	it := s.ManyIterator()
	for n := it.NextMany(buf); n > 0; n = it.NextMany(buf) {
		k, past := 0, false
		for _, v := range buf[:n] {
			w := int(v >> 6)
			if w >= len(dense) {
				past = true // values ascend: the rest are beyond t too
				break
			}
			buf[k] = v
			k += int(dense[w] >> (v & 63) & 1)
		}
		res.AddMany(buf[:k])
		if past {
			break
		}
	}
	return res
}
