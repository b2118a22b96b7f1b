package audience

import (
	"strings"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/im"
)

// Index is the in-memory audience index of every app: which accounts exist,
// of which type, and which carry each attribute value and each tag. It is
// fed only by im.Change records (it implements im.ChangeSink) and answers
// Condition queries with roaring bitmaps of account ordinals.
//
// Apply must be called by one goroutine at a time; every other method may
// run concurrently with it and with each other. A reader sees each app
// either before or after a whole Apply batch, never halfway.
type Index struct {
	mu   sync.RWMutex
	apps map[uint64]*appIndex
}

var _ im.ChangeSink = (*Index)(nil)

// appIndex is one app's index. Its lock is held for writing for the length
// of one Apply batch (or its run of changes for this app) and for reading
// for the length of one query.
type appIndex struct {
	mu     sync.RWMutex
	all    *roaring.Bitmap                             // every live ordinal
	byType [2]*roaring.Bitmap                          // by im.AcctType
	attrs  [im.MaxAttrSlots]map[string]*roaring.Bitmap // slot → value → ordinals
	tags   map[string]*roaring.Bitmap                  // tag → ordinals
	dict   dict
	// owned holds the RegistrationIDs a live UserID owns, and owner maps
	// each to its owner's ordinal (see Recipients).
	owned *roaring.Bitmap
	owner map[uint32]uint32
	pos   uint64 // change position: the highest im.Change.Seq applied
}

func newAppIndex() *appIndex {
	a := &appIndex{}
	a.reset()
	return a
}

func (a *appIndex) reset() {
	a.all = roaring.New()
	a.byType = [2]*roaring.Bitmap{roaring.New(), roaring.New()}
	for s := range a.attrs {
		a.attrs[s] = map[string]*roaring.Bitmap{}
	}
	a.tags = map[string]*roaring.Bitmap{}
	a.dict = newDict()
	a.owned = roaring.New()
	a.owner = map[uint32]uint32{}
	a.pos = 0
}

// New returns an empty Index.
func New() *Index {
	return &Index{apps: map[uint64]*appIndex{}}
}

// app returns the index of app, creating it when create is set, or nil.
func (x *Index) app(app uint64, create bool) *appIndex {
	x.mu.RLock()
	a := x.apps[app]
	x.mu.RUnlock()
	if a != nil || !create {
		return a
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if a = x.apps[app]; a == nil {
		a = newAppIndex()
		x.apps[app] = a
	}
	return a
}

// Apply implements im.ChangeSink. For each run of consecutive changes of
// one app it takes that app's write lock once, so queries see the run
// atomically. An upsert adds the ordinal to every set of its new state and
// removes it from the sets of its old state that it left; a delete removes
// it from every set of its old (and, defensively, new) state and tombstones
// its ID. Sets that become empty are dropped. The index trusts OldAttrs and
// OldTags to describe what it was told before.
func (x *Index) Apply(changes []im.Change) {
	for i := 0; i < len(changes); {
		j := i + 1
		for j < len(changes) && changes[j].App == changes[i].App {
			j++
		}
		a := x.app(changes[i].App, true)
		a.mu.Lock()
		for k := i; k < j; k++ {
			a.apply(&changes[k])
		}
		a.mu.Unlock()
		i = j
	}
}

func (a *appIndex) apply(c *im.Change) {
	a.pos = max(a.pos, c.Seq)
	switch c.Op {
	case im.ChangeUpsert:
		a.upsert(c)
	case im.ChangeDelete:
		a.remove(c)
	}
}

func (a *appIndex) upsert(c *im.Change) {
	o := c.Ordinal
	a.all.Add(o)
	for t, bm := range a.byType {
		if im.AcctType(t) == c.Type {
			bm.Add(o)
		} else {
			bm.Remove(o)
		}
	}
	a.dict.put(o, c.ID)
	if c.Owner != "" && c.Type == im.AcctRegistrationID {
		// The owner registered the device, so it is indexed already.
		if u, ok := a.dict.find(c.Owner, a.byType[im.AcctUserID].Contains); ok && a.byType[im.AcctUserID].Contains(u) {
			a.owned.Add(o)
			a.owner[o] = u
		}
	}
	for s := range c.NewAttrs {
		old, cur := c.OldAttrs[s], c.NewAttrs[s]
		if old != "" && old != cur {
			removeFrom(a.attrs[s], old, o)
		}
		if cur != "" {
			addTo(a.attrs[s], cur, o)
		}
	}
	keep := newTagSet(c.NewTags)
	for _, t := range c.OldTags {
		if !keep.has(t) {
			removeFrom(a.tags, t, o)
		}
	}
	for _, t := range c.NewTags {
		addTo(a.tags, t, o)
	}
}

func (a *appIndex) remove(c *im.Change) {
	o := c.Ordinal
	for s := range c.OldAttrs {
		removeFrom(a.attrs[s], c.OldAttrs[s], o)
		removeFrom(a.attrs[s], c.NewAttrs[s], o)
	}
	for _, t := range c.OldTags {
		removeFrom(a.tags, t, o)
	}
	for _, t := range c.NewTags {
		removeFrom(a.tags, t, o)
	}
	a.all.Remove(o)
	for _, bm := range a.byType {
		bm.Remove(o)
	}
	a.dict.del(o)
	a.owned.Remove(o)
	delete(a.owner, o)
}

// addTo adds o to m[key], creating the set. Keys are cloned so that the
// index never pins a caller's buffer.
func addTo(m map[string]*roaring.Bitmap, key string, o uint32) {
	if key == "" {
		return
	}
	bm := m[key]
	if bm == nil {
		bm = roaring.New()
		m[strings.Clone(key)] = bm
	}
	bm.Add(o)
}

// removeFrom removes o from m[key] and drops the set when it empties.
func removeFrom(m map[string]*roaring.Bitmap, key string, o uint32) {
	bm := m[key]
	if bm == nil {
		return
	}
	if bm.CheckedRemove(o) && bm.IsEmpty() {
		delete(m, key)
	}
}

// tagSet answers membership in a tag list: by scanning when the list is
// short (the common case of a handful of tags), by a map otherwise.
type tagSet struct {
	list []string
	m    map[string]struct{}
}

func newTagSet(tags []string) tagSet {
	if len(tags) <= 16 {
		return tagSet{list: tags}
	}
	m := make(map[string]struct{}, len(tags))
	for _, t := range tags {
		m[t] = struct{}{}
	}
	return tagSet{m: m}
}

func (s tagSet) has(t string) bool {
	if s.m != nil {
		_, ok := s.m[t]
		return ok
	}
	for _, u := range s.list {
		if u == t {
			return true
		}
	}
	return false
}

// Reset empties app's index, for example before it is rebuilt from a store
// scan. Like Apply it must not run concurrently with Apply; queries running
// at the same time see the app either before or after the reset.
func (x *Index) Reset(app uint64) {
	a := x.app(app, false)
	if a == nil {
		return
	}
	a.mu.Lock()
	a.reset()
	a.mu.Unlock()
}

// Recipients turns bm, a set of account ordinals of app, into the set of
// its recipients, in place, and returns it: each device a user owns is
// replaced by that user, so that a user and their devices are one
// recipient, and a user's devices never add recipients of their own.
// Accounts and devices without an owner stay as they are. Push audiences
// (and so TotalCount) go through it.
func (x *Index) Recipients(app uint64, bm *roaring.Bitmap) *roaring.Bitmap {
	a := x.app(app, false)
	if a == nil {
		return bm
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.owned.IsEmpty() {
		return bm
	}
	devs := roaring.And(bm, a.owned)
	if devs.IsEmpty() {
		return bm
	}
	bm.AndNot(devs)
	it := devs.Iterator()
	for it.HasNext() {
		d := it.Next()
		if u, ok := a.owner[d]; ok && a.all.Contains(u) {
			bm.Add(u)
		} else {
			bm.Add(d)
		}
	}
	return bm
}

// Count returns the number of live accounts of app, of both types.
func (x *Index) Count(app uint64) uint64 {
	a := x.app(app, false)
	if a == nil {
		return 0
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.all.GetCardinality()
}

// Ordinal returns the ordinal of the live account id of app. Should a
// UserID and a RegistrationID share one string, the RegistrationID wins, as
// in the store's To_Account resolution (docs/compatibility.md, "Devices and recipients").
func (x *Index) Ordinal(app uint64, id string) (uint32, bool) {
	a := x.app(app, false)
	if a == nil {
		return 0, false
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.dict.find(id, a.byType[im.AcctRegistrationID].Contains)
}

// ID returns the account ID of a live ordinal of app.
func (x *Index) ID(app uint64, ord uint32) (string, bool) {
	a := x.app(app, false)
	if a == nil {
		return "", false
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.dict.get(ord)
}

// IDs resolves a batch of ordinals of app under one lock, for delivery:
// ids[i] is the ID of ords[i], or "" when that ordinal is not live.
func (x *Index) IDs(app uint64, ords []uint32) []string {
	ids := make([]string, len(ords))
	a := x.app(app, false)
	if a == nil {
		return ids
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	for i, o := range ords {
		ids[i], _ = a.dict.get(o)
	}
	return ids
}

// MemoryBytes estimates the heap bytes held by app's index: the roaring
// containers (GetSizeInBytes) plus an estimate of the bitmap and map-entry
// headers, and the ID dictionary.
func (x *Index) MemoryBytes(app uint64) uint64 {
	a := x.app(app, false)
	if a == nil {
		return 0
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	n := bitmapBytes(a.all) + bitmapBytes(a.byType[0]) + bitmapBytes(a.byType[1])
	for _, m := range a.attrs {
		n += setsBytes(m)
	}
	n += setsBytes(a.tags)
	return n + a.dict.bytes()
}

// Per-object overheads used by MemoryBytes: a roaring.Bitmap with its three
// slice headers, a container's interface word pair, copy-on-write flag and
// struct, and a map entry (key header, value pointer, control byte, slack).
const (
	bitmapHeader    = 80
	containerHeader = 16 + 1 + 32
	mapEntry        = 32
)

func bitmapBytes(bm *roaring.Bitmap) uint64 {
	return bitmapHeader + bm.GetSizeInBytes() + containerHeader*bm.Stats().Containers
}

func setsBytes(m map[string]*roaring.Bitmap) uint64 {
	var n uint64
	for k, bm := range m {
		n += mapEntry + uint64(len(k)) + bitmapBytes(bm)
	}
	return n
}
