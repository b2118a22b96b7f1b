package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		base               int
		live, roots, floor uint64
		want               int
	}{
		{100, 20 * mib, 0, 128 * mib, 540},           // goal 20 + 20*5.4 = 128 MiB
		{100, 20 * mib, 4 * mib, 128 * mib, 450},     // roots count: 20 + 24*4.5
		{100, 64 * mib, 0, 128 * mib, 100},           // the floor is the usual goal
		{100, 100 * mib, 0, 128 * mib, 100},          // GOGC's own goal is higher
		{100, 200 * mib, 0, 128 * mib, 100},          // live above the floor
		{100, 128 * mib, 0, 128 * mib, 100},          // live at the floor
		{200, 40 * mib, 0, 128 * mib, 220},           // 40 + 40*2.2
		{300, 40 * mib, 0, 128 * mib, 300},           // GOGC's own goal (160 MiB) is higher
		{100, 0, 0, 128 * mib, 3200},                 // nothing live yet: the minimum goal (4 MiB × 32) is the floor
		{100, 3, 0, 128 * mib, 3200},                 // bounded the same way
		{100, 150 << 10, 450 << 10, 128 * mib, 3200}, // a test binary: roots dominate, the minimum bounds
		{100, 2 * mib, 2 * mib, 128 * mib, 3150},     // 2 + 4*31.5
		{100, 1 * mib, 0, 6 * mib, 150},              // the minimum: 4 MiB × 1.5 = 6 MiB
		{100, 20 * mib, 0, 0, 100},                   // no floor
		{-1, 20 * mib, 0, 128 * mib, -1},             // GOGC=off stays off
		{100, 3 * mib, 0, 10 * mib, 233},             // rounds down: goal ≤ floor
		{100, 1 << 40, 0, 1<<40 + 1<<39, 100},        // large numbers do not overflow
		{100, 1 << 20, 0, 1 << 50, 1 << 28 * 100},    // nor does a huge floor
		{50, 100 * mib, 0, 128 * mib, 50},            // 28%: below base
		{10, 100 * mib, 0, 128 * mib, 28},            // 28%: above a small base
	} {
		if got := Percent(c.base, c.live, c.roots, c.floor); got != c.want {
			t.Errorf("Percent(%d, %d, %d, %d) = %d, want %d", c.base, c.live, c.roots, c.floor, got, c.want)
		}
	}
}

// churn allocates n bytes of short-lived garbage and returns how many GC
// cycles ran meanwhile.
func churn(n int) uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.NumGC
	var keep []byte
	for i := 0; i < n/4096; i++ {
		keep = make([]byte, 4096)
		keep[0] = byte(i)
	}
	runtime.ReadMemStats(&ms)
	return ms.NumGC - before
}

// TestFloorCutsCycles allocates 512 MiB of garbage over a live heap of a
// few MiB: at GOGC=100 that is a cycle every few MiB; with a 128 MiB floor
// about four. Stop restores GOGC.
func TestFloorCutsCycles(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	runtime.GC()
	without := churn(512 << 20)
	f := Start(128 << 20)
	runtime.GC() // the floor sees the live heap after a cycle
	with := churn(512 << 20)
	f.Stop()
	t.Logf("cycles: %d without a floor, %d with it; floor adjusted %d times", without, with, f.Adjusted())
	if with > 8 || without < 4*with {
		t.Fatalf("cycles: %d without a floor, %d with a 128 MiB floor", without, with)
	}
	if f.Adjusted() < int64(with) {
		t.Fatalf("the floor looked at the heap %d times in %d cycles", f.Adjusted(), with)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC after Stop: %d, want the base 100", got)
	}
	if again := churn(512 << 20); again < 4*with {
		t.Fatalf("after Stop, %d cycles; with the floor %d", again, with)
	}
}

func TestOffDoesNothing(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	f := Start(0)
	runtime.GC()
	runtime.GC()
	if f.Adjusted() != 0 || debug.SetGCPercent(100) != 100 {
		t.Fatalf("a zero floor adjusted %d times", f.Adjusted())
	}
	f.Stop()
	debug.SetGCPercent(-1)
	f = Start(128 << 20)
	runtime.GC()
	if f.Adjusted() != 0 || debug.SetGCPercent(100) != -1 {
		t.Fatalf("GOGC=off was changed")
	}
	f.Stop()
}

// TestTwoFloors: a second floor started while one runs takes the
// process's GOGC as its base, not the first floor's, and GOGC is the
// process's again once both have stopped.
func TestTwoFloors(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	runtime.GC()
	a := Start(128 << 20)
	runtime.GC()
	b := Start(64 << 20)
	if b.base != 100 {
		t.Fatalf("second floor's base: %d, want 100", b.base)
	}
	a.Stop()
	runtime.GC()
	b.Stop()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC after both stopped: %d, want 100", got)
	}
}
