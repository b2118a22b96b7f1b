package cli

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"timd/internal/cluster"
	"timd/internal/config"
	"timd/internal/im"
	"timd/internal/service"
)

// Poll intervals of the index tail: without NATS the poll is the only way
// to hear of other nodes' writes; with it, only the safety net for lost
// wake-ups.
const (
	tailPollAlone = 100 * time.Millisecond
	tailPollNATS  = 2 * time.Second
)

// follower keeps the audience index of a node equal to a store that other
// nodes write too (service.IndexTail, woken through the bus). On a store
// of its own (SQLite) it is inert: the index is the store's change sink,
// as before, and nothing polls.
type follower struct {
	src  service.IndexSource
	tail *service.IndexTail // nil on a store of its own
	bus  *cluster.Bus
	sub  *cluster.Subscription
	wait time.Duration
}

// newFollower prepares the index's feed; install f.sink() on the store
// before any write, and call start after the index is loaded.
func newFollower(src service.IndexSource, shared bool, bus *cluster.Bus, cfg config.Config, reg prometheus.Registerer) *follower {
	f := &follower{src: src, bus: bus, wait: time.Duration(cfg.IndexSyncWait)}
	if !shared {
		return f
	}
	poll := tailPollAlone
	if bus.Clustered() {
		poll = tailPollNATS
	}
	var announce service.ChangeAnnouncer
	if bus.Clustered() {
		announce = bus
	}
	f.tail = service.NewIndexTail(src, service.TailConfig{Poll: poll, SyncWait: f.wait, Registerer: reg}, announce)
	return f
}

// sink is the store's change sink: the tail on a shared store, the index
// itself otherwise.
func (f *follower) sink() im.ChangeSink {
	if f.tail == nil {
		return f.src.Index
	}
	return f.tail
}

// syncer is the push's read-your-writes wait, nil on a store of its own
// or with --index-sync-wait 0.
func (f *follower) syncer() service.IndexSyncer {
	if f.tail == nil || f.wait <= 0 {
		return nil
	}
	return f.tail
}

// start tails the store and follows the other nodes' wake-ups.
func (f *follower) start(ctx context.Context) error {
	if f.tail == nil {
		return nil
	}
	f.tail.Start(ctx)
	sub, err := f.bus.FollowChanges(f.tail)
	if err != nil {
		f.tail.Stop()
		return err
	}
	f.sub = sub
	return nil
}

// stop ends the tail; call it before the store closes.
func (f *follower) stop() {
	if f.tail == nil {
		return
	}
	f.sub.Close()
	f.tail.Stop()
}
