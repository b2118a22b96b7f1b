package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"timd/internal/audience"
	"timd/internal/im"
)

// SchedTimeLayout is the time format of scheduled tasks, in UTC.
const SchedTimeLayout = "2006-01-02 15:04:05"

// MaxSchedList is the most tasks one list_sched_task page returns.
const MaxSchedList = 100

// Sched implements the scheduled push tasks of docs/api.md, "add_sched_task". A task is stored
// with its push (Type All or Tag) or batch (Type User) body and fired by
// the scheduler loop (package fanout) through Fire.
type Sched struct {
	store im.SchedStore
	push  *Push
	now   func() time.Time
	wake  func()
}

// NewSched returns the scheduled-task service; now may be nil.
func NewSched(store im.SchedStore, push *Push, now func() time.Time) *Sched {
	if now == nil {
		now = time.Now
	}
	return &Sched{store: store, push: push, now: now, wake: func() {}}
}

// SetWake installs a function called after a task is added or modified,
// so that the scheduler looks again at once.
func (s *Sched) SetWake(wake func()) { s.wake = wake }

// SchedInfo is the wire form of a scheduled task (TaskInfo).
type SchedInfo struct {
	TaskID          int64           `json:"TaskID"`
	Sdkappid        uint64          `json:"Sdkappid"`
	CreateAt        string          `json:"CreateAt"`
	Type            string          `json:"Type"`
	SchedAt         string          `json:"SchedAt"`
	Content         json.RawMessage `json:"Content"`
	Title           string          `json:"Title"`
	Desc            string          `json:"Desc"`
	Status          string          `json:"Status"`
	DispatchSuccess int             `json:"DispatchSuccess"`
	DispatchErr     string          `json:"DispatchErr"`
	PushTaskID      string          `json:"PushTaskID"`
}

func info(t im.SchedTask) SchedInfo {
	return SchedInfo{TaskID: t.ID, Sdkappid: t.App, CreateAt: fmtTime(t.CreatedAt), Type: string(t.Type),
		SchedAt: fmtTime(t.SchedAt), Content: t.Content, Title: t.Title, Desc: t.Desc, Status: string(t.Status),
		DispatchSuccess: t.DispatchSuccess, DispatchErr: t.DispatchErr, PushTaskID: t.PushTaskID}
}

func fmtTime(unix int64) string { return time.Unix(unix, 0).UTC().Format(SchedTimeLayout) }

func invalid(format string, args ...any) error {
	return im.Errorf(im.CodeSchedInvalid, format, args...)
}

// SchedKind is the push kind of a scheduled task's Content: a batch body
// for Type User, a push body for All and Tag.
func SchedKind(typ im.SchedType) im.PushKind {
	if typ == im.SchedUser {
		return im.PushBatch
	}
	return im.PushCondition
}

// SchedSpec is a decoded add_sched_task or modify_sched_task request,
// checked for shape at the edge (package httpapi).
type SchedSpec struct {
	Type im.SchedType
	// SchedAt is the dispatch time (unix s); 0 leaves it unchanged
	// (Modify only).
	SchedAt int64
	// Content is the push, of kind SchedKind(Type) and with MsgRandom
	// optional; nil leaves it unchanged (Modify only).
	Content *PushRequest
}

// checkContent checks a task's content against its type and the app, and
// returns its stored form (with From_Account set to caller when absent)
// and its title and text. Errors: 90104 for a Type/content mismatch,
// 90056 for content larger than a push body may be (it is the body the
// dispatch pushes), and the Condition codes of Push.
func (s *Sched) checkContent(ctx context.Context, app uint64, typ im.SchedType, req *PushRequest, caller string) (json.RawMessage, string, string, error) {
	if req.Kind != SchedKind(typ) {
		return nil, "", "", invalid("Content is not the body of a Type %s task", typ)
	}
	if err := checkSize(s.push.limits(app), "Content", req.Size); err != nil {
		return nil, "", "", err
	}
	switch {
	case typ == im.SchedAll && req.Condition != nil:
		return nil, "", "", invalid("Type All takes no Condition; use Tag")
	case typ == im.SchedTag && req.Condition == nil:
		return nil, "", "", invalid("Type Tag needs a Condition")
	case req.Condition != nil:
		schema, err := s.push.schema.AttrSchema(ctx, app)
		if err != nil {
			return nil, "", "", err
		}
		if err := audience.Validate(&schema, req.Condition, s.push.cfg.Audience); err != nil {
			return nil, "", "", err
		}
	}
	stored := *req
	if stored.From == "" {
		stored.From = caller
	}
	raw, err := encodeStored(&stored)
	if err != nil {
		return nil, "", "", err
	}
	var text struct{ Title, Desc string }
	_ = json.Unmarshal(req.Offline, &text) // absent or not text: no title
	return raw, text.Title, text.Desc, nil
}

// Add serves add_sched_task and returns the new TaskID. Errors: 90104
// (SchedAt missing or not in the future, Content missing or not matching
// Type), and the codes of checkContent.
func (s *Sched) Add(ctx context.Context, app uint64, caller string, spec SchedSpec) (int64, error) {
	now := s.now().Unix()
	if spec.SchedAt <= now {
		return 0, invalid("SchedAt %s is not in the future", fmtTime(spec.SchedAt))
	}
	if spec.Content == nil {
		return 0, invalid("Content is required")
	}
	content, title, desc, err := s.checkContent(ctx, app, spec.Type, spec.Content, caller)
	if err != nil {
		return 0, err
	}
	t, err := s.store.AddSched(ctx, im.SchedTask{App: app, Type: spec.Type, SchedAt: spec.SchedAt, CreatedAt: now, UpdatedAt: now,
		Content: content, Title: title, Desc: desc, Status: im.SchedPending})
	if err != nil {
		return 0, err
	}
	s.wake()
	return t.ID, nil
}

// load reads the task id: 90104 when it is unknown.
func (s *Sched) load(ctx context.Context, app uint64, id int64) (im.SchedTask, error) {
	t, err := s.store.Sched(ctx, app, id)
	if errors.Is(err, im.ErrNotFound) {
		return t, invalid("scheduled task %d does not exist", id)
	}
	return t, err
}

// notPending maps the store's im.ErrNotPending to 90107.
func notPending(err error, id int64) error {
	if errors.Is(err, im.ErrNotPending) {
		return im.Errorf(im.CodeSchedNotPending, "scheduled task %d is dispatching or dispatched", id)
	}
	if errors.Is(err, im.ErrNotFound) {
		return invalid("scheduled task %d does not exist", id)
	}
	return err
}

// Modify serves modify_sched_task: it replaces SchedAt and/or Content of
// the pending task id. Errors: 90104 (unknown task; Type differing from
// the task's; neither SchedAt nor Content; SchedAt not in the future;
// Content as Add), 90107 the task is not pending.
func (s *Sched) Modify(ctx context.Context, app uint64, caller string, id int64, spec SchedSpec) (int64, error) {
	t, err := s.load(ctx, app, id)
	if err != nil {
		return 0, err
	}
	if spec.Type != t.Type {
		return 0, invalid("Type must be the task's type, %s", t.Type)
	}
	if spec.SchedAt == 0 && spec.Content == nil {
		return 0, invalid("nothing to modify: give SchedAt and/or Content")
	}
	if t.Status != im.SchedPending {
		return 0, notPending(im.ErrNotPending, t.ID)
	}
	now := s.now().Unix()
	if spec.SchedAt != 0 {
		if spec.SchedAt <= now {
			return 0, invalid("SchedAt %s is not in the future", fmtTime(spec.SchedAt))
		}
		t.SchedAt = spec.SchedAt
	}
	if spec.Content != nil {
		if t.Content, t.Title, t.Desc, err = s.checkContent(ctx, app, t.Type, spec.Content, caller); err != nil {
			return 0, err
		}
	}
	t.UpdatedAt = now
	if err := s.store.UpdateSched(ctx, t); err != nil {
		return 0, notPending(err, t.ID)
	}
	s.wake()
	return t.ID, nil
}

// Delete serves delete_sched_task for the task id; typ, when not empty,
// must be the task's type. Errors: 90104 (unknown task, Type differing
// from the task's), 90107 not pending.
func (s *Sched) Delete(ctx context.Context, app uint64, id int64, typ im.SchedType) (int64, error) {
	t, err := s.load(ctx, app, id)
	if err != nil {
		return 0, err
	}
	if typ != "" && typ != t.Type {
		return 0, invalid("Type must be the task's type, %s", t.Type)
	}
	if err := s.store.DeleteSched(ctx, app, t.ID); err != nil {
		return 0, notPending(err, t.ID)
	}
	return t.ID, nil
}

// Get serves get_sched_task. Errors: 90104 unknown task.
func (s *Sched) Get(ctx context.Context, app uint64, id int64) (SchedInfo, error) {
	t, err := s.load(ctx, app, id)
	if err != nil {
		return SchedInfo{}, err
	}
	return info(t), nil
}

// List serves list_sched_task and returns the total and the page q asks
// for (q is checked at the edge; its Limit is at most MaxSchedList).
func (s *Sched) List(ctx context.Context, app uint64, q im.SchedQuery) (int, []SchedInfo, error) {
	q.Limit = min(max(q.Limit, 1), MaxSchedList)
	ts, total, err := s.store.ListSched(ctx, app, q)
	if err != nil {
		return 0, nil, err
	}
	out := make([]SchedInfo, len(ts))
	for i, t := range ts {
		out[i] = info(t)
	}
	return total, out, nil
}

// Fire dispatches a due task as the push or batch its content describes
// and returns the push TaskId. The TaskId is derived from the task's ID,
// so that a dispatch repeated after a crash finds the task it created
// instead of pushing twice. The interval and rate limits do not apply to
// scheduled pushes; the daily quota does. A returned *im.Error (with a
// code) is final; any other error is transient.
func (s *Sched) Fire(ctx context.Context, t im.SchedTask) (string, error) {
	kind := SchedKind(t.Type)
	req, err := decodeStored(t.Content, kind)
	if err != nil {
		return "", im.Errorf(im.CodeSchedInvalid, "Content: %v", err)
	}
	if !req.HasRandom {
		req.MsgRandom = schedRandom(t.App, t.ID)
	}
	id := fmt.Sprintf("sched_%d", t.ID)
	if kind == im.PushBatch {
		id = "batch_" + id
	}
	if _, err := s.push.store.Task(ctx, t.App, id); err == nil {
		return id, nil // dispatched before a crash
	}
	lim := s.push.limits(t.App)
	task, _, err := s.push.Send(ctx, t.App, req, SendOptions{
		Limits: PushLimits{PerDay: lim.PerDay, LegacyPerDay: lim.LegacyPerDay}, TaskID: id})
	if errors.Is(err, im.ErrExists) {
		return id, nil
	}
	if e, ok := im.AsError(err); ok && e.Kind != im.KindCode && e.Kind != im.KindInternal {
		err = im.Errorf(im.CodeSchedInvalid, "%s", e.Info) // final, with a code
	}
	return task.ID, err
}

// schedRandom derives a MsgRandom for a scheduled task that has none.
func schedRandom(app uint64, id int64) uint32 {
	h := fnv.New32a()
	fmt.Fprintf(h, "sched/%d/%d", app, id)
	return h.Sum32()
}
