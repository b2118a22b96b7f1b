package audience

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"timd/internal/im"
)

// TestTopTagsMatchesBruteForce compares TopTags with sorting every tag's
// count, for every n, on random tag sets with many ties.
func TestTopTagsMatchesBruteForce(t *testing.T) {
	for _, seed := range seeds() {
		rnd := rand.New(rand.NewPCG(seed, 9))
		x := New()
		counts := map[string]uint64{}
		var batch []im.Change
		for o := uint32(0); o < 300; o++ {
			var tags []string
			for range rnd.IntN(5) {
				tg := fmt.Sprint("t", rnd.IntN(40))
				if !slices.Contains(tags, tg) {
					tags = append(tags, tg)
					counts[tg]++
				}
			}
			batch = append(batch, im.Change{App: 1, Op: im.ChangeUpsert, ID: fmt.Sprint("u", o), Ordinal: o, NewTags: tags})
		}
		x.Apply(batch)
		var want []TagCount
		for tg, c := range counts {
			want = append(want, TagCount{tg, c})
		}
		slices.SortFunc(want, func(a, b TagCount) int {
			if a.Count != b.Count {
				return int(b.Count) - int(a.Count)
			}
			return strings.Compare(a.Tag, b.Tag)
		})
		for n := 0; n <= len(want)+2; n++ {
			got, distinct := x.TopTags(1, n)
			if n > 0 && distinct != len(want) {
				t.Fatalf("seed %d: distinct %d, want %d", seed, distinct, len(want))
			}
			if exp := want[:min(n, len(want))]; !slices.Equal(got, exp) && !(len(got) == 0 && len(exp) == 0) {
				t.Fatalf("seed %d n %d:\n got %v\nwant %v", seed, n, got, exp)
			}
		}
	}
	if got, _ := New().TopTags(1, 5); len(got) != 0 {
		t.Errorf("unknown app: %v", got)
	}
}

// TestPageAndDevices pages through an app with deleted accounts and
// devices, and lists a user's devices.
func TestPageAndDevices(t *testing.T) {
	x := New()
	x.Apply([]im.Change{
		{App: 1, Op: im.ChangeUpsert, ID: "alice", Ordinal: 0},
		{App: 1, Op: im.ChangeUpsert, ID: "bob", Ordinal: 1},
		{App: 1, Op: im.ChangeUpsert, ID: "gone", Ordinal: 2},
		{App: 1, Op: im.ChangeUpsert, ID: "d1", Type: im.AcctRegistrationID, Owner: "alice", Ordinal: 3},
		{App: 1, Op: im.ChangeUpsert, ID: "d2", Type: im.AcctRegistrationID, Owner: "bob", Ordinal: 4},
		{App: 1, Op: im.ChangeUpsert, ID: "d3", Type: im.AcctRegistrationID, Owner: "alice", Ordinal: 5},
		{App: 1, Op: im.ChangeUpsert, ID: "free", Type: im.AcctRegistrationID, Ordinal: 6},
	})
	x.Apply([]im.Change{{App: 1, Op: im.ChangeDelete, ID: "gone", Ordinal: 2}})
	if u, d := x.Kinds(1); u != 2 || d != 4 {
		t.Errorf("Kinds %d %d", u, d)
	}
	var ids []string
	from, pages := uint32(0), 0
	for {
		page, next := x.Page(1, from, 2)
		pages++
		if len(page) > 2 {
			t.Fatalf("page of %d", len(page))
		}
		for _, e := range page {
			ids = append(ids, e.ID+"/"+e.Owner)
		}
		if next == 0 {
			break
		}
		from = next
	}
	if got := strings.Join(ids, " "); got != "alice/ bob/ d1/alice d2/bob d3/alice free/" || pages != 3 {
		t.Errorf("pages %d: %s", pages, got)
	}
	var devs []string
	for _, e := range x.Devices(1, "alice", 10) {
		devs = append(devs, e.ID)
	}
	if strings.Join(devs, " ") != "d1 d3" {
		t.Errorf("alice's devices %v", devs)
	}
	if got := x.Devices(1, "alice", 1); len(got) != 1 {
		t.Errorf("limit 1: %v", got)
	}
	if got := x.Devices(1, "d1", 10); len(got) != 0 {
		t.Errorf("a device's devices: %v", got)
	}
	if got, next := x.Page(2, 0, 10); len(got) != 0 || next != 0 {
		t.Errorf("unknown app: %v %d", got, next)
	}
}
