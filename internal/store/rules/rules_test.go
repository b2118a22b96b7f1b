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

func TestDayStart(t *testing.T) {
	for _, c := range []struct{ ms, want int64 }{
		{0, 0}, {86_399_999, 0}, {86_400_000, 86400}, {1_799_971_200_000 + 1, 1_799_971_200}, {-1, -86400},
	} {
		if got := DayStart(c.ms); got != c.want {
			t.Errorf("DayStart(%d) = %d, want %d", c.ms, got, c.want)
		}
	}
}

func TestCreateLimit(t *testing.T) {
	const day = 1_799_971_200
	recounts := 0
	recount := func(d int64) (int64, error) {
		recounts++
		if d != day {
			t.Errorf("recount(%d), want %d", d, day)
		}
		return 2, nil
	}
	lim := im.TaskLimits{NowMs: day*1000 + 5000, IntervalMs: 1000, PerDay: 3}
	st, err := CreateLimit(LimitState{}, lim, recount)
	if err != nil || st != (LimitState{LastMs: lim.NowMs, Day: day, Count: 3}) || recounts != 1 {
		t.Fatalf("first of the day = %+v, %v (recounts %d); want the store's 2 plus this one", st, err, recounts)
	}
	lim.NowMs += 999
	if _, err := CreateLimit(st, lim, recount); im.CodeOf(err) != im.CodePushTooFrequent {
		t.Fatalf("inside the interval: %v", err)
	}
	lim.NowMs++
	if _, err := CreateLimit(st, lim, recount); im.CodeOf(err) != im.CodeDailyQuota || recounts != 1 {
		t.Fatalf("over the quota: %v (recounts %d)", err, recounts)
	}
	lim.PerDay = 0
	if st, err = CreateLimit(st, lim, recount); err != nil || st.Count != 4 {
		t.Fatalf("no quota: %+v, %v", st, err)
	}
	// A slower clock never moves LastMs back.
	lim.IntervalMs = 0
	if got, err := CreateLimit(st, im.TaskLimits{NowMs: st.LastMs - 10}, recount); err != nil || got.LastMs != st.LastMs {
		t.Fatalf("slow clock: %+v, %v", got, err)
	}
}

func TestRevokeLimit(t *testing.T) {
	lim := im.TaskLimits{NowMs: 10_000, IntervalMs: 1000}
	st, err := RevokeLimit(LimitState{}, lim)
	if err != nil || st.LastMs != 10_000 {
		t.Fatalf("first revoke = %+v, %v", st, err)
	}
	lim.NowMs = 10_999
	if _, err := RevokeLimit(st, lim); im.CodeOf(err) != im.CodeRevokeTooFrequent {
		t.Fatalf("inside the interval: %v", err)
	}
	lim.NowMs = 11_000
	if st, err = RevokeLimit(st, lim); err != nil || st.LastMs != 11_000 {
		t.Fatalf("after the interval = %+v, %v", st, err)
	}
}
