package audience

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
)

// TestAnd2 checks and2 and its flat-bitset path against roaring.And on
// sets of many shapes: sparse and dense chunks, runs, disjoint ranges,
// one set reaching past the other.
func TestAnd2(t *testing.T) {
	for _, seed := range seeds() {
		rnd := rand.New(rand.NewPCG(seed, 3))
		randSet := func() *roaring.Bitmap {
			universe := uint32(1 + rnd.IntN(1<<20))
			lo := uint32(rnd.IntN(1 << 20))
			density := []float64{0.0005, 0.01, 0.03, 0.2}[rnd.IntN(4)]
			vals := make([]uint32, int(float64(universe)*density))
			for i := range vals {
				vals[i] = lo + rnd.Uint32N(universe)
			}
			slices.Sort(vals)
			bm := roaring.BitmapOf(vals...)
			if rnd.IntN(4) == 0 {
				bm.AddRange(uint64(lo), uint64(lo)+uint64(rnd.IntN(200000)))
			}
			if rnd.IntN(4) == 0 {
				bm.RunOptimize()
			}
			return bm
		}
		for i := range 30 {
			s, u := randSet(), randSet()
			if s.GetCardinality() > u.GetCardinality() {
				s, u = u, s
			}
			want := roaring.And(s, u)
			for name, got := range map[string]*roaring.Bitmap{
				"and2": and2(s, u), "andDense": andDense(s, u), "andDense swapped": andDense(u, s),
				"intersect": intersect([]*roaring.Bitmap{u, s, u}),
			} {
				if !got.Equals(want) {
					t.Fatalf("seed %d case %d: %s: %d values, want %d", seed, i, name, got.GetCardinality(), want.GetCardinality())
				}
			}
		}
		if got := andDense(roaring.BitmapOf(1, 2), roaring.New()); !got.IsEmpty() {
			t.Fatalf("andDense with empty = %v", got)
		}
	}
}

// TestDenseWins pins the choice of and2 for the shapes it is meant for.
func TestDenseWins(t *testing.T) {
	sparse := func(n, step uint32) *roaring.Bitmap {
		bm := roaring.New()
		for i := range n {
			bm.Add(i * step)
		}
		return bm
	}
	tests := []struct {
		s, t *roaring.Bitmap
		want bool
	}{
		{sparse(25000, 40), sparse(25000, 39), true},      // two tags of 2.5%
		{sparse(100, 40), sparse(25000, 39), false},       // tiny s: gallop
		{sparse(25000, 40), sparse(250000, 3), false},     // t in bitmap containers
		{sparse(5000, 19999), sparse(5000, 20000), false}, // scratch too big for s
	}
	for i, tt := range tests {
		if got := denseWins(tt.s, tt.t); got != tt.want {
			t.Errorf("case %d: denseWins = %v, want %v", i, got, tt.want)
		}
	}
}
