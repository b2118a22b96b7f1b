package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"timd/internal/im"
)

// Scheduled task rules every backend shares: IDs grow and are never
// reused; only pending tasks change or go away; MoveSched is a
// compare-and-set on the status.

func schedTask(app uint64, title string, schedAt, created int64) im.SchedTask {
	return im.SchedTask{App: app, Type: im.SchedTag, SchedAt: schedAt, CreatedAt: created, UpdatedAt: created,
		Content: json.RawMessage(`{"Condition":{"TagsOr":["gold"]},"OfflinePushInfo":{"Title":"` + title + `"}}`),
		Title:   title, Desc: "desc of " + title, Status: im.SchedPending}
}

func (f *fixture) addSched(t im.SchedTask) im.SchedTask {
	f.t.Helper()
	out, err := f.s.AddSched(f.ctx, t)
	if err != nil {
		f.t.Fatalf("AddSched: %v", err)
	}
	return out
}

func (h harness) testSchedCRUD(t *testing.T) {
	f := h.fresh(t)
	a := f.addSched(schedTask(testApp, "alpha", 500, 100))
	b := f.addSched(schedTask(testApp, "beta", 400, 110))
	if a.ID <= 0 || b.ID <= a.ID {
		t.Fatalf("IDs %d, %d: want positive and growing", a.ID, b.ID)
	}
	got, err := f.s.Sched(f.ctx, testApp, a.ID)
	if err != nil || got.Title != "alpha" || got.SchedAt != 500 || string(got.Content) != string(a.Content) ||
		got.Status != im.SchedPending || got.Type != im.SchedTag || got.Desc != "desc of alpha" {
		t.Errorf("Sched = %+v, %v", got, err)
	}
	_, err = f.s.Sched(f.ctx, otherApp, a.ID)
	wantNotFound(t, "Sched of another app", err)

	a.SchedAt, a.Title, a.Content, a.UpdatedAt = 600, "alpha2", json.RawMessage(`{}`), 120
	if err := f.s.UpdateSched(f.ctx, a); err != nil {
		t.Fatalf("UpdateSched: %v", err)
	}
	if got, _ := f.s.Sched(f.ctx, testApp, a.ID); got.SchedAt != 600 || got.Title != "alpha2" || string(got.Content) != `{}` || got.UpdatedAt != 120 {
		t.Errorf("after UpdateSched: %+v", got)
	}
	moved, err := f.s.MoveSched(f.ctx, im.SchedPending, im.SchedTask{App: testApp, ID: a.ID, Status: im.SchedDispatching, UpdatedAt: 130})
	if err != nil || !moved {
		t.Fatalf("MoveSched = %v, %v", moved, err)
	}
	if moved, _ := f.s.MoveSched(f.ctx, im.SchedPending, im.SchedTask{App: testApp, ID: a.ID, Status: im.SchedDispatching}); moved {
		t.Error("MoveSched from a status the task is not in succeeded")
	}
	if err := f.s.UpdateSched(f.ctx, a); !errors.Is(err, im.ErrNotPending) {
		t.Errorf("UpdateSched of a dispatching task: %v, want im.ErrNotPending", err)
	}
	if err := f.s.DeleteSched(f.ctx, testApp, a.ID); !errors.Is(err, im.ErrNotPending) {
		t.Errorf("DeleteSched of a dispatching task: %v, want im.ErrNotPending", err)
	}
	done := im.SchedTask{App: testApp, ID: a.ID, Status: im.SchedDispatched, DispatchSuccess: 1, PushTaskID: "p1", UpdatedAt: 140}
	if moved, err := f.s.MoveSched(f.ctx, im.SchedDispatching, done); err != nil || !moved {
		t.Fatalf("MoveSched to dispatched = %v, %v", moved, err)
	}
	if got, _ := f.s.Sched(f.ctx, testApp, a.ID); got.Status != im.SchedDispatched || got.PushTaskID != "p1" || got.DispatchSuccess != 1 {
		t.Errorf("dispatched task = %+v", got)
	}
	if _, err := f.s.MoveSched(f.ctx, im.SchedPending, im.SchedTask{App: testApp, ID: 999999}); !errors.Is(err, im.ErrNotFound) {
		t.Errorf("MoveSched of unknown task: %v, want im.ErrNotFound", err)
	}
	if err := f.s.DeleteSched(f.ctx, testApp, b.ID); err != nil {
		t.Fatalf("DeleteSched: %v", err)
	}
	_, err = f.s.Sched(f.ctx, testApp, b.ID)
	wantNotFound(t, "Sched after DeleteSched", err)
	if err := f.s.DeleteSched(f.ctx, testApp, b.ID); !errors.Is(err, im.ErrNotFound) {
		t.Errorf("DeleteSched twice: %v, want im.ErrNotFound", err)
	}
	c := f.addSched(schedTask(testApp, "gamma", 1, 1))
	if c.ID <= b.ID {
		t.Errorf("ID %d reused after delete (last %d)", c.ID, b.ID)
	}
	f.reopen()
	if got, err := f.s.Sched(f.ctx, testApp, c.ID); err != nil || got.Title != "gamma" {
		t.Errorf("after reopen: %+v, %v", got, err)
	}
}

func (h harness) testSchedList(t *testing.T) {
	f := h.fresh(t)
	var ids []int64
	for i, title := range []string{"red sale", "blue", "red hot", "green"} {
		x := f.addSched(schedTask(testApp, title, int64(1000-i*100), int64(10+i)))
		ids = append(ids, x.ID)
	}
	f.addSched(schedTask(otherApp, "red other", 1, 1))
	list := func(q im.SchedQuery) ([]int64, int) {
		t.Helper()
		ts, total, err := f.s.ListSched(f.ctx, testApp, q)
		if err != nil {
			t.Fatalf("ListSched: %v", err)
		}
		var out []int64
		for _, x := range ts {
			out = append(out, x.ID)
		}
		return out, total
	}
	if got, n := list(im.SchedQuery{Limit: 10, OrderBy: im.OrderCreatedAt, Asc: true}); n != 4 || !slices.Equal(got, ids) {
		t.Errorf("by created asc = %v (%d)", got, n)
	}
	if got, n := list(im.SchedQuery{Limit: 2, Offset: 1, OrderBy: im.OrderSchedAt, Asc: true}); n != 4 || !slices.Equal(got, []int64{ids[2], ids[1]}) {
		t.Errorf("by sched asc, page 2 = %v (%d)", got, n)
	}
	if got, n := list(im.SchedQuery{Limit: 10, OrderBy: im.OrderCreatedAt, Keyword: "red"}); n != 2 || !slices.Equal(got, []int64{ids[2], ids[0]}) {
		t.Errorf("keyword red, created desc = %v (%d)", got, n)
	}
	if got, n := list(im.SchedQuery{Limit: 10, OrderBy: im.OrderSchedAt, Begin: 750, End: 900, Asc: true}); n != 2 || !slices.Equal(got, []int64{ids[2], ids[1]}) {
		t.Errorf("sched between 750 and 900 = %v (%d)", got, n)
	}
}

func (h harness) testSchedDue(t *testing.T) {
	f := h.fresh(t)
	early := f.addSched(schedTask(testApp, "early", 100, 1))
	late := f.addSched(schedTask(otherApp, "late", 300, 1))
	stuck := f.addSched(schedTask(testApp, "stuck", 50, 1))
	if _, err := f.s.MoveSched(f.ctx, im.SchedPending, im.SchedTask{App: testApp, ID: stuck.ID, Status: im.SchedDispatching, UpdatedAt: 60}); err != nil {
		t.Fatal(err)
	}
	due := func(now, stale int64) []int64 {
		t.Helper()
		ts, err := f.s.DueSched(f.ctx, now, stale, 10)
		if err != nil {
			t.Fatalf("DueSched: %v", err)
		}
		var out []int64
		for _, x := range ts {
			out = append(out, x.ID)
		}
		return out
	}
	if got := due(99, 0); len(got) != 0 {
		t.Errorf("due at 99 = %v", got)
	}
	if got := due(100, 0); !slices.Equal(got, []int64{early.ID}) {
		t.Errorf("due at 100 = %v", got)
	}
	if got := due(300, 60); !slices.Equal(got, []int64{stuck.ID, early.ID, late.ID}) {
		t.Errorf("due at 300 with stale dispatching = %v, want by SchedAt", got)
	}
}
