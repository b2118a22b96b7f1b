package service_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"timd/internal/deliver"
	"timd/internal/deliver/delivertest"
	"timd/internal/im"
	"timd/internal/service"
)

const app = 1400000001

// addConcurrently stores tasks from 16 goroutines, so that the real store
// commits them in groups (one fsync per group, not per task), and returns
// them as stored: their Seq order is the order the store chose.
func addConcurrently(tasks *delivertest.Faulty, ts []im.PushTask, ords [][]uint32) []im.PushTask {
	out := make([]im.PushTask, len(ts))
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				out[i] = tasks.Add(ts[i], ords[i]...)
			}
		})
	}
	for i := range ts {
		next <- i
	}
	close(next)
	wg.Wait()
	slices.SortFunc(out, func(a, b im.PushTask) int { return int(a.Seq - b.Seq) })
	return out
}

func TestInboxSync(t *testing.T) {
	ctx := context.Background()
	tasks := delivertest.OpenFaulty(t)
	inbox := service.NewInbox(tasks, deliver.NewAudienceCache(tasks, 0))
	later := time.Now().Add(time.Hour).Unix()
	// Account 7 is in every third task among many addressed to others.
	var ts []im.PushTask
	var ords [][]uint32
	for i := range 1200 {
		ts = append(ts, im.PushTask{App: app, ID: fmt.Sprint("t", i), ExpiresAt: later})
		if i%3 == 0 {
			ords = append(ords, []uint32{1, 7})
		} else {
			ords = append(ords, []uint32{1, 2})
		}
	}
	var want []string
	for _, tk := range addConcurrently(tasks, ts, ords) {
		var n int
		if _, err := fmt.Sscanf(tk.ID, "t%d", &n); err != nil {
			t.Fatal(err)
		}
		if n%3 == 0 {
			want = append(want, tk.ID)
		}
	}
	a := im.App{SDKAppID: app}
	var got []string
	cursor, calls := int64(0), 0
	for {
		pushes, next, complete, err := inbox.Sync(ctx, a, im.Account{ID: "u7", Ordinal: 7}, cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		calls++
		if len(pushes) > 7 || next < cursor || (len(pushes) == 0 && !complete && next == cursor) {
			t.Fatalf("call %d: %d pushes, cursor %d → %d, complete %v", calls, len(pushes), cursor, next, complete)
		}
		for _, p := range pushes {
			got = append(got, p.ID)
		}
		cursor = next
		if complete {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("synced %d pushes, want %d", len(got), len(want))
	}

	// Nobody's: the scan is bounded, then the cursor moves on.
	pushes, next, complete, err := inbox.Sync(ctx, a, im.Account{Ordinal: 99}, 0, 200)
	if err != nil || len(pushes) != 0 || complete || next != 1000 {
		t.Fatalf("bounded scan: %d pushes, next %d, complete %v, %v", len(pushes), next, complete, err)
	}
}

func TestInboxLimitsAndErrors(t *testing.T) {
	ctx := context.Background()
	tasks := delivertest.OpenFaulty(t)
	inbox := service.NewInbox(tasks, deliver.NewAudienceCache(tasks, 0))
	var ts []im.PushTask
	var ords [][]uint32
	for i := range 300 {
		ts = append(ts, im.PushTask{App: app, ID: fmt.Sprint("t", i)})
		ords = append(ords, []uint32{1})
	}
	addConcurrently(tasks, ts, ords)
	a, acct := im.App{SDKAppID: app}, im.Account{Ordinal: 1}
	for _, tc := range []struct{ limit, want int }{{0, 50}, {1, 1}, {200, 200}, {500, 200}} {
		pushes, _, _, err := inbox.Sync(ctx, a, acct, 0, tc.limit)
		if err != nil || len(pushes) != tc.want {
			t.Fatalf("limit %d: %d pushes, %v; want %d", tc.limit, len(pushes), err, tc.want)
		}
	}
	// Exactly the last push: complete at once.
	pushes, next, complete, err := inbox.Sync(ctx, a, acct, 299, 1)
	if err != nil || len(pushes) != 1 || next != 300 || !complete {
		t.Fatalf("last push: %d, %d, %v, %v", len(pushes), next, complete, err)
	}
	for _, c := range []struct {
		cursor int64
		limit  int
	}{{-1, 10}, {0, -1}} {
		if _, _, _, err := inbox.Sync(ctx, a, acct, c.cursor, c.limit); im.CodeOf(err) != im.CodeAccountBadParam {
			t.Fatalf("Sync(%d, %d) error %v, want 70402", c.cursor, c.limit, err)
		}
	}
	boom := errors.New("boom")
	tasks.SetFail(boom)
	if _, _, _, err := inbox.Sync(ctx, a, acct, 0, 10); !errors.Is(err, boom) {
		t.Fatalf("store failure: %v", err)
	}
}

func TestInboxCorruptAudience(t *testing.T) {
	tasks := delivertest.OpenFaulty(t)
	tasks.Add(im.PushTask{App: app, ID: "good"}, 1)
	bad := im.PushTask{App: app, ID: "bad", State: im.TaskDone, Audience: []byte("not a bitmap")}
	if _, _, err := tasks.CreateTask(context.Background(), bad, time.Now().Unix(), im.TaskLimits{}); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := service.NewInbox(tasks, deliver.NewAudienceCache(tasks, 0)).Sync(context.Background(), im.App{SDKAppID: app}, im.Account{Ordinal: 1}, 0, 10)
	if err == nil {
		t.Fatal("a corrupt audience was not reported")
	}
}

// TestInboxUsesGivenCache: the inbox decodes audiences through the cache
// it is given, the one serve shares with the live hub, instead of a
// second cache of its own.
func TestInboxUsesGivenCache(t *testing.T) {
	tasks := delivertest.OpenFaulty(t)
	tasks.Add(im.PushTask{App: app, ID: "t1", ExpiresAt: time.Now().Add(time.Hour).Unix()}, 3)
	shared := deliver.NewAudienceCache(tasks, 0)
	pushes, _, _, err := service.NewInbox(tasks, shared).Sync(context.Background(), im.App{SDKAppID: app}, im.Account{Ordinal: 3}, 0, 10)
	if err != nil || len(pushes) != 1 {
		t.Fatalf("Sync = %d pushes, %v", len(pushes), err)
	}
	if bm, ok := shared.Lookup(app, "t1"); !ok || !bm.Contains(3) {
		t.Fatal("the inbox did not decode through the shared cache")
	}
}
