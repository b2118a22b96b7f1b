package deliver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/coder/websocket"

	"timd/internal/deliver"
	"timd/internal/deliver/delivertest"
	"timd/internal/im"
)

// Environment of the client process of BenchmarkDeliver10k.
const (
	benchURLEnv     = "TIMD_BENCH_WS_URL"
	benchClientsEnv = "TIMD_BENCH_CLIENTS"
)

// BenchmarkDeliver10k connects 10,000 real WebSocket clients over
// loopback, then times one Deliver to all of them per iteration: from the
// Deliver call until each client has read and decoded the frame. The
// clients run in a child process (this test binary, TestBenchClients) so
// that neither process needs more than ~10k descriptors; both read the
// same wall clock. Reported: p50/p99 receive latency (mean over
// iterations), the worst latency of any iteration, and the wall time of
// the Deliver call. On a small machine the call's wall time approaches the
// p50: the 10k writers it wakes compete with it for the CPUs (its own work
// is BenchmarkDeliverEnqueue10k's).
//
//	go test -run '^$' -bench BenchmarkDeliver10k -benchtime 20x ./internal/deliver/
func BenchmarkDeliver10k(b *testing.B) {
	const n = 10_000
	raiseFileLimit(b)
	tasks := delivertest.OpenFaulty(b)
	hub := deliver.NewHub(tasks, nil, deliver.Options{PingInterval: time.Hour}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hub.Start(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ord, _ := strconv.ParseUint(r.URL.Query().Get("ord"), 10, 32)
		hub.Accept(w, r, im.App{SDKAppID: testApp}, im.Account{ID: "u" + r.URL.Query().Get("ord"), Ordinal: uint32(ord)}, "Web")
	}))
	defer func() { srv.Close(); hub.Stop() }()

	child := exec.Command(os.Args[0], "-test.run=^TestBenchClients$")
	child.Env = append(os.Environ(), benchURLEnv+"="+strings.Replace(srv.URL, "http", "ws", 1), benchClientsEnv+"="+strconv.Itoa(n))
	child.Stderr = os.Stderr
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); _ = child.Wait() }()
	lines := bufio.NewScanner(stdout)
	waitLine(b, lines, "ready")
	for hub.Stats().Connections < n {
		time.Sleep(10 * time.Millisecond)
	}
	aud := roaring.New()
	aud.AddRange(1, n+1)

	var p50, p99, worst, call time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		t := im.PushTask{App: testApp, ID: fmt.Sprint("bench", i), From: "ops", OnlineOnly: true,
			DataID: strconv.FormatInt(start.UnixNano(), 10), Offline: json.RawMessage(`{"Title":"bench","Desc":"10k"}`)}
		if got := hub.Deliver(&t, aud); got != n {
			b.Fatalf("Deliver reached %d, want %d", got, n)
		}
		call += time.Since(start)
		f := strings.Fields(waitLine(b, lines, "done "+t.ID))
		p50 += parseDur(b, f[2])
		p99 += parseDur(b, f[3])
		worst = max(worst, parseDur(b, f[4]))
	}
	b.StopTimer()
	per := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
	b.ReportMetric(per(p50), "p50-ms")
	b.ReportMetric(per(p99), "p99-ms")
	b.ReportMetric(float64(worst)/1e6, "max-ms")
	b.ReportMetric(per(call), "deliver-call-ms")
	if s := hub.Stats(); s.SlowDrops != 0 {
		b.Fatalf("%d slow-consumer drops", s.SlowDrops)
	}
}

// TestBenchClients is BenchmarkDeliver10k's client process; it is skipped
// unless the benchmark started it. It connects the clients, prints
// "ready", then for each push prints "done <TaskId> <p50> <p99> <max>"
// once every client has received it, until stdin closes.
func TestBenchClients(t *testing.T) {
	base := os.Getenv(benchURLEnv)
	if base == "" {
		t.Skip("run by BenchmarkDeliver10k")
	}
	raiseFileLimit(t)
	n, _ := strconv.Atoi(os.Getenv(benchClientsEnv))
	type recv struct {
		task string
		lat  time.Duration
	}
	got := make(chan recv, n)
	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, fmt.Sprintf("%s/?ord=%d", base, i+1), nil)
			if err != nil {
				fmt.Fprintln(os.Stderr, "dial:", err)
				os.Exit(1)
			}
			conns[i] = ws
		}()
	}
	wg.Wait()
	for _, ws := range conns {
		go func() {
			var f struct{ TaskId, DataId string }
			for {
				_, b, err := ws.Read(context.Background())
				if err != nil {
					return
				}
				now := time.Now().UnixNano()
				if json.Unmarshal(b, &f) == nil {
					sent, _ := strconv.ParseInt(f.DataId, 10, 64)
					got <- recv{f.TaskId, time.Duration(now - sent)}
				}
			}
		}()
	}
	fmt.Println("ready")
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
	lats := map[string][]time.Duration{}
	for r := range got {
		lats[r.task] = append(lats[r.task], r.lat)
		if l := lats[r.task]; len(l) == n {
			slices.Sort(l)
			fmt.Printf("done %s %s %s %s\n", r.task, l[n/2], l[n*99/100], l[n-1])
			delete(lats, r.task)
		}
	}
}

// waitLine returns the next line of s that starts with prefix.
func waitLine(b *testing.B, s *bufio.Scanner, prefix string) string {
	for s.Scan() {
		if strings.HasPrefix(s.Text(), prefix) {
			return s.Text()
		}
	}
	b.Fatalf("client process ended before %q: %v", prefix, s.Err())
	return ""
}

func parseDur(b *testing.B, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// raiseFileLimit lifts the soft descriptor limit to the hard one.
func raiseFileLimit(tb testing.TB) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatal(err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatal(err)
	}
	if lim.Cur < 10_500 {
		tb.Skipf("descriptor limit %d is too low for 10k connections", lim.Cur)
	}
}
