//go:build unix

package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"timd/internal/im"
)

const (
	benchApp      = 1400000001
	benchAccounts = 100_000
	benchBatch    = 100 // edits per ApplyEdits call, as in one set_attr request
	benchWriters  = 8   // concurrent callers
)

// BenchmarkApplyEdits measures durable attribute writes with group commit:
// 8 goroutines each apply batches of 100 OpSetAttrs edits to random
// accounts among 100,000. One b.N iteration is one batch.
func BenchmarkApplyEdits(b *testing.B) {
	benchApplyEdits(b, defaultOptions())
}

// BenchmarkApplyEditsNoGroupCommit is the same-run baseline: the same load
// with one transaction (and one fsync) per batch.
func BenchmarkApplyEditsNoGroupCommit(b *testing.B) {
	opt := defaultOptions()
	opt.maxGroupJobs = 1
	benchApplyEdits(b, opt)
}

// cpuTime returns the CPU time the process has used, which, unlike wall
// time, the load of other processes hardly changes.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type countingSink struct{ n atomic.Int64 }

func (c *countingSink) Apply(ch []im.Change) { c.n.Add(int64(len(ch))) }

func benchApplyEdits(b *testing.B, opt options) {
	ctx := context.Background()
	s, err := open(ctx, b.TempDir(), nil, opt)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var schema im.AttrSchema
	for i := range schema {
		schema[i].Name = fmt.Sprintf("attr%d", i)
	}
	if err := s.PutAttrSchema(ctx, benchApp, schema); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, benchAccounts)
	for i := range ids {
		ids[i] = fmt.Sprintf("user-%06d", i)
	}
	for i := 0; i < len(ids); i += 1000 {
		in := make([]im.AccountInput, 1000)
		for k := range in {
			in[k].UserID = ids[i+k]
		}
		if _, err := s.ImportAccounts(ctx, benchApp, in); err != nil {
			b.Fatal(err)
		}
	}
	// Touch every account once, as a long-running server has, so that the
	// timed part measures the steady state rather than first loads.
	warm := make([]im.Edit, 0, 1000)
	for i, id := range ids {
		warm = append(warm, im.Edit{Account: id, Op: im.OpSetAttrs, Attrs: im.AttrValues{"warm"}})
		if len(warm) == cap(warm) || i == len(ids)-1 {
			if _, err := s.ApplyEdits(ctx, benchApp, warm, im.EditLimits{}); err != nil {
				b.Fatal(err)
			}
			warm = warm[:0]
		}
	}
	sink := &countingSink{}
	s.SetChangeSink(sink)
	commits0, jobs0 := s.w.commits.Load(), s.w.jobsRun.Load()
	run0, commit0 := s.w.runNanos.Load(), s.w.commitNano.Load()
	cpu0 := cpuTime()
	b.SetParallelism((benchWriters + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var seed atomic.Uint64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(seed.Add(1), 42))
		edits := make([]im.Edit, benchBatch)
		for pb.Next() {
			for i := range edits {
				edits[i] = im.Edit{Account: ids[rng.IntN(len(ids))], Op: im.OpSetAttrs}
				edits[i].Attrs[rng.IntN(im.MaxAttrSlots)] = fmt.Sprintf("v%d", rng.IntN(1000))
			}
			errs, err := s.ApplyEdits(ctx, benchApp, edits, im.EditLimits{})
			if err != nil {
				b.Error(err)
				return
			}
			for _, e := range errs {
				if e != nil {
					b.Error(e)
					return
				}
			}
		}
	})
	b.StopTimer()
	cpu := cpuTime() - cpu0
	commits, jobs := s.w.commits.Load()-commits0, s.w.jobsRun.Load()-jobs0
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "edits/s")
	if commits > 0 {
		b.ReportMetric(float64(jobs)/float64(commits), "batches/commit")
		b.ReportMetric(float64(s.w.runNanos.Load()-run0)/float64(commits)/1e6, "run-ms/commit")
		b.ReportMetric(float64(s.w.commitNano.Load()-commit0)/float64(commits)/1e6, "commit-ms/commit")
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*benchBatch), "cpu-µs/edit")
	b.ReportMetric(0, "ns/op")
	_ = sink.n.Load()
}
