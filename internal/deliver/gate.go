package deliver

import (
	"context"
	"runtime"
	"sync/atomic"
)

// gate bounds how many catch-ups do their work at once.
//
// Why: after a restart or a network blip every client reconnects in the
// same second, and each connection's catch-up wants to decide what it is
// owed and write it all at once. Unbounded, that is thousands of runnable
// goroutines on a machine with a couple of cores. Go's scheduler has no
// priorities, so the goroutine of a new connection that has just received
// its HTTP request waits in the same run queue behind all of them, and
// when its turn comes later than the server's ReadHeaderTimeout the
// runtime reports the deadline as passed (even though the bytes arrived in
// time) and the server answers the dial with a timeout before timd's
// handler ever ran. Bounded, the catch-ups that wait for their turn are
// parked on a channel, not runnable, so a handshake is queued behind at
// most a few dozen goroutines; the total work is the same, done in turn.
//
// A connection waiting for its turn is never cut off for it: it waits for
// as long as it stays open. Its online-only pushes, revokes and pongs keep
// flowing meanwhile, through its own queue; its stored pushes wait for its
// catch-up, which sends them in Seq order (see catchUp). Waiting is FIFO
// among the waiters (Go's channel send queue), so the first to arrive are
// served first.
type gate struct {
	slots   chan struct{}
	running atomic.Int64 // holders of a slot now; never above cap(slots)
	waiting atomic.Int64 // callers of enter blocked for a slot now
	peak    atomic.Int64 // the most running at once since the hub started
}

// defaultCatchUpsPerCPU times GOMAXPROCS is the default bound
// (Options.CatchUps). A catch-up's work is CPU (audience and ack checks,
// frame writes into the kernel's socket buffer), so a few per core keep
// every core busy while a core is briefly waiting on a store read or a
// slow client's socket; more only lengthen the run queue.
const defaultCatchUpsPerCPU = 8

func defaultCatchUps() int { return defaultCatchUpsPerCPU * runtime.GOMAXPROCS(0) }

func newGate(n int) *gate { return &gate{slots: make(chan struct{}, n)} }

// enter waits for a slot until ctx ends or quit is closed, and reports
// whether it got one; the caller must then call leave.
func (g *gate) enter(ctx context.Context, quit <-chan struct{}) bool {
	select {
	case g.slots <- struct{}{}: // a free slot: no waiting, no bookkeeping
	default:
		g.waiting.Add(1)
		select {
		case g.slots <- struct{}{}:
			g.waiting.Add(-1)
		case <-ctx.Done():
			g.waiting.Add(-1)
			return false
		case <-quit:
			g.waiting.Add(-1)
			return false
		}
	}
	n := g.running.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	return true
}

// leave gives back the slot taken by enter.
func (g *gate) leave() {
	g.running.Add(-1) // before the slot is freed: running never exceeds the bound
	<-g.slots
}
