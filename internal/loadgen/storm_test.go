package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"timd/internal/deliver"
	"timd/internal/deliver/delivertest"
	"timd/internal/im"
)

const stormTestApp = 1400000001

// stormHub serves a real deliver.Hub over the SQLite task store, holding
// stored pushes (StormConditions) addressed by ProfileOf to n clients, for
// the storm client: client i is account i with ordinal i+1 (the
// authenticated /v1/connect stands in as ?id=&ord=, as in deliver's
// harness). It returns the server's ws:// base, the pushes and the store.
func stormHub(t *testing.T, n, stored int) (string, []StoredPush, *deliver.Hub, *delivertest.Faulty) {
	t.Helper()
	tasks := delivertest.OpenFaulty(t)
	now := time.Now()
	var pushes []StoredPush
	for k := range stored {
		p := StoredPush{TaskID: fmt.Sprint("task", k), Cond: StormConditions(k)}
		var ords []uint32
		for i := range n {
			if p.Cond.Matches(ProfileOf(i)) {
				ords = append(ords, uint32(i+1))
			}
		}
		tasks.Add(im.PushTask{App: stormTestApp, ID: p.TaskID, Kind: im.PushCondition, From: "administrator",
			MsgBody:   json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"bench"}}]`),
			CreatedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()}, ords...)
		pushes = append(pushes, p)
	}
	hub := deliver.NewHub(tasks, nil, deliver.Options{AckInterval: 10 * time.Millisecond},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	hub.Start(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ord, _ := strconv.ParseUint(r.URL.Query().Get("ord"), 10, 32)
		hub.Accept(w, r, im.App{SDKAppID: stormTestApp}, im.Account{ID: r.URL.Query().Get("id"), Ordinal: uint32(ord)}, "Web")
	}))
	t.Cleanup(func() {
		srv.Close()
		hub.Stop()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http"), pushes, hub, tasks
}

// owedTotal is the pushes the first n storm clients are owed in all.
func owedTotal(pushes []StoredPush, n int) int {
	total := 0
	for i := range n {
		total += len(Owed(pushes, i))
	}
	return total
}

// checkStorm checks a storm in which every client is owed pushes from
// pages pages of StormPage: all caught up, nothing missing, repeated or
// closed, and, batched, one message per client and page, else one per push.
func checkStorm(t *testing.T, r StormResult, n, total, pages int, batch bool) {
	t.Helper()
	frames := total
	if batch {
		frames = n * pages
	}
	if r.CaughtUp != n || r.Missing != 0 || r.Closed != 0 || r.Repeats != 0 || r.Pushes != total || r.Frames != frames || r.Batched != batch {
		t.Fatalf("%v\nwant %d caught up, %d pushes in %d frames, nothing missing, closed or repeated", r, n, total, frames)
	}
}

// TestStormAgainstHub runs the storm client against a real hub, batched
// and not: every client gets every owed push once, batched in one pushes
// message per catch-up page, and its acks (batched or single) record
// every delivery.
func TestStormAgainstHub(t *testing.T) {
	const n, stored = 40, 150 // two catch-up pages
	for _, batch := range []bool{true, false} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) {
			base, pushes, _, tasks := stormHub(t, n, stored)
			urls := make([]string, n)
			for i := range urls {
				urls[i] = fmt.Sprintf("%s/?id=live%d&ord=%d", base, i, i+1)
				if batch {
					urls[i] += "&batch=1"
				}
			}
			r := storm(context.Background(), urls, pushes, 100*time.Millisecond, 20*time.Second, batch)
			checkStorm(t, r, n, owedTotal(pushes, n), 2, batch)
			for k, p := range pushes {
				want := 0
				for i := range n {
					if p.Cond.Matches(ProfileOf(i)) {
						want++
					}
				}
				deadline := time.Now().Add(10 * time.Second)
				for {
					c, err := tasks.Counts(context.Background(), stormTestApp, p.TaskID)
					if err == nil && c.Delivered == int64(want) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("push %d: %+v, %v; want %d delivered (acked)", k, c, err, want)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
}

// TestStormBaselineBatches: the bare baseline writes what timd would —
// batched, one pushes message per client and StormPage stored pushes —
// and the storm client reads it all, batched or not.
func TestStormBaselineBatches(t *testing.T) {
	const n, stored = 40, 150
	var pushes []StoredPush
	for k := range stored {
		pushes = append(pushes, StoredPush{TaskID: fmt.Sprint("task", k), Cond: StormConditions(k)})
	}
	var spec bytes.Buffer
	if err := WriteStormSpec(&spec, pushes, "administrator"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := make(chan string, 1)
	go func() { _ = ServeStormBaseline(ctx, &spec, func(a string) { addr <- a }) }()
	a := <-addr
	for _, batch := range []bool{true, false} {
		r := StormBaseline(ctx, a, n, pushes, 100*time.Millisecond, 20*time.Second, batch)
		checkStorm(t, r, n, owedTotal(pushes, n), 2, batch)
	}
}
