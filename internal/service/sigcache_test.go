package service

import (
	"fmt"
	"testing"
)

// TestSigCacheBoundsExpiryAndKey: the verified-sig cache answers only
// before expiry and for the key the sig verified under, keeps at most its
// bound, and drops the least recently used first.
func TestSigCacheBoundsExpiryAndKey(t *testing.T) {
	c := newSigCache(3)
	k := func(i int) sigHash { return hashSig(1400000001, fmt.Sprint("user", i), "sig") }
	c.put(k(1), "key", 100, 200)
	for _, tc := range []struct {
		name string
		key  string
		now  int64
		ok   bool
	}{
		{"before expiry", "key", 150, true},
		{"at expiry (still valid, as the verifier)", "key", 200, true},
		{"other key (rotated)", "other", 150, false},
		{"after expiry", "key", 201, false},
		{"gone once expired", "key", 150, false},
	} {
		if issued, ok := c.get(k(1), tc.key, tc.now); ok != tc.ok || (ok && issued != 100) {
			t.Errorf("%s: get = %d, %v; want ok=%v", tc.name, issued, ok, tc.ok)
		}
	}
	for i := range 3 {
		c.put(k(i), "key", 100, 200)
	}
	c.get(k(0), "key", 150) // 0 becomes the most recent; 1 the least
	c.put(k(3), "key", 100, 200)
	if n := c.len(); n != 3 {
		t.Fatalf("len = %d, want the bound 3", n)
	}
	for i, want := range []bool{true, false, true, true} {
		if _, ok := c.get(k(i), "key", 150); ok != want {
			t.Errorf("entry %d cached = %v, want %v", i, ok, want)
		}
	}
	// Keys differ by app, identifier and sig, and by where they split.
	if hashSig(1, "ab", "c") == hashSig(1, "a", "bc") || hashSig(1, "a", "b") == hashSig(2, "a", "b") {
		t.Fatal("distinct credentials share a cache key")
	}
}
