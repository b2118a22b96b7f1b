package deliver

import (
	"sync"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/im"
)

// BenchmarkDeliverEnqueue10k times Deliver alone: 10,000 registered
// connections whose writers only drain their queues (no sockets), so the
// figure is the enqueue-and-wake cost that Deliver adds to the fan-out
// goroutine. BenchmarkDeliver10k measures the whole path over loopback.
//
//	go test -run '^$' -bench BenchmarkDeliverEnqueue10k ./internal/deliver/
func BenchmarkDeliverEnqueue10k(b *testing.B) {
	const n = 10_000
	h := NewHub(nil, nil, Options{}, nil)
	var wg sync.WaitGroup
	conns := make([]*conn, n)
	for i := range conns {
		c := &conn{h: h, app: 1, id: "u", ord: uint32(i), send: make(chan []byte, 256), quit: make(chan struct{})}
		c.live.Store(true) // caught up: live frames are queued
		if !h.register(c, 0) {
			b.Fatal("not registered")
		}
		conns[i] = c
		wg.Go(func() {
			for range c.send {
			}
		})
	}
	aud := roaring.New()
	aud.AddRange(0, n)
	t := im.PushTask{App: 1, ID: "t", From: "ops", Offline: []byte(`{"Title":"x"}`)}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if got := h.Deliver(&t, aud); got != n {
			b.Fatalf("Deliver = %d", got)
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N)/n, "ns/conn")
	b.StopTimer()
	for _, c := range conns {
		close(c.send)
	}
	wg.Wait()
}
