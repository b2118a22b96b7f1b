package storetest

import (
	"fmt"
	"sync"
	"testing"

	"timd/internal/im"
)

// Push limits checked inside the task's transaction (im.TaskLimits), the
// rules every backend shares:
//
//   - the MsgRandom check comes first: a repeat inside the interval
//     returns the first task rather than 90024;
//   - the interval (90024) and the daily quota (90047) are per app and
//     kind; a refused task writes nothing and does not move the interval;
//   - the quota counts the UTC day of TaskLimits.NowMs, including tasks
//     created earlier that day with no limits (a zero TaskLimits), and
//     starts again at the next day;
//   - every created task is recorded, even with zero limits, so that
//     limits turned on later see it;
//   - the revoke interval (90051) is per app; a refused or failed revoke
//     (90049, 90050) does not move it;
//   - the state survives a reopen;
//   - through two handles (PostgreSQL nodes), of simultaneous creators
//     inside one interval exactly one wins, N concurrent creators never
//     go over the quota, and of simultaneous revokes inside one interval
//     exactly one wins.

// limitBase is a fixed clock (unix ms, 08:00 UTC) so that no case runs
// across a UTC midnight.
const limitBase int64 = 1_799_971_200_000 + 8*3600*1000

// limited creates a task with MsgRandom random at ms through f with lim
// (NowMs set to ms) and returns whether it was created and the error code.
func (f *fixture) limited(kind im.PushKind, id string, random uint32, ms int64, lim im.TaskLimits) (bool, int, error) {
	t := pushTask(testApp, id, random, ms/1000, 1)
	t.Kind = kind
	lim.NowMs = ms
	_, created, err := f.s.CreateTask(f.ctx, t, ms/1000-60, lim)
	if err != nil {
		if code := im.CodeOf(err); code != 0 {
			return false, code, nil
		}
		return false, 0, err
	}
	return created, 0, nil
}

func (f *fixture) wantLimited(kind im.PushKind, id string, random uint32, ms int64, lim im.TaskLimits, wantCode int) {
	f.t.Helper()
	created, code, err := f.limited(kind, id, random, ms, lim)
	if err != nil {
		f.t.Fatalf("CreateTask(%s): %v", id, err)
	}
	if code != wantCode || created != (wantCode == 0) {
		f.t.Fatalf("CreateTask(%s) at +%d ms: created %v, code %d; want code %d", id, ms-limitBase, created, code, wantCode)
	}
	if _, err := f.s.Task(f.ctx, testApp, id); (err == nil) != (wantCode == 0) {
		f.t.Fatalf("Task(%s) after code %d: %v", id, code, err)
	}
}

func (h harness) testPushInterval(t *testing.T) {
	f := h.fresh(t)
	iv := im.TaskLimits{IntervalMs: 1000}
	f.wantLimited(im.PushCondition, "p1", 1, limitBase, iv, 0)
	f.wantLimited(im.PushCondition, "p2", 2, limitBase+999, iv, im.CodePushTooFrequent)
	// A MsgRandom repeat inside the interval is answered with the first task.
	got, created, err := f.s.CreateTask(f.ctx, pushTask(testApp, "p1again", 1, limitBase/1000, 1), limitBase/1000-60,
		im.TaskLimits{NowMs: limitBase + 10, IntervalMs: 1000})
	if err != nil || created || got.ID != "p1" {
		t.Fatalf("MsgRandom repeat inside the interval = %s created %v, %v; want p1, not created", got.ID, created, err)
	}
	// The kinds and the apps are apart.
	f.wantLimited(im.PushLegacy, "l1", 3, limitBase+500, iv, 0)
	other := pushTask(otherApp, "o1", 4, limitBase/1000, 1)
	if _, created, err := f.s.CreateTask(f.ctx, other, 0, im.TaskLimits{NowMs: limitBase + 500, IntervalMs: 1000}); err != nil || !created {
		t.Fatalf("another app's push inside the interval: created %v, %v", created, err)
	}
	// The refused p2 did not move the interval: 1000 ms after p1 passes.
	f.wantLimited(im.PushCondition, "p3", 5, limitBase+1000, iv, 0)
	// A task made with no limits (NowMs set) is still recorded.
	f.wantLimited(im.PushCondition, "p4", 6, limitBase+5000, im.TaskLimits{}, 0)
	f.wantLimited(im.PushCondition, "p5", 7, limitBase+5500, iv, im.CodePushTooFrequent)
	f.reopen()
	f.wantLimited(im.PushCondition, "p6", 8, limitBase+5900, iv, im.CodePushTooFrequent)
	f.wantLimited(im.PushCondition, "p7", 9, limitBase+6000, iv, 0)
}

func (h harness) testPushQuota(t *testing.T) {
	f := h.fresh(t)
	// Two tasks made before limits were checked (zero TaskLimits) count.
	f.create(pushTask(testApp, "old1", 100, limitBase/1000-3600), 0)
	f.create(pushTask(testApp, "old2", 101, limitBase/1000-60), 0)
	// Yesterday's do not.
	f.create(pushTask(testApp, "yday", 102, limitBase/1000-86400), 0)
	q := im.TaskLimits{PerDay: 4}
	f.wantLimited(im.PushCondition, "q1", 1, limitBase, q, 0)
	f.wantLimited(im.PushCondition, "q2", 2, limitBase+1, q, 0)
	f.wantLimited(im.PushCondition, "q3", 3, limitBase+2, q, im.CodeDailyQuota)
	// Another kind has its own count.
	f.wantLimited(im.PushLegacy, "l1", 4, limitBase+3, q, 0)
	f.reopen()
	f.wantLimited(im.PushCondition, "q4", 5, limitBase+4, q, im.CodeDailyQuota)
	if n, err := f.s.CountKind(f.ctx, testApp, im.PushCondition, limitBase/1000-8*3600); err != nil || n != 4 {
		t.Fatalf("CountKind today = %d, %v; want 4 (old1, old2, q1, q2)", n, err)
	}
	// The next UTC day starts again.
	next := limitBase + 86400*1000
	f.wantLimited(im.PushCondition, "n1", 6, next, q, 0)
	f.wantLimited(im.PushCondition, "n2", 7, next+1, q, 0)
	f.wantLimited(im.PushCondition, "n3", 8, next+2, q, 0)
	f.wantLimited(im.PushCondition, "n4", 9, next+3, q, 0)
	f.wantLimited(im.PushCondition, "n5", 10, next+4, q, im.CodeDailyQuota)
}

func (h harness) testRevokeInterval(t *testing.T) {
	f := h.fresh(t)
	for i, id := range []string{"r1", "r2", "r3"} {
		f.create(pushTask(testApp, id, uint32(i+1), limitBase/1000, 1), 0)
	}
	revoke := func(id string, ms int64) int {
		err := f.s.RevokeTask(f.ctx, testApp, id, ms/1000, nil, im.TaskLimits{NowMs: ms, IntervalMs: 1000})
		if err != nil && im.CodeOf(err) == 0 {
			t.Fatalf("RevokeTask(%s): %v", id, err)
		}
		return im.CodeOf(err)
	}
	if c := revoke("r1", limitBase); c != 0 {
		t.Fatalf("first revoke: code %d", c)
	}
	if c := revoke("r2", limitBase+999); c != im.CodeRevokeTooFrequent {
		t.Fatalf("revoke inside the interval: code %d, want %d", c, im.CodeRevokeTooFrequent)
	}
	if got := f.task(testApp, "r2"); got.State == im.TaskRevoked {
		t.Fatal("a revoke refused with 90051 revoked the task")
	}
	// Failed revokes do not move the interval.
	if c := revoke("nope", limitBase+1000); c != im.CodeTaskNotFound {
		t.Fatalf("unknown task: code %d", c)
	}
	if c := revoke("r1", limitBase+1001); c != im.CodeTaskRevoked {
		t.Fatalf("revoked task: code %d", c)
	}
	f.reopen()
	if c := revoke("r2", limitBase+1002); c != 0 {
		t.Fatalf("revoke after the interval (failed ones in between): code %d", c)
	}
	if c := revoke("r3", limitBase+1500); c != im.CodeRevokeTooFrequent {
		t.Fatalf("revoke inside the interval after a reopen: code %d", c)
	}
	// Another app's revokes are apart; a zero TaskLimits checks nothing.
	f.create(pushTask(otherApp, "x", 1, limitBase/1000, 1), 0)
	if err := f.s.RevokeTask(f.ctx, otherApp, "x", limitBase/1000, nil, im.TaskLimits{NowMs: limitBase + 1500, IntervalMs: 1000}); err != nil {
		t.Fatalf("another app's revoke: %v", err)
	}
	if err := f.s.RevokeTask(f.ctx, testApp, "r3", limitBase/1000, nil, im.TaskLimits{}); err != nil {
		t.Fatalf("revoke with no limits: %v", err)
	}
}

// race runs n creators (or revokers) through both handles at once and
// counts the successes and each refusal code.
func race(t *testing.T, n int, a, b *fixture, fn func(i int, f *fixture) error) (won int, codes map[int]int) {
	var mu sync.Mutex
	codes = map[int]int{}
	both(n, a, b, func(i int, f *fixture) {
		err := fn(i, f)
		mu.Lock()
		defer mu.Unlock()
		switch code := im.CodeOf(err); {
		case err == nil:
			won++
		case code != 0:
			codes[code]++
		default:
			t.Errorf("%d: %v", i, err)
		}
	})
	return won, codes
}

func (h harness) testTwoInterval(t *testing.T) {
	a, b := h.two(t)
	for _, n := range []int{2, 10} {
		base := limitBase + int64(n)*60_000
		won, codes := race(t, n, a, b, func(i int, f *fixture) error {
			tk := pushTask(testApp, fmt.Sprintf("i%d_%d", n, i), uint32(1000*n+i), base/1000, 1)
			_, _, err := f.s.CreateTask(f.ctx, tk, base/1000-60, im.TaskLimits{NowMs: base + int64(i), IntervalMs: 30_000})
			return err
		})
		if won != 1 || codes[im.CodePushTooFrequent] != n-1 {
			t.Fatalf("%d simultaneous pushes inside the interval through two handles: %d created, refusals %v; want 1 and %d×90024",
				n, won, codes, n-1)
		}
	}
}

func (h harness) testTwoQuota(t *testing.T) {
	a, b := h.two(t)
	const n, quota = 24, 7
	won, codes := race(t, n, a, b, func(i int, f *fixture) error {
		tk := pushTask(testApp, fmt.Sprintf("q%d", i), uint32(i+1), limitBase/1000, 1)
		_, _, err := f.s.CreateTask(f.ctx, tk, limitBase/1000-60, im.TaskLimits{NowMs: limitBase + int64(i), PerDay: quota})
		return err
	})
	if won != quota || codes[im.CodeDailyQuota] != n-quota {
		t.Fatalf("%d concurrent creators, quota %d: %d created, refusals %v", n, quota, won, codes)
	}
	if c, err := b.s.CountKind(b.ctx, testApp, im.PushCondition, 0); err != nil || c != quota {
		t.Fatalf("CountKind = %d, %v; want %d", c, err, quota)
	}
}

func (h harness) testTwoRevokeInterval(t *testing.T) {
	a, b := h.two(t)
	const n = 6
	for i := range n {
		a.create(pushTask(testApp, fmt.Sprintf("r%d", i), uint32(i+1), limitBase/1000, 1), 0)
	}
	won, codes := race(t, n, a, b, func(i int, f *fixture) error {
		return f.s.RevokeTask(f.ctx, testApp, fmt.Sprintf("r%d", i), limitBase/1000, nil,
			im.TaskLimits{NowMs: limitBase + int64(i), IntervalMs: 30_000})
	})
	if won != 1 || codes[im.CodeRevokeTooFrequent] != n-1 {
		t.Fatalf("%d simultaneous revokes inside the interval through two handles: %d done, refusals %v", n, won, codes)
	}
}
