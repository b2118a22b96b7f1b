package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"testing"

	"timd/internal/bitmap"
	"timd/internal/im"
)

// twoHandles opens two stores on one fresh schema, as two nodes would.
func twoHandles(t *testing.T) (*Store, *Store) {
	t.Helper()
	sc := &schemas{url: testURL(t), made: map[string]string{}}
	dir := t.TempDir()
	a := sc.open(t, dir).(*Store)
	b := sc.open(t, dir).(*Store)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestTwoHandlesTaskSeq creates tasks concurrently through two handles:
// every Seq is distinct and they are exactly 1..n, with no gap.
func TestTwoHandlesTaskSeq(t *testing.T) {
	a, b := twoHandles(t)
	ctx := context.Background()
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	seqs := make(chan int64, n)
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			task := im.PushTask{App: 1400000001, ID: fmt.Sprintf("t%d", i), Kind: im.PushCondition,
				MsgRandom: uint32(i), CreatedAt: 100, State: im.TaskPending, Audience: []byte{}}
			out, created, err := s.CreateTask(ctx, task, 0)
			if err != nil || !created {
				errs <- fmt.Errorf("task %d: created %v, %v", i, created, err)
				return
			}
			seqs <- out.Seq
		}()
	}
	wg.Wait()
	close(errs)
	close(seqs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for s := range seqs {
		if seen[s] || s < 1 || s > n {
			t.Fatalf("seq %d duplicated or out of 1..%d", s, n)
		}
		seen[s] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct seqs, want %d", len(seen), n)
	}
}

// TestTwoHandlesDedup sends one MsgRandom through both handles at once:
// exactly one task is created.
func TestTwoHandlesDedup(t *testing.T) {
	a, b := twoHandles(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	createdN := 0
	for i := range 10 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			task := im.PushTask{App: 1400000001, ID: fmt.Sprintf("d%d", i), Kind: im.PushCondition,
				MsgRandom: 7, CreatedAt: 100, State: im.TaskPending, Audience: []byte{}}
			_, created, err := s.CreateTask(ctx, task, 0)
			if err != nil {
				t.Errorf("CreateTask: %v", err)
			}
			mu.Lock()
			if created {
				createdN++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if createdN != 1 {
		t.Fatalf("%d tasks created for one MsgRandom, want 1", createdN)
	}
}

// TestTwoHandlesAcks records overlapping acks through two handles at once:
// none is lost and none is counted twice.
func TestTwoHandlesAcks(t *testing.T) {
	a, b := twoHandles(t)
	ctx := context.Background()
	task := im.PushTask{App: 1400000001, ID: "acks", Kind: im.PushCondition, CreatedAt: 100,
		State: im.TaskPending, Audience: []byte{}}
	if _, _, err := a.CreateTask(ctx, task, 0); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	for g := range 8 {
		s := a
		if g%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := uint32(1 + g%2); o <= n; o += 2 {
				// Handles a and b each cover one parity; the goroutines of
				// one parity overlap completely.
				if err := s.RecordAcks(ctx, task.App, task.ID, []uint32{o}, nil); err != nil {
					t.Errorf("RecordAcks: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	c, err := b.Counts(ctx, task.App, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Delivered != n {
		t.Fatalf("Delivered = %d, want %d", c.Delivered, n)
	}
	d, _, err := a.AckSets(ctx, task.App, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	bm, err := bitmap.Decode(d)
	if err != nil {
		t.Fatal(err)
	}
	if bm.GetCardinality() != n || !bm.Contains(1) || !bm.Contains(n) {
		t.Fatalf("delivered set has %d ordinals, want 1..%d", bm.GetCardinality(), n)
	}
}

// TestTwoHandlesOrdinals imports distinct accounts through two handles at
// once: ordinals never collide and change positions have no gap.
func TestTwoHandlesOrdinals(t *testing.T) {
	a, b := twoHandles(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 6 {
		s := a
		if g%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if _, err := s.ImportAccounts(ctx, 1400000001, []im.AccountInput{{UserID: fmt.Sprintf("u%d_%d", g, i)}}); err != nil {
					t.Errorf("ImportAccounts: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	seen := map[uint32]bool{}
	err := a.ScanProfiles(ctx, 1400000001, func(p im.Profile) error {
		if seen[p.Account.Ordinal] {
			return fmt.Errorf("ordinal %d twice", p.Account.Ordinal)
		}
		seen[p.Account.Ordinal] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 60 || !seen[1] || !seen[60] {
		t.Fatalf("%d ordinals, want 1..60", len(seen))
	}
	// The change log numbered the 60 creations 1..60 across both handles.
	if pos, err := b.ChangePosition(ctx, 1400000001); err != nil || pos != 60 {
		t.Fatalf("ChangePosition = %d, %v; want 60", pos, err)
	}
	if ords, upTo, err := a.ChangedSince(ctx, 1400000001, 0); err != nil || upTo != 60 || len(ords) != 60 {
		t.Fatalf("ChangedSince(0) = %d ordinals up to %d, %v; want 60 up to 60", len(ords), upTo, err)
	}
}

// TestMigrateOnce opens a schema twice: each migration is recorded once.
func TestMigrateOnce(t *testing.T) {
	a, _ := twoHandles(t)
	var n, v int
	if err := a.pool.QueryRow(context.Background(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatal(names, err)
	}
	last, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(names[len(names)-1], "migrations/"), "_", 2)[0])
	if n != len(names) || v != last {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d rows, up to version %d", n, v, len(names), last)
	}
}
