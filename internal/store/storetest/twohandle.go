package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"timd/internal/im"
)

// Two handles on one store: how several timd nodes see one database.
//
// A backend whose Options.Shared is set is opened twice on one dir, both
// handles live at once, and the cases below check the rules a cluster
// depends on:
//
//   - a write committed through one handle is read back through the other
//     (no per-handle cache answers reads);
//   - task Seqs follow commit order per app: a reader that pages
//     StoredHeads by Seq while both handles create tasks misses none (a Seq
//     committed after a higher one would be skipped by its cursor for good);
//   - concurrent RecordAcks through both handles lose no acknowledgement;
//   - of concurrent CreateTask calls with one MsgRandom through both
//     handles exactly one creates, and all return that task;
//   - of simultaneous pushes (or revokes) inside one interval exactly one
//     is accepted, and concurrent creators never go over the daily quota
//     (the limits are checked in the task's transaction, limits.go);
//   - of concurrent ClaimTask calls by different owners exactly one wins,
//     and once another handle took an expired lease over, the old owner's
//     SaveFanout is refused (im.ErrLeaseLost);
//   - of concurrent TakeLease calls for one name exactly one wins;
//   - ordinals are never handed out twice and change positions have no
//     gap across both handles.
//
// SQLite does not run these cases: a SQLite store is one process's. Its
// write-behind overlay, its single writer (which numbers ordinals, Seqs
// and change positions in memory) and its index snapshot belong to the
// process that opened the directory, and `timd serve` and `timd import`
// hold the directory's lock for as long as they use it, so two live
// handles on one directory are not a supported state to test.

// Options say what a backend supports beyond the common suite.
type Options struct {
	// Shared: open may be called again with a dir whose store is still
	// open, and both handles then address one store, as nodes sharing a
	// PostgreSQL database do. Without it the two-handle cases skip.
	Shared bool
}

// RunWith is Run with options: with opt.Shared it also runs the
// two-handle cases.
func RunWith(t *testing.T, open OpenFunc, opt Options) {
	h := harness{open: open, shared: opt.Shared}
	h.run(t)
}

func (h harness) runTwoHandles(t *testing.T) {
	t.Run("TwoHandlesVisible", h.testTwoVisible)
	t.Run("TwoHandlesSeqCommitOrder", h.testTwoSeqOrder)
	t.Run("TwoHandlesAcks", h.testTwoAcks)
	t.Run("TwoHandlesDedup", h.testTwoDedup)
	t.Run("TwoHandlesInterval", h.testTwoInterval)
	t.Run("TwoHandlesQuota", h.testTwoQuota)
	t.Run("TwoHandlesRevokeInterval", h.testTwoRevokeInterval)
	t.Run("TwoHandlesLease", h.testTwoLease)
	t.Run("TwoHandlesLeaseTakeover", h.testTwoLeaseTakeover)
	t.Run("TwoHandlesNamedLease", h.testTwoLeaseName)
	t.Run("TwoHandlesOrdinals", h.testTwoOrdinals)
}

// two opens a fresh store and a second handle on it, or skips.
func (h harness) two(t *testing.T) (a, b *fixture) {
	t.Helper()
	if !h.shared {
		t.Skip("this backend's store is one process's (see storetest's two-handle doc: SQLite's writer, " +
			"overlay and directory lock are per process); two-handle cases run on shared backends such as PostgreSQL")
	}
	a = h.fresh(t)
	b = &fixture{t: t, ctx: a.ctx, dir: a.dir, open: h.open}
	b.reopen()
	t.Cleanup(func() {
		if err := b.s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return a, b
}

// both runs fn(i, handle) for i in [0, n) on goroutines, alternating the
// handles, and waits.
func both(n int, a, b *fixture, fn func(i int, f *fixture)) {
	var wg sync.WaitGroup
	for i := range n {
		f := a
		if i%2 == 1 {
			f = b
		}
		wg.Go(func() { fn(i, f) })
	}
	wg.Wait()
}

func (h harness) testTwoVisible(t *testing.T) {
	a, b := h.two(t)
	app := im.App{SDKAppID: testApp, SecretKey: "k", Admins: []string{"admin"}, CreatedAt: 1}
	if err := a.s.PutApp(a.ctx, app); err != nil {
		t.Fatal(err)
	}
	if got, err := b.s.App(b.ctx, testApp); err != nil || got.SecretKey != "k" {
		t.Fatalf("App through the other handle = %+v, %v", got, err)
	}
	var schema im.AttrSchema
	schema[0] = im.AttrSlot{Name: "city"}
	a.putSchema(testApp, schema)
	a.importIDs(testApp, "u1", "u2")
	errs, err := a.s.ApplyEdits(a.ctx, testApp, []im.Edit{
		{Account: "u1", Op: im.OpSetAttrs, Attrs: im.AttrValues{"sz"}},
		{Account: "u1", Op: im.OpAddTags, Tags: []string{"gold"}},
	}, im.EditLimits{})
	if err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("ApplyEdits: %v %v", errs, err)
	}
	if err := a.s.Kick(a.ctx, testApp, "u2", 1700000000); err != nil {
		t.Fatal(err)
	}
	if got, err := b.s.AttrSchema(b.ctx, testApp); err != nil || got[0].Name != "city" {
		t.Fatalf("AttrSchema through the other handle = %v, %v", got[0], err)
	}
	ps, err := b.s.Profiles(b.ctx, testApp, []string{"u1", "u2"})
	if err != nil || ps["u1"].Attrs[0] != "sz" || !slices.Equal(ps["u1"].Tags, []string{"gold"}) {
		t.Fatalf("Profiles through the other handle = %+v, %v", ps, err)
	}
	if ps["u2"].Account.KickedAt != 1700000000 {
		t.Errorf("KickedAt through the other handle = %d", ps["u2"].Account.KickedAt)
	}
	now := time.Now().Unix()
	task, _ := a.create(pushTask(testApp, "t1", 1, now, 1, 2), 0)
	if err := a.s.RecordAcks(a.ctx, testApp, "t1", []uint32{1}, nil); err != nil {
		t.Fatal(err)
	}
	if got := b.task(testApp, "t1"); !sameTask(got, task) {
		t.Errorf("Task through the other handle = %+v, want %+v", got, task)
	}
	if c, err := b.s.Counts(b.ctx, testApp, "t1"); err != nil || c.Delivered != 1 {
		t.Errorf("Counts through the other handle = %+v, %v", c, err)
	}
	st := a.addSched(schedTask(testApp, "later", now+3600, now))
	if got, err := b.s.Sched(b.ctx, testApp, st.ID); err != nil || got.Title != "later" {
		t.Errorf("Sched through the other handle = %+v, %v", got, err)
	}
	// And back: a delete through B is gone through A.
	if gone, err := b.s.DeleteAccounts(b.ctx, testApp, []string{"u2"}); err != nil || !gone[0] {
		t.Fatalf("DeleteAccounts = %v, %v", gone, err)
	}
	if got, err := a.s.Accounts(a.ctx, testApp, []string{"u2"}); err != nil || len(got) != 0 {
		t.Errorf("a deleted account is still read through the other handle: %v, %v", got, err)
	}
}

func (h harness) testTwoSeqOrder(t *testing.T) {
	a, b := h.two(t)
	now := time.Now().Unix()
	const n = 60
	// A reader pages the stored heads by Seq, as sync and catch-up do,
	// while both handles create tasks.
	seen := map[string]bool{}
	var cursor int64
	page := func() {
		heads, err := b.s.StoredHeads(b.ctx, testApp, cursor, now, 1000)
		if err != nil {
			t.Errorf("StoredHeads: %v", err)
			return
		}
		for _, hd := range heads {
			seen[hd.ID] = true
			cursor = max(cursor, hd.Seq)
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				page()
			}
		}
	}()
	seqs := make([]int64, n)
	both(n, a, b, func(i int, f *fixture) {
		got, created, err := f.s.CreateTask(f.ctx, pushTask(testApp, fmt.Sprintf("t%d", i), uint32(i+1), now, 1), 0, im.TaskLimits{})
		if err != nil || !created {
			t.Errorf("CreateTask %d: created %v, %v", i, created, err)
		}
		seqs[i] = got.Seq
	})
	close(stop)
	<-done
	page()
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("Seqs = %v, want 1..%d each once", seqs, n)
		}
	}
	if len(seen) != n {
		t.Fatalf("a reader paging by Seq saw %d of %d tasks: a Seq committed after a higher one", len(seen), n)
	}
}

func (h harness) testTwoAcks(t *testing.T) {
	a, b := h.two(t)
	a.create(pushTask(testApp, "acks", 1, time.Now().Unix(), 1), 0)
	const n = 120
	// Eight writers, four per handle; writers i and i+2 ack the same
	// ordinals, so the two handles race on every one.
	both(8, a, b, func(g int, f *fixture) {
		for o := uint32(1 + g%4); o <= n; o += 4 {
			if err := f.s.RecordAcks(f.ctx, testApp, "acks", []uint32{o}, []uint32{o}); err != nil {
				t.Errorf("RecordAcks: %v", err)
				return
			}
		}
	})
	c, err := b.s.Counts(b.ctx, testApp, "acks")
	if err != nil || c.Delivered != n || c.Clicked != n {
		t.Fatalf("Counts = %+v, %v; want %d delivered and clicked", c, err, n)
	}
	d, cl, err := a.s.AckSets(a.ctx, testApp, "acks")
	if err != nil || len(ordsOf(t, d)) != n || len(ordsOf(t, cl)) != n {
		t.Fatalf("AckSets hold %d and %d ordinals, %v; want %d each", len(ordsOf(t, d)), len(ordsOf(t, cl)), err, n)
	}
}

func (h harness) testTwoDedup(t *testing.T) {
	a, b := h.two(t)
	now := time.Now().Unix()
	var mu sync.Mutex
	made, ids := 0, map[string]bool{}
	both(10, a, b, func(i int, f *fixture) {
		got, created, err := f.s.CreateTask(f.ctx, pushTask(testApp, fmt.Sprintf("d%d", i), 7, now, 1), now-60, im.TaskLimits{})
		if err != nil {
			t.Errorf("CreateTask: %v", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		ids[got.ID] = true
		if created {
			made++
		}
	})
	if made != 1 || len(ids) != 1 {
		t.Fatalf("one MsgRandom through two handles: %d created, tasks %v; want 1 created and one task returned to all", made, ids)
	}
}

// winners runs take for owners node0..node(n-1) at once, alternating the
// handles, and returns the owners it granted.
func winners(t *testing.T, n int, a, b *fixture, take func(f *fixture, owner string) (bool, error)) []string {
	var mu sync.Mutex
	var won []string
	both(n, a, b, func(i int, f *fixture) {
		owner := fmt.Sprintf("node%d", i)
		ok, err := take(f, owner)
		if err != nil {
			t.Errorf("%s: %v", owner, err)
			return
		}
		if ok {
			mu.Lock()
			won = append(won, owner)
			mu.Unlock()
		}
	})
	return won
}

func (h harness) testTwoLease(t *testing.T) {
	a, b := h.two(t)
	a.create(pushTask(testApp, "t", 1, time.Now().Unix(), 1), 0)
	winners := winners(t, 10, a, b, func(f *fixture, owner string) (bool, error) {
		return f.s.ClaimTask(f.ctx, testApp, "t", owner, 1000, 60000)
	})
	if len(winners) != 1 {
		t.Fatalf("lease winners %v, want exactly one", winners)
	}
	for _, f := range []*fixture{a, b} {
		if got := f.task(testApp, "t"); got.Owner != winners[0] || got.LeaseUntil != 60000 {
			t.Errorf("lease = %s until %d, want %s until 60000", got.Owner, got.LeaseUntil, winners[0])
		}
	}
}

func (h harness) testTwoOrdinals(t *testing.T) {
	a, b := h.two(t)
	const writers, each = 6, 8
	both(writers, a, b, func(g int, f *fixture) {
		for i := range each {
			if _, err := f.s.ImportAccounts(f.ctx, testApp, []im.AccountInput{{UserID: fmt.Sprintf("u%d_%d", g, i)}}); err != nil {
				t.Errorf("ImportAccounts: %v", err)
			}
		}
	})
	const n = writers * each
	seen := map[uint32]bool{}
	err := b.s.ScanProfiles(b.ctx, testApp, func(p im.Profile) error {
		if seen[p.Account.Ordinal] {
			return fmt.Errorf("ordinal %d twice", p.Account.Ordinal)
		}
		seen[p.Account.Ordinal] = true
		return nil
	})
	if err != nil || len(seen) != n || !seen[1] || !seen[n] {
		t.Fatalf("ScanProfiles: %d ordinals, %v; want 1..%d", len(seen), err, n)
	}
	for _, f := range []*fixture{a, b} {
		log, ok := f.s.(im.ChangeLog)
		if !ok {
			t.Fatalf("%T does not implement im.ChangeLog", f.s)
		}
		if pos, err := log.ChangePosition(f.ctx, testApp); err != nil || pos != n {
			t.Errorf("ChangePosition = %d, %v; want %d", pos, err, n)
		}
		if ords, upTo, err := log.ChangedSince(f.ctx, testApp, 0); err != nil || upTo != n || len(ords) != n {
			t.Errorf("ChangedSince(0) = %d ordinals up to %d, %v; want %d up to %d", len(ords), upTo, err, n, n)
		}
	}
}

func (h harness) testTwoLeaseTakeover(t *testing.T) {
	a, b := h.two(t)
	a.create(pushTask(testApp, "t", 1, time.Now().Unix(), 1, 2), 0)
	if ok, err := a.s.ClaimTask(a.ctx, testApp, "t", "boot-a", 1000, 2000); err != nil || !ok {
		t.Fatalf("ClaimTask by a = %v, %v", ok, err)
	}
	if ok, err := b.s.ClaimTask(b.ctx, testApp, "t", "boot-b", 1500, 2500); err != nil || ok {
		t.Fatalf("ClaimTask by b during a's lease = %v, %v; want refused", ok, err)
	}
	if ok, err := b.s.ClaimTask(b.ctx, testApp, "t", "boot-b", 2000, 3000); err != nil || !ok {
		t.Fatalf("ClaimTask by b after a's lease = %v, %v; want granted", ok, err)
	}
	if _, err := a.s.SaveFanout(a.ctx, testApp, "t", "boot-a", 2, im.TaskDone, im.TaskCounts{Total: 2, Sent: 2}, nil); !errors.Is(err, im.ErrLeaseLost) {
		t.Fatalf("the old owner's SaveFanout = %v, want im.ErrLeaseLost", err)
	}
	if st, err := b.s.SaveFanout(b.ctx, testApp, "t", "boot-b", 2, im.TaskDone, im.TaskCounts{Total: 2, Sent: 2}, nil); err != nil || st != im.TaskDone {
		t.Fatalf("the new owner's SaveFanout = %v, %v", st, err)
	}
}
