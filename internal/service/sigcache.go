package service

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"sync"
)

// sigCache remembers UserSigs that verified, so that a client reusing its
// sig (every REST call, every /v1/sync, every reconnect of a storm) costs
// a hash and a map lookup instead of base64, zlib inflate and an HMAC.
//
// It is keyed by the SHA-256 of (SDKAppID, identifier, sig), so an entry
// holds 32 bytes of key whatever the sig's length, and it is a bounded
// LRU: at most max entries, the least recently used dropped first.
//
// Invalidation: an entry answers only while now <= its expiry and only
// for the app key it verified under (a rotated key misses). It says
// nothing about kicks: Auth checks the account's kick time after every
// lookup, hit or miss, so a kicked sig is never accepted from the cache.
type sigCache struct {
	max int

	mu    sync.Mutex
	order *list.List // of *sigEntry, most recently used first
	byKey map[sigHash]*list.Element
}

type sigHash [sha256.Size]byte

type sigEntry struct {
	hash            sigHash
	issued, expires int64
	key             string // the app key it verified under
}

func newSigCache(max int) *sigCache {
	return &sigCache{max: max, order: list.New(), byKey: map[sigHash]*list.Element{}}
}

// hashSig is the cache key of sig presented by identifier for app. A
// usual sig (a few hundred bytes) is hashed from a stack buffer: this
// runs on every authenticated request.
func hashSig(app uint64, identifier, sig string) sigHash {
	var buf [640]byte
	b := binary.BigEndian.AppendUint64(buf[:0], app)
	b = binary.BigEndian.AppendUint64(b, uint64(len(identifier))) // no two (identifier, sig) pairs concatenate alike
	b = append(b, identifier...)
	b = append(b, sig...)
	return sha256.Sum256(b)
}

// get returns the issue time of the sig hashed to k if it verified under
// key and has not expired at now.
func (c *sigCache) get(k sigHash, key string, now int64) (issued int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.byKey[k]
	if el == nil {
		return 0, false
	}
	e := el.Value.(*sigEntry)
	if now > e.expires || e.key != key {
		c.order.Remove(el)
		delete(c.byKey, k)
		return 0, false
	}
	c.order.MoveToFront(el)
	return e.issued, true
}

// put records that the sig hashed to k verified under key, issued at
// issued and good until expires.
func (c *sigCache) put(k sigHash, key string, issued, expires int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.byKey[k]; el != nil {
		e := el.Value.(*sigEntry)
		e.issued, e.expires, e.key = issued, expires, key
		c.order.MoveToFront(el)
		return
	}
	c.byKey[k] = c.order.PushFront(&sigEntry{hash: k, issued: issued, expires: expires, key: key})
	for c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.byKey, old.Value.(*sigEntry).hash)
	}
}

// len returns the number of cached sigs.
func (c *sigCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
