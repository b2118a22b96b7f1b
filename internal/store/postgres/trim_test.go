package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"timd/internal/im"
)

// importN writes n accounts to app through s, one change each, and
// returns the app's position after them.
func importN(t *testing.T, s *Store, app uint64, prefix string, n int) uint64 {
	t.Helper()
	ctx := context.Background()
	in := make([]im.AccountInput, n)
	for i := range in {
		in[i] = im.AccountInput{UserID: fmt.Sprint(prefix, i)}
	}
	if _, err := s.ImportAccounts(ctx, app, in); err != nil {
		t.Fatal(err)
	}
	pos, err := s.ChangePosition(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// age dates app's change_log rows from..to (Seqs) d in the past.
func age(t *testing.T, s *Store, app, from, to uint64, d time.Duration) {
	t.Helper()
	if _, err := s.pool.Exec(context.Background(), `UPDATE change_log SET created = now() - $1::bigint * interval '1 microsecond'
		WHERE app = $2 AND seq BETWEEN $3 AND $4`, d.Microseconds(), int64(app), int64(from), int64(to)); err != nil {
		t.Fatal(err)
	}
}

// logSeqs returns app's change_log Seqs and its trimmed position.
func logSeqs(t *testing.T, s *Store, app uint64) (seqs []int64, trimmed int64) {
	t.Helper()
	ctx := context.Background()
	rows, err := s.pool.Query(ctx, `SELECT seq FROM change_log WHERE app = $1 ORDER BY seq`, int64(app))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.pool.QueryRow(ctx, `SELECT trimmed FROM change_seq WHERE app = $1`, int64(app)).Scan(&trimmed); err != nil {
		t.Fatal(err)
	}
	return seqs, trimmed
}

// TestTrimChangesOlder: the rows older than the window are deleted, in
// batches, oldest first up to the first newer row, and the trimmed
// position moves with them; newer rows stay, ChangedSince refuses a
// position before the trim and serves one at or after it.
func TestTrimChangesOlder(t *testing.T) {
	s, _ := twoHandles(t)
	ctx := context.Background()
	const app, other = 1400000001, 1400000002
	importN(t, s, app, "a", 40)
	p80 := importN(t, s, app, "b", 40)
	p100 := importN(t, s, app, "c", 20)
	importN(t, s, other, "x", 10)
	age(t, s, app, 1, p80, 2*time.Hour)
	age(t, s, app, 90, 90, 2*time.Hour) // old, but after a newer row: kept
	age(t, s, other, 1, 10, 2*time.Hour)

	deleted, ran, err := s.TrimChangesOlder(ctx, time.Hour, 7)
	if err != nil || !ran || deleted != int64(p80)+10 {
		t.Fatalf("TrimChangesOlder = %d, %t, %v; want %d rows deleted", deleted, ran, err, p80+10)
	}
	seqs, trimmed := logSeqs(t, s, app)
	if trimmed != int64(p80) || len(seqs) != int(p100-p80) || seqs[0] != int64(p80)+1 || seqs[len(seqs)-1] != int64(p100) {
		t.Fatalf("app after the trim: trimmed %d, rows %v; want trimmed %d and rows %d..%d", trimmed, seqs, p80, p80+1, p100)
	}
	if seqs, trimmed := logSeqs(t, s, other); trimmed != 10 || len(seqs) != 0 {
		t.Fatalf("other app after the trim: trimmed %d, rows %v; want 10 and none", trimmed, seqs)
	}
	if _, _, err := s.ChangedSince(ctx, app, p80-1); !errors.Is(err, im.ErrChangesTrimmed) {
		t.Fatalf("ChangedSince before the trim: %v, want ErrChangesTrimmed", err)
	}
	ords, upTo, err := s.ChangedSince(ctx, app, p80)
	if err != nil || upTo != p100 || len(ords) != int(p100-p80) {
		t.Fatalf("ChangedSince at the trim: %d ordinals up to %d, %v; want %d up to %d", len(ords), upTo, err, p100-p80, p100)
	}
	if _, _, err := s.ChangedSince(ctx, other, 10); err != nil {
		t.Fatalf("ChangedSince at the other app's trim: %v", err)
	}
	if deleted, ran, err := s.TrimChangesOlder(ctx, time.Hour, 7); err != nil || !ran || deleted != 0 {
		t.Fatalf("second TrimChangesOlder = %d, %t, %v; want nothing to delete", deleted, ran, err)
	}
	// A window of 0 forgets everything written before the round.
	if deleted, _, err := s.TrimChangesOlder(ctx, 0, 0); err != nil || deleted != int64(p100-p80) {
		t.Fatalf("TrimChangesOlder(0) = %d, %v; want %d", deleted, err, p100-p80)
	}
	if seqs, trimmed := logSeqs(t, s, app); trimmed != int64(p100) || len(seqs) != 0 {
		t.Fatalf("after trimming everything: trimmed %d, rows %v", trimmed, seqs)
	}
}

// TestTrimChangesOlderOneAtATime: while another session holds the trim
// lock, a handle does nothing; two handles trimming at once while a third
// goroutine writes neither fail nor delete a row twice, and every old row
// goes while every new one stays.
func TestTrimChangesOlderOneAtATime(t *testing.T) {
	a, b := twoHandles(t)
	ctx := context.Background()
	const apps = 3
	var old [apps + 1]uint64
	for i := uint64(1); i <= apps; i++ {
		app := 1400000000 + i
		for j := range 5 {
			old[i] = importN(t, a, app, fmt.Sprint("u", j, "-"), 200)
		}
		age(t, a, app, 1, old[i], 2*time.Hour)
	}

	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext(current_schema()))`, trimLockKey); err != nil {
		t.Fatal(err)
	}
	if deleted, ran, err := a.TrimChangesOlder(ctx, time.Hour, 50); err != nil || ran || deleted != 0 {
		t.Fatalf("TrimChangesOlder while another node holds the lock = %d, %t, %v; want 0, false, nil", deleted, ran, err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1, hashtext(current_schema()))`, trimLockKey); err != nil {
		t.Fatal(err)
	}
	conn.Release()

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int64
		errs  []error
	)
	stop := make(chan struct{})
	wrote := make(chan uint64, 1)
	go func() { // new changes keep coming during the trims
		n := 0
		for {
			select {
			case <-stop:
				wrote <- uint64(n)
				return
			default:
			}
			if _, err := a.ImportAccounts(ctx, 1400000001, []im.AccountInput{{UserID: fmt.Sprint("late", n)}}); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			n++
		}
	}()
	for _, s := range []*Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				n, _, err := s.TrimChangesOlder(ctx, time.Hour, 50)
				mu.Lock()
				total += n
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	late := <-wrote
	if len(errs) > 0 {
		t.Fatalf("concurrent trims failed: %v", errs)
	}
	// Rounds that found the lock taken did nothing; what was left is
	// trimmed by a last round.
	n, ran, err := a.TrimChangesOlder(ctx, time.Hour, 50)
	if err != nil || !ran {
		t.Fatal(n, ran, err)
	}
	total += n
	if want := int64(old[1] + old[2] + old[3]); total != want {
		t.Fatalf("the trims deleted %d rows in all, want %d (each old row once)", total, want)
	}
	for i := uint64(1); i <= apps; i++ {
		app := 1400000000 + i
		seqs, trimmed := logSeqs(t, a, app)
		want := uint64(0)
		if i == 1 {
			want = late
		}
		if trimmed != int64(old[i]) || uint64(len(seqs)) != want || (want > 0 && seqs[0] != int64(old[i])+1) {
			t.Fatalf("app %d: trimmed %d and %d rows left, want trimmed %d and the %d new rows", app, trimmed, len(seqs), old[i], want)
		}
	}
}
