package deliver

import "sync"

// maxSent bounds the TaskIds one connection remembers. A connection that
// outlives more pushes than this forgets the oldest, and could then be
// given one of those again (a repeat, never a loss): catch-up and live
// delivery overlap only for the pushes stored around the connect, far
// fewer than this.
const maxSent = 4096

// sentSet is the TaskIds a connection was given, so that a push reaching
// it both by catch-up and by a live pass (for example a fan-out resumed
// after a restart while the client reconnects) is written to it once.
// The zero value is ready to use.
type sentSet struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	ring []string // insertion order, for forgetting the oldest
	next int
}

// claim records task and reports whether it was new to the set.
func (s *sentSet) claim(task string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ids[task]; ok {
		return false
	}
	if s.ids == nil {
		s.ids = make(map[string]struct{})
	}
	if len(s.ring) < maxSent {
		s.ring = append(s.ring, task)
	} else {
		delete(s.ids, s.ring[s.next])
		s.ring[s.next] = task
		s.next = (s.next + 1) % maxSent
	}
	s.ids[task] = struct{}{}
	return true
}
