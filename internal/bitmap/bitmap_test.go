package bitmap

import (
	"encoding/binary"
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
	for _, c := range corruptCases() {
		f.Add(c.b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		bm, err := Decode(b)
		if err == nil {
			checkWellFormed(t, bm)
		} else if bm != nil {
			t.Fatalf("Decode returned a bitmap with error %v", err)
		}
		// Decode's own check must agree with roaring's Validate, which it
		// replaces: it accepts exactly what Validate accepts.
		if len(b) > 0 {
			if ref := roaringAccepts(b); ref != (err == nil) {
				t.Fatalf("Decode error %v, but roaring's Validate accepts: %v", err, ref)
			}
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

// roaringAccepts reports whether roaring itself decodes and validates b.
func roaringAccepts(b []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	bm := roaring.New()
	return bm.UnmarshalBinary(b) == nil && bm.Validate() == nil
}

type corruptCase struct {
	name string
	b    []byte
}

// corruptCases are serialized sets with one container made invalid in
// each way roaring's Validate refuses.
func corruptCases() []corruptCase {
	le16 := func(v ...uint16) []byte {
		out := make([]byte, 0, 2*len(v))
		for _, x := range v {
			out = binary.LittleEndian.AppendUint16(out, x)
		}
		return out
	}
	// no runs: cookie 12346, n, header (key, card-1)..., offsets, containers
	noRuns := func(keys, cards []uint16, body []byte) []byte {
		b := binary.LittleEndian.AppendUint32(nil, 12346)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(keys)))
		for i := range keys {
			b = append(b, le16(keys[i], cards[i]-1)...)
		}
		b = append(b, make([]byte, 4*len(keys))...) // offsets, unread
		return append(b, body...)
	}
	// one run container: cookie 12347 with n-1 = 0, run flags, header, runs
	oneRun := func(runs ...uint16) []byte {
		b := binary.LittleEndian.AppendUint32(nil, 12347)
		b = append(b, 1)
		b = append(b, le16(0, 0)...)
		b = append(b, le16(uint16(len(runs)/2))...)
		return append(b, le16(runs...)...)
	}
	bitmapOf := func(pop int) []byte {
		body := make([]byte, 8192)
		for i := range pop {
			body[i/8] |= 1 << (i % 8)
		}
		return body
	}
	return []corruptCase{
		{"array not increasing", noRuns([]uint16{0}, []uint16{3}, le16(1, 5, 5))},
		{"array descending", noRuns([]uint16{0}, []uint16{2}, le16(9, 2))},
		{"keys out of order", noRuns([]uint16{3, 3}, []uint16{1, 1}, le16(1, 2))},
		{"bitmap count wrong", noRuns([]uint16{0}, []uint16{5000}, bitmapOf(4999))},
		{"empty run container", oneRun()},
		{"runs overlapping", oneRun(10, 5, 12, 1)},
		{"runs touching", oneRun(10, 5, 16, 1)},
		{"runs out of order", oneRun(100, 1, 10, 1)},
		{"runs equal", oneRun(10, 1, 10, 1)},
		{"run past the container", oneRun(65530, 10)},
	}
}

// TestDecodeRefusesCorruptContainers checks each corruption against both
// Decode and roaring's Validate, and that the same framing with valid
// containers is accepted.
func TestDecodeRefusesCorruptContainers(t *testing.T) {
	for _, c := range corruptCases() {
		if roaringAccepts(c.b) {
			t.Errorf("%s: roaring's Validate accepts the case; it tests nothing", c.name)
		}
		if _, err := Decode(c.b); err == nil {
			t.Errorf("%s: Decode accepted it", c.name)
		}
	}
	// the same builders, valid: a run container whose runs are apart, and
	// an array and a full bitmap
	good := roaring.New()
	good.AddRange(10, 16)
	good.AddRange(17, 19)
	good.RunOptimize()
	b, _ := good.ToBytes()
	if got, err := Decode(b); err != nil || !got.Equals(good) {
		t.Fatalf("valid runs: %v, %v", got, err)
	}
	dense := roaring.New()
	dense.AddRange(0, 5000)
	dense.Add(6000) // not a single run, so it stays a bitmap container
	for i := uint32(0); i < 5000; i += 3 {
		dense.Remove(i)
	}
	b, _ = dense.ToBytes()
	if got, err := Decode(b); err != nil || !got.Equals(dense) {
		t.Fatalf("valid bitmap container: %v, %v", got, err)
	}
}

// BenchmarkDecodeFragmentedRuns decodes a set of 2,000 runs in one
// container, the shape of an acknowledgement set mid-storm; roaring's
// Validate compares every run with every other.
func BenchmarkDecodeFragmentedRuns(b *testing.B) {
	bm := roaring.New()
	for i := uint64(0); i < 2000; i++ {
		bm.AddRange(i*30, i*30+10)
	}
	bm.RunOptimize()
	enc, _ := bm.ToBytes()
	b.Run("Decode", func(b *testing.B) {
		for b.Loop() {
			if _, err := Decode(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("roaring.Validate", func(b *testing.B) {
		for b.Loop() {
			if !roaringAccepts(enc) {
				b.Fatal("refused")
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
