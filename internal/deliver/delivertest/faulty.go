// Package delivertest helps the tests of the delivery side (deliver,
// service, httpapi): Faulty wraps the real SQLite task store with failures
// on demand and a count of ack writes. It replaced an in-memory fake of
// im.TaskStore, so that sync paging, expiry, revokes and acks are tested
// against the store timd runs on.
package delivertest

import (
	"context"
	"io"
	"log/slog"
	"math"
	"sync"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/im"
	"timd/internal/store/sqlite"
)

// Faulty is a real task store (the SQLite store on disk) with what only a
// wrapper can give a test: failures on demand and a count of RecordAcks
// calls, to see batching and to drive the error paths. Every call it does
// not fail goes to the real store.
type Faulty struct {
	im.TaskStore

	mu       sync.Mutex
	fail     error // every read and RecordAcks fails while set
	ackFails int   // the next ackFails RecordAcks calls fail with ackErr
	ackErr   error
	records  int
	heads    int            // StoredHeads calls
	auds     map[string]int // TaskAudience calls by task id
}

// OpenFaulty opens the SQLite store in a temporary directory of t and wraps
// it. The store is closed when t ends.
func OpenFaulty(t testing.TB) *Faulty {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &Faulty{TaskStore: st}
}

// Add is a test shortcut: it stores t in the real store, Done unless its
// State is set, with its audience serialized from ords, and returns it as
// stored (with its Seq). MsgRandom deduplication does not apply.
func (f *Faulty) Add(t im.PushTask, ords ...uint32) im.PushTask {
	return Add(f.TaskStore, t, ords...)
}

// Add stores t in s as Faulty.Add does. It panics on a store error, as a
// test shortcut may.
func Add(s im.TaskStore, t im.PushTask, ords ...uint32) im.PushTask {
	bm := roaring.BitmapOf(ords...)
	t.Audience, _ = bm.ToBytes()
	t.Total = int64(bm.GetCardinality())
	if t.State == 0 {
		t.State = im.TaskDone
	}
	out, created, err := s.CreateTask(context.Background(), t, math.MaxInt64, im.TaskLimits{})
	if err != nil || !created {
		panic("delivertest.Add " + t.ID + ": not created")
	}
	return out
}

// SetFail makes the reading calls (Task, StoredHeads, StoredRefs, TaskAudience) and
// RecordAcks fail with err; nil restores them.
func (f *Faulty) SetFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// FailAcks makes the next n RecordAcks calls fail with err.
func (f *Faulty) FailAcks(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ackFails, f.ackErr = n, err
}

// RecordCalls returns how many times RecordAcks was called, failed or not.
func (f *Faulty) RecordCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.records
}

// HeadReads returns how many times StoredHeads was called, failed or not.
func (f *Faulty) HeadReads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.heads
}

func (f *Faulty) failing() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail
}

// Task reads through to the real store unless SetFail is in force.
func (f *Faulty) Task(ctx context.Context, app uint64, id string) (im.PushTask, error) {
	if err := f.failing(); err != nil {
		return im.PushTask{}, err
	}
	return f.TaskStore.Task(ctx, app, id)
}

// StoredHeads reads through to the real store unless SetFail is in force,
// and counts the calls.
func (f *Faulty) StoredHeads(ctx context.Context, app uint64, afterSeq, now int64, limit int) ([]im.TaskHead, error) {
	f.mu.Lock()
	f.heads++
	f.mu.Unlock()
	if err := f.failing(); err != nil {
		return nil, err
	}
	return f.TaskStore.StoredHeads(ctx, app, afterSeq, now, limit)
}

// StoredRefs reads through to the real store unless SetFail is in force.
func (f *Faulty) StoredRefs(ctx context.Context, app uint64, afterSeq, now int64, limit int) ([]im.TaskRef, error) {
	if err := f.failing(); err != nil {
		return nil, err
	}
	return f.TaskStore.StoredRefs(ctx, app, afterSeq, now, limit)
}

// AudienceReads returns how many times TaskAudience was called for task
// id, failed or not.
func (f *Faulty) AudienceReads(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.auds[id]
}

// TaskAudience reads through to the real store unless SetFail is in force,
// and counts the calls.
func (f *Faulty) TaskAudience(ctx context.Context, app uint64, id string) ([]byte, error) {
	f.mu.Lock()
	if f.auds == nil {
		f.auds = map[string]int{}
	}
	f.auds[id]++
	f.mu.Unlock()
	if err := f.failing(); err != nil {
		return nil, err
	}
	return f.TaskStore.TaskAudience(ctx, app, id)
}

// RecordAcks counts the call and writes through to the real store unless
// SetFail or FailAcks is in force.
func (f *Faulty) RecordAcks(ctx context.Context, app uint64, id string, delivered, clicked []uint32) error {
	f.mu.Lock()
	f.records++
	err := f.fail
	if err == nil && f.ackFails > 0 {
		f.ackFails--
		err = f.ackErr
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.TaskStore.RecordAcks(ctx, app, id, delivered, clicked)
}
