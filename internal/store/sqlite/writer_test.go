package sqlite

import (
	"context"
	"slices"
	"testing"

	"timd/internal/im"
)

// A fold cycle writes its accounts in key order, so that a step's
// neighbouring keys share pages.
func TestFoldCycleInKeyOrder(t *testing.T) {
	s := openOpt(t, noFold())
	w := s.w
	done := make(chan []int64)
	if err := w.do(context.Background(), 1, func(*wtx) ([]im.Change, error) {
		// On the writer goroutine: no group and no fold runs.
		for k := int64(1000); k > 0; k-- {
			w.fold.dirty[k*7%1009] = struct{}{}
		}
		w.fold.lastSeq = 1
		w.maybeFold(true)
		go func(c []int64) { done <- c }(slices.Clone(w.fold.cycle))
		w.fold.cycle, w.fold.upto, w.fold.lastSeq = nil, 0, 0
		clear(w.fold.dirty)
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	cycle := <-done
	if len(cycle) != 1000 || !slices.IsSorted(cycle) {
		t.Errorf("cycle of %d keys, sorted %v", len(cycle), slices.IsSorted(cycle))
	}
}
