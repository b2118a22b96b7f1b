package sqlite

import (
	"encoding/binary"
	"fmt"
	"slices"
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
//   - a group commit appends one account_log row holding the after-images
//     of the accounts its edits changed, and publishes those new states to
//     the overlay after COMMIT;
//   - between groups the writer folds the images into accounts, deletes the
//     folded log rows and drops the folded accounts from the overlay
//     (fold.go); Open replays whatever log is left;
//   - readers, and the writer itself, take attributes and tags from the
//     overlay when it has the account, else from accounts, which is then
//     current.
//
// So the overlay holds exactly the dirty accounts: those whose accounts row
// lags account_log. An account the writer merely read, created or deleted
// is never in it, and a folded one leaves it; its size is bounded by the
// fold trigger (options.foldMaxDirty), not by the number of accounts.
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

// overlay holds the latest committed audience state of the dirty accounts,
// keyed by accounts.key. Only the writer goroutine writes it (under mu);
// it reads it without the lock.
type overlay struct {
	mu sync.RWMutex
	m  map[int64]*acctState
	// gen counts evictions (see writer.evict). A reader that misses the
	// overlay trusts the accounts row it read only if the account was not
	// evicted since before that read began; otherwise it settles the
	// account again.
	gen atomic.Uint64
	// recent holds the keys of the last evictions, recent[g%len] those of
	// eviction g, sorted, so that a reader can tell whether its account
	// was among them instead of distrusting every row.
	recent [evictionsKept][]int64
}

// evictionsKept is how many evictions' keys the overlay remembers.
const evictionsKept = 8

// get returns the state of key, if the overlay has it; for readers.
func (o *overlay) get(key int64) *acctState {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.m[key]
}

// lookup returns the state of key if the overlay has it; otherwise suspect
// reports whether key may have been evicted after g0 was read (so that a
// row read since then may predate the fold that made it current).
func (o *overlay) lookup(key int64, g0 uint64) (st *acctState, suspect bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if st := o.m[key]; st != nil {
		return st, false
	}
	g := o.gen.Load()
	if g == g0 {
		return nil, false
	}
	if g-g0 > evictionsKept {
		return nil, true
	}
	for e := g0 + 1; e <= g; e++ {
		if _, found := slices.BinarySearch(o.recent[e%evictionsKept], key); found {
			return nil, true
		}
	}
	return nil, false
}

// evict drops keys from the overlay as one eviction; the caller (the
// writer) passes only accounts whose accounts row is current.
func (o *overlay) evict(keys []int64) {
	if len(keys) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	g := o.gen.Load() + 1
	r := append(o.recent[g%evictionsKept][:0], keys...)
	slices.Sort(r)
	o.recent[g%evictionsKept] = r
	o.gen.Store(g) // before any entry goes: see gen
	for _, key := range keys {
		delete(o.m, key)
	}
}

// len returns the number of accounts held.
func (o *overlay) len() int {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return len(o.m)
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
