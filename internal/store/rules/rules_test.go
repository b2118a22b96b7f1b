package rules

import (
	"errors"
	"slices"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/im"
)

func TestLeaseHeld(t *testing.T) {
	for _, c := range []struct {
		state         im.TaskState
		holder, owner string
		lost          bool
	}{
		{im.TaskRunning, "a", "a", false},
		{im.TaskRunning, "b", "a", true},
		{im.TaskRunning, "", "a", true}, // released (for example Done, then re-queued)
		{im.TaskDone, "", "a", true},
		{im.TaskRunning, "b", "", false}, // unfenced SaveProgress
		{im.TaskRevoked, "b", "a", false},
		{im.TaskRevoked, "", "a", false},
	} {
		err := LeaseHeld(c.state, c.holder, c.owner)
		if errors.Is(err, im.ErrLeaseLost) != c.lost || (err != nil && !c.lost) {
			t.Errorf("LeaseHeld(%v, %q, %q) = %v, want lost=%t", c.state, c.holder, c.owner, err, c.lost)
		}
	}
}

func TestEditLimits(t *testing.T) {
	if got := EditLimits(im.EditLimits{}); got.TagsPerUser != im.MaxTagsPerUser || got.TagsPerApp != im.MaxTagsPerApp {
		t.Errorf("defaults = %+v", got)
	}
	if got := EditLimits(im.EditLimits{TagsPerUser: 3, TagsPerApp: -1}); got.TagsPerUser != 3 || got.TagsPerApp != im.MaxTagsPerApp {
		t.Errorf("partial = %+v", got)
	}
}

func TestUnionBitmaps(t *testing.T) {
	a, _ := roaring.BitmapOf(1, 5).ToBytes()
	b, _ := roaring.BitmapOf(5, 9).ToBytes()
	u, err := UnionBitmaps(a, b)
	if err != nil {
		t.Fatal(err)
	}
	bm := roaring.New()
	if err := bm.UnmarshalBinary(u); err != nil || !slices.Equal(bm.ToArray(), []uint32{1, 5, 9}) {
		t.Fatalf("union = %v, %v", bm.ToArray(), err)
	}
	if u, err := UnionBitmaps(nil, b); err != nil || len(u) == 0 {
		t.Errorf("union with an empty set = %v, %v", u, err)
	}
	if _, err := UnionBitmaps([]byte{1, 2, 3}, b); err == nil {
		t.Error("a corrupt bitmap was accepted")
	}
}
