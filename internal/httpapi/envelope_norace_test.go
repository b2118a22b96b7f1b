//go:build !race

// The race detector makes sync.Pool drop entries at random.

package httpapi

import (
	"encoding/json"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// TestEnvelopeReusesAnswerBuffers: a large self-writing answer (a
// /v1/sync page) is written into a reused buffer, not a fresh one per
// answer.
func TestEnvelopeReusesAnswerBuffers(t *testing.T) {
	frame := json.RawMessage(`{"Type":"push","TaskId":"` + strings.Repeat("x", 300) + `"}`)
	page := syncResp{Cursor: 7}
	for range 50 {
		page.Pushes = append(page.Pushes, frame)
	}
	w := &discardWriter{h: http.Header{}}
	writeEnvelope(w, 0, "", page)
	const n = 200
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		writeEnvelope(w, 0, "", page)
	}
	runtime.ReadMemStats(&after)
	// The answer is ~16 KiB; a GC during the loop may empty the pool once.
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 2<<10 {
		t.Fatalf("writeEnvelope allocates %d bytes per %d-byte answer, want under 2 KiB", per, page.sizeHint())
	}
}
