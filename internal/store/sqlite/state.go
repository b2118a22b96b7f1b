package sqlite

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"timd/internal/im"
)

// Write-behind of attributes and tags.
//
// Rewriting an account's row for every edit costs a page write per edit
// (accounts are spread over the table, so a batch of random accounts
// dirties one page each), which caps durable throughput far below what the
// service needs. Instead:
//
//   - the writer keeps the audience state (ordinal, type, attributes, tags)
//     of every account it has touched since Open in the overlay, loaded
//     from accounts on first use;
//   - a group commit appends one account_log row holding the after-images
//     of the accounts its edits changed, and publishes the new states to
//     the overlay after COMMIT;
//   - between groups the writer folds the images into accounts and deletes
//     the folded log rows (fold.go); Open replays whatever is left;
//   - readers take attributes and tags from the overlay when it has the
//     account, else from accounts, which is then current.
//
// Creating and deleting accounts, profiles, kicks, devices, the tag
// registry and attribute schemas are written to their tables directly.

// acctState is an account's audience state. It is immutable once built;
// a change makes a new one.
type acctState struct {
	ordinal uint32
	typ     im.AcctType
	attrs   im.AttrValues
	tags    []string
}

// overlay holds the latest committed audience state of the accounts the
// writer has touched, keyed by accounts.key. Only the writer goroutine
// writes it (under mu); it reads it without the lock.
type overlay struct {
	mu sync.RWMutex
	m  map[int64]*acctState
	// gen counts evictions (see writer.evict). A reader that misses the
	// overlay trusts the accounts row it read only if no eviction happened
	// since before that read began; otherwise it settles the account again.
	gen atomic.Uint64
}

// get returns the state of key, if the overlay has it; for readers.
func (o *overlay) get(key int64) *acctState {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.m[key]
}

// image is one account's after-image in account_log.
type image struct {
	key   int64
	attrs *im.AttrValues
	tags  []string
}

// appendImage encodes an image as uvarint key, uvarint count of attribute
// values then each as uvarint length and bytes (trailing empty values
// trimmed), and the tags the same way.
func appendImage(b []byte, img image) []byte {
	b = binary.AppendUvarint(b, uint64(img.key))
	n := len(img.attrs)
	for n > 0 && img.attrs[n-1] == "" {
		n--
	}
	b = appendStrings(b, img.attrs[:n])
	return appendStrings(b, img.tags)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// decodeImages calls fn for each image encoded in b.
func decodeImages(b []byte, fn func(key int64, attrs im.AttrValues, tags []string) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("sqlite: corrupt account_log image")
		}
		b = b[n:]
		var attrs im.AttrValues
		vals, rest, err := readStrings(b, len(attrs))
		if err != nil {
			return err
		}
		copy(attrs[:], vals)
		tags, rest, err := readStrings(rest, -1)
		if err != nil {
			return err
		}
		b = rest
		if err := fn(int64(key), attrs, tags); err != nil {
			return err
		}
	}
	return nil
}

// readStrings reads a count and that many strings; max < 0 means no limit.
func readStrings(b []byte, max int) ([]string, []byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) || max >= 0 && count > uint64(max) {
		return nil, nil, fmt.Errorf("sqlite: corrupt account_log image")
	}
	b = b[n:]
	var out []string
	for range count {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return nil, nil, fmt.Errorf("sqlite: corrupt account_log image")
		}
		out = append(out, string(b[n:n+int(l)]))
		b = b[n+int(l):]
	}
	return out, b, nil
}
