// Package rules holds the storage rules every store backend applies the
// same way inside its own transactions, so that SQLite and PostgreSQL
// cannot drift apart. It knows only package im.
package rules

import (
	"time"

	"timd/internal/bitmap"
	"timd/internal/im"
)

// LeaseHeld decides whether a fan-out save by owner may write a task now
// in state whose lease holder is holder: owner "" is an unfenced save
// (SaveProgress); a Revoked task accepts the save that records its last
// cursor; otherwise only the holder may save, and anyone else gets
// im.ErrLeaseLost (the lease was taken over, or released).
func LeaseHeld(state im.TaskState, holder, owner string) error {
	if owner == "" || state == im.TaskRevoked || holder == owner {
		return nil
	}
	return im.ErrLeaseLost
}

// EditLimits returns lim with its zero fields set to the documented
// defaults (im.MaxTagsPerUser, im.MaxTagsPerApp).
func EditLimits(lim im.EditLimits) im.EditLimits {
	if lim.TagsPerUser <= 0 {
		lim.TagsPerUser = im.MaxTagsPerUser
	}
	if lim.TagsPerApp <= 0 {
		lim.TagsPerApp = im.MaxTagsPerApp
	}
	return lim
}

// UnionBitmaps returns the union of two serialized Roaring bitmaps
// (empty ones allowed), serialized and run-optimized: how a task's Online
// set grows with each fan-out save.
func UnionBitmaps(a, b []byte) ([]byte, error) {
	x, err := bitmap.Decode(a)
	if err != nil {
		return nil, err
	}
	y, err := bitmap.Decode(b)
	if err != nil {
		return nil, err
	}
	x.Or(y)
	x.RunOptimize()
	return x.ToBytes()
}

// LimitState is a store's record of one app's accepted pushes of one kind
// (or of its revokes, RevokeKind), kept for im.TaskLimits.
type LimitState struct {
	LastMs int64 // when the last one was accepted (unix ms); 0: never
	Day    int64 // the UTC day Count is of (unix s of its 00:00)
	Count  int64 // how many were accepted in Day
}

// RevokeKind is the kind under which a store keeps an app's revoke
// LimitState beside its push kinds (which start at 1).
const RevokeKind = 0

// DayStart returns the start (unix s) of the UTC day holding ms (unix ms):
// the day the daily quota counts in, which resets at 00:00 UTC.
func DayStart(ms int64) int64 {
	s := ms / 1000
	if ms < 0 && ms%1000 != 0 {
		s--
	}
	d := s / 86400
	if s < 0 && s%86400 != 0 {
		d--
	}
	return d * 86400
}

// CreateLimit decides, inside the task's transaction, whether a task may
// be created given its kind's state st (the zero LimitState when there is
// none yet), and returns the state to store when it is. When st.Day is not
// lim.NowMs's day, recount(day) must return how many tasks of the kind the
// store holds created at or after day (unix s): that seeds the new day's
// count, so that a day's first task, or the first after an upgrade, counts
// what was already sent. Errors: 90024, 90047 (nothing may be written).
func CreateLimit(st LimitState, lim im.TaskLimits, recount func(day int64) (int64, error)) (LimitState, error) {
	if lim.IntervalMs > 0 && st.LastMs > 0 && lim.NowMs-st.LastMs < lim.IntervalMs {
		return st, im.Errorf(im.CodePushTooFrequent, "pushes must be at least %v apart",
			time.Duration(lim.IntervalMs)*time.Millisecond)
	}
	if day := DayStart(lim.NowMs); st.Day != day {
		n, err := recount(day)
		if err != nil {
			return st, err
		}
		st.Day, st.Count = day, n
	}
	if lim.PerDay > 0 && st.Count >= lim.PerDay {
		return st, im.Errorf(im.CodeDailyQuota, "daily push quota of %d used up; it resets at 00:00 UTC", lim.PerDay)
	}
	st.LastMs = max(st.LastMs, lim.NowMs)
	st.Count++
	return st, nil
}

// RevokeLimit decides, inside the revoke's transaction, whether a revoke
// may go ahead given the app's revoke state st, and returns the state to
// store when it does. Errors: 90051.
func RevokeLimit(st LimitState, lim im.TaskLimits) (LimitState, error) {
	if lim.IntervalMs > 0 && st.LastMs > 0 && lim.NowMs-st.LastMs < lim.IntervalMs {
		return st, im.Errorf(im.CodeRevokeTooFrequent, "revokes must be at least %v apart",
			time.Duration(lim.IntervalMs)*time.Millisecond)
	}
	if day := DayStart(lim.NowMs); st.Day != day {
		st.Day, st.Count = day, 0
	}
	st.LastMs = max(st.LastMs, lim.NowMs)
	st.Count++
	return st, nil
}
