//go:build !race

// The race detector makes sync.Pool drop entries at random.

package usersig

import (
	"runtime"
	"testing"
)

// TestDecodeReusesInflater: a decode does not allocate a fresh zlib
// decompressor (about 40 KiB) each time; a reconnect storm decodes one
// fresh sig per client.
func TestDecodeReusesInflater(t *testing.T) {
	if _, err := Decode(vecA); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		if _, err := Decode(vecA); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	// A GC during the loop may empty the pool once or twice.
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 8<<10 {
		t.Fatalf("Decode allocates %d bytes, want under 8 KiB", per)
	}
}
