package audience

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// benchSnapAccounts is the size of BenchmarkReadSnapshot's index:
// TIMD_BENCH_SNAPSHOT_ACCOUNTS, default 1,000,000 (the figure is at
// 10,000,000).
func benchSnapAccounts() int {
	if n, err := strconv.Atoi(os.Getenv("TIMD_BENCH_SNAPSHOT_ACCOUNTS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// BenchmarkReadSnapshot reads a snapshot of an index of
// benchSnapAccounts accounts from memory: the parse and the dictionary,
// without the disk.
func BenchmarkReadSnapshot(b *testing.B) {
	x := benchIndex(benchSnapAccounts())
	var buf bytes.Buffer
	if _, err := x.Snapshot("bench").WriteTo(&buf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		s, err := ParseSnapshot(buf.Bytes())
		if err != nil || s.Count(1) != uint64(benchSnapAccounts()) {
			b.Fatal(err)
		}
	}
	// CPU time says more than wall time on a shared machine.
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
