package service_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"timd/internal/audience"
	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/sqlite"
)

// BenchmarkRebuildIndex measures the start-up rebuild of the audience index
// from the SQLite store: accounts × (10 attributes + 5 tags), read back by
// ScanProfiles and fed through the same Change path as live writes. It
// reports seconds per rebuild and index bytes per account, and as the
// baseline the time of the bare store scan alone. TIMD_BENCH_ACCOUNTS
// sets the size (default 1,000,000).
func BenchmarkRebuildIndex(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("TIMD_BENCH_ACCOUNTS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	dir := b.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	populate(b, ctx, dir, log, n)

	st, err := sqlite.Open(ctx, dir, log)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	// Baseline: the store scan alone.
	t0 := time.Now()
	scanned := 0
	if err := st.ScanProfiles(ctx, 1400000001, func(im.Profile) error { scanned++; return nil }); err != nil {
		b.Fatal(err)
	}
	scan := time.Since(t0)

	b.ResetTimer()
	var idx *audience.Index
	var heap uint64
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		idx = audience.New()
		got, err := service.RebuildIndex(ctx, st, idx)
		if err != nil || got != n {
			b.Fatalf("rebuilt %d of %d: %v", got, n, err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&m1)
		heap = m1.HeapAlloc - m0.HeapAlloc
		b.StartTimer()
	}
	b.ReportMetric(scan.Seconds(), "scan-only-s")
	b.ReportMetric(float64(idx.MemoryBytes(1400000001))/float64(n), "index-B/account")
	b.ReportMetric(float64(heap)/float64(n), "heap-B/account")
}

// populate imports n accounts with 10 attributes and 5 tags each.
func populate(b *testing.B, ctx context.Context, dir string, log *slog.Logger, n int) {
	b.Helper()
	st, err := sqlite.Open(ctx, dir, log)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const app = 1400000001
	if err := st.PutApp(ctx, im.App{SDKAppID: app, SecretKey: "k", Admins: []string{"a"}}); err != nil {
		b.Fatal(err)
	}
	var schema im.AttrSchema
	domains := []int{3, 100, 5, 10, 20, 50, 7, 12, 30, 4}
	for i := range schema {
		schema[i] = im.AttrSlot{Name: fmt.Sprint("attr", i)}
	}
	if err := st.PutAttrSchema(ctx, app, schema); err != nil {
		b.Fatal(err)
	}
	const chunk = 10_000
	for base := 0; base < n; base += chunk {
		in := make([]im.AccountInput, 0, chunk)
		edits := make([]im.Edit, 0, 2*chunk)
		for i := base; i < min(n, base+chunk); i++ {
			id := fmt.Sprintf("user%08d", i)
			in = append(in, im.AccountInput{UserID: id})
			e := im.Edit{Account: id, Op: im.OpSetAttrs}
			for s, d := range domains {
				e.Attrs[s] = fmt.Sprint("v", (i*7+s*13)%d)
			}
			tags := make([]string, 5)
			for t := range tags {
				tags[t] = fmt.Sprint("tag", (i*31+t*17)%200)
			}
			edits = append(edits, e, im.Edit{Account: id, Op: im.OpReplaceTags, Tags: tags})
		}
		if _, err := st.ImportAccounts(ctx, app, in); err != nil {
			b.Fatal(err)
		}
		errs, err := st.ApplyEdits(ctx, app, edits, im.EditLimits{})
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range errs {
			if e != nil {
				b.Fatal(e)
			}
		}
	}
}
