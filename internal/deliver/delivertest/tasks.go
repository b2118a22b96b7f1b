// Package delivertest provides Tasks, an in-memory im.TaskStore for the
// tests of the delivery side (deliver, service, httpapi) until every
// backend implements im.TaskStore. It is a fake of our own interface, kept
// simple and faithful to the interface's documented behaviour, and records
// how often RecordAcks was called so that tests can see batching.
package delivertest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/im"
)

// Tasks is an in-memory im.TaskStore. The zero value is not usable; call
// NewTasks.
type Tasks struct {
	mu      sync.Mutex
	tasks   map[key]*entry
	order   []key // acceptance order
	seq     map[uint64]int64
	records int
	fail    error // see SetFail
}

type key struct {
	app uint64
	id  string
}

type entry struct {
	t                  im.PushTask
	counts             im.TaskCounts
	delivered, clicked *roaring.Bitmap
}

var _ im.TaskStore = (*Tasks)(nil)

// NewTasks returns an empty store.
func NewTasks() *Tasks {
	return &Tasks{tasks: map[key]*entry{}, seq: map[uint64]int64{}}
}

// Add is a test shortcut: it stores t as created, giving it the app's next
// Seq, with its audience serialized from ords, and returns it.
func (s *Tasks) Add(t im.PushTask, ords ...uint32) im.PushTask {
	bm := roaring.BitmapOf(ords...)
	t.Audience, _ = bm.ToBytes()
	t.Total = int64(bm.GetCardinality())
	if t.State == 0 {
		t.State = im.TaskDone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out, err := s.create(t)
	if err != nil {
		panic(err)
	}
	return out
}

// SetFail makes the reading and ack-recording calls fail with err (nil
// restores them).
func (s *Tasks) SetFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// RecordCalls returns how many times RecordAcks was called.
func (s *Tasks) RecordCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records
}

// CreateTask implements im.TaskStore.
func (s *Tasks) CreateTask(_ context.Context, t im.PushTask, dedupSince int64) (im.PushTask, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.order {
		e := s.tasks[k]
		if k.app == t.App && e.t.Kind == t.Kind && e.t.MsgRandom == t.MsgRandom && e.t.CreatedAt >= dedupSince {
			return clone(e.t), false, nil
		}
	}
	out, err := s.create(t)
	return out, err == nil, err
}

// create stores t with the app's next Seq; s.mu is held.
func (s *Tasks) create(t im.PushTask) (im.PushTask, error) {
	k := key{t.App, t.ID}
	if _, ok := s.tasks[k]; ok {
		return im.PushTask{}, fmt.Errorf("task %s: %w", t.ID, im.ErrExists)
	}
	s.seq[t.App]++
	t.Seq = s.seq[t.App]
	s.tasks[k] = &entry{t: clone(t), counts: im.TaskCounts{Total: t.Total},
		delivered: roaring.New(), clicked: roaring.New()}
	s.order = append(s.order, k)
	return clone(t), nil
}

// Task implements im.TaskStore.
func (s *Tasks) Task(_ context.Context, app uint64, id string) (im.PushTask, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return im.PushTask{}, s.fail
	}
	e, ok := s.tasks[key{app, id}]
	if !ok {
		return im.PushTask{}, fmt.Errorf("task %s: %w", id, im.ErrNotFound)
	}
	return clone(e.t), nil
}

// UnfinishedTasks implements im.TaskStore.
func (s *Tasks) UnfinishedTasks(context.Context) ([]im.PushTask, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []im.PushTask
	for _, k := range s.order {
		if st := s.tasks[k].t.State; st == im.TaskPending || st == im.TaskRunning {
			out = append(out, clone(s.tasks[k].t))
		}
	}
	return out, nil
}

// ClaimTask implements im.TaskStore.
func (s *Tasks) ClaimTask(_ context.Context, app uint64, id, owner string, now, leaseUntil int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.tasks[key{app, id}]
	if !ok {
		return false, fmt.Errorf("task %s: %w", id, im.ErrNotFound)
	}
	if e.t.State != im.TaskPending && e.t.State != im.TaskRunning {
		return false, nil
	}
	if e.t.Owner != "" && e.t.Owner != owner && e.t.LeaseUntil > now {
		return false, nil
	}
	e.t.Owner, e.t.LeaseUntil = owner, leaseUntil
	return true, nil
}

// SaveProgress implements im.TaskStore.
func (s *Tasks) SaveProgress(_ context.Context, app uint64, id string, cursor int64, state im.TaskState, c im.TaskCounts) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.tasks[key{app, id}]
	if !ok {
		return fmt.Errorf("task %s: %w", id, im.ErrNotFound)
	}
	e.t.Cursor = cursor
	if e.t.State != im.TaskRevoked {
		e.t.State = state
	}
	e.counts.Total, e.counts.Sent, e.counts.Online = c.Total, c.Sent, c.Online
	return nil
}

// RevokeTask implements im.TaskStore: 90049 unknown, 90050 already revoked.
func (s *Tasks) RevokeTask(_ context.Context, app uint64, id string, at int64, info json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.tasks[key{app, id}]
	if !ok {
		return im.Errorf(im.CodeTaskNotFound, "task %s does not exist", id)
	}
	if e.t.State == im.TaskRevoked {
		return im.Errorf(im.CodeTaskRevoked, "task %s was already revoked", id)
	}
	e.t.State, e.t.RevokedAt, e.t.RevokeInfo = im.TaskRevoked, at, info
	return nil
}

// StoredHeads implements im.TaskStore. A task with ExpiresAt 0 does not
// expire; otherwise it is readable while now < ExpiresAt.
func (s *Tasks) StoredHeads(_ context.Context, app uint64, afterSeq, now int64, limit int) ([]im.TaskHead, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	var out []im.TaskHead
	for _, k := range s.order {
		t := s.tasks[k].t
		if k.app != app || t.Seq <= afterSeq || !t.Stored() || t.State == im.TaskRevoked ||
			(t.ExpiresAt != 0 && t.ExpiresAt <= now) {
			continue
		}
		t = clone(t)
		out = append(out, t.Head())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// TaskAudience implements im.TaskStore.
func (s *Tasks) TaskAudience(_ context.Context, app uint64, id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	e, ok := s.tasks[key{app, id}]
	if !ok {
		return nil, fmt.Errorf("task %s: %w", id, im.ErrNotFound)
	}
	return append([]byte{}, e.t.Audience...), nil
}

// CountTasks implements im.TaskStore.
func (s *Tasks) CountTasks(_ context.Context, app uint64, since int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, e := range s.tasks {
		if k.app == app && e.t.CreatedAt >= since {
			n++
		}
	}
	return n, nil
}

// Counts implements im.TaskStore.
func (s *Tasks) Counts(_ context.Context, app uint64, id string) (im.TaskCounts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.tasks[key{app, id}]
	if !ok {
		return im.TaskCounts{}, fmt.Errorf("task %s: %w", id, im.ErrNotFound)
	}
	return e.counts, nil
}

// RecordAcks implements im.TaskStore.
func (s *Tasks) RecordAcks(_ context.Context, app uint64, id string, delivered, clicked []uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records++
	if s.fail != nil {
		return s.fail
	}
	e, ok := s.tasks[key{app, id}]
	if !ok {
		return fmt.Errorf("task %s: %w", id, im.ErrNotFound)
	}
	for _, o := range delivered {
		if e.delivered.CheckedAdd(o) {
			e.counts.Delivered++
		}
	}
	for _, o := range clicked {
		if e.clicked.CheckedAdd(o) {
			e.counts.Clicked++
		}
	}
	return nil
}

// AckSets implements im.TaskStore.
func (s *Tasks) AckSets(_ context.Context, app uint64, id string) ([]byte, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.tasks[key{app, id}]
	if !ok {
		return nil, nil, fmt.Errorf("task %s: %w", id, im.ErrNotFound)
	}
	d, err := e.delivered.ToBytes()
	if err != nil {
		return nil, nil, err
	}
	c, err := e.clicked.ToBytes()
	return d, c, err
}

// clone copies t's byte slices so that callers cannot alias the store.
func clone(t im.PushTask) im.PushTask {
	t.Audience = append([]byte(nil), t.Audience...)
	t.MsgBody = append(json.RawMessage(nil), t.MsgBody...)
	t.Offline = append(json.RawMessage(nil), t.Offline...)
	t.RevokeInfo = append(json.RawMessage(nil), t.RevokeInfo...)
	return t
}
