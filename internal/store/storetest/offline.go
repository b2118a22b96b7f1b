package storetest

import (
	"bytes"
	"errors"
	"testing"

	"timd/internal/im"
)

// Vendor delivery: push devices and the durable send queue.

func (h harness) testPushDevices(t *testing.T) {
	f := h.fresh(t)
	if _, err := f.s.PushDevice(f.ctx, testApp, "nope"); !errors.Is(err, im.ErrNotFound) {
		t.Fatalf("PushDevice of unknown: %v, want im.ErrNotFound", err)
	}
	ios := im.PushDevice{RegistrationID: "r-ios", Target: 7, Owner: "alice", Platform: "ios", Vendor: im.VendorAPNs,
		Token: "tok1", Bundle: "com.example", UpdatedAt: 10}
	web := im.PushDevice{RegistrationID: "r-web", Target: 9, Platform: "web", Vendor: im.VendorWebPush,
		Endpoint: "https://push.example/e1", P256dh: "p", Auth: "a", CredHash: []byte{1, 2, 3}, UpdatedAt: 11}
	for _, d := range []im.PushDevice{ios, web} {
		if err := f.s.PutPushDevice(f.ctx, testApp, d); err != nil {
			t.Fatal(err)
		}
	}
	// A refreshed token replaces the row.
	ios.Token, ios.UpdatedAt = "tok2", 12
	if err := f.s.PutPushDevice(f.ctx, testApp, ios); err != nil {
		t.Fatal(err)
	}
	// The same token under a new RegistrationID moves there.
	if err := f.s.PutPushDevice(f.ctx, testApp, im.PushDevice{RegistrationID: "r-new", Target: 100, Vendor: im.VendorAPNs, Token: "tok2"}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.PutPushDevice(f.ctx, testApp, ios); err != nil { // and back
		t.Fatal(err)
	}
	if d, err := f.s.PushDevice(f.ctx, testApp, "r-new"); err != nil || d.Token != "" {
		t.Fatalf("r-new after its token moved back: %+v, %v", d, err)
	}
	got, err := f.s.PushDevicesOf(f.ctx, testApp, []uint32{7, 9, 100})
	if err != nil || len(got) != 3 || got[2].RegistrationID != "r-web" {
		t.Fatalf("PushDevicesOf = %+v, %v; want 3 devices", got, err)
	}
	got = append(got[:1], got[2])
	if got[0].RegistrationID != "r-ios" || got[0].Token != "tok2" || got[0].Bundle != "com.example" || got[0].Vendor != im.VendorAPNs {
		t.Errorf("ios device = %+v", got[0])
	}
	if g := got[1]; g.Endpoint != web.Endpoint || g.P256dh != "p" || g.Auth != "a" || !bytes.Equal(g.CredHash, web.CredHash) || g.Target != 9 {
		t.Errorf("web device = %+v", g)
	}
	if other, err := f.s.PushDevicesOf(f.ctx, otherApp, []uint32{7, 9}); err != nil || len(other) != 0 {
		t.Errorf("other app sees %+v, %v", other, err)
	}
	// A stale token is not dropped; the current one is.
	if ok, err := f.s.DropToken(f.ctx, testApp, "r-ios", "tok1"); err != nil || ok {
		t.Errorf("DropToken(stale) = %v, %v; want false", ok, err)
	}
	if ok, err := f.s.DropToken(f.ctx, testApp, "r-ios", "tok2"); err != nil || !ok {
		t.Errorf("DropToken(current) = %v, %v; want true", ok, err)
	}
	if ok, err := f.s.DropToken(f.ctx, testApp, "r-web", web.Endpoint); err != nil || !ok {
		t.Errorf("DropToken(endpoint) = %v, %v; want true", ok, err)
	}
	// Deleting a device account deletes its vendor side: an import of its
	// name displaces it.
	dev := f.device(testApp, "r-gone")
	if err := f.s.PutPushDevice(f.ctx, testApp, im.PushDevice{RegistrationID: "r-gone", Target: dev.Ordinal, Vendor: im.VendorFCM, Token: "g"}); err != nil {
		t.Fatal(err)
	}
	f.importIDs(testApp, "r-gone")
	if _, err := f.s.PushDevice(f.ctx, testApp, "r-gone"); !errors.Is(err, im.ErrNotFound) {
		t.Errorf("push device of a displaced RegistrationID: %v, want im.ErrNotFound", err)
	}
	f.reopen()
	d, err := f.s.PushDevice(f.ctx, testApp, "r-ios")
	if err != nil || d.Token != "" || d.Owner != "alice" || d.Platform != "ios" {
		t.Errorf("after drop and reopen: %+v, %v", d, err)
	}
	// A subscription endpoint moves as a token does, within its app only.
	sub := im.PushDevice{Target: 9, Vendor: im.VendorWebPush, Endpoint: "https://push.example/e2", P256dh: "p", Auth: "a"}
	for _, put := range []struct {
		app uint64
		id  string
	}{{otherApp, "r-w1"}, {testApp, "r-w1"}, {testApp, "r-w2"}} {
		d := sub
		d.RegistrationID = put.id
		if err := f.s.PutPushDevice(f.ctx, put.app, d); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := f.s.PushDevice(f.ctx, testApp, "r-w1"); err != nil || d.Endpoint != "" || d.P256dh != "" || d.Auth != "" {
		t.Errorf("r-w1 after its endpoint moved to r-w2: %+v, %v", d, err)
	}
	for _, at := range []struct {
		app uint64
		id  string
	}{{testApp, "r-w2"}, {otherApp, "r-w1"}} {
		if d, err := f.s.PushDevice(f.ctx, at.app, at.id); err != nil || d.Endpoint != sub.Endpoint {
			t.Errorf("app %d %s: %+v, %v; want endpoint %s", at.app, at.id, d, err, sub.Endpoint)
		}
	}
}

func (h harness) testOutbox(t *testing.T) {
	f := h.fresh(t)
	const created = 1_000_000
	now := int64(created) * 1000
	f.create(pushTask(testApp, "t1", 1, created, 7, 9), 0)
	f.create(pushTask(testApp, "t2", 2, created, 7), 0)
	for _, d := range []im.PushDevice{
		{RegistrationID: "a", Target: 7, Vendor: im.VendorAPNs, Token: "ta"},
		{RegistrationID: "b", Target: 7, Vendor: im.VendorFCM, Token: "tb"},
		{RegistrationID: "c", Target: 9, Vendor: im.VendorWebPush, Endpoint: "https://e/c"},
		{RegistrationID: "d", Target: 9, Vendor: im.VendorAPNs}, // no token: unreachable
		{RegistrationID: "e", Target: 9, Vendor: im.VendorNone, Token: "x"},
	} {
		if err := f.s.PutPushDevice(f.ctx, testApp, d); err != nil {
			t.Fatal(err)
		}
	}
	enqueue := func(task string, want int, targets ...uint32) {
		t.Helper()
		n, err := f.s.EnqueueOffline(f.ctx, testApp, task, targets, now)
		if err != nil || n != want {
			t.Fatalf("EnqueueOffline(%s, %v) = %d, %v; want %d", task, targets, n, err, want)
		}
	}
	enqueue("t1", 3, 7, 9)
	enqueue("t1", 0, 7, 9) // a resumed fan-out queues nothing twice
	claim := func(owner string, at int64, limit int) []im.OutboxItem {
		t.Helper()
		its, err := f.s.ClaimOutbox(f.ctx, owner, at, at+1000, limit)
		if err != nil {
			t.Fatalf("ClaimOutbox: %v", err)
		}
		return its
	}
	if its := claim("n1", now-1, 10); len(its) != 0 {
		t.Fatalf("claimed %d sends before they were due", len(its))
	}
	first := claim("n1", now, 2)
	if len(first) != 2 {
		t.Fatalf("claimed %+v, want 2", first)
	}
	rest := claim("n2", now, 10)
	if len(rest) != 1 || rest[0].RegistrationID == first[0].RegistrationID || rest[0].RegistrationID == first[1].RegistrationID {
		t.Fatalf("second claim %+v overlaps the first %+v", rest, first)
	}
	if again := claim("n1", now+500, 10); len(again) != 0 {
		t.Fatalf("leased sends claimed again: %+v", again)
	}
	// Finish one; a lease that ended gives the others to another owner.
	r := im.SendResult{App: testApp, TaskID: "t1", RegistrationID: first[0].RegistrationID, Account: "alice",
		Vendor: im.VendorAPNs, Platform: "ios", Status: 200, At: created}
	if err := f.s.FinishOutbox(f.ctx, r); err != nil {
		t.Fatal(err)
	}
	if n, err := f.s.OutboxLen(f.ctx, testApp, "t1"); err != nil || n != 2 {
		t.Fatalf("OutboxLen = %d, %v; want 2", n, err)
	}
	enqueue("t1", 0, 7, 9) // finished sends are not queued again
	if its := claim("n3", now+1000, 10); len(its) != 2 {
		t.Fatalf("after the lease ended claimed %+v, want 2", its)
	}
	if err := f.s.RetryOutbox(f.ctx, testApp, "t1", first[1].RegistrationID, now+5000); err != nil {
		t.Fatal(err)
	}
	if its := claim("n4", now+4000, 10); len(its) != 1 || its[0].RegistrationID != rest[0].RegistrationID {
		t.Fatalf("at 4000 claimed %+v, want only %s (the retried send is due at 5000)", its, rest[0].RegistrationID)
	}
	its := claim("n4", now+5000, 10)
	retried := false
	for _, it := range its {
		retried = retried || it.RegistrationID == first[1].RegistrationID && it.Attempts == 1
	}
	if len(its) != 2 || !retried {
		t.Fatalf("at 5000 claimed %+v, want 2 with the retried one at 1 attempt", its)
	}
	// A revoked task's sends are dropped, not claimed.
	enqueue("t2", 2, 7)
	if err := f.s.RevokeTask(f.ctx, testApp, "t2", created, nil, im.TaskLimits{}); err != nil {
		t.Fatal(err)
	}
	if its := claim("n5", now+100000, 10); len(its) != 2 { // t1's two, not t2's
		t.Fatalf("claimed %+v, want t1's two sends only", its)
	}
	for _, it := range its {
		if it.TaskID != "t1" {
			t.Errorf("claimed a send of revoked %s", it.TaskID)
		}
	}
	if n, err := f.s.OutboxLen(f.ctx, testApp, "t2"); err != nil || n != 0 {
		t.Errorf("revoked task keeps %d sends, %v", n, err)
	}
	counts, err := f.s.SendCounts(f.ctx, testApp, "t1")
	if err != nil {
		t.Fatal(err)
	}
	var finished, queued int64
	for _, c := range counts {
		if c.Queued {
			queued += c.N
		} else if c.Vendor == im.VendorAPNs && c.ErrCode == "" {
			finished += c.N
		}
	}
	if finished != 1 || queued != 2 {
		t.Errorf("SendCounts = %+v; want 1 finished (apns) and 2 queued", counts)
	}
	// Expired tasks too.
	if its := claim("n6", (created+3600)*1000+200000, 10); len(its) != 0 {
		t.Errorf("claimed sends of an expired task: %+v", its)
	}
	if got, err := f.s.AccountSends(f.ctx, testApp, "t1", "alice"); err != nil || len(got) != 1 || got[0] != r {
		t.Errorf("AccountSends(alice) = %+v, %v", got, err)
	}
	if got, err := f.s.AccountSends(f.ctx, testApp, "t1", "bob"); err != nil || len(got) != 0 {
		t.Errorf("AccountSends(bob) = %+v, %v", got, err)
	}
	un, err := f.s.UnpostedSends(f.ctx, 10)
	if err != nil || len(un) != 1 || un[0] != r {
		t.Fatalf("UnpostedSends = %+v, %v; want [%+v]", un, err, r)
	}
	if err := f.s.MarkSendsPosted(f.ctx, un); err != nil {
		t.Fatal(err)
	}
	if un, err := f.s.UnpostedSends(f.ctx, 10); err != nil || len(un) != 0 {
		t.Fatalf("after MarkSendsPosted: %+v, %v", un, err)
	}
	f.reopen()
	res, err := f.s.SendResults(f.ctx, testApp, "t1", "", 10)
	if err != nil || len(res) != 1 || res[0] != r {
		t.Fatalf("SendResults = %+v, %v; want [%+v]", res, err, r)
	}
	if res, err := f.s.SendResults(f.ctx, testApp, "t1", r.RegistrationID, 10); err != nil || len(res) != 0 {
		t.Errorf("SendResults after the last = %+v, %v", res, err)
	}
}

// testOutboxRenew: a renewed lease keeps its sends from other owners past
// the original lease; only the owner's unfinished sends are renewed.
func (h harness) testOutboxRenew(t *testing.T) {
	f := h.fresh(t)
	const created = 1_000_000
	now := int64(created) * 1000
	f.create(pushTask(testApp, "t1", 1, created, 7), 0)
	for _, d := range []im.PushDevice{
		{RegistrationID: "a", Target: 7, Vendor: im.VendorAPNs, Token: "ta"},
		{RegistrationID: "b", Target: 7, Vendor: im.VendorFCM, Token: "tb"},
		{RegistrationID: "c", Target: 7, Vendor: im.VendorFCM, Token: "tc"},
	} {
		if err := f.s.PutPushDevice(f.ctx, testApp, d); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := f.s.EnqueueOffline(f.ctx, testApp, "t1", []uint32{7}, now); err != nil || n != 3 {
		t.Fatalf("EnqueueOffline = %d, %v; want 3", n, err)
	}
	its, err := f.s.ClaimOutbox(f.ctx, "n1", now, now+1000, 10)
	if err != nil || len(its) != 3 {
		t.Fatalf("ClaimOutbox = %+v, %v; want 3", its, err)
	}
	if n, err := f.s.RenewOutbox(f.ctx, "n1", nil, now+5000); err != nil || n != 0 {
		t.Fatalf("RenewOutbox(none) = %d, %v", n, err)
	}
	// One finished, one retried (released): only the third is still n1's.
	if err := f.s.FinishOutbox(f.ctx, im.SendResult{App: testApp, TaskID: "t1", RegistrationID: its[0].RegistrationID, At: created}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RetryOutbox(f.ctx, testApp, "t1", its[1].RegistrationID, now+2000); err != nil {
		t.Fatal(err)
	}
	if n, err := f.s.RenewOutbox(f.ctx, "n2", its, now+5000); err != nil || n != 0 {
		t.Fatalf("RenewOutbox by another owner = %d, %v; want 0", n, err)
	}
	if n, err := f.s.RenewOutbox(f.ctx, "n1", its, now+5000); err != nil || n != 1 {
		t.Fatalf("RenewOutbox = %d, %v; want 1 (the one still leased to n1)", n, err)
	}
	// Past the first lease, another owner gets the retried send only.
	got, err := f.s.ClaimOutbox(f.ctx, "n2", now+3000, now+9000, 10)
	if err != nil || len(got) != 1 || got[0].RegistrationID != its[1].RegistrationID {
		t.Fatalf("ClaimOutbox past the first lease = %+v, %v; want only %s", got, err, its[1].RegistrationID)
	}
	if got, err := f.s.ClaimOutbox(f.ctx, "n2", now+5000, now+6000, 10); err != nil || len(got) != 1 || got[0].RegistrationID != its[2].RegistrationID {
		t.Fatalf("ClaimOutbox past the renewed lease = %+v, %v; want %s", got, err, its[2].RegistrationID)
	}
	// The trace's view: the two sends still queued, with their device.
	q, err := f.s.QueuedSends(f.ctx, testApp, "t1", 7)
	if err != nil || len(q) != 2 {
		t.Fatalf("QueuedSends = %+v, %v; want 2", q, err)
	}
	for _, x := range q {
		switch x.RegistrationID {
		case its[1].RegistrationID:
			if x.Attempts != 1 || x.LeaseUntil != now+9000 || x.DueAt != now+2000 {
				t.Errorf("retried send %+v", x)
			}
		case its[2].RegistrationID:
			if x.Attempts != 0 || x.LeaseUntil != now+6000 {
				t.Errorf("renewed send %+v", x)
			}
		default:
			t.Errorf("queued %+v: it was finished", x)
		}
		if x.Vendor != im.VendorFCM && x.Vendor != im.VendorAPNs {
			t.Errorf("queued send without its device's vendor: %+v", x)
		}
	}
	if q, err := f.s.QueuedSends(f.ctx, testApp, "t1", 9); err != nil || len(q) != 0 {
		t.Errorf("QueuedSends of a target without devices = %+v, %v", q, err)
	}
}
