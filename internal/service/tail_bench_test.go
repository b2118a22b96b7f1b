package service_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"timd/internal/im"
	"timd/internal/service"
)

// directWake is a perfect wake-up channel between two in-process nodes:
// the writer's announcement wakes the reader's tail at once (what NATS
// does between processes, minus the network hop).
type directWake struct{ to *service.IndexTail }

func (d directWake) AnnounceChange(app, _ uint64) { d.to.Wake(app) }

// BenchmarkTailLag measures the index catch-up lag between two nodes on
// one PostgreSQL database (TIMD_TEST_POSTGRES): node A sets a tag on one
// account, then the clock runs until node B's index has reached A's
// change position. Each op is one write and its catch-up. It reports the
// lag's p50 and p99 and, as the same-run baseline, the p50 and p99 of the
// write through A itself (the transaction and A's own index apply), for
// B tailing with a 100 ms poll only and with a wake-up from A.
func BenchmarkTailLag(b *testing.B) {
	for _, mode := range []string{"poll-100ms", "wake"} {
		b.Run(mode, func(b *testing.B) {
			poll := 100 * time.Millisecond
			if mode == "wake" {
				poll = time.Hour // only the wake-up moves B
			}
			a, bn := twoNodes(b, service.TailConfig{Poll: poll})
			if mode == "wake" {
				a.tail.SetAnnouncer(directWake{to: bn.tail})
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
