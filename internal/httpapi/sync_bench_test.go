package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"syscall"
	"testing"
	"time"

	"timd/internal/im"
)

// BenchmarkSync is one GET /v1/sync of a page of 50 stored pushes (100
// stored, each to the caller), in process through the real handler, the
// real SQLite store and the hub's caches, warm: the per-request cost of
// authentication, the heads read and the answer's encoding, without the
// network. Compare allocs/op and instruction counts (callgrind) across
// commits; wall time is noisy on a shared machine.
func BenchmarkSync(b *testing.B) {
	e := newClientEnv(b)
	alice := e.ordinal("alice")
	now := time.Now()
	for i := range 100 {
		id := fmt.Sprintf("task-%03d", i)
		e.tasks.Add(im.PushTask{App: appA.SDKAppID, ID: id, From: "administrator", CreatedAt: now.Unix(),
			ExpiresAt: now.Add(time.Hour).Unix(), DataID: "d" + id,
			MsgBody: json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"Your order has shipped, it arrives tomorrow"}}]`),
			Offline: json.RawMessage(`{"PushFlag":0,"Title":"Shipping","Desc":"Your order has shipped"}`)}, alice)
	}
	u := e.v1("/v1/sync", appA, "alice", sig(b, appA, "alice"), url.Values{"limit": {"50"}})
	req := httptest.NewRequest(http.MethodGet, u, nil)
	do := func() {
		w := httptest.NewRecorder()
		e.handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK || w.Body.Len() < 5000 {
			b.Fatalf("HTTP %d, %d bytes: %.200s", w.Code, w.Body.Len(), w.Body.String())
		}
	}
	do()
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		do()
	}
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the process's user and system CPU time so far: on a shared
// machine, CPU per op moves far less with the load than wall time does.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
