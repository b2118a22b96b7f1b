// Package relay carries live delivery, revokes, kicks and presence
// between the timd nodes of a cluster over the NATS bus
// (internal/cluster). Each node's hub (internal/deliver) holds only its
// own WebSocket connections; the Relay stands in for the hub where the
// rest of the node needs the whole cluster:
//
//   - Deliver: the node running a task's fan-out delivers each chunk to
//     its own connections and publishes the chunk (the push's head and
//     the chunk's ordinals); every other node delivers it to its own.
//     A connection never gets one TaskId twice (the hub's sent set), so
//     a client on any node gets the push exactly once, on every device.
//   - Revoke: published as the task id; each node reads the audience
//     (shared cache) and tells its own connections.
//   - Kick: the kick is in the store before it is published. A node that
//     hears it forgets its cached KickedAt, so the next verification reads
//     the store, and closes the account's connections. A node that may
//     have missed one (a sequence gap, NATS down) trusts no cached KickedAt
//     until NATS is back, then re-reads it for every connected account:
//     it fails closed.
//   - Online: the local answer plus every peer's, gathered over NATS with
//     a short time-out (OnlineTimeout).
//
// A lost "chunk" event is made up from the store: the node runs a catch-up
// for each connection of the app, which sends the stored pushes it is owed
// and was not given. Online-only pushes are not stored and are lost with
// the event, as they are when the client is offline. A lost "revoke" event
// is made up from the store too: the node reads the tasks revoked since it
// last heard from the publishers (Store.RevokedSince) and tells its
// connections again; a client may get a revoke twice, never none.
package relay

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/cluster"
	"timd/internal/deliver"
	"timd/internal/im"
	"timd/internal/service"
)

// Event kinds, the last token of their subjects (cluster.Bus.Subject).
const (
	kindChunk  = "chunk"
	kindRevoke = "revoke"
	kindKick   = "kick"
	kindOnline = "online"
	kindConn   = "connected"
)

// OnlineTimeout bounds how long Online and Connected wait for the peers.
const OnlineTimeout = 500 * time.Millisecond

// Store is what the relay reads from the store every node shares: kicks
// (accounts) and revoked tasks.
type Store interface {
	im.AccountStore
	RevokedSince(ctx context.Context, app uint64, since int64, limit int) ([]string, error)
}

// Relay joins a node's hub to the cluster. With a nil bus it is the hub.
type Relay struct {
	bus   *cluster.Bus
	hub   *deliver.Hub
	auth  *service.Auth
	store Store
	log   *slog.Logger

	subs []*cluster.Subscription

	mu     sync.Mutex
	remote map[uint64]*roaring.Bitmap // peers' connected ordinals, from the last Connected
	// revSeen is when (unix s) a revoke event last came from each node for
	// each app: a lost one was published after it, so a revoke gap sweeps
	// the store from there (started when there is none).
	revSeen map[revKey]int64
	started int64

	ctx    context.Context
	cancel context.CancelFunc
	work   sync.WaitGroup
}

// New returns a relay for hub over bus. auth's kick cache is trusted only
// while the bus is healthy.
func New(bus *cluster.Bus, hub *deliver.Hub, auth *service.Auth, store Store, log *slog.Logger) *Relay {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{bus: bus, hub: hub, auth: auth, store: store, log: log,
		remote: map[uint64]*roaring.Bitmap{}, revSeen: map[revKey]int64{}, started: time.Now().Unix(),
		ctx: ctx, cancel: cancel}
	if bus.Clustered() && auth != nil {
		auth.SetKickTrust(bus.Healthy)
	}
	return r
}

// Start subscribes to the other nodes' events. A single node has none.
func (r *Relay) Start() error {
	if !r.bus.Clustered() {
		return nil
	}
	for _, s := range []struct {
		kind string
		h    cluster.Handler
		gap  func(string)
	}{
		{kindChunk, r.onChunk, r.chunkGap},
		{kindRevoke, r.onRevoke, r.revokeGap},
		{kindKick, r.onKick, r.kickGap},
		{kindOnline, r.onOnline, nil},
		{kindConn, r.onConnected, nil},
	} {
		sub, err := r.bus.Subscribe(r.bus.Subject(0, s.kind), s.h, s.gap)
		if err != nil {
			r.Stop()
			return err
		}
		r.subs = append(r.subs, sub)
	}
	return r.bus.Flush(5 * time.Second)
}

// Stop unsubscribes and waits for the background re-reads.
func (r *Relay) Stop() {
	for _, s := range r.subs {
		s.Close()
	}
	r.subs = nil
	r.cancel()
	r.work.Wait()
}

// chunk is the payload of a "chunk" event.
type chunk struct {
	Head     im.TaskHead
	Ordinals []byte // serialized Roaring bitmap
}

// Deliver sends t's frame to this node's connections in aud and publishes
// the chunk to the others. It returns the accounts reached here plus
// those in aud that the peers had connected at the last Connected.
func (r *Relay) Deliver(t *im.PushTask, aud *roaring.Bitmap) int {
	n := r.hub.Deliver(t, aud)
	if !r.bus.Clustered() || aud == nil || aud.IsEmpty() {
		return n
	}
	ords, err := aud.ToBytes()
	if err == nil {
		var b []byte
		if b, err = json.Marshal(chunk{Head: t.Head(), Ordinals: ords}); err == nil {
			err = r.bus.Notify(r.bus.Subject(t.App, kindChunk), b)
		}
	}
	if err != nil {
		r.log.Warn("could not publish a fan-out chunk; the other nodes' clients catch up from the store",
			"sdkappid", t.App, "task", t.ID, "err", err)
	}
	r.mu.Lock()
	remote := r.remote[t.App]
	r.mu.Unlock()
	if remote != nil {
		n += int(roaring.AndNot(roaring.And(aud, remote), r.hub.Connected(t.App)).GetCardinality())
	}
	return n
}

func (r *Relay) onChunk(m cluster.Msg) {
	if m.Self {
		return
	}
	var c chunk
	aud := roaring.New()
	if err := json.Unmarshal(m.Data, &c); err != nil || aud.UnmarshalBinary(c.Ordinals) != nil ||
		c.Head.App != cluster.AppOf(m.Subject) {
		r.log.Warn("dropping a malformed fan-out chunk event", "subject", m.Subject, "node", m.Node)
		return
	}
	t := im.PushTask{App: c.Head.App, ID: c.Head.ID, Seq: c.Head.Seq, From: c.Head.From, MsgBody: c.Head.MsgBody,
		Offline: c.Head.Offline, DataID: c.Head.DataID, CreatedAt: c.Head.CreatedAt, ExpiresAt: c.Head.ExpiresAt}
	r.hub.Deliver(&t, aud)
}

// chunkGap makes up for lost chunk events from the store.
func (r *Relay) chunkGap(subject string) {
	app := cluster.AppOf(subject)
	r.log.Warn("fan-out events may have been lost; catching the app's connections up from the store",
		"sdkappid", app, "subject", subject)
	if app != 0 {
		r.hub.Resync(app)
		return
	}
	for _, a := range r.hub.Apps() {
		r.hub.Resync(a)
	}
}

// Connected returns the ordinals of app connected to any node: this
// node's, and those the peers report within OnlineTimeout.
func (r *Relay) Connected(app uint64) *roaring.Bitmap {
	local := r.hub.Connected(app)
	if !r.bus.Clustered() {
		return local
	}
	remote := roaring.New()
	answers, err := r.bus.Gather(r.bus.Subject(app, kindConn), nil, r.bus.Peers(), OnlineTimeout)
	if err != nil {
		r.log.Warn("could not ask the other nodes who is connected", "sdkappid", app, "err", err)
	}
	for _, a := range answers {
		b := roaring.New()
		if b.UnmarshalBinary(a) == nil {
			remote.Or(b)
		}
	}
	r.mu.Lock()
	if len(r.remote) > 10_000 {
		clear(r.remote)
	}
	r.remote[app] = remote
	r.mu.Unlock()
	return roaring.Or(local, remote)
}

func (r *Relay) onConnected(m cluster.Msg) {
	if m.Self {
		return
	}
	b, err := r.hub.Connected(cluster.AppOf(m.Subject)).ToBytes()
	if err == nil {
		_ = m.Reply(b)
	}
}

// Revoke tells this node's connections in aud to drop task id, and the
// other nodes to tell theirs.
func (r *Relay) Revoke(app uint64, id string, aud *roaring.Bitmap) {
	r.hub.Revoke(app, id, aud)
	if err := r.bus.Notify(r.bus.Subject(app, kindRevoke), []byte(id)); err != nil {
		r.log.Warn("could not publish a revoke", "sdkappid", app, "task", id, "err", err)
	}
}

func (r *Relay) onRevoke(m cluster.Msg) {
	app, id := cluster.AppOf(m.Subject), string(m.Data)
	if m.Self || app == 0 || id == "" || len(id) > 128 {
		return
	}
	r.mu.Lock()
	if len(r.revSeen) >= maxRevSeen {
		clear(r.revSeen) // a later gap sweeps from started (at most revokeLookback)
	}
	r.revSeen[revKey{app, m.Node}] = time.Now().Unix()
	r.mu.Unlock()
	r.revokeOne(app, id)
}

// revokeOne reads task id's audience and tells this node's connections in
// it to drop the task, in the background.
func (r *Relay) revokeOne(app uint64, id string) {
	r.work.Go(func() {
		ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
		defer cancel()
		aud, err := r.hub.Audiences().Get(ctx, app, id)
		if err != nil {
			r.log.Warn("could not read a revoked task's audience", "sdkappid", app, "task", id, "err", err)
			return
		}
		r.hub.Revoke(app, id, aud)
	})
}

type revKey struct {
	app  uint64
	node string
}

const (
	// maxRevSeen bounds Relay.revSeen.
	maxRevSeen = 100_000
	// revokeSlack is taken off a revoke sweep's start: RevokedAt is the
	// revoking node's clock, which may run behind this one's.
	revokeSlack = 60
	// revokeLookback bounds how far back a sweep reads: a task is
	// revocable for im.RevokeWindow after it was created, and a revoke
	// older than that is not told again.
	revokeLookback = im.RevokeWindow
	// maxRevokeSweep bounds the revokes one sweep tells again per app.
	maxRevokeSweep = 10_000
)

// revokeGap runs when revoke events may have been lost (a publisher's
// sequence skipped one, or NATS was down): the tasks of the app (or of
// every app this node has connections for) revoked since the earliest
// last-heard-from of a publisher are read from the store and revoked on
// this node's connections again.
func (r *Relay) revokeGap(subject string) {
	app := cluster.AppOf(subject)
	now := time.Now().Unix()
	r.mu.Lock()
	since := now
	found := false
	for k, at := range r.revSeen {
		if app == 0 || k.app == app {
			since, found = min(since, at), true
		}
	}
	if !found {
		since = r.started
	}
	r.mu.Unlock()
	since = max(since-revokeSlack, now-revokeLookback)
	apps := []uint64{app}
	if app == 0 {
		apps = r.hub.Apps()
	}
	r.log.Warn("revoke events may have been lost; re-reading the revokes from the store",
		"subject", subject, "since", since)
	r.work.Go(func() {
		for _, a := range apps {
			ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
			ids, err := r.store.RevokedSince(ctx, a, since, maxRevokeSweep)
			cancel()
			if err != nil {
				r.log.Error("could not re-read revokes after a gap", "sdkappid", a, "err", err)
				continue
			}
			for _, id := range ids {
				r.revokeOne(a, id)
			}
		}
	})
}

// kick is the payload of a "kick" event.
type kick struct {
	ID string
}

// Kick closes this node's connections of id and tells the other nodes to
// forget its cached KickedAt and close theirs. The kick is in the store
// already (service.Accounts calls Kick after writing it).
func (r *Relay) Kick(app uint64, id string) {
	r.hub.Kick(app, id)
	b, _ := json.Marshal(kick{ID: id})
	if err := r.bus.Notify(r.bus.Subject(app, kindKick), b); err != nil {
		r.log.Warn("could not publish a kick; the other nodes read kicks from the store until NATS is back",
			"sdkappid", app, "err", err)
	}
}

func (r *Relay) onKick(m cluster.Msg) {
	var k kick
	app := cluster.AppOf(m.Subject)
	if m.Self || app == 0 || json.Unmarshal(m.Data, &k) != nil || k.ID == "" {
		return
	}
	if r.auth != nil {
		r.auth.ForgetKick(app, k.ID)
	}
	r.hub.Kick(app, k.ID)
}

// kickGap runs when a kick may have been missed: no cached KickedAt is
// trusted, and every connected account of the app is checked against
// the store.
func (r *Relay) kickGap(subject string) {
	if r.auth != nil {
		r.auth.ForgetKick(0, "")
	}
	apps := []uint64{cluster.AppOf(subject)}
	if apps[0] == 0 {
		apps = r.hub.Apps()
	}
	r.log.Warn("kick events may have been lost; re-reading the kicks of connected accounts", "subject", subject)
	r.work.Go(func() {
		for _, app := range apps {
			r.recheck(app)
		}
	})
}

// recheck closes the connections of app whose account was kicked or
// deleted after they authenticated.
func (r *Relay) recheck(app uint64) {
	sessions := r.hub.Sessions(app)
	ids := make([]string, 0, len(sessions))
	for id := range sessions {
		ids = append(ids, id)
	}
	for len(ids) > 0 {
		batch := ids[:min(len(ids), 500)]
		ids = ids[len(batch):]
		ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
		accts, err := r.store.Accounts(ctx, app, batch)
		cancel()
		if err != nil {
			r.log.Error("could not re-read kicks; closing the connections of the accounts not checked", "sdkappid", app, "err", err)
			for _, id := range batch {
				r.hub.Kick(app, id) // fail closed: they reconnect and authenticate again
			}
			continue
		}
		for _, id := range batch {
			a, ok := accts[id]
			switch {
			case !ok || a.Type != im.AcctUserID:
				r.hub.Kick(app, id)
			case a.KickedAt > sessions[id]:
				r.hub.KickBefore(app, id, a.KickedAt)
			}
		}
	}
}

// onlineQuery is the payload of an "online" request.
type onlineQuery struct {
	IDs []string
}

// Online returns, for each of ids connected to any node, one platform per
// connection: this node's answer merged with the peers' that arrive within
// OnlineTimeout. It implements service.Presence.
func (r *Relay) Online(app uint64, ids []string) map[string][]string {
	out := r.hub.Online(app, ids)
	if !r.bus.Clustered() || len(ids) == 0 {
		return out
	}
	q, _ := json.Marshal(onlineQuery{IDs: ids})
	answers, err := r.bus.Gather(r.bus.Subject(app, kindOnline), q, r.bus.Peers(), OnlineTimeout)
	if err != nil {
		r.log.Warn("could not ask the other nodes for presence", "sdkappid", app, "err", err)
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	for _, a := range answers {
		var peer map[string][]string
		if json.Unmarshal(a, &peer) != nil {
			continue
		}
		for id, ps := range peer {
			if want[id] {
				out[id] = append(out[id], ps...)
			}
		}
	}
	return out
}

func (r *Relay) onOnline(m cluster.Msg) {
	var q onlineQuery
	app := cluster.AppOf(m.Subject)
	if m.Self || app == 0 || json.Unmarshal(m.Data, &q) != nil || len(q.IDs) > service.MaxOnlineBatch {
		return
	}
	b, err := json.Marshal(r.hub.Online(app, q.IDs))
	if err == nil {
		_ = m.Reply(b)
	}
}

// The relay stands in for the hub.
var _ service.Presence = (*Relay)(nil)
