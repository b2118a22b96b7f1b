package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"timd/internal/audience"
	"timd/internal/im"
)

// SchedTimeLayout is the time format of scheduled tasks, in UTC.
const SchedTimeLayout = "2006-01-02 15:04:05"

// MaxSchedList is the most tasks one list_sched_task page returns.
const MaxSchedList = 100

// Sched implements the scheduled push tasks of spec §7.4. A task is stored
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

// schedReq is the union of the scheduled-task request bodies.
type schedReq struct {
	Sdkappid  *uint64         `json:"Sdkappid"`
	TaskID    *int64          `json:"TaskID"`
	Type      *string         `json:"Type"`
	SchedAt   *string         `json:"SchedAt"`
	Content   json.RawMessage `json:"Content"`
	Offset    *int            `json:"Offset"`
	Want      *int            `json:"Want"`
	OrderBy   *string         `json:"OrderBy"`
	Asc       *bool           `json:"Asc"`
	BeginTime *string         `json:"BeginTime"`
	EndTime   *string         `json:"EndTime"`
	Keyword   string          `json:"Keyword"`
}

func invalid(format string, args ...any) error {
	return im.Errorf(im.CodeSchedInvalid, format, args...)
}

// decodeSched parses body and checks Sdkappid: 90001 when the body is not
// a JSON object of the right types, 90104 when Sdkappid is missing or not
// the caller's app.
func decodeSched(app uint64, body []byte) (*schedReq, error) {
	var r *schedReq
	if err := json.Unmarshal(body, &r); err != nil || r == nil {
		return nil, im.KindErrorf(im.KindBadJSON, "request body is not a JSON object of the documented types")
	}
	if r.Sdkappid == nil || *r.Sdkappid != app {
		return nil, invalid("Sdkappid must equal the sdkappid of the URL")
	}
	return r, nil
}

func parseSchedTime(field string, v *string) (int64, error) {
	if v == nil {
		return 0, invalid("%s is required", field)
	}
	t, err := time.ParseInLocation(SchedTimeLayout, *v, time.UTC)
	if err != nil {
		return 0, invalid("%s must be YYYY-MM-DD HH:MM:SS (UTC)", field)
	}
	return t.Unix(), nil
}

func schedKind(typ im.SchedType) im.PushKind {
	if typ == im.SchedUser {
		return im.PushBatch
	}
	return im.PushCondition
}

// checkContent validates a task's content against its type and returns
// it (with From_Account set to caller when absent) and its title and text.
// Errors: 90104 for a Type/content mismatch, 90056 for content larger than
// a push body may be (it is the body the dispatch pushes), else those of
// ParsePush except that MsgRandom is optional.
func (s *Sched) checkContent(ctx context.Context, app uint64, typ im.SchedType, raw json.RawMessage, caller string) (json.RawMessage, string, string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, "", "", invalid("Content is required")
	}
	if lim := s.push.limits(app); lim.BodyBytes > 0 && int64(len(raw)) > lim.BodyBytes {
		return nil, "", "", im.Errorf(im.CodePushBodyTooLarge, "Content of %d bytes is over the %d-byte push body limit", len(raw), lim.BodyBytes)
	}
	req, err := parsePush(raw, schedKind(typ), false)
	if err != nil {
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
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(raw, &fields) // parsePush accepted it as an object
	if !present(fields, "From_Account") {
		fields["From_Account"], _ = json.Marshal(caller)
		raw, _ = json.Marshal(fields)
	}
	var text struct{ Title, Desc string }
	_ = json.Unmarshal(req.Offline, &text)
	return raw, text.Title, text.Desc, nil
}

func parseType(v *string) (im.SchedType, error) {
	if v != nil {
		switch t := im.SchedType(*v); t {
		case im.SchedAll, im.SchedTag, im.SchedUser:
			return t, nil
		}
	}
	return "", invalid("Type must be All, Tag or User")
}

// Add serves add_sched_task and returns the new TaskID. Errors: 90001,
// 90104 (Sdkappid, Type, SchedAt missing, malformed or not in the future,
// Content missing or not matching Type), and the push codes of Content.
func (s *Sched) Add(ctx context.Context, app uint64, caller string, body []byte) (int64, error) {
	r, err := decodeSched(app, body)
	if err != nil {
		return 0, err
	}
	typ, err := parseType(r.Type)
	if err != nil {
		return 0, err
	}
	at, err := parseSchedTime("SchedAt", r.SchedAt)
	if err != nil {
		return 0, err
	}
	now := s.now().Unix()
	if at <= now {
		return 0, invalid("SchedAt %s is not in the future", *r.SchedAt)
	}
	content, title, desc, err := s.checkContent(ctx, app, typ, r.Content, caller)
	if err != nil {
		return 0, err
	}
	t, err := s.store.AddSched(ctx, im.SchedTask{App: app, Type: typ, SchedAt: at, CreatedAt: now, UpdatedAt: now,
		Content: content, Title: title, Desc: desc, Status: im.SchedPending})
	if err != nil {
		return 0, err
	}
	s.wake()
	return t.ID, nil
}

// load reads the task r.TaskID: 90104 when TaskID is missing or unknown.
func (s *Sched) load(ctx context.Context, app uint64, r *schedReq) (im.SchedTask, error) {
	if r.TaskID == nil {
		return im.SchedTask{}, invalid("TaskID is required")
	}
	t, err := s.store.Sched(ctx, app, *r.TaskID)
	if errors.Is(err, im.ErrNotFound) {
		return t, invalid("scheduled task %d does not exist", *r.TaskID)
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

// Modify serves modify_sched_task: it replaces SchedAt and/or Content of a
// pending task. Errors: 90104 (as Add; Type differing from the task's;
// neither SchedAt nor Content), 90107 the task is not pending.
func (s *Sched) Modify(ctx context.Context, app uint64, caller string, body []byte) (int64, error) {
	r, err := decodeSched(app, body)
	if err != nil {
		return 0, err
	}
	t, err := s.load(ctx, app, r)
	if err != nil {
		return 0, err
	}
	if typ, err := parseType(r.Type); err != nil || typ != t.Type {
		return 0, invalid("Type must be the task's type, %s", t.Type)
	}
	if r.SchedAt == nil && len(r.Content) == 0 {
		return 0, invalid("nothing to modify: give SchedAt and/or Content")
	}
	if t.Status != im.SchedPending {
		return 0, notPending(im.ErrNotPending, t.ID)
	}
	now := s.now().Unix()
	if r.SchedAt != nil {
		if t.SchedAt, err = parseSchedTime("SchedAt", r.SchedAt); err != nil {
			return 0, err
		}
		if t.SchedAt <= now {
			return 0, invalid("SchedAt %s is not in the future", *r.SchedAt)
		}
	}
	if len(r.Content) > 0 {
		if t.Content, t.Title, t.Desc, err = s.checkContent(ctx, app, t.Type, r.Content, caller); err != nil {
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

// Delete serves delete_sched_task. Errors: 90104 (unknown task, Type
// differing from the task's), 90107 not pending.
func (s *Sched) Delete(ctx context.Context, app uint64, body []byte) (int64, error) {
	r, err := decodeSched(app, body)
	if err != nil {
		return 0, err
	}
	t, err := s.load(ctx, app, r)
	if err != nil {
		return 0, err
	}
	if r.Type != nil && *r.Type != string(t.Type) {
		return 0, invalid("Type must be the task's type, %s", t.Type)
	}
	if err := s.store.DeleteSched(ctx, app, t.ID); err != nil {
		return 0, notPending(err, t.ID)
	}
	return t.ID, nil
}

// Get serves get_sched_task. Errors: 90104.
func (s *Sched) Get(ctx context.Context, app uint64, body []byte) (SchedInfo, error) {
	r, err := decodeSched(app, body)
	if err != nil {
		return SchedInfo{}, err
	}
	t, err := s.load(ctx, app, r)
	if err != nil {
		return SchedInfo{}, err
	}
	return info(t), nil
}

// List serves list_sched_task and returns the total and one page. Errors:
// 90104 for a negative Offset, Want under 1, an unknown OrderBy, only one
// of BeginTime and EndTime, or BeginTime after EndTime. Want over 100
// returns 100; OrderBy (default createAt) is matched case-insensitively.
func (s *Sched) List(ctx context.Context, app uint64, body []byte) (int, []SchedInfo, error) {
	r, err := decodeSched(app, body)
	if err != nil {
		return 0, nil, err
	}
	q, err := listQuery(r)
	if err != nil {
		return 0, nil, err
	}
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

func listQuery(r *schedReq) (im.SchedQuery, error) {
	q := im.SchedQuery{Limit: MaxSchedList}
	if r.Offset != nil {
		if q.Offset = *r.Offset; q.Offset < 0 {
			return q, invalid("Offset must not be negative")
		}
	}
	if r.Want == nil || *r.Want < 1 {
		return q, invalid("Want must be greater than 0")
	}
	q.Limit = min(*r.Want, MaxSchedList)
	if r.OrderBy != nil {
		switch strings.ToLower(*r.OrderBy) {
		case "createat":
			q.OrderBy = im.OrderCreatedAt
		case "schedat":
			q.OrderBy = im.OrderSchedAt
		default:
			return q, invalid("OrderBy must be createAt or schedAt")
		}
	}
	q.Asc = r.Asc != nil && *r.Asc
	if (r.BeginTime == nil) != (r.EndTime == nil) {
		return q, invalid("BeginTime and EndTime go together")
	}
	if r.BeginTime != nil {
		var err error
		if q.Begin, err = parseSchedTime("BeginTime", r.BeginTime); err != nil {
			return q, err
		}
		if q.End, err = parseSchedTime("EndTime", r.EndTime); err != nil {
			return q, err
		}
		if q.Begin > q.End {
			return q, invalid("BeginTime is after EndTime")
		}
	}
	q.Keyword = r.Keyword
	return q, nil
}

// Fire dispatches a due task as the push or batch its content describes
// and returns the push TaskId. The TaskId is derived from the task's ID,
// so that a dispatch repeated after a crash finds the task it created
// instead of pushing twice. The interval and rate limits do not apply to
// scheduled pushes; the daily quota does. A returned *im.Error (with a
// code) is final; any other error is transient.
func (s *Sched) Fire(ctx context.Context, t im.SchedTask) (string, error) {
	kind := schedKind(t.Type)
	req, err := parsePush(t.Content, kind, false)
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
