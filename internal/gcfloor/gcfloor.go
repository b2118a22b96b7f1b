// Package gcfloor keeps the Go garbage collector from starting a cycle
// while the heap is small.
//
// With GOGC=100 the next cycle starts when the heap has grown by as much
// as is live. A server whose live heap is small but which allocates fast
// (a bulk load decoding request bodies: about 300 MB/s for a live heap of
// 20–50 MB) then collects ten or more times a second, and every cycle's
// marking takes CPU and assists from whatever request is running: a push
// sent during the load waits for them (BENCHMARKS.md). A floor raises GOGC
// after each cycle so that the next one starts no earlier than the heap
// reaching the floor; once the live heap is large enough, GOGC is back at
// its own value. The soft memory limit (GOMEMLIMIT, --memory-limit) still
// applies and wins.
//
// It is the technique of the GC tuners in use at large Go shops (for
// example bytedance/gopkg's gctuner), in the few lines this server needs.
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// heapMinimum is the runtime's minimum heap goal at GOGC=100 (4 MiB); it
// scales with GOGC, so a GOGC of p never lets the goal fall below
// 4 MiB × p/100.
const heapMinimum = 4 << 20

// Percent is the GOGC that puts the next cycle's heap goal at floor,
// never below base. The runtime's goal is live + (live + roots) × GOGC/100,
// where roots are the goroutine stacks and globals it scans, and at least
// heapMinimum × GOGC/100.
func Percent(base int, live, roots, floor uint64) int {
	if floor == 0 || base < 0 || live >= floor {
		return base
	}
	scan := max(live+roots, 1)
	p := (floor - live) / scan * 100
	p += (floor - live) % scan * 100 / scan
	p = min(p, floor/heapMinimum*100+floor%heapMinimum*100/heapMinimum)
	return max(base, int(p))
}

// Floor is a running floor; Stop ends it.
type Floor struct {
	floor   uint64
	base    int
	stopped atomic.Bool
	mu      sync.Mutex // serializes adjust with Stop
	set     int        // the GOGC last set
	cycles  atomic.Int64
}

// The process's own GOGC, read when the first of the running floors
// started (a test may run several servers in one process): a floor's
// GOGC is never taken for the process's.
var (
	procMu   sync.Mutex
	running  int
	procBase int
)

// Start keeps the heap goal at floor bytes or more until Stop. With a
// floor of 0, or with the collector off (GOGC=off), it does nothing.
func Start(floor uint64) *Floor {
	procMu.Lock()
	if running == 0 {
		procBase = int(readUint(gogcMetric))
	}
	base := procBase
	f := &Floor{floor: floor, base: base, set: base}
	if floor == 0 || base <= 0 {
		procMu.Unlock()
		f.stopped.Store(true)
		return f
	}
	running++
	procMu.Unlock()
	f.adjust()
	f.arm()
	return f
}

// Stop ends the floor; the last running floor to stop restores the
// process's own GOGC.
func (f *Floor) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped.Swap(true) {
		return
	}
	procMu.Lock()
	defer procMu.Unlock()
	if running--; running == 0 {
		debug.SetGCPercent(procBase)
	}
}

// Adjusted is how many times the floor has looked at the heap after a
// cycle (for tests).
func (f *Floor) Adjusted() int64 { return f.cycles.Load() }

// sentinel is garbage whose cleanup runs after the cycle that found it
// unreachable: the hook that re-reads the live heap after every cycle.
type sentinel struct{ _ [64]byte } // not tiny: tiny objects share blocks

func (f *Floor) arm() {
	runtime.AddCleanup(&sentinel{}, func(f *Floor) {
		if f.stopped.Load() {
			return
		}
		f.adjust()
		f.arm()
	}, f)
}

// adjust sets GOGC for the live heap the last cycle left.
func (f *Floor) adjust() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped.Load() {
		return
	}
	f.cycles.Add(1)
	roots := readUint(stacksMetric) + readUint(globalsMetric)
	if p := Percent(f.base, readUint(liveMetric), roots, f.floor); p != f.set {
		debug.SetGCPercent(p)
		f.set = p
	}
}

const (
	gogcMetric    = "/gc/gogc:percent"
	liveMetric    = "/gc/heap/live:bytes"
	stacksMetric  = "/gc/scan/stack:bytes"
	globalsMetric = "/gc/scan/globals:bytes"
)

func readUint(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
