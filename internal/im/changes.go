package im

import (
	"context"
	"errors"
)

// ChangeLog is a store's durable record of where each app's accounts
// changed. Every committed change of an app's accounts (im.Change) has a
// change position, Change.Seq: 1, 2, 3, ... per app without gaps, written in
// the same transaction as the change. The log keeps, per position range,
// which ordinals changed, so that a reader holding the audience index of an
// app as of position N can become current by re-reading only the accounts
// changed after N: snapshot at N, then replay after N. The start-up of one
// node and the join of another use the same two calls (ChangedSince, then
// ProfilesByOrdinal).
type ChangeLog interface {
	// StoreID names the database: an index snapshot taken from another
	// database (a restored backup, a new store) must not be loaded.
	StoreID(ctx context.Context) (string, error)
	// ChangePosition returns the app's change position: the Seq of its
	// last committed change, 0 when it has none.
	ChangePosition(ctx context.Context, app uint64) (uint64, error)
	// ChangedSince returns the ordinals (ascending, each once) of the app's
	// accounts touched by changes with Seq > after (it may name a few more
	// that changed at or before after), and the position they
	// reach. It returns ErrChangesTrimmed when the log no longer reaches
	// back to after, and ErrPositionAhead when after is beyond the app's
	// change position.
	ChangedSince(ctx context.Context, app, after uint64) (ords []uint32, upTo uint64, err error)
	// ProfilesByOrdinal calls fn with the current profile of each live
	// account among ords (ascending); ordinals of deleted accounts are
	// skipped.
	ProfilesByOrdinal(ctx context.Context, app uint64, ords []uint32, fn func(Profile) error) error
	// TrimChanges forgets the records of the app's changes at or before
	// pos, once a durable snapshot covers them.
	TrimChanges(ctx context.Context, app, pos uint64) error
}

// Errors of ChangeLog.ChangedSince.
var (
	ErrChangesTrimmed = errors.New("change log trimmed past the requested position")
	ErrPositionAhead  = errors.New("change position beyond the store's")
)
