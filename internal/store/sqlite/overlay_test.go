package sqlite

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"timd/internal/im"
)

// noFold never folds while the store is open (only Close folds).
func noFold() options {
	opt := defaultOptions()
	opt.foldLogBytes, opt.foldMaxDirty, opt.foldIdle = 1<<62, 1<<62, time.Hour
	return opt
}

func openOpt(t *testing.T, opt options) *Store {
	t.Helper()
	s, err := open(context.Background(), t.TempDir(), nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func importN(t *testing.T, s *Store, n int) []string {
	t.Helper()
	in := make([]im.AccountInput, n)
	ids := make([]string, n)
	for i := range in {
		ids[i] = fmt.Sprintf("u%04d", i)
		in[i].UserID = ids[i]
	}
	if _, err := s.ImportAccounts(context.Background(), 1, in); err != nil {
		t.Fatal(err)
	}
	return ids
}

// overlayKeys returns the ids of the accounts the overlay holds.
func overlayKeys(t *testing.T, s *Store) []string {
	t.Helper()
	s.ov.mu.RLock()
	keys := make([]any, 0, len(s.ov.m))
	for k := range s.ov.m {
		keys = append(keys, k)
	}
	s.ov.mu.RUnlock()
	var ids []string
	for _, k := range keys {
		var id string
		if err := s.rdb.QueryRow(`SELECT id FROM accounts WHERE key = ?`, k).Scan(&id); err != nil {
			t.Fatalf("overlay key %v: %v", k, err)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// TestOverlayHoldsOnlyDirty checks the overlay's admission rule: an
// account enters it only when an edit changes it, not when it is imported,
// resolved by an edit that fails or changes nothing, read, or deleted.
func TestOverlayHoldsOnlyDirty(t *testing.T) {
	ctx := context.Background()
	s := openOpt(t, noFold())
	ids := importN(t, s, 6)
	if got := overlayKeys(t, s); len(got) != 0 {
		t.Fatalf("overlay after import = %v, want empty", got)
	}
	errs, err := s.ApplyEdits(ctx, 1, []im.Edit{
		{Account: ids[0], Op: im.OpSetAttrs, Attrs: im.AttrValues{"a"}},
		{Account: ids[1], Op: im.OpAddTags, Tags: []string{"t"}},
		{Account: ids[2], Op: im.OpRemoveTags, Tags: []string{"absent"}}, // changes nothing
		{Account: ids[3], Op: im.OpClearTags},                            // changes nothing
		{Account: ids[4], Op: im.OpRemoveAttrs, Slots: []int{12}},        // fails: slot out of range
		{Account: "nobody", Op: im.OpAddTags, Tags: []string{"t"}},       // fails: unknown
	}, im.EditLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[1] != nil || errs[2] != nil || errs[3] != nil || errs[4] == nil || errs[5] == nil {
		t.Fatalf("ApplyEdits errors = %v", errs)
	}
	if _, err := s.Profiles(ctx, 1, ids); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadTags(ctx, 1, ids); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadAttrs(ctx, 1, ids); err != nil {
		t.Fatal(err)
	}
	if err := s.ScanProfiles(ctx, 1, func(im.Profile) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got, want := overlayKeys(t, s), ids[:2]; !slices.Equal(got, want) {
		t.Fatalf("overlay after edits and reads = %v, want the changed accounts %v", got, want)
	}
	// Deleting a dirty account drops it; deleting a clean one adds nothing.
	if _, err := s.DeleteAccounts(ctx, 1, []string{ids[1], ids[5]}); err != nil {
		t.Fatal(err)
	}
	if got, want := overlayKeys(t, s), ids[:1]; !slices.Equal(got, want) {
		t.Fatalf("overlay after deletes = %v, want %v", got, want)
	}
}

// TestOverlayDropsFolded checks the eviction rule: once a fold has written
// an account's state to accounts, the overlay no longer holds it, and
// reads still see the latest state; an account changed again is held
// again until the next fold.
func TestOverlayDropsFolded(t *testing.T) {
	ctx := context.Background()
	opt := defaultOptions()
	opt.foldLogBytes, opt.foldChunk = 1, 7 // a cycle after every group, several steps each
	s := openOpt(t, opt)
	ids := importN(t, s, 50)
	for round := range 3 {
		edits := make([]im.Edit, len(ids))
		for i, id := range ids {
			edits[i] = im.Edit{Account: id, Op: im.OpSetAttrs, Attrs: im.AttrValues{fmt.Sprint("r", round)}}
		}
		if _, err := s.ApplyEdits(ctx, 1, edits, im.EditLimits{}); err != nil {
			t.Fatal(err)
		}
		waitOverlayEmpty(t, s)
		ps, err := s.Profiles(ctx, 1, ids)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if got := ps[id].Attrs[0]; got != fmt.Sprint("r", round) {
				t.Fatalf("round %d: %s attrs[0] = %q after fold", round, id, got)
			}
		}
		var logRows int
		if err := s.rdb.QueryRow(`SELECT count(*) FROM account_log`).Scan(&logRows); err != nil || logRows != 0 {
			t.Fatalf("round %d: account_log rows after fold = %d, %v", round, logRows, err)
		}
	}
}

// waitOverlayEmpty waits until the writer has folded and evicted every
// account (the writer folds in the background).
func waitOverlayEmpty(t testing.TB, s *Store) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s.ov.len() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("overlay still holds %d accounts", s.ov.len())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOverlayLookupSuspect checks when a reader that missed the overlay
// must distrust the row it read: only if its account was evicted after the
// read began, or if more evictions happened than the overlay remembers.
func TestOverlayLookupSuspect(t *testing.T) {
	ov := &overlay{m: map[int64]*acctState{}}
	ov.m[1], ov.m[2], ov.m[3] = &acctState{}, &acctState{}, &acctState{}
	g0 := ov.gen.Load()
	if st, suspect := ov.lookup(1, g0); st == nil || suspect {
		t.Fatalf("held account: %v %v", st, suspect)
	}
	if _, suspect := ov.lookup(9, g0); suspect {
		t.Fatal("no eviction yet, but suspect")
	}
	ov.evict([]int64{2, 1})
	if st, suspect := ov.lookup(1, g0); st != nil || !suspect {
		t.Fatalf("evicted since g0: %v %v, want suspect", st, suspect)
	}
	if _, suspect := ov.lookup(9, g0); suspect {
		t.Fatal("never held, but suspect")
	}
	if _, suspect := ov.lookup(1, ov.gen.Load()); suspect {
		t.Fatal("evicted before the read began, but suspect")
	}
	if st, _ := ov.lookup(3, g0); st == nil {
		t.Fatal("account 3 was not evicted")
	}
	for range evictionsKept {
		ov.evict([]int64{100})
	}
	if _, suspect := ov.lookup(9, g0); !suspect {
		t.Fatal("more evictions than remembered since g0, but not suspect")
	}
	if _, suspect := ov.lookup(9, ov.gen.Load()-evictionsKept); suspect {
		t.Fatal("remembered evictions without 9, but suspect")
	}
}

// TestOverlayBoundedUnderLoad keeps writes queued without pause and checks
// that the fold still runs often enough to hold the overlay near
// foldMaxDirty, instead of waiting for an idle writer.
func TestOverlayBoundedUnderLoad(t *testing.T) {
	ctx := context.Background()
	opt := noFold()
	opt.foldMaxDirty, opt.foldChunk = 20, 10
	s := openOpt(t, opt)
	ids := importN(t, s, 2000)
	const workers, batch = 4, 10
	stop := make(chan struct{})
	errc := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := w; ; i += workers {
				select {
				case <-stop:
					errc <- nil
					return
				default:
				}
				edits := make([]im.Edit, batch)
				for j := range edits {
					edits[j] = im.Edit{Account: ids[(i*batch+j)%len(ids)], Op: im.OpSetAttrs, Attrs: im.AttrValues{fmt.Sprint(i)}}
				}
				if _, err := s.ApplyEdits(ctx, 1, edits, im.EditLimits{}); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	most := 0
	for range 200 {
		most = max(most, s.ov.len())
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	for range workers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	// Without folding under pressure the overlay grows to nearly all 2,000
	// accounts. With it, it stays near the bound plus a few groups; how
	// many depends on scheduling, so the limit leaves room (the machine
	// these tests run on is shared).
	if limit := len(ids) / 4; most > limit {
		t.Fatalf("overlay reached %d accounts under load, want at most %d", most, limit)
	}
}
