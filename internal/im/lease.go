package im

import "context"

// LeaseStore grants named, expiring leases: work that must run on one
// node at a time across every process sharing a store (the scheduler's
// due pass, posting webhooks) runs only while its node holds the name.
type LeaseStore interface {
	// TakeLease grants name to owner until until (unix ms) if nobody holds
	// it, owner already does (a renewal), or the holder's lease ended
	// (until <= now); it reports whether owner holds it now.
	TakeLease(ctx context.Context, name, owner string, now, until int64) (bool, error)
}
