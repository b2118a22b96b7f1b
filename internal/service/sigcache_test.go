package service

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
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

// TestHashSigAllocatesNothing: the cache key of a usual sig is computed
// without garbage (it runs on every authenticated request).
func TestHashSigAllocatesNothing(t *testing.T) {
	sig := strings.Repeat("eJyrVgrxCdYrSy1SslIy0jNQ0gHzM1NS80oy0z", 6) // ~230 bytes, as Gen makes
	if n := testing.AllocsPerRun(100, func() { _ = hashSig(1400000001, "user_000001", sig) }); n != 0 {
		t.Fatalf("hashSig allocates %v times", n)
	}
}

// TestHashSigIsSHA256OfTheKey pins the key's layout: SHA-256 of the app
// and the identifier's length (big-endian uint64s), the identifier, the
// sig. A long sig (past the stack buffer) hashes the same way.
func TestHashSigIsSHA256OfTheKey(t *testing.T) {
	for _, sig := range []string{"abc", strings.Repeat("x", 5000)} {
		var b []byte
		b = binary.BigEndian.AppendUint64(b, 7)
		b = binary.BigEndian.AppendUint64(b, 5)
		b = append(b, "alice"+sig...)
		if hashSig(7, "alice", sig) != sha256.Sum256(b) {
			t.Fatalf("hashSig of a %d-byte sig is not the SHA-256 of its key", len(sig))
		}
	}
}
