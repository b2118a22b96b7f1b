package deliver

// CachedFrame returns the push frame of the app's stored task id if the
// hub has rendered it and still keeps it (see Frame). A frame depends
// only on the task's head, which never changes, so a reader that lists
// stored tasks by ID (im.TaskStore.StoredRefs) needs a head only on a miss.
func (h *Hub) CachedFrame(app uint64, id string) ([]byte, bool) {
	return h.frames.get(taskKey{app, id})
}
