package cluster

import (
	"sync"
	"testing"
	"time"
)

// wakes records what FollowChanges wakes.
type wakes struct {
	mu   sync.Mutex
	apps []uint64
	all  int
}

func (w *wakes) Wake(app uint64) { w.mu.Lock(); w.apps = append(w.apps, app); w.mu.Unlock() }
func (w *wakes) WakeAll()        { w.mu.Lock(); w.all++; w.mu.Unlock() }

func (w *wakes) woken() ([]uint64, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]uint64(nil), w.apps...), w.all
}

// TestFollowChanges: node A's announcement wakes node B's tail for that
// app, and never A's own.
func TestFollowChanges(t *testing.T) {
	url := natsURL(t)
	prefix := testPrefix(t)
	a, b := open(t, url, prefix), open(t, url, prefix)
	var wa, wb wakes
	for _, f := range []struct {
		bus *Bus
		w   *wakes
	}{{a, &wa}, {b, &wb}} {
		sub, err := f.bus.FollowChanges(f.w)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sub.Close)
	}
	if err := a.Flush(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	a.AnnounceChange(1400000001, 5)
	a.AnnounceChange(1400000002, 1)
	waitFor(t, "B woken for both apps", func() bool {
		apps, _ := wb.woken()
		return len(apps) == 2
	})
	if apps, _ := wb.woken(); apps[0] != 1400000001 || apps[1] != 1400000002 {
		t.Fatalf("B woken for %v", apps)
	}
	b.AnnounceChange(1400000003, 1) // a round trip: once A has it, A's own are long delivered
	waitFor(t, "A woken by B", func() bool {
		apps, _ := wa.woken()
		return len(apps) == 1
	})
	if apps, _ := wa.woken(); apps[0] != 1400000003 {
		t.Fatalf("A woken for %v (its own announcements must not wake it)", apps)
	}
}

// TestFollowChangesNilBus: a single node announces nowhere and follows
// nothing.
func TestFollowChangesNilBus(t *testing.T) {
	var b *Bus
	b.AnnounceChange(1, 1)
	sub, err := b.FollowChanges(&wakes{})
	if sub != nil || err != nil {
		t.Fatalf("nil bus: %v, %v", sub, err)
	}
}
