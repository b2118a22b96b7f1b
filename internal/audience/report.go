package audience

import (
	"container/heap"

	"timd/internal/im"
)

// This file answers the operator's questions about an app's audience (the
// console's extensions): how many accounts of each type, which tags are
// most used, a page of accounts, a user's devices. Every answer is
// bounded by its caller's limit, never by the size of the app.

// Kinds returns the number of live UserIDs and RegistrationIDs of app.
func (x *Index) Kinds(app uint64) (users, devices uint64) {
	a := x.app(app, false)
	if a == nil {
		return 0, 0
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.byType[im.AcctUserID].GetCardinality(), a.byType[im.AcctRegistrationID].GetCardinality()
}

// TagCount is one tag and the number of accounts that carry it.
type TagCount struct {
	Tag   string
	Count uint64
}

// TopTags returns the n most carried tags of app, most carried first and
// ties in byte order of the tag, and the number of distinct tags. It keeps
// at most n candidates while it walks the tags, so its memory is bounded
// by n whatever the app holds. n <= 0 returns none.
func (x *Index) TopTags(app uint64, n int) (top []TagCount, distinct int) {
	a := x.app(app, false)
	if a == nil || n <= 0 {
		return nil, 0
	}
	a.mu.RLock()
	h := make(tagHeap, 0, min(n, len(a.tags)))
	for t, bm := range a.tags {
		c := TagCount{Tag: t, Count: bm.GetCardinality()}
		switch {
		case len(h) < n:
			heap.Push(&h, c)
		case h.less(h[0], c):
			h[0] = c
			heap.Fix(&h, 0)
		}
	}
	distinct = len(a.tags)
	a.mu.RUnlock()
	top = make([]TagCount, len(h))
	for i := len(h) - 1; i >= 0; i-- {
		top[i] = heap.Pop(&h).(TagCount)
	}
	return top, distinct
}

// tagHeap is a min-heap of tag counts: its root is the least wanted of the
// kept candidates (fewest accounts, then the greatest tag).
type tagHeap []TagCount

// less orders by count, then by reverse tag, so that of two equal counts
// the smaller tag is kept.
func (tagHeap) less(a, b TagCount) bool {
	if a.Count != b.Count {
		return a.Count < b.Count
	}
	return a.Tag > b.Tag
}

func (h tagHeap) Len() int           { return len(h) }
func (h tagHeap) Less(i, j int) bool { return h.less(h[i], h[j]) }
func (h tagHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *tagHeap) Push(v any)        { *h = append(*h, v.(TagCount)) }
func (h *tagHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

// Entry is one live account as the index knows it.
type Entry struct {
	Ordinal uint32
	ID      string
	Type    im.AcctType
	Owner   string // a RegistrationID's owner, when it has one
}

// Page returns up to limit live accounts of app with an ordinal of at
// least from, in ordinal order (the order of creation), and the ordinal
// to pass as from for the next page, or 0 when this is the last one.
func (x *Index) Page(app uint64, from uint32, limit int) (page []Entry, next uint32) {
	a := x.app(app, false)
	if a == nil || limit <= 0 {
		return nil, 0
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	it := a.all.Iterator()
	it.AdvanceIfNeeded(from)
	for it.HasNext() {
		o := it.Next()
		if len(page) == limit {
			return page, o
		}
		page = append(page, a.entry(o))
	}
	return page, 0
}

// entry describes the live ordinal o; a.mu is held.
func (a *appIndex) entry(o uint32) Entry {
	e := Entry{Ordinal: o, Type: im.AcctUserID}
	e.ID, _ = a.dict.get(o)
	if a.byType[im.AcctRegistrationID].Contains(o) {
		e.Type = im.AcctRegistrationID
		if u, ok := a.owner[o]; ok {
			e.Owner, _ = a.dict.get(u)
		}
	}
	return e
}

// Devices returns up to limit RegistrationIDs owned by the UserID id of
// app, in ordinal order. It walks the app's owned devices, so it costs
// time in their number (not memory).
func (x *Index) Devices(app uint64, id string, limit int) []Entry {
	a := x.app(app, false)
	if a == nil || limit <= 0 {
		return nil
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	u, ok := a.dict.find(id, func(o uint32) bool { return a.byType[im.AcctUserID].Contains(o) })
	if !ok || !a.byType[im.AcctUserID].Contains(u) {
		return nil
	}
	var out []Entry
	it := a.owned.Iterator()
	for it.HasNext() && len(out) < limit {
		if d := it.Next(); a.owner[d] == u {
			out = append(out, a.entry(d))
		}
	}
	return out
}
