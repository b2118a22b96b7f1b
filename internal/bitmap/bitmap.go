// Package bitmap decodes the serialized Roaring bitmaps that carry push
// audiences and acknowledgement sets between the store, the fan-out
// engine, the webhook dispatcher and the live hub.
package bitmap

import (
	"fmt"

	"github.com/RoaringBitmap/roaring/v2"
)

// Decode parses a serialized Roaring bitmap; empty input is the empty set.
// Corrupt input, including containers whose members are out of order, is
// an error, never a panic.
func Decode(b []byte) (bm *roaring.Bitmap, err error) {
	bm = roaring.New()
	if len(b) == 0 {
		return bm, nil
	}
	defer func() {
		if p := recover(); p != nil {
			bm, err = nil, fmt.Errorf("corrupt bitmap: %v", p)
		}
	}()
	if err := bm.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("corrupt bitmap: %w", err)
	}
	// UnmarshalBinary checks the framing, not the containers: unsorted or
	// repeated members would make a set whose cardinality, membership and
	// iteration disagree.
	if err := bm.Validate(); err != nil {
		return nil, fmt.Errorf("corrupt bitmap: %w", err)
	}
	return bm, nil
}
