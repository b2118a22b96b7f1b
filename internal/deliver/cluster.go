package deliver

// What a hub offers the nodes of a cluster (package relay): each node's
// hub holds only its own connections, and the relay makes up from the
// store for the events NATS may have lost.

// Resync sends every live connection of app the stored pushes it is owed
// and was not given, as a fresh catch-up from the start would: after a
// lost "chunk delivered" event the store still holds every stored push,
// and a connection's sent set keeps what it already had from being sent
// twice. A connection that is already resyncing runs once more after. A
// connection still in its connect-time catch-up is not given a second
// one, which could send out of Seq order: its catch-up reads the store
// afresh before it goes live instead.
func (h *Hub) Resync(app uint64) {
	epoch := h.epoch.Add(1) // reads that began before now may miss what was lost
	for _, c := range h.conns(app) {
		if c.noteResync() {
			continue
		}
		if c.resync.Add(1) > 1 {
			continue // the running resync loops once more
		}
		go func() {
			for {
				c.catchUpFrom(c.ctx, 0, epoch)
				if c.resync.Add(-1) == 0 {
					return
				}
			}
		}()
	}
}

// Sessions returns, per UserID of app with live connections, the oldest
// KickedAt its connections authenticated with: a connection is stale when
// the account's KickedAt is now newer (a kick this node missed).
func (h *Hub) Sessions(app uint64) map[string]int64 {
	out := map[string]int64{}
	for _, c := range h.conns(app) {
		if at, ok := out[c.id]; !ok || c.kickedAt < at {
			out[c.id] = c.kickedAt
		}
	}
	return out
}

// KickBefore closes (4001 "kicked") the live connections of id that
// authenticated when the account's KickedAt was older than at, and
// refuses such a connection that registers in the next seconds.
func (h *Hub) KickBefore(app uint64, id string, at int64) {
	h.noteKick(userKey{app, id})
	for _, c := range h.conns(app) {
		if c.id == id && c.kickedAt < at {
			c.stop(StatusKicked, "kicked")
		}
	}
}

// conns returns a snapshot of app's live connections.
func (h *Hub) conns(app uint64) []*conn {
	a := h.app(app, false)
	if a == nil {
		return nil
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []*conn
	for _, cs := range a.byID {
		out = append(out, cs...)
	}
	return out
}

// Apps returns the apps that have had live connections on this hub.
func (h *Hub) Apps() []uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]uint64, 0, len(h.apps))
	for a := range h.apps {
		out = append(out, a)
	}
	return out
}
