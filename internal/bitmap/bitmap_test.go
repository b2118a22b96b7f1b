package bitmap

import (
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
)

func TestDecode(t *testing.T) {
	want := roaring.BitmapOf(1, 5, 70000, 1<<31)
	b, err := want.ToBytes()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil || !got.Equals(want) {
		t.Fatalf("Decode = %v, %v", got, err)
	}
	if got, err := Decode(nil); err != nil || !got.IsEmpty() {
		t.Fatalf("Decode(nil) = %v, %v", got, err)
	}
	for _, bad := range [][]byte{{1}, {0x3b, 0x30, 0, 0, 9, 9, 9}, b[:len(b)-3]} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("Decode(%x) accepted corrupt input", bad)
		}
	}
}

// FuzzDecode feeds Decode arbitrary bytes, and also bytes read as a list
// of ordinals. Whatever it accepts must be a well-formed set that survives
// a round trip through ToBytes; a set built from the ordinals must decode
// to itself after serialization.
func FuzzDecode(f *testing.F) {
	b, _ := roaring.BitmapOf(1, 2, 3, 100000).ToBytes()
	f.Add(b)
	f.Add([]byte{})
	run := roaring.New()
	run.AddRange(10, 5000)
	run.RunOptimize()
	b, _ = run.ToBytes()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		if bm, err := Decode(b); err == nil {
			checkWellFormed(t, bm)
		} else if bm != nil {
			t.Fatalf("Decode returned a bitmap with error %v", err)
		}
		// b as little-endian uint32 ordinals.
		var ords []uint32
		for i := 0; i+4 <= len(b); i += 4 {
			ords = append(ords, uint32(b[i])|uint32(b[i+1])<<8|uint32(b[i+2])<<16|uint32(b[i+3])<<24)
		}
		want := roaring.BitmapOf(ords...)
		if len(ords)%2 == 0 {
			want.RunOptimize()
		}
		enc, err := want.ToBytes()
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(enc)
		if err != nil || !got.Equals(want) {
			t.Fatalf("round trip of %v: %v, %v", ords, got, err)
		}
		for _, o := range ords {
			if !got.Contains(o) {
				t.Fatalf("round trip lost %d", o)
			}
		}
	})
}

// checkWellFormed checks that bm's members are strictly increasing, agree
// with its cardinality and membership, and survive a round trip.
func checkWellFormed(t *testing.T, bm *roaring.Bitmap) {
	t.Helper()
	if bm == nil {
		t.Fatal("nil bitmap without error")
	}
	arr := bm.ToArray()
	if uint64(len(arr)) != bm.GetCardinality() {
		t.Fatalf("%d members, cardinality %d", len(arr), bm.GetCardinality())
	}
	for i, v := range arr {
		if i > 0 && v <= arr[i-1] {
			t.Fatalf("members not strictly increasing at %d: %d after %d", i, v, arr[i-1])
		}
		if !bm.Contains(v) {
			t.Fatalf("member %d not contained", v)
		}
	}
	enc, err := bm.ToBytes()
	if err != nil {
		t.Fatalf("re-serialize: %v", err)
	}
	again, err := Decode(enc)
	if err != nil || !again.Equals(bm) {
		t.Fatalf("round trip: %v, %v", again, err)
	}
}
