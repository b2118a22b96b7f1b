package sqlite

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"timd/internal/im"
)

// idLookups returns the writer's counts of id lookup and of UserID insert
// statements, read on the writer goroutine.
func idLookups(t *testing.T, s *Store) (lookups, inserts int) {
	t.Helper()
	if err := s.w.do(context.Background(), 1, func(w *wtx) ([]im.Change, error) {
		lookups, inserts = w.idLookups, w.userInserts
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	return lookups, inserts
}

// A request's ids (up to 100) are looked up in one statement, not one by
// one, and its new accounts inserted in one (then 10 and 1 per statement).
func TestIDLookupsPerChunk(t *testing.T) {
	s := openOpt(t, noFold())
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		n       int
		want    int
		inserts int
	}{
		{"one", 1, 1, 1},
		{"a request", 100, 1, 1},
		{"a request and one", 101, 2, 2},
		{"two and a half", 250, 3, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := make([]im.AccountInput, tc.n)
			edits := make([]im.Edit, tc.n)
			for i := range in {
				id := fmt.Sprintf("%s-%d", tc.name, i)
				in[i].UserID = id
				edits[i] = im.Edit{Account: id, Op: im.OpAddTags, Tags: []string{"t"}}
			}
			before, beforeIns := idLookups(t, s)
			out, err := s.ImportAccounts(ctx, 1, in)
			if err != nil {
				t.Fatal(err)
			}
			after, afterIns := idLookups(t, s)
			if got := after - before; got != tc.want {
				t.Errorf("ImportAccounts of %d ids: %d lookups, want %d", tc.n, got, tc.want)
			}
			if got := afterIns - beforeIns; got != tc.inserts {
				t.Errorf("ImportAccounts of %d ids: %d inserts, want %d", tc.n, got, tc.inserts)
			}
			for i := 1; i < len(out); i++ {
				if out[i].Ordinal != out[i-1].Ordinal+1 {
					t.Fatalf("ordinals %d then %d", out[i-1].Ordinal, out[i].Ordinal)
				}
			}
			before, _ = idLookups(t, s)
			errs, err := s.ApplyEdits(ctx, 1, edits, im.EditLimits{TagsPerApp: 1 << 20})
			if err != nil || slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
				t.Fatalf("ApplyEdits: %v %v", errs, err)
			}
			if after, _ := idLookups(t, s); after-before != tc.want {
				t.Errorf("ApplyEdits of %d ids: %d lookups, want %d", tc.n, after-before, tc.want)
			}
		})
	}
}

// Edits resolved in chunks answer as one by one did: RegistrationIDs,
// unknown ids, repeats (each seeing the one before), across chunk bounds.
func TestApplyEditsChunkedResolution(t *testing.T) {
	s := openOpt(t, noFold())
	ctx := context.Background()
	ids := importN(t, s, 150)
	if _, err := s.RegisterDevice(ctx, 1, im.Device{RegistrationID: "dev", Owner: ids[0], Platform: "ios"}, im.DeviceLimits{}); err != nil {
		t.Fatal(err)
	}
	var edits []im.Edit
	for i, id := range ids {
		edits = append(edits, im.Edit{Account: id, Op: im.OpAddTags, Tags: []string{fmt.Sprint("t", i%3)}})
		if i == 99 {
			edits = append(edits, im.Edit{Account: "nobody", Op: im.OpAddTags, Tags: []string{"x"}},
				im.Edit{Account: "dev", Op: im.OpAddTags, Tags: []string{"d"}},
				im.Edit{Account: ids[5], Op: im.OpAddTags, Tags: []string{"again"}})
		}
	}
	errs, err := s.ApplyEdits(ctx, 1, edits, im.EditLimits{})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		want := 0
		if edits[i].Account == "nobody" {
			want = im.CodeAccountNotFound
		}
		got := 0
		if ie, ok := im.AsError(e); ok {
			got = ie.Code
		} else if e != nil {
			t.Fatalf("edit %d: %v", i, e)
		}
		if got != want {
			t.Errorf("edit %d (%s): code %d, want %d", i, edits[i].Account, got, want)
		}
	}
	ps, err := s.Profiles(ctx, 1, []string{ids[5], "dev", ids[149]})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string][]string{ids[5]: {"t2", "again"}, "dev": {"d"}, ids[149]: {"t2"}} {
		if got := ps[id].Tags; !slices.Equal(got, want) {
			t.Errorf("%s: tags %v, want %v", id, got, want)
		}
	}
	if ps["dev"].Account.Type != im.AcctRegistrationID {
		t.Errorf("dev resolved to type %d", ps["dev"].Account.Type)
	}
}

// A fold cycle writes its accounts in key order, so that a step's
// neighbouring keys share pages.
func TestFoldCycleInKeyOrder(t *testing.T) {
	s := openOpt(t, noFold())
	w := s.w
	done := make(chan []int64)
	if err := w.do(context.Background(), 1, func(*wtx) ([]im.Change, error) {
		// On the writer goroutine: no group and no fold runs.
		for k := int64(1000); k > 0; k-- {
			w.fold.dirty[k*7%1009] = struct{}{}
		}
		w.fold.lastSeq = 1
		w.maybeFold(true)
		go func(c []int64) { done <- c }(slices.Clone(w.fold.cycle))
		w.fold.cycle, w.fold.upto, w.fold.lastSeq = nil, 0, 0
		clear(w.fold.dirty)
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	cycle := <-done
	if len(cycle) != 1000 || !slices.IsSorted(cycle) {
		t.Errorf("cycle of %d keys, sorted %v", len(cycle), slices.IsSorted(cycle))
	}
}

// An urgent job queued while a group runs commits before the rest of the
// group: the group commits the jobs it has run and hands the others back,
// which then commit in their order.
func TestUrgentJobOvertakesGroup(t *testing.T) {
	s := openOpt(t, noFold())
	w := s.w
	ctx := context.Background()
	var mu sync.Mutex
	var order []string
	ran := func(name string) {
		mu.Lock()
		order = append(order, name)
		mu.Unlock()
	}
	// A blocker holds the writer while a group of 50 queues behind it.
	blocked, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = w.do(ctx, 1, func(*wtx) ([]im.Change, error) {
			close(blocked)
			<-release
			return nil, nil
		})
	}()
	<-blocked
	firstRuns, firstGo := make(chan struct{}), make(chan struct{})
	errs := make([]error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.do(ctx, 400, func(*wtx) ([]im.Change, error) {
				if i == 0 {
					close(firstRuns)
					<-firstGo
				}
				ran(fmt.Sprint("bulk", i))
				return nil, nil
			})
		}()
		// In order: wait for each to be queued.
		for len(w.jobs) < i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	close(release)
	<-firstRuns // the group of 50 is running its first job
	urgentDone := make(chan error)
	go func() {
		urgentDone <- w.doUrgent(ctx, 1, func(*wtx) ([]im.Change, error) {
			ran("urgent")
			return nil, nil
		})
	}()
	for len(w.urgent) == 0 {
		time.Sleep(time.Millisecond)
	}
	yields := w.yields.Load()
	close(firstGo)
	if err := <-urgentDone; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("bulk %d: %v", i, err)
		}
	}
	want := []string{"bulk0", "urgent"}
	for i := 1; i < 50; i++ {
		want = append(want, fmt.Sprint("bulk", i))
	}
	if !slices.Equal(order, want) {
		t.Errorf("order %v\nwant %v", order, want)
	}
	if got := w.yields.Load() - yields; got != 1 {
		t.Errorf("%d yields, want 1", got)
	}
}

// A fold step stops, after one account, for a queued urgent job; the
// cycle's other accounts stay dirty and the log untrimmed until a later
// step writes them.
func TestFoldStepYields(t *testing.T) {
	opt := noFold()
	opt.noCloseFold = true
	s := openOpt(t, opt)
	ctx := context.Background()
	ids := importN(t, s, 50)
	edits := make([]im.Edit, len(ids))
	for i, id := range ids {
		edits[i] = im.Edit{Account: id, Op: im.OpAddTags, Tags: []string{"t"}}
	}
	if _, err := s.ApplyEdits(ctx, 1, edits, im.EditLimits{}); err != nil {
		t.Fatal(err)
	}
	w := s.w
	w.stop() // the test is the writer now; the log stays unfolded
	f := &w.fold
	w.maybeFold(true)
	if len(f.cycle) != 50 {
		t.Fatalf("cycle of %d", len(f.cycle))
	}
	w.urgent <- &job{}
	w.foldStep(1000)
	if len(f.cycle) != 49 || len(f.dirty) != 49 || !f.active() || w.yields.Load() != 1 {
		t.Errorf("after a yield: cycle %d, dirty %d, active %v, yields %d", len(f.cycle), len(f.dirty), f.active(), w.yields.Load())
	}
	<-w.urgent
	w.foldStep(1000)
	if len(f.cycle) != 0 || len(f.dirty) != 0 || f.active() {
		t.Errorf("after the rest: cycle %d, dirty %d, active %v", len(f.cycle), len(f.dirty), f.active())
	}
	var n int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM account_log`).Scan(&n); err != nil || n != 0 {
		t.Errorf("account_log rows %d, %v", n, err)
	}
}
