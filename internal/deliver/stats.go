package deliver

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats are the hub's counters since it was created.
type Stats struct {
	Connections       int64  // live connections now
	FramesSent        uint64 // frames written to clients (push, revoke, pong, caughtup)
	SlowDrops         uint64 // connections closed because their queue was full
	HeartbeatTimeouts uint64 // connections closed for not answering a ping
	AcksRecorded      uint64 // ack and click ordinals written to the task store
	CatchUpRetries    uint64 // catch-up store reads that failed and were retried
	CatchUpsRunning   int64  // catch-ups holding a slot now (at most Options.CatchUps)
	CatchUpsWaiting   int64  // catch-ups waiting for a slot now
	CatchUpsPeak      int64  // the most catch-ups that held a slot at once
}

type stats struct {
	conns      atomic.Int64
	frames     atomic.Uint64
	slow       atomic.Uint64
	heartbeats atomic.Uint64
	acks       atomic.Uint64
	retries    atomic.Uint64
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	return Stats{
		Connections:       h.stats.conns.Load(),
		FramesSent:        h.stats.frames.Load(),
		SlowDrops:         h.stats.slow.Load(),
		HeartbeatTimeouts: h.stats.heartbeats.Load(),
		AcksRecorded:      h.stats.acks.Load(),
		CatchUpRetries:    h.stats.retries.Load(),
		CatchUpsRunning:   h.catchUps.running.Load(),
		CatchUpsWaiting:   h.catchUps.waiting.Load(),
		CatchUpsPeak:      h.catchUps.peak.Load(),
	}
}

// register exposes the counters as Prometheus metrics on reg.
func (s *stats) register(reg prometheus.Registerer, g *gate) {
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "timd_deliver_connections",
			Help: "Live client WebSocket connections.",
		}, func() float64 { return float64(s.conns.Load()) }),
		counter("timd_deliver_frames_sent_total", "Frames written to client connections.", &s.frames),
		counter("timd_deliver_slow_consumer_drops_total", "Connections closed because their send queue was full.", &s.slow),
		counter("timd_deliver_heartbeat_timeouts_total", "Connections closed for not answering a ping in time.", &s.heartbeats),
		counter("timd_deliver_acks_recorded_total", "Ack and click ordinals written to the task store.", &s.acks),
		counter("timd_deliver_catchup_retries_total", "Catch-up store reads that failed and were retried.", &s.retries),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "timd_deliver_catchups_running",
			Help: "Catch-ups checking and writing a page now (at most the hub's bound).",
		}, func() float64 { return float64(g.running.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "timd_deliver_catchups_waiting",
			Help: "Catch-ups waiting for their turn now.",
		}, func() float64 { return float64(g.waiting.Load()) }),
	)
}
