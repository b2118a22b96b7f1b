package storetest

import (
	"testing"

	"timd/internal/im"
)

// leases returns f's store as an im.LeaseStore; every backend is one.
func (f *fixture) leases() im.LeaseStore {
	f.t.Helper()
	l, ok := f.s.(im.LeaseStore)
	if !ok {
		f.t.Fatalf("%T does not implement im.LeaseStore", f.s)
	}
	return l
}

// testLeases: a free name is granted, renewed by its owner, refused to
// another owner until it expires, then granted to that one; names are
// independent; the lease survives a reopen.
func (h harness) testLeases(t *testing.T) {
	f := h.fresh(t)
	take := func(name, owner string, now, until int64) bool {
		t.Helper()
		ok, err := f.leases().TakeLease(f.ctx, name, owner, now, until)
		if err != nil {
			t.Fatalf("TakeLease(%s, %s): %v", name, owner, err)
		}
		return ok
	}
	if !take("scheduler", "a", 1000, 2000) {
		t.Fatal("a free lease was refused")
	}
	if take("scheduler", "b", 1500, 2500) {
		t.Error("a held lease was granted to another owner")
	}
	if !take("scheduler", "a", 1500, 3000) {
		t.Error("the owner's renewal was refused")
	}
	if !take("webhooks", "b", 1500, 2500) {
		t.Error("another name was refused")
	}
	f.reopen()
	if take("scheduler", "b", 2999, 4000) {
		t.Error("a renewed lease was granted before it ended (or lost at reopen)")
	}
	if !take("scheduler", "b", 3000, 4000) {
		t.Error("an ended lease was not granted")
	}
	if take("scheduler", "a", 3500, 5000) {
		t.Error("the old owner took the lease back while it was held")
	}
}

func (h harness) testTwoLeaseName(t *testing.T) {
	a, b := h.two(t)
	holders := winners(t, 12, a, b, func(f *fixture, owner string) (bool, error) {
		return f.leases().TakeLease(f.ctx, "scheduler", owner, 1000, 60000)
	})
	if len(holders) != 1 {
		t.Fatalf("lease holders %v, want exactly one", holders)
	}
	if ok, _ := b.leases().TakeLease(b.ctx, "scheduler", holders[0], 2000, 61000); !ok {
		t.Errorf("the holder's renewal through the other handle was refused")
	}
	if ok, _ := a.leases().TakeLease(a.ctx, "scheduler", "late", 60999, 70000); ok {
		t.Errorf("a renewed lease was granted to another owner")
	}
}
