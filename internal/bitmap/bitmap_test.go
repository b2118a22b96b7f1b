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

func FuzzDecode(f *testing.F) {
	b, _ := roaring.BitmapOf(1, 2, 3, 100000).ToBytes()
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		bm, err := Decode(b)
		if err == nil && bm == nil {
			t.Fatal("nil bitmap without error")
		}
	})
}
