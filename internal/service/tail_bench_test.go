package service_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"timd/internal/testenv"
	"time"

	"timd/internal/cluster"
	"timd/internal/im"
	"timd/internal/service"
)

// directWake is a perfect wake-up channel between two in-process nodes:
// the writer's announcement wakes the reader's tail at once (what NATS
// does between processes, minus the network hop).
type directWake struct{ to *service.IndexTail }

func (d directWake) AnnounceChange(app, _ uint64) { d.to.Wake(app) }

// natsPrefix keeps this test run's subjects apart from others'.
var natsPrefix = fmt.Sprintf("timdtail%d", time.Now().UnixNano())

// openBus connects one node to TIMD_TEST_NATS.
func openBus(tb testing.TB) *cluster.Bus {
	bus, err := cluster.Open(cluster.Options{URL: os.Getenv("TIMD_TEST_NATS"), Prefix: natsPrefix}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(bus.Close)
	if err := bus.Flush(10 * time.Second); err != nil {
		tb.Fatal(err)
	}
	return bus
}

// BenchmarkTailLag measures the index catch-up lag between two nodes on
// one PostgreSQL database (TIMD_TEST_POSTGRES): node A sets a tag on one
// account, then the clock runs until node B's index has reached A's
// change position. Each op is one write and its catch-up. It reports the
// lag's p50 and p99 and, as the same-run baseline, the p50 and p99 of the
// write through A itself (the transaction and A's own index apply), for
// B tailing with a 100 ms poll only, with an in-process wake-up from A,
// and with A's announcement through NATS (TIMD_TEST_NATS).
func BenchmarkTailLag(b *testing.B) {
	for _, mode := range []string{"poll-100ms", "wake", "nats"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "nats" {
				testenv.NATSURL(b) // skips without NATS
			}
			poll := 100 * time.Millisecond
			if mode != "poll-100ms" {
				poll = time.Hour // only the wake-up moves B
			}
			a, bn := twoNodes(b, service.TailConfig{Poll: poll})
			switch mode {
			case "wake":
				a.tail.SetAnnouncer(directWake{to: bn.tail})
			case "nats":
				a.tail.SetAnnouncer(openBus(b))
				sub, err := openBus(b).FollowChanges(bn.tail)
				if err != nil {
					b.Fatal(err)
				}
				defer sub.Close()
			}
			a.importUsers(b, 0, 1000)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := bn.tail.CatchUp(ctx, tailApp); err != nil {
				b.Fatal(err)
			}
			bn.tail.Start(ctx)
			defer bn.tail.Stop()
			lags := make([]time.Duration, 0, b.N)
			writes := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				a.edit(b, im.Edit{Account: fmt.Sprint("u", i%1000), Op: im.OpAddTags, Tags: []string{fmt.Sprint("t", i%50)}})
				t1 := time.Now()
				want := a.idx.Position(tailApp)
				for bn.idx.Position(tailApp) < want {
					time.Sleep(200 * time.Microsecond)
				}
				lags = append(lags, time.Since(t1))
				writes = append(writes, t1.Sub(t0))
			}
			b.StopTimer()
			pct := func(d []time.Duration, p float64) float64 {
				slices.Sort(d)
				return float64(d[int(float64(len(d)-1)*p)].Microseconds()) / 1000
			}
			b.ReportMetric(pct(lags, 0.50), "lag-p50-ms")
			b.ReportMetric(pct(lags, 0.99), "lag-p99-ms")
			b.ReportMetric(pct(writes, 0.50), "write-p50-ms")
			b.ReportMetric(pct(writes, 0.99), "write-p99-ms")
		})
	}
}
