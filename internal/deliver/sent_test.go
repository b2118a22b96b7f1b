package deliver

import (
	"fmt"
	"testing"
)

func TestSentSetClaimsOnceAndForgetsTheOldest(t *testing.T) {
	var s sentSet
	if !s.claim("a") || s.claim("a") {
		t.Fatal("claim(a) twice: want true, then false")
	}
	for i := range maxSent - 1 {
		if !s.claim(fmt.Sprint(i)) {
			t.Fatalf("claim(%d) = false on a fresh id", i)
		}
	}
	if s.claim("a") {
		t.Fatal("a is still within the bound and must stay claimed")
	}
	// One more id pushes a, the oldest, out; the set stays bounded.
	if !s.claim("new") {
		t.Fatal("claim(new) = false")
	}
	if len(s.ids) != maxSent || len(s.ring) != maxSent {
		t.Fatalf("set holds %d ids (ring %d), want %d", len(s.ids), len(s.ring), maxSent)
	}
	if !s.claim("a") {
		t.Fatal("a was the oldest and should have been forgotten")
	}
	if s.claim("new") {
		t.Fatal("new must still be claimed")
	}
}
