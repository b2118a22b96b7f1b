package cluster

import "strconv"

// Audience index wake-ups.
//
// A node that commits account, attribute or tag changes announces the
// app's new change position on PREFIX.app.SDKAPPID.changes; every other
// node's index tail (service.IndexTail) then reads the app's change log at
// once instead of at its next poll. The message is only a wake-up: the
// tail reads from its own index position, not from the message, so a lost
// or repeated message costs time, never correctness, and a gap (a skipped
// sequence, a reconnection) wakes the app's tail, or every app's.

// changesKind is the subject kind of index wake-ups.
const changesKind = "changes"

// ChangeWaker is what FollowChanges wakes (service.IndexTail).
type ChangeWaker interface {
	// Wake asks for app's change log to be read now.
	Wake(app uint64)
	// WakeAll asks for every app's change log to be read now.
	WakeAll()
}

// AnnounceChange tells the other nodes that app's change log reached
// position seq (a decimal payload). A nil Bus does nothing.
func (b *Bus) AnnounceChange(app, seq uint64) {
	if b == nil {
		return
	}
	if err := b.Notify(b.Subject(app, changesKind), strconv.AppendUint(nil, seq, 10)); err != nil {
		b.log.Debug("announcing an index change failed; the other nodes' poll will find it", "app", app, "err", err)
	}
}

// FollowChanges wakes w for every other node's announcement, and for a
// gap: the app's tail when the gap names an app, every app's otherwise.
// On a nil Bus it returns a nil Subscription and wakes nothing.
func (b *Bus) FollowChanges(w ChangeWaker) (*Subscription, error) {
	return b.Subscribe(b.Subject(0, changesKind), func(m Msg) {
		if m.Self {
			return
		}
		if app := AppOf(m.Subject); app != 0 {
			w.Wake(app)
		}
	}, func(subject string) {
		if app := AppOf(subject); app != 0 {
			w.Wake(app)
			return
		}
		w.WakeAll()
	})
}
