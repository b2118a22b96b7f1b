// Package rules holds the storage rules every store backend applies the
// same way inside its own transactions, so that SQLite and PostgreSQL
// cannot drift apart. It knows only package im.
package rules

import (
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
