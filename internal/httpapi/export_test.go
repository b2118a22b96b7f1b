package httpapi

// FillBulkSlots takes every bulk slot of s, as handlers in progress would,
// until release is called.
func FillBulkSlots(s *Server) (release func()) {
	for range cap(s.bulk) {
		s.bulk <- struct{}{}
	}
	return func() {
		for range cap(s.bulk) {
			<-s.bulk
		}
	}
}

// BulkSlotsInUse returns how many bulk slots are taken.
func BulkSlotsInUse(s *Server) int { return len(s.bulk) }
