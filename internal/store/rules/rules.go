// Package rules holds the storage rules every store backend applies the
// same way inside its own transactions, so that SQLite and PostgreSQL
// cannot drift apart. It knows only package im.
package rules

import "timd/internal/im"

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
