package sqlite

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/bitmap"
)

// TestAddOrdinals checks the union and the count of new members against a
// plain set, for stored sets of runs, arrays and bitmaps, and additions
// unsorted, repeated and already present.
func TestAddOrdinals(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		want := map[uint32]bool{}
		var b []byte
		if round%4 != 0 { // round%4 == 0 starts from the empty set
			bm := roaring.New()
			switch round % 4 {
			case 1: // runs
				for s := uint32(r.IntN(1000)); s < 200_000; s += uint32(2 + r.IntN(50)) {
					bm.AddRange(uint64(s), uint64(s)+uint64(1+r.IntN(20)))
				}
			case 2: // sparse
				for range 500 {
					bm.Add(uint32(r.IntN(1 << 20)))
				}
			case 3: // dense
				for range 30_000 {
					bm.Add(uint32(r.IntN(60_000)))
				}
			}
			bm.RunOptimize()
			for _, v := range bm.ToArray() {
				want[v] = true
			}
			var err error
			if b, err = bm.ToBytes(); err != nil {
				t.Fatal(err)
			}
		}
		ords := make([]uint32, 1+r.IntN(300))
		for i := range ords {
			ords[i] = uint32(r.IntN(200_000))
		}
		ords = append(ords, ords[:len(ords)/3]...) // repeats
		var newCount int64
		for _, o := range ords {
			if !want[o] {
				want[o] = true
				newCount++
			}
		}
		out, n, err := addOrdinals(b, ords)
		if err != nil {
			t.Fatal(err)
		}
		if n != newCount {
			t.Fatalf("round %d: %d new, want %d", round, n, newCount)
		}
		got, err := bitmap.Decode(out)
		if err != nil {
			t.Fatal(err)
		}
		wantArr := make([]uint32, 0, len(want))
		for v := range want {
			wantArr = append(wantArr, v)
		}
		slices.Sort(wantArr)
		if !slices.Equal(got.ToArray(), wantArr) {
			t.Fatalf("round %d: union differs: %d members, want %d", round, got.GetCardinality(), len(wantArr))
		}
		if n == 0 && !slices.Equal(out, b) {
			t.Fatalf("round %d: nothing new, but the stored set was rewritten", round)
		}
	}
	// nothing to add leaves the stored set alone
	if out, n, err := addOrdinals([]byte("x"), nil); err != nil || n != 0 || string(out) != "x" {
		t.Fatalf("no ordinals: %q %d %v", out, n, err)
	}
	// a corrupt stored set is an error
	if _, _, err := addOrdinals([]byte{1, 2, 3}, []uint32{1}); err == nil {
		t.Fatal("corrupt stored set accepted")
	}
}
