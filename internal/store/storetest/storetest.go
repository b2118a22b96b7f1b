// Package storetest is the conformance suite every im.Store backend must
// pass. It knows only package im: a backend's test calls Run with a
// function that opens the backend on a directory.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"timd/internal/im"
)

// OpenFunc opens a store whose data lives in dir. Called twice with the
// same dir (after the first store was closed), it must return a store with
// the same data; called with a new dir, an empty one. Backends that do not
// keep data in files map dir to their own namespace (a database, a schema).
type OpenFunc func(t *testing.T, dir string) im.Store

// Run runs the conformance suite against the stores open returns. Each
// subtest opens its own store on a fresh t.TempDir() and installs a
// Recorder as its ChangeSink. Beyond the im.Store documentation, the suite
// pins down these rules, which every backend must share:
//
//   - ordinals start at 1 per app, are shared by both account types, and
//     are never reused, even after the account with the highest one is
//     deleted and the store reopened;
//   - To_Account resolves to a RegistrationID before a UserID; Kick and
//     DeleteAccounts address UserIDs only;
//   - Kick never moves KickedAt backwards;
//   - a change is emitted only when an account is created or deleted or its
//     attributes or tags change, before the write returns, in commit order,
//     never concurrently; replaying the feed rebuilds the stored state;
//   - each app's changes carry Seq 1, 2, 3, ... without gaps in commit
//     order, and the store implements im.ChangeLog over them;
//   - per-edit codes 70107, 90035 (attribute slot or tag bound to the other
//     account type) and 90032 (per-user or per-app tag limit, checked only
//     for edits that add tags, counting tags the same edit releases);
//   - a tag's type binding and its place under the per-app limit are
//     released when no account carries it any more;
//   - a write whose context is already done fails and changes nothing.
//
// Run skips the two-handle cases (see Options and RunWith).
func Run(t *testing.T, open OpenFunc) {
	RunWith(t, open, Options{})
}

func (h harness) run(t *testing.T) {
	t.Run("Apps", h.testApps)
	t.Run("Import", h.testImport)
	t.Run("Ordinals", h.testOrdinals)
	t.Run("Delete", h.testDelete)
	t.Run("Resolution", h.testResolution)
	t.Run("Kick", h.testKick)
	t.Run("RegisterDevice", h.testRegisterDevice)
	t.Run("DeviceLimit", h.testDeviceLimit)
	t.Run("ImportDisplacesDevice", h.testImportDisplacesDevice)
	t.Run("ImportBatch", h.testImportBatch)
	t.Run("AttrSchema", h.testAttrSchema)
	t.Run("EditOps", h.testEditOps)
	t.Run("EditErrors", h.testEditErrors)
	t.Run("PartialSuccess", h.testPartialSuccess)
	t.Run("TagRegistry", h.testTagRegistry)
	t.Run("BulkLoad", h.testBulkLoad)
	t.Run("ChangeFeed", h.testChangeFeed)
	t.Run("ChangeLog", h.testChangeLog)
	t.Run("ScanProfiles", h.testScanProfiles)
	t.Run("NarrowReads", h.testNarrowReads)
	t.Run("Context", h.testContext)
	t.Run("Concurrent", h.testConcurrent)
	t.Run("Reopen", h.testReopen)
	t.Run("PushCreate", h.testPushCreate)
	t.Run("PushDedupConcurrent", h.testPushDedupConcurrent)
	t.Run("PushInterval", h.testPushInterval)
	t.Run("PushQuota", h.testPushQuota)
	t.Run("RevokeInterval", h.testRevokeInterval)
	t.Run("RevokedSince", h.testRevokedSince)
	t.Run("PushLease", h.testPushLease)
	t.Run("PushLeaseFence", h.testPushLeaseFence)
	t.Run("PushProgress", h.testPushProgress)
	t.Run("StoredHeads", h.testStoredHeads)
	t.Run("TaskAudience", h.testTaskAudience)
	t.Run("Acks", h.testAcks)
	t.Run("Reports", h.testReports)
	t.Run("Hooks", h.testHooks)
	t.Run("PushReopen", h.testPushReopen)
	t.Run("SchedCRUD", h.testSchedCRUD)
	t.Run("SchedList", h.testSchedList)
	t.Run("SchedDue", h.testSchedDue)
	t.Run("Leases", h.testLeases)
	t.Run("PushDevices", h.testPushDevices)
	t.Run("Outbox", h.testOutbox)
	t.Run("OutboxRenew", h.testOutboxRenew)
	h.runTwoHandles(t)
}

// Recorder is an im.ChangeSink that keeps every change it receives and
// notes if it is ever called concurrently.
type Recorder struct {
	mu         sync.Mutex
	changes    []im.Change
	inside     atomic.Int32
	concurrent atomic.Bool
}

// Apply records changes.
func (r *Recorder) Apply(changes []im.Change) {
	if r.inside.Add(1) > 1 {
		r.concurrent.Store(true)
	}
	defer r.inside.Add(-1)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range changes {
		c.OldTags = slices.Clone(c.OldTags)
		c.NewTags = slices.Clone(c.NewTags)
		r.changes = append(r.changes, c)
	}
}

// Take returns the changes recorded since the last Take and forgets them.
func (r *Recorder) Take() []im.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.changes
	r.changes = nil
	return c
}

// Concurrent reports whether Apply was ever entered while already running.
func (r *Recorder) Concurrent() bool { return r.concurrent.Load() }

type harness struct {
	open   OpenFunc
	shared bool // two handles may be open on one store (Options.Shared)
}

// fixture is one store on a fresh directory with a Recorder installed.
type fixture struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	s    im.Store
	rec  *Recorder
	open OpenFunc
}

// testApp is the app most tests use; otherApp checks per-app isolation.
const (
	testApp  uint64 = 1400000001
	otherApp uint64 = 1400000002
)

func (h harness) fresh(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), dir: t.TempDir(), open: h.open}
	f.reopen()
	t.Cleanup(func() {
		if f.s != nil {
			if err := f.s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
		if f.rec.Concurrent() {
			t.Errorf("ChangeSink.Apply was called concurrently")
		}
	})
	return f
}

// reopen closes the store, if open, and opens it again on the same dir.
func (f *fixture) reopen() {
	f.t.Helper()
	if f.s != nil {
		if err := f.s.Close(); err != nil {
			f.t.Fatalf("Close: %v", err)
		}
		f.s = nil
	}
	f.s = f.open(f.t, f.dir)
	if f.rec == nil {
		f.rec = &Recorder{}
	}
	f.s.SetChangeSink(f.rec)
}

func (f *fixture) importIDs(app uint64, ids ...string) []im.Account {
	f.t.Helper()
	in := make([]im.AccountInput, len(ids))
	for i, id := range ids {
		in[i] = im.AccountInput{UserID: id}
	}
	out, err := f.s.ImportAccounts(f.ctx, app, in)
	if err != nil {
		f.t.Fatalf("ImportAccounts(%v): %v", ids, err)
	}
	if len(out) != len(ids) {
		f.t.Fatalf("ImportAccounts(%v) returned %d accounts", ids, len(out))
	}
	return out
}

func (f *fixture) device(app uint64, id string) im.Account {
	f.t.Helper()
	a, err := f.s.RegisterDevice(f.ctx, app, im.Device{RegistrationID: id, Platform: "android"}, im.DeviceLimits{})
	if err != nil {
		f.t.Fatalf("RegisterDevice(%s): %v", id, err)
	}
	return a
}

func (f *fixture) putSchema(app uint64, s im.AttrSchema) {
	f.t.Helper()
	if err := f.s.PutAttrSchema(f.ctx, app, s); err != nil {
		f.t.Fatalf("PutAttrSchema: %v", err)
	}
}

// edits applies edits and returns the per-edit codes (0 for success).
func (f *fixture) edits(app uint64, lim im.EditLimits, edits ...im.Edit) []int {
	f.t.Helper()
	errs, err := f.s.ApplyEdits(f.ctx, app, edits, lim)
	if err != nil {
		f.t.Fatalf("ApplyEdits: %v", err)
	}
	if len(errs) != len(edits) {
		f.t.Fatalf("ApplyEdits returned %d errors for %d edits", len(errs), len(edits))
	}
	codes := make([]int, len(errs))
	for i, e := range errs {
		if e == nil {
			continue
		}
		codes[i] = im.CodeOf(e)
		if codes[i] == 0 {
			f.t.Fatalf("edit %d: error without a code: %v", i, e)
		}
	}
	return codes
}

// mustEdit applies edits that must all succeed.
func (f *fixture) mustEdit(app uint64, edits ...im.Edit) {
	f.t.Helper()
	for i, c := range f.edits(app, im.EditLimits{}, edits...) {
		if c != 0 {
			f.t.Fatalf("edit %d (%+v): code %d", i, edits[i], c)
		}
	}
}

func (f *fixture) profile(app uint64, id string) im.Profile {
	f.t.Helper()
	ps, err := f.s.Profiles(f.ctx, app, []string{id})
	if err != nil {
		f.t.Fatalf("Profiles(%s): %v", id, err)
	}
	p, ok := ps[id]
	if !ok {
		f.t.Fatalf("Profiles(%s): not found", id)
	}
	return p
}

// wantTags checks the tags of id through Profiles and through the
// narrow ReadTags.
func (f *fixture) wantTags(app uint64, id string, want ...string) {
	f.t.Helper()
	if got := f.profile(app, id).Tags; !slices.Equal(got, want) {
		f.t.Errorf("tags of %s = %q, want %q", id, got, want)
	}
	got, err := f.s.ReadTags(f.ctx, app, []string{id})
	if err != nil || len(got) != 1 || !got[0].Found || !slices.Equal(got[0].Tags, want) {
		f.t.Errorf("ReadTags(%s) = %+v, %v; want %q", id, got, err, want)
	}
}

// wantAttrs checks the attribute values of id through Profiles and
// through the narrow ReadAttrs.
func (f *fixture) wantAttrs(app uint64, id string, want im.AttrValues) {
	f.t.Helper()
	if got := f.profile(app, id).Attrs; got != want {
		f.t.Errorf("attrs of %s = %q, want %q", id, got, want)
	}
	got, err := f.s.ReadAttrs(f.ctx, app, []string{id})
	if err != nil || len(got) != 1 || !got[0].Found || got[0].Attrs != want {
		f.t.Errorf("ReadAttrs(%s) = %+v, %v; want %q", id, got, err, want)
	}
}

func (f *fixture) scan(app uint64) []im.Profile {
	f.t.Helper()
	var ps []im.Profile
	err := f.s.ScanProfiles(f.ctx, app, func(p im.Profile) error {
		ps = append(ps, p)
		return nil
	})
	if err != nil {
		f.t.Fatalf("ScanProfiles: %v", err)
	}
	return ps
}

// attrs builds AttrValues from slot/value pairs.
func attrs(kv ...any) im.AttrValues {
	var a im.AttrValues
	for i := 0; i+1 < len(kv); i += 2 {
		a[kv[i].(int)] = kv[i+1].(string)
	}
	return a
}

func setAttrs(id string, a im.AttrValues) im.Edit {
	return im.Edit{Account: id, Op: im.OpSetAttrs, Attrs: a}
}

func removeAttrs(id string, slots ...int) im.Edit {
	return im.Edit{Account: id, Op: im.OpRemoveAttrs, Slots: slots}
}

func tagEdit(op im.EditOp, id string, tags ...string) im.Edit {
	return im.Edit{Account: id, Op: op, Tags: tags}
}

// userSchema defines slots 0..2 for UserIDs and slot 3 for RegistrationIDs.
var userSchema = im.AttrSchema{
	{Name: "gender", Type: im.AcctUserID},
	{Name: "city", Type: im.AcctUserID},
	{Name: "level", Type: im.AcctUserID},
	{Name: "tier", Type: im.AcctRegistrationID},
}

// normChange makes empty and nil tag lists compare equal.
func normChange(c im.Change) im.Change {
	if len(c.OldTags) == 0 {
		c.OldTags = nil
	}
	if len(c.NewTags) == 0 {
		c.NewTags = nil
	}
	return c
}

func changeString(c im.Change) string {
	op := map[im.ChangeOp]string{im.ChangeUpsert: "upsert", im.ChangeDelete: "delete"}[c.Op]
	return fmt.Sprintf("{%d %s %s type=%d ord=%d attrs %q->%q tags %q->%q}",
		c.App, op, c.ID, c.Type, c.Ordinal, c.OldAttrs, c.NewAttrs, c.OldTags, c.NewTags)
}

// wantChanges checks that the changes recorded since the last check are
// exactly want, in order.
func (f *fixture) wantChanges(want ...im.Change) {
	f.t.Helper()
	got := f.rec.Take()
	equal := len(got) == len(want)
	for i := 0; equal && i < len(got); i++ {
		g, w := normChange(got[i]), normChange(want[i])
		equal = g.App == w.App && g.Op == w.Op && g.ID == w.ID && g.Type == w.Type &&
			g.Ordinal == w.Ordinal && g.OldAttrs == w.OldAttrs && g.NewAttrs == w.NewAttrs &&
			slices.Equal(g.OldTags, w.OldTags) && slices.Equal(g.NewTags, w.NewTags)
	}
	if equal {
		return
	}
	f.t.Errorf("changes differ")
	for _, c := range got {
		f.t.Errorf("  got  %s", changeString(c))
	}
	for _, c := range want {
		f.t.Errorf("  want %s", changeString(c))
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", what, err, want)
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, im.ErrNotFound) {
		t.Errorf("%s: error %v, want im.ErrNotFound", what, err)
	}
}
