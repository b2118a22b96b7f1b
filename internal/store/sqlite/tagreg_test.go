package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"timd/internal/im"
)

// TestTagRegistryBatched applies random tag edits and deletions from
// concurrent callers, so that group commits mix them, then checks that the
// tag registry (written once per group, tagreg.go) counts exactly the
// accounts that carry each tag.
func TestTagRegistryBatched(t *testing.T) {
	ctx := context.Background()
	s := openOpt(t, defaultOptions())
	ids := importN(t, s, 40)
	tags := []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range 60 {
				var edits []im.Edit
				for range 1 + rng.IntN(12) {
					id := ids[rng.IntN(len(ids))]
					op := []im.EditOp{im.OpAddTags, im.OpReplaceTags, im.OpRemoveTags, im.OpClearTags}[rng.IntN(4)]
					var ts []string
					for range rng.IntN(4) {
						ts = append(ts, tags[rng.IntN(len(tags))])
					}
					edits = append(edits, im.Edit{Account: id, Op: op, Tags: ts})
				}
				if _, err := s.ApplyEdits(ctx, 1, edits, im.EditLimits{}); err != nil {
					t.Error(err)
					return
				}
				if rng.IntN(10) == 0 {
					gone := ids[rng.IntN(len(ids))]
					if _, err := s.DeleteAccounts(ctx, 1, []string{gone}); err != nil {
						t.Error(err)
						return
					}
					if _, err := s.ImportAccounts(ctx, 1, []im.AccountInput{{UserID: gone}}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	ps, err := s.Profiles(ctx, 1, ids)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for _, p := range ps {
		for _, tag := range p.Tags {
			want[tag]++
		}
	}
	got := map[string]int64{}
	rows, err := s.rdb.Query(`SELECT name, refcount FROM tags WHERE app = 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		got[name] = n
	}
	rows.Close()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("tag registry %v, accounts carry %v", got, want)
	}
}

// TestTagLimitSeesGroupMoves checks that the app's distinct-tag limit
// counts the tags created and released earlier in the same batch, which
// are not yet written to the registry table.
func TestTagLimitSeesGroupMoves(t *testing.T) {
	ctx := context.Background()
	s := openOpt(t, defaultOptions())
	ids := importN(t, s, 3)
	lim := im.EditLimits{TagsPerApp: 2}
	errs, err := s.ApplyEdits(ctx, 1, []im.Edit{
		{Account: ids[0], Op: im.OpAddTags, Tags: []string{"a"}},
		{Account: ids[1], Op: im.OpAddTags, Tags: []string{"b"}},
		{Account: ids[2], Op: im.OpAddTags, Tags: []string{"c"}}, // a third distinct tag: over the limit
		{Account: ids[0], Op: im.OpClearTags},                    // releases a
		{Account: ids[2], Op: im.OpAddTags, Tags: []string{"c"}}, // now fits
	}, lim)
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[1] != nil || errs[3] != nil || errs[4] != nil {
		t.Fatalf("errors %v", errs)
	}
	if e, ok := im.AsError(errs[2]); !ok || e.Code != im.CodeTooManyTags {
		t.Fatalf("third tag: %v, want 90032", errs[2])
	}
	var n int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM tags WHERE app = 1`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("registry rows = %d, %v; want 2 (b, c)", n, err)
	}
}
