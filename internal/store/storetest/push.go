package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/im"
)

// Push task rules every backend shares, beyond the im.PushStore
// documentation:
//
//   - Seq starts at 1 per app and grows by one per created task;
//   - the MsgRandom check is per (app, kind) and atomic: of concurrent
//     CreateTask calls with one MsgRandom exactly one creates;
//   - the audience, message and OfflinePushInfo come back byte for byte;
//   - SaveProgress and SaveFanout never move a Revoked task out of Revoked;
//   - a lease is granted to its owner again at any time, to another owner
//     only once it ended;
//   - everything survives a reopen.

func bits(ords ...uint32) []byte {
	b, err := roaring.BitmapOf(ords...).ToBytes()
	if err != nil {
		panic(err)
	}
	return b
}

func ordsOf(t *testing.T, b []byte) []uint32 {
	t.Helper()
	bm := roaring.New()
	if len(b) > 0 {
		if err := bm.UnmarshalBinary(b); err != nil {
			t.Fatalf("bad bitmap: %v", err)
		}
	}
	return bm.ToArray()
}

// pushTask is a stored message push to ords.
func pushTask(app uint64, id string, random uint32, created int64, ords ...uint32) im.PushTask {
	return im.PushTask{App: app, ID: id, Kind: im.PushCondition, MsgRandom: random, BodyHash: "h-" + id,
		From: "admin", Condition: &im.Condition{TagsOr: []string{"gold"}},
		MsgBody: json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]`),
		Offline: json.RawMessage(`{"Title":"t","Ext":"{\"k\":1}"}`),
		DataID:  "d-" + id, ExpiresAt: created + 3600, VendorUntil: created + 3600, CreatedAt: created, Audience: bits(ords...),
		Total: int64(len(ords)), State: im.TaskPending}
}

func (f *fixture) create(t im.PushTask, dedupSince int64) (im.PushTask, bool) {
	f.t.Helper()
	got, created, err := f.s.CreateTask(f.ctx, t, dedupSince, im.TaskLimits{})
	if err != nil {
		f.t.Fatalf("CreateTask(%s): %v", t.ID, err)
	}
	return got, created
}

func (f *fixture) task(app uint64, id string) im.PushTask {
	f.t.Helper()
	t, err := f.s.Task(f.ctx, app, id)
	if err != nil {
		f.t.Fatalf("Task(%s): %v", id, err)
	}
	return t
}

func sameTask(a, b im.PushTask) bool {
	ja, _ := json.Marshal(a.Condition)
	jb, _ := json.Marshal(b.Condition)
	return a.App == b.App && a.ID == b.ID && a.Seq == b.Seq && a.Kind == b.Kind && a.MsgRandom == b.MsgRandom &&
		a.BodyHash == b.BodyHash && a.From == b.From && string(ja) == string(jb) &&
		string(a.MsgBody) == string(b.MsgBody) && string(a.Offline) == string(b.Offline) &&
		a.DataID == b.DataID && a.OnlineOnly == b.OnlineOnly && a.ExpiresAt == b.ExpiresAt &&
		a.CreatedAt == b.CreatedAt && string(a.Audience) == string(b.Audience) && a.Total == b.Total &&
		a.State == b.State
}

func (h harness) testPushCreate(t *testing.T) {
	f := h.fresh(t)
	_, err := f.s.Task(f.ctx, testApp, "nope")
	wantNotFound(t, "Task of unknown task", err)

	a := pushTask(testApp, "t_a", 7, 1000, 1, 2, 3)
	got, created := f.create(a, 0)
	a.Seq = 1
	if !created || !sameTask(got, a) {
		t.Fatalf("CreateTask = %+v, %v; want %+v, true", got, created, a)
	}
	if read := f.task(testApp, "t_a"); !sameTask(read, a) {
		t.Errorf("Task = %+v\nwant %+v", read, a)
	}
	// Same MsgRandom within the window: the first task, nothing created.
	dup := pushTask(testApp, "t_dup", 7, 1500, 9)
	got, created = f.create(dup, 1500-im.DedupWindow)
	if created || got.ID != "t_a" || got.Seq != 1 {
		t.Errorf("CreateTask with a used MsgRandom = %s seq %d, created %v; want t_a, false", got.ID, got.Seq, created)
	}
	_, err = f.s.Task(f.ctx, testApp, "t_dup")
	wantNotFound(t, "Task of deduplicated task", err)
	// Outside the window, of another kind, or in another app: created.
	for i, c := range []struct {
		t     im.PushTask
		since int64
	}{
		{pushTask(testApp, "t_late", 7, 2000, 1), 1001},
		{func() im.PushTask { x := pushTask(testApp, "batch_b", 7, 2000, 1); x.Kind = im.PushBatch; return x }(), 0},
		{pushTask(otherApp, "t_other", 7, 2000, 1), 0},
	} {
		got, created := f.create(c.t, c.since)
		wantSeq := int64(i + 2)
		if c.t.App == otherApp {
			wantSeq = 1
		}
		if !created || got.ID != c.t.ID || got.Seq != wantSeq {
			t.Errorf("CreateTask(%s) = %s seq %d, %v; want created with seq %d", c.t.ID, got.ID, got.Seq, created, wantSeq)
		}
	}
	if _, _, err := f.s.CreateTask(f.ctx, pushTask(testApp, "t_a", 99, 3000, 1), 0, im.TaskLimits{}); !errors.Is(err, im.ErrExists) {
		t.Errorf("CreateTask with a used ID: %v, want im.ErrExists", err)
	}
	if found, err := f.s.TaskByRandom(f.ctx, testApp, im.PushCondition, 7, 0); err != nil || found.ID != "t_late" {
		t.Errorf("TaskByRandom = %s, %v; want the newest, t_late", found.ID, err)
	}
	_, err = f.s.TaskByRandom(f.ctx, testApp, im.PushCondition, 7, 2001)
	wantNotFound(t, "TaskByRandom before since", err)
	_, err = f.s.TaskByRandom(f.ctx, testApp, im.PushLegacy, 7, 0)
	wantNotFound(t, "TaskByRandom of another kind", err)
	if n, err := f.s.CountTasks(f.ctx, testApp, 1500); err != nil || n != 2 {
		t.Errorf("CountTasks since 1500 = %d, %v; want 2", n, err)
	}
	if n, err := f.s.CountKind(f.ctx, testApp, im.PushCondition, 0); err != nil || n != 2 {
		t.Errorf("CountKind = %d, %v; want 2", n, err)
	}
	f.wantChanges()
}

func (h harness) testPushDedupConcurrent(t *testing.T) {
	f := h.fresh(t)
	var wg sync.WaitGroup
	results := make([]bool, 16)
	for i := range results {
		wg.Go(func() {
			_, created, err := f.s.CreateTask(f.ctx, pushTask(testApp, fmt.Sprint("c", i), 42, 100, 1), 0, im.TaskLimits{})
			if err != nil {
				t.Errorf("CreateTask: %v", err)
			}
			results[i] = created
		})
	}
	wg.Wait()
	n := 0
	for _, c := range results {
		if c {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d of %d concurrent CreateTask calls with one MsgRandom created a task, want 1", n, len(results))
	}
}

func (h harness) testPushLease(t *testing.T) {
	f := h.fresh(t)
	f.create(pushTask(testApp, "t1", 1, 10, 1), 0)
	claim := func(owner string, now, until int64) bool {
		t.Helper()
		ok, err := f.s.ClaimTask(f.ctx, testApp, "t1", owner, now, until)
		if err != nil {
			t.Fatalf("ClaimTask: %v", err)
		}
		return ok
	}
	if !claim("n1", 1000, 2000) {
		t.Fatal("unleased task not granted")
	}
	if claim("n2", 1500, 2500) {
		t.Error("leased task granted to another owner")
	}
	if !claim("n1", 1500, 3000) {
		t.Error("lease not renewed for its owner")
	}
	if !claim("n2", 3000, 4000) {
		t.Error("expired lease not granted to another owner")
	}
	if got := f.task(testApp, "t1"); got.Owner != "n2" || got.LeaseUntil != 4000 {
		t.Errorf("lease = %s until %d, want n2 until 4000", got.Owner, got.LeaseUntil)
	}
	if _, err := f.s.ClaimTask(f.ctx, testApp, "nope", "n1", 0, 1); !errors.Is(err, im.ErrNotFound) {
		t.Errorf("ClaimTask of unknown task: %v, want im.ErrNotFound", err)
	}
	c := im.TaskCounts{Total: 1, Sent: 1}
	if err := f.s.SaveProgress(f.ctx, testApp, "t1", 1, im.TaskDone, c); err != nil {
		t.Fatal(err)
	}
	if claim("n3", 9000, 9999) {
		t.Error("a Done task was granted")
	}
}

func (h harness) testPushProgress(t *testing.T) {
	f := h.fresh(t)
	for i, id := range []string{"a", "b", "c"} {
		f.create(pushTask(testApp, id, uint32(i), 10, 1, 2, 3, 4), 0)
	}
	un, err := f.s.UnfinishedTasks(f.ctx)
	if err != nil || len(un) != 3 || un[0].ID != "a" || un[2].ID != "c" || len(un[0].Audience) == 0 {
		t.Fatalf("UnfinishedTasks = %d tasks, %v", len(un), err)
	}
	st, err := f.s.SaveFanout(f.ctx, testApp, "a", "", 2, im.TaskRunning, im.TaskCounts{Total: 4, Sent: 2, Online: 1}, bits(2))
	if err != nil || st != im.TaskRunning {
		t.Fatalf("SaveFanout = %v, %v", st, err)
	}
	if _, err := f.s.SaveFanout(f.ctx, testApp, "a", "", 4, im.TaskDone, im.TaskCounts{Total: 4, Sent: 4, Online: 2}, bits(4)); err != nil {
		t.Fatal(err)
	}
	a := f.task(testApp, "a")
	if a.Cursor != 4 || a.State != im.TaskDone || !slices.Equal(ordsOf(t, a.Online), []uint32{2, 4}) {
		t.Errorf("after SaveFanout: cursor %d state %d online %v", a.Cursor, a.State, ordsOf(t, a.Online))
	}
	if c, err := f.s.Counts(f.ctx, testApp, "a"); err != nil || c != (im.TaskCounts{Total: 4, Sent: 4, Online: 2}) {
		t.Errorf("Counts = %+v, %v", c, err)
	}
	// Revoke codes, and a revoke is never undone by progress.
	if err := f.s.RevokeTask(f.ctx, testApp, "b", 50, json.RawMessage(`{"Title":"x"}`), im.TaskLimits{}); err != nil {
		t.Fatal(err)
	}
	if code := im.CodeOf(f.s.RevokeTask(f.ctx, testApp, "b", 51, nil, im.TaskLimits{})); code != im.CodeTaskRevoked {
		t.Errorf("second revoke: code %d, want 90050", code)
	}
	if code := im.CodeOf(f.s.RevokeTask(f.ctx, testApp, "zz", 51, nil, im.TaskLimits{})); code != im.CodeTaskNotFound {
		t.Errorf("revoke of unknown task: code %d, want 90049", code)
	}
	st, err = f.s.SaveFanout(f.ctx, testApp, "b", "", 3, im.TaskDone, im.TaskCounts{Total: 4, Sent: 3}, nil)
	if err != nil || st != im.TaskRevoked {
		t.Errorf("SaveFanout of a revoked task = %v, %v; want TaskRevoked", st, err)
	}
	if err := f.s.SaveProgress(f.ctx, testApp, "b", 4, im.TaskRunning, im.TaskCounts{Total: 4}); err != nil {
		t.Fatal(err)
	}
	b := f.task(testApp, "b")
	if b.State != im.TaskRevoked || b.RevokedAt != 50 || string(b.RevokeInfo) != `{"Title":"x"}` || b.Cursor != 4 {
		t.Errorf("revoked task = state %d at %d info %s cursor %d", b.State, b.RevokedAt, b.RevokeInfo, b.Cursor)
	}
	un, _ = f.s.UnfinishedTasks(f.ctx)
	if len(un) != 1 || un[0].ID != "c" {
		t.Errorf("UnfinishedTasks after done and revoke = %v", un)
	}
	if _, err := f.s.SaveFanout(f.ctx, testApp, "zz", "", 1, im.TaskDone, im.TaskCounts{}, nil); !errors.Is(err, im.ErrNotFound) {
		t.Errorf("SaveFanout of unknown task: %v, want im.ErrNotFound", err)
	}
}

func (h harness) testStoredHeads(t *testing.T) {
	f := h.fresh(t)
	n := uint32(0)
	mk := func(id string, mutate func(*im.PushTask)) im.PushTask {
		n++
		x := pushTask(testApp, id, n, 100, 1)
		mutate(&x)
		got, _ := f.create(x, 0)
		return got
	}
	s1 := mk("s1", func(*im.PushTask) {})
	mk("online", func(x *im.PushTask) { x.OnlineOnly = true })
	mk("s2", func(x *im.PushTask) { x.ExpiresAt = 0; x.MsgBody, x.Offline, x.DataID = nil, nil, "" }) // never expires; a bare notification
	mk("expired", func(x *im.PushTask) { x.ExpiresAt = 150 })
	mk("revoked", func(*im.PushTask) {})
	mk("s3", func(*im.PushTask) {})
	if err := f.s.RevokeTask(f.ctx, testApp, "revoked", 120, nil, im.TaskLimits{}); err != nil {
		t.Fatal(err)
	}
	f.create(pushTask(otherApp, "x", 1, 100, 1), 0)
	heads := func(after, now int64, limit int) []im.TaskHead {
		hs, err := f.s.StoredHeads(f.ctx, testApp, after, now, limit)
		if err != nil {
			t.Fatalf("StoredHeads: %v", err)
		}
		return hs
	}
	ids := func(after, now int64, limit int) []string {
		var out []string
		hs := heads(after, now, limit)
		for i, x := range hs {
			if i > 0 && hs[i-1].Seq >= x.Seq {
				t.Errorf("StoredHeads not in Seq order")
			}
			out = append(out, x.ID)
		}
		return out
	}
	if got := ids(0, 160, 10); !slices.Equal(got, []string{"s1", "s2", "s3"}) {
		t.Errorf("StoredHeads = %v, want [s1 s2 s3]", got)
	}
	if got := ids(0, 140, 2); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Errorf("StoredHeads limit 2 = %v", got)
	}
	if got := ids(1, 140, 10); !slices.Equal(got, []string{"s2", "expired", "s3"}) {
		t.Errorf("StoredHeads after seq 1 at 140 = %v", got)
	}
	if got := ids(0, 5000, 10); !slices.Equal(got, []string{"s2"}) {
		t.Errorf("StoredHeads once expired = %v, want [s2]", got)
	}
	// A head is the task's head, byte for byte.
	hs := heads(0, 140, 2)
	if want := s1.Head(); !sameHead(hs[0], want) {
		t.Errorf("head = %+v\nwant %+v", hs[0], want)
	}
	if hs[1].ID != "s2" || hs[1].MsgBody != nil || hs[1].Offline != nil || hs[1].DataID != "" || hs[1].ExpiresAt != 0 {
		t.Errorf("bare notification head = %+v", hs[1])
	}
	// StoredRefs lists exactly the tasks StoredHeads returns.
	for _, c := range []struct {
		after, now int64
		limit      int
	}{{0, 160, 10}, {0, 140, 2}, {1, 140, 10}, {0, 5000, 10}, {0, 100, 10}, {100, 100, 10}} {
		refs, err := f.s.StoredRefs(f.ctx, testApp, c.after, c.now, c.limit)
		if err != nil {
			t.Fatalf("StoredRefs: %v", err)
		}
		var want []im.TaskRef
		for _, x := range heads(c.after, c.now, c.limit) {
			want = append(want, im.TaskRef{ID: x.ID, Seq: x.Seq})
		}
		if !slices.Equal(refs, want) {
			t.Errorf("StoredRefs(after %d, now %d, limit %d) = %v, want %v", c.after, c.now, c.limit, refs, want)
		}
	}
}

func sameHead(a, b im.TaskHead) bool {
	return a.App == b.App && a.ID == b.ID && a.Seq == b.Seq && a.From == b.From &&
		string(a.MsgBody) == string(b.MsgBody) && string(a.Offline) == string(b.Offline) &&
		a.DataID == b.DataID && a.CreatedAt == b.CreatedAt && a.ExpiresAt == b.ExpiresAt
}

func (h harness) testTaskAudience(t *testing.T) {
	f := h.fresh(t)
	big := roaring.New()
	big.AddRange(1, 300_000)
	big.Add(1 << 30)
	big.RunOptimize()
	bb, err := big.ToBytes()
	if err != nil {
		t.Fatal(err)
	}
	x := pushTask(testApp, "big", 1, 100)
	x.Audience = bb
	f.create(x, 0)
	f.create(pushTask(testApp, "empty", 2, 100), 0)
	if got, err := f.s.TaskAudience(f.ctx, testApp, "big"); err != nil || string(got) != string(bb) {
		t.Errorf("TaskAudience(big) = %d bytes, %v; want %d bytes as created", len(got), err, len(bb))
	}
	if got, err := f.s.TaskAudience(f.ctx, testApp, "empty"); err != nil || len(ordsOf(t, got)) != 0 {
		t.Errorf("TaskAudience(empty) = %v, %v", got, err)
	}
	_, err = f.s.TaskAudience(f.ctx, testApp, "nope")
	wantNotFound(t, "TaskAudience of unknown task", err)
	_, err = f.s.TaskAudience(f.ctx, otherApp, "big")
	wantNotFound(t, "TaskAudience of another app's task", err)
	f.reopen()
	if got, err := f.s.TaskAudience(f.ctx, testApp, "big"); err != nil || string(got) != string(bb) {
		t.Errorf("TaskAudience(big) after reopen = %d bytes, %v", len(got), err)
	}
}

func (h harness) testAcks(t *testing.T) {
	f := h.fresh(t)
	f.create(pushTask(testApp, "t", 1, 10, 1, 2, 3), 0)
	if d, c, err := f.s.AckSets(f.ctx, testApp, "t"); err != nil || len(ordsOf(t, d)) != 0 || len(ordsOf(t, c)) != 0 {
		t.Fatalf("AckSets of fresh task = %v %v %v", d, c, err)
	}
	for _, r := range []struct{ d, c []uint32 }{{[]uint32{1, 2}, nil}, {[]uint32{2, 3}, []uint32{2}}, {[]uint32{1}, []uint32{2}}} {
		if err := f.s.RecordAcks(f.ctx, testApp, "t", r.d, r.c); err != nil {
			t.Fatal(err)
		}
	}
	c, err := f.s.Counts(f.ctx, testApp, "t")
	if err != nil || c.Delivered != 3 || c.Clicked != 1 {
		t.Errorf("Counts = %+v, %v; want 3 delivered, 1 clicked", c, err)
	}
	d, cl, err := f.s.AckSets(f.ctx, testApp, "t")
	if err != nil || !slices.Equal(ordsOf(t, d), []uint32{1, 2, 3}) || !slices.Equal(ordsOf(t, cl), []uint32{2}) {
		t.Errorf("AckSets = %v %v, %v", ordsOf(t, d), ordsOf(t, cl), err)
	}
	if err := f.s.RecordAcks(f.ctx, testApp, "nope", []uint32{1}, nil); !errors.Is(err, im.ErrNotFound) {
		t.Errorf("RecordAcks of unknown task: %v, want im.ErrNotFound", err)
	}
	_, _, err = f.s.AckSets(f.ctx, testApp, "nope")
	wantNotFound(t, "AckSets of unknown task", err)
}

func (h harness) testReports(t *testing.T) {
	f := h.fresh(t)
	for i, k := range []im.PushKind{im.PushCondition, im.PushBatch, im.PushLegacy, im.PushCondition} {
		x := pushTask(testApp, fmt.Sprint("r", i), uint32(i), int64(100+i*10), 1, 2)
		x.Kind = k
		f.create(x, 0)
	}
	if err := f.s.RecordAcks(f.ctx, testApp, "r3", []uint32{2}, []uint32{2}); err != nil {
		t.Fatal(err)
	}
	rs, err := f.s.Reports(f.ctx, testApp, []im.PushKind{im.PushCondition, im.PushLegacy}, 100, 130, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		got = append(got, r.Task.ID)
		if len(r.Task.Audience) != 0 {
			t.Errorf("report %s carries its audience", r.Task.ID)
		}
	}
	if !slices.Equal(got, []string{"r3", "r2", "r0"}) {
		t.Errorf("Reports = %v, want [r3 r2 r0] newest first", got)
	}
	if rs[0].Counts.Delivered != 1 || !slices.Equal(ordsOf(t, rs[0].Delivered), []uint32{2}) ||
		!slices.Equal(ordsOf(t, rs[0].Clicked), []uint32{2}) || rs[0].Counts.Total != 2 {
		t.Errorf("report r3 = %+v", rs[0])
	}
	if rs, _ := f.s.Reports(f.ctx, testApp, []im.PushKind{im.PushCondition}, 101, 129, 10); len(rs) != 0 {
		t.Errorf("Reports outside the window = %d", len(rs))
	}
	r, err := f.s.Report(f.ctx, testApp, "r1")
	if err != nil || r.Task.Kind != im.PushBatch || r.Counts.Total != 2 {
		t.Errorf("Report = %+v, %v", r, err)
	}
	_, err = f.s.Report(f.ctx, testApp, "nope")
	wantNotFound(t, "Report of unknown task", err)
}

func (h harness) testHooks(t *testing.T) {
	f := h.fresh(t)
	for i, id := range []string{"h1", "h2", "h3"} {
		f.create(pushTask(testApp, id, uint32(i), 10, 1, 2, 3), 0)
	}
	if hs, err := f.s.PendingHooks(f.ctx, 0, 10); err != nil || len(hs) != 0 {
		t.Fatalf("PendingHooks before any fan-out ended = %d, %v", len(hs), err)
	}
	if err := f.s.SaveProgress(f.ctx, testApp, "h2", 3, im.TaskDone, im.TaskCounts{Total: 3, Sent: 3}); err != nil {
		t.Fatal(err)
	}
	// h3 is revoked while a worker holds it: not pending until the worker
	// saves (releasing the lease) or the lease ends.
	if ok, err := f.s.ClaimTask(f.ctx, testApp, "h3", "n1", 100, 1000); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := f.s.RevokeTask(f.ctx, testApp, "h3", 11, nil, im.TaskLimits{}); err != nil {
		t.Fatal(err)
	}
	if hs, _ := f.s.PendingHooks(f.ctx, 500, 10); len(hs) != 1 || hs[0].ID != "h2" {
		t.Fatalf("PendingHooks with a revoked task still leased = %v", hs)
	}
	if hs, _ := f.s.PendingHooks(f.ctx, 1000, 10); len(hs) != 2 {
		t.Fatalf("PendingHooks once the lease ended = %d tasks, want 2", len(hs))
	}
	if st, err := f.s.SaveFanout(f.ctx, testApp, "h3", "", 2, im.TaskRunning, im.TaskCounts{Total: 3, Sent: 2}, nil); err != nil || st != im.TaskRevoked {
		t.Fatal(st, err)
	}
	if x := f.task(testApp, "h3"); x.Owner != "" || x.LeaseUntil != 0 {
		t.Errorf("a save finding the task revoked kept its lease: %s until %d", x.Owner, x.LeaseUntil)
	}
	hs, err := f.s.PendingHooks(f.ctx, 500, 10)
	if err != nil || len(hs) != 2 || hs[0].ID != "h2" || hs[1].ID != "h3" || len(hs[0].Audience) == 0 {
		t.Fatalf("PendingHooks = %v, %v; want h2, h3 with audiences", hs, err)
	}
	if err := f.s.SaveHook(f.ctx, testApp, "h2", 2, im.HookPending, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SaveHook(f.ctx, testApp, "h3", 3, im.HookGaveUp, 2); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SaveHook(f.ctx, testApp, "h3", 3, im.HookGaveUp, 1); err != nil {
		t.Fatal(err)
	}
	hs, _ = f.s.PendingHooks(f.ctx, 500, 10)
	if len(hs) != 1 || hs[0].HookCursor != 2 || hs[0].HookState != im.HookPending {
		t.Errorf("PendingHooks after SaveHook = %+v", hs)
	}
	if c, _ := f.s.Counts(f.ctx, testApp, "h3"); c.Lost != 3 {
		t.Errorf("Lost = %d, want 3 (lost events add up)", c.Lost)
	}
	if err := f.s.SaveHook(f.ctx, testApp, "nope", 1, im.HookDone, 0); !errors.Is(err, im.ErrNotFound) {
		t.Errorf("SaveHook of unknown task: %v, want im.ErrNotFound", err)
	}
}

func (h harness) testPushReopen(t *testing.T) {
	f := h.fresh(t)
	a := pushTask(testApp, "keep", 5, 10, 1, 70000, 1<<20)
	a.Seq = 1
	f.create(a, 0)
	if _, err := f.s.SaveFanout(f.ctx, testApp, "keep", "", 70000, im.TaskRunning, im.TaskCounts{Total: 3, Sent: 2}, bits(1)); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RecordAcks(f.ctx, testApp, "keep", []uint32{1}, nil); err != nil {
		t.Fatal(err)
	}
	f.reopen()
	got := f.task(testApp, "keep")
	a.State = im.TaskRunning
	if !sameTask(got, a) || got.Cursor != 70000 || !slices.Equal(ordsOf(t, got.Online), []uint32{1}) {
		t.Errorf("after reopen %+v", got)
	}
	if c, _ := f.s.Counts(f.ctx, testApp, "keep"); c != (im.TaskCounts{Total: 3, Sent: 2, Delivered: 1}) {
		t.Errorf("counts after reopen = %+v", c)
	}
	if x, created := f.create(pushTask(testApp, "next", 6, 10, 1), 0); !created || x.Seq != 2 {
		t.Errorf("Seq after reopen = %d, want 2", x.Seq)
	}
}

// testPushLeaseFence: SaveFanout by an owner that lost the lease is
// refused with im.ErrLeaseLost and writes nothing; the new owner saves;
// owner "" (SaveProgress) is not fenced; a Revoked task takes the last
// save of whoever was working on it.
func (h harness) testPushLeaseFence(t *testing.T) {
	f := h.fresh(t)
	f.create(pushTask(testApp, "t", 1, 10, 1, 2, 3), 0)
	claim := func(owner string, now, until int64) {
		t.Helper()
		if ok, err := f.s.ClaimTask(f.ctx, testApp, "t", owner, now, until); err != nil || !ok {
			t.Fatalf("ClaimTask(%s) = %v, %v", owner, ok, err)
		}
	}
	claim("old", 1000, 2000)
	if _, err := f.s.SaveFanout(f.ctx, testApp, "t", "old", 1, im.TaskRunning, im.TaskCounts{Total: 3, Sent: 1}, bits(1)); err != nil {
		t.Fatalf("SaveFanout by the holder: %v", err)
	}
	claim("new", 3000, 4000) // after old's lease expired
	st, err := f.s.SaveFanout(f.ctx, testApp, "t", "old", 3, im.TaskDone, im.TaskCounts{Total: 3, Sent: 3}, bits(2, 3))
	if !errors.Is(err, im.ErrLeaseLost) {
		t.Fatalf("SaveFanout by the old owner = %v, %v; want im.ErrLeaseLost", st, err)
	}
	got := f.task(testApp, "t")
	if got.Cursor != 1 || got.State != im.TaskRunning || got.Owner != "new" {
		t.Fatalf("after a refused save: cursor %d state %v owner %q; want 1, Running, new", got.Cursor, got.State, got.Owner)
	}
	if c, _ := f.s.Counts(f.ctx, testApp, "t"); c.Sent != 1 || c.Online != 0 {
		t.Errorf("a refused save changed the counts: %+v", c)
	}
	if _, err := f.s.SaveFanout(f.ctx, testApp, "t", "new", 2, im.TaskRunning, im.TaskCounts{Total: 3, Sent: 2}, nil); err != nil {
		t.Fatalf("SaveFanout by the new owner: %v", err)
	}
	if err := f.s.SaveProgress(f.ctx, testApp, "t", 2, im.TaskRunning, im.TaskCounts{Total: 3, Sent: 2}); err != nil {
		t.Fatalf("SaveProgress (unfenced): %v", err)
	}
	if err := f.s.RevokeTask(f.ctx, testApp, "t", 5000, nil, im.TaskLimits{}); err != nil {
		t.Fatal(err)
	}
	if st, err := f.s.SaveFanout(f.ctx, testApp, "t", "old", 2, im.TaskRunning, im.TaskCounts{Total: 3, Sent: 2}, nil); err != nil || st != im.TaskRevoked {
		t.Errorf("SaveFanout of a Revoked task = %v, %v; want Revoked", st, err)
	}
}

func (h harness) testRevokedSince(t *testing.T) {
	f := h.fresh(t)
	for i, id := range []string{"r1", "r2", "r3"} {
		f.create(pushTask(testApp, id, uint32(i+1), 1000, 1), 0)
	}
	f.create(pushTask(testApp, "old", 9, 1000-im.RevokeWindow-10, 1), 0)
	f.create(pushTask(otherApp, "x", 1, 1000, 1), 0)
	for _, r := range []struct {
		app uint64
		id  string
		at  int64
	}{{testApp, "r2", 1100}, {testApp, "old", 1150}, {testApp, "r1", 1200}, {otherApp, "x", 1100}} {
		if err := f.s.RevokeTask(f.ctx, r.app, r.id, r.at, nil, im.TaskLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		since int64
		limit int
		want  []string
	}{
		{1100, 10, []string{"r2", "r1"}}, // not "old": created before since-RevokeWindow
		{1101, 10, []string{"r1"}},
		{1100, 1, []string{"r2"}},
		{1201, 10, nil},
	} {
		got, err := f.s.RevokedSince(f.ctx, testApp, c.since, c.limit)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("RevokedSince(%d, %d) = %v, %v; want %v", c.since, c.limit, got, err, c.want)
		}
	}
}
