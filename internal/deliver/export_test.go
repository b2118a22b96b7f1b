package deliver

// SetCatchUpHooks installs test hooks on h before it serves connections:
// page runs after each catch-up page read (account id, the Seq it read
// after, how many heads), before the page is sent; reread runs when a
// catch-up reads on because of a live push it noted. Either may be nil.
func SetCatchUpHooks(h *Hub, page func(id string, after int64, n int), reread func(id string)) {
	h.hooks.Store(&hooks{page: page, reread: reread})
}
