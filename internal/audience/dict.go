package audience

import (
	"hash/maphash"
	"math/bits"
	"runtime"
	"slices"
	"sync"
)

// An ent packs where an ID lives in the arena: offset<<entLenBits | length.
// The zero ent means "no ID" (IDs are never empty).
const (
	entLenBits = 24
	maxIDLen   = 1<<entLenBits - 1
	maxArena   = 1<<(64-entLenBits) - 1
	minSlots   = 16
)

// dict maps an app's ordinals to account IDs and back in about
// len(ID) + 8 + 4/load bytes per account, far less than a map[string]uint32
// plus a []string. IDs live back to back in one append-only arena; ents,
// indexed by ordinal, say where; slots is an open-addressing hash table with
// linear probing that holds ordinal+1 (0 = empty) and compares keys by
// looking them up in the arena, so it stores no strings of its own.
//
// Deleting an ordinal tombstones its ent and removes it from slots; the
// arena bytes stay until the app is rebuilt. dict is not safe for
// concurrent use; appIndex guards it.
type dict struct {
	arena []byte
	ents  []uint64
	slots []uint32
	live  int
	seed  maphash.Seed
}

func newDict() dict {
	return dict{seed: maphash.MakeSeed()}
}

// raw returns the ID of ord as bytes that alias the arena, or nil.
func (d *dict) raw(ord uint32) []byte {
	if int64(ord) >= int64(len(d.ents)) {
		return nil
	}
	e := d.ents[ord]
	if e == 0 {
		return nil
	}
	off, n := e>>entLenBits, e&maxIDLen
	return d.arena[off : off+n : off+n]
}

// get returns the ID of ord.
func (d *dict) get(ord uint32) (string, bool) {
	b := d.raw(ord)
	if b == nil {
		return "", false
	}
	return string(b), true
}

func (d *dict) hash(id []byte) uint64 {
	return maphash.Bytes(d.seed, id)
}

// find returns the ordinal of id. When several live ordinals carry the same
// ID (a UserID equal to a RegistrationID), the first one for which prefer
// reports true wins, else the first one found.
func (d *dict) find(id string, prefer func(uint32) bool) (uint32, bool) {
	if len(d.slots) == 0 || id == "" {
		return 0, false
	}
	mask := uint64(len(d.slots) - 1)
	var found uint32
	ok := false
	// maphash.String(s) equals maphash.Bytes([]byte(s)), so keys hash alike.
	for i := maphash.String(d.seed, id) & mask; d.slots[i] != 0; i = (i + 1) & mask {
		ord := d.slots[i] - 1
		if string(d.raw(ord)) != id {
			continue
		}
		if prefer == nil || prefer(ord) {
			return ord, true
		}
		if !ok {
			found, ok = ord, true
		}
	}
	return found, ok
}

// put records that ord is id. An ordinal that already has another ID is
// re-pointed. IDs longer than maxIDLen are not recorded.
func (d *dict) put(ord uint32, id string) {
	if id == "" || len(id) > maxIDLen || ord == ^uint32(0) {
		return
	}
	if cur := d.raw(ord); cur != nil {
		if string(cur) == id {
			return
		}
		d.del(ord)
	}
	place(d, ord, id)
}

// place records that ord, which has no ID, is id, copying id into the
// arena; nothing is recorded once the arena would overflow.
func place[T string | []byte](d *dict, ord uint32, id T) {
	if uint64(len(d.arena)) > maxArena-uint64(len(id)) {
		return
	}
	if int64(ord) >= int64(len(d.ents)) {
		// len(ents) == cap(ents) always, so the grown tail is zeroed.
		d.ents = slices.Grow(d.ents, int(ord)+1-len(d.ents))
		d.ents = d.ents[:cap(d.ents)]
	}
	d.ents[ord] = uint64(len(d.arena))<<entLenBits | uint64(len(id))
	d.arena = append(d.arena, id...)
	if (d.live+1)*4 > len(d.slots)*3 {
		d.grow()
	}
	d.insert(ord)
	d.live++
}

// insert places ord in the first free slot of its probe sequence.
func (d *dict) insert(ord uint32) {
	mask := uint64(len(d.slots) - 1)
	i := d.hash(d.raw(ord)) & mask
	for d.slots[i] != 0 {
		i = (i + 1) & mask
	}
	d.slots[i] = ord + 1
}

// grow doubles the hash table and re-inserts every live ordinal.
func (d *dict) grow() {
	old := d.slots
	n := max(minSlots, 2*len(old))
	d.slots = make([]uint32, n)
	for _, s := range old {
		if s != 0 {
			d.insert(s - 1)
		}
	}
}

// del forgets ord: its slot is emptied with backward-shift deletion, so the
// table needs no tombstones, and its ent is zeroed.
func (d *dict) del(ord uint32) {
	key := d.raw(ord)
	if key == nil {
		return
	}
	mask := uint64(len(d.slots) - 1)
	i := d.hash(key) & mask
	for d.slots[i] != ord+1 {
		if d.slots[i] == 0 {
			panic("audience: dictionary lost an ordinal") // unreachable: ents and slots agree
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; d.slots[j] != 0; j = (j + 1) & mask {
		home := d.hash(d.raw(d.slots[j]-1)) & mask
		// Leave slots[j] alone when its home lies cyclically in (i, j].
		if (i <= j && i < home && home <= j) || (i > j && (i < home || home <= j)) {
			continue
		}
		d.slots[i] = d.slots[j]
		i = j
	}
	d.slots[i] = 0
	d.ents[ord] = 0
	d.live--
}

// bytes estimates the dictionary's heap use.
func (d *dict) bytes() uint64 {
	return uint64(cap(d.arena)) + 8*uint64(cap(d.ents)) + 4*uint64(cap(d.slots))
}

// buildSlots builds the hash table of a dictionary whose ents and arena
// are filled and whose slots are empty (a snapshot load). Inserting
// 10M ordinals in ordinal order would touch a random slot each time, a
// cache miss apiece; instead the ordinals are first grouped by the region
// of the table their home slot lies in (a counting sort, hashing on every
// core), then inserted region by region, so the table is written nearly in
// order. Any insertion order gives a valid linear-probing table.
func (d *dict) buildSlots() {
	slots := minSlots
	for slots*3 < d.live*4 {
		slots *= 2
	}
	d.slots = make([]uint32, slots)
	if d.live == 0 {
		return
	}
	if slots > 1<<32 { // homes would not fit the packing below
		for o, e := range d.ents {
			if e != 0 {
				d.insert(uint32(o))
			}
		}
		return
	}
	mask := uint64(slots - 1)
	const regionBits = 16
	shift := max(0, bits.Len64(mask)-regionBits) // home >> shift is the region
	regions := int(mask>>shift) + 1
	workers := max(1, min(runtime.GOMAXPROCS(0), 8, len(d.ents)/65536))
	span := (len(d.ents) + workers - 1) / workers
	part := func(w int) []uint64 { return d.ents[min(w*span, len(d.ents)):min((w+1)*span, len(d.ents))] }
	// Count each worker's ordinals per region, then give each (region,
	// worker) its own run of the order array, then fill it.
	counts := make([][]int, workers)
	parallel(workers, func(w int) {
		c := make([]int, regions)
		for _, e := range part(w) {
			if e != 0 {
				c[d.hashEnt(e)&mask>>shift]++
			}
		}
		counts[w] = c
	})
	next := 0
	for r := range regions {
		for w := range workers {
			c := counts[w][r]
			counts[w][r] = next
			next += c
		}
	}
	// Each entry is home<<32 | ordinal, so that inserting needs no second
	// look at the arena (which, in this order, would be a cache miss).
	order := make([]uint64, d.live)
	parallel(workers, func(w int) {
		c, base := counts[w], w*span
		for i, e := range part(w) {
			if e != 0 {
				h := d.hashEnt(e) & mask
				order[c[h>>shift]] = h<<32 | uint64(base+i)
				c[h>>shift]++
			}
		}
	})
	for _, v := range order {
		i := v >> 32
		for d.slots[i] != 0 {
			i = (i + 1) & mask
		}
		d.slots[i] = uint32(v) + 1
	}
}

// hashEnt hashes the ID an ent points at.
func (d *dict) hashEnt(e uint64) uint64 {
	off, n := e>>entLenBits, e&maxIDLen
	return d.hash(d.arena[off : off+n])
}

// parallel runs f(0) … f(n-1) on n goroutines and waits for them.
func parallel(n int, f func(int)) {
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() { f(w) })
	}
	wg.Wait()
}
