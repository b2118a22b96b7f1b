// Package bitmap decodes the serialized Roaring bitmaps the stores keep
// (audiences, acknowledgement sets), refusing corrupt ones.
package bitmap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

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
	// iteration disagree. roaring's own Validate checks the same things,
	// but compares every run of a run container with every other, which
	// made decoding a fragmented acknowledgement set cost milliseconds.
	card, err := check(b)
	if err != nil {
		return nil, fmt.Errorf("corrupt bitmap: %w", err)
	}
	if card != bm.GetCardinality() {
		return nil, fmt.Errorf("corrupt bitmap: %d members decoded, %d serialized", bm.GetCardinality(), card)
	}
	return bm, nil
}

// The portable serialization's constants
// (https://github.com/RoaringBitmap/RoaringFormatSpec).
const (
	cookieNoRuns   = 12346
	cookieRuns     = 12347
	noOffsetBelow  = 4 // with runs, offsets are written only from 4 containers up
	arrayMax       = 4096
	bitmapBytes    = 8192
	maxUint16Range = 1 << 16
)

var errShort = errors.New("truncated")

// check walks the serialized containers in one pass and returns the
// number of members. It refuses everything roaring's Validate refuses:
// keys out of order, empty containers, arrays that are too large or not
// strictly increasing, bitmaps whose count is wrong or that an array
// should hold, and runs that are empty, overflow their container, or are
// out of order, overlapping or touching. Runs are checked against their
// neighbour only, which suffices once their starts are increasing.
func check(b []byte) (uint64, error) {
	if len(b) < 4 {
		return 0, errShort
	}
	cookie := binary.LittleEndian.Uint32(b)
	var n int
	var runFlags []byte
	pos := 4
	switch {
	case cookie&0xFFFF == cookieRuns:
		n = int(cookie>>16) + 1
		fl := (n + 7) / 8
		if len(b) < pos+fl {
			return 0, errShort
		}
		runFlags = b[pos : pos+fl]
		pos += fl
	case cookie == cookieNoRuns:
		if len(b) < 8 {
			return 0, errShort
		}
		n = int(binary.LittleEndian.Uint32(b[4:]))
		pos = 8
	default:
		return 0, fmt.Errorf("unknown cookie %#x", cookie)
	}
	if n > maxUint16Range || len(b) < pos+4*n {
		return 0, errShort
	}
	header := b[pos : pos+4*n]
	pos += 4 * n
	if runFlags == nil || n >= noOffsetBelow {
		pos += 4 * n
	}
	var total uint64
	prevKey := -1
	for i := range n {
		key := int(binary.LittleEndian.Uint16(header[4*i:]))
		card := int(binary.LittleEndian.Uint16(header[4*i+2:])) + 1
		if key <= prevKey {
			return 0, fmt.Errorf("container keys out of order at %d", i)
		}
		prevKey = key
		switch {
		case runFlags != nil && runFlags[i/8]&(1<<(i%8)) != 0:
			if len(b) < pos+2 {
				return 0, errShort
			}
			nr := int(binary.LittleEndian.Uint16(b[pos:]))
			pos += 2
			if nr == 0 {
				return 0, fmt.Errorf("empty run container %d", i)
			}
			if len(b) < pos+4*nr {
				return 0, errShort
			}
			end := -2 // last member of the previous run
			for r := range nr {
				start := int(binary.LittleEndian.Uint16(b[pos+4*r:]))
				length := int(binary.LittleEndian.Uint16(b[pos+4*r+2:])) // members - 1
				if start+length > 0xFFFF {
					return 0, fmt.Errorf("run out of range in container %d", i)
				}
				if start <= end+1 {
					return 0, fmt.Errorf("runs out of order, overlapping or touching in container %d", i)
				}
				end = start + length
				total += uint64(length) + 1
			}
			pos += 4 * nr
		case card <= arrayMax:
			if len(b) < pos+2*card {
				return 0, errShort
			}
			prev := -1
			for j := range card {
				v := int(binary.LittleEndian.Uint16(b[pos+2*j:]))
				if v <= prev {
					return 0, fmt.Errorf("array container %d not strictly increasing", i)
				}
				prev = v
			}
			pos += 2 * card
			total += uint64(card)
		default:
			if len(b) < pos+bitmapBytes {
				return 0, errShort
			}
			pop := 0
			for j := 0; j < bitmapBytes; j += 8 {
				pop += bits.OnesCount64(binary.LittleEndian.Uint64(b[pos+j:]))
			}
			if pop != card {
				return 0, fmt.Errorf("bitmap container %d holds %d members, header says %d", i, pop, card)
			}
			pos += bitmapBytes
			total += uint64(card)
		}
	}
	return total, nil
}
