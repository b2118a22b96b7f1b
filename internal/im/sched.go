package im

import (
	"context"
	"encoding/json"
)

// SchedType is a scheduled task's push type (docs/api.md, "add_sched_task").
type SchedType string

// Scheduled task types.
const (
	SchedAll  SchedType = "All"  // push to everyone
	SchedTag  SchedType = "Tag"  // push by Condition
	SchedUser SchedType = "User" // batch to a list
)

// SchedStatus is a scheduled task's status. Tencent documents only
// "pending"; the others are timd's.
type SchedStatus string

// Scheduled task statuses: pending until due, dispatching while its push
// is being created, then dispatched (PushTaskID set) or failed
// (DispatchErr set).
const (
	SchedPending     SchedStatus = "pending"
	SchedDispatching SchedStatus = "dispatching"
	SchedDispatched  SchedStatus = "dispatched"
	SchedFailed      SchedStatus = "failed"
)

// SchedTask is one scheduled push. Times are unix seconds.
type SchedTask struct {
	App       uint64
	ID        int64 // TaskID: assigned by the store, never reused
	Type      SchedType
	SchedAt   int64
	CreatedAt int64
	UpdatedAt int64
	// Content is the push (All, Tag) or batch (User) request body, verbatim.
	Content json.RawMessage
	// Title and Desc are Content's OfflinePushInfo title and text, for
	// list_sched_task's Keyword.
	Title           string
	Desc            string
	Status          SchedStatus
	DispatchSuccess int // 1 once dispatched
	DispatchErr     string
	PushTaskID      string
}

// SchedOrder is the sort key of ListSched.
type SchedOrder uint8

// Sort keys.
const (
	OrderCreatedAt SchedOrder = iota
	OrderSchedAt
)

// SchedQuery selects scheduled tasks of one app.
type SchedQuery struct {
	Offset, Limit int
	OrderBy       SchedOrder
	Asc           bool
	// Begin and End bound the OrderBy time, inclusive; both 0 means no bound.
	Begin, End int64
	// Keyword, when not empty, must occur in Title or Desc.
	Keyword string
}

// SchedStore persists scheduled push tasks.
type SchedStore interface {
	// AddSched stores t with a new ID and returns it.
	AddSched(ctx context.Context, t SchedTask) (SchedTask, error)
	// Sched returns one task, or ErrNotFound.
	Sched(ctx context.Context, app uint64, id int64) (SchedTask, error)
	// UpdateSched replaces SchedAt, Content, Title, Desc and UpdatedAt of a
	// pending task: ErrNotFound when unknown, ErrNotPending when it is not
	// pending.
	UpdateSched(ctx context.Context, t SchedTask) error
	// DeleteSched deletes a pending task: ErrNotFound, ErrNotPending.
	DeleteSched(ctx context.Context, app uint64, id int64) error
	// ListSched returns one page of the app's tasks and how many match q.
	ListSched(ctx context.Context, app uint64, q SchedQuery) ([]SchedTask, int, error)
	// DueSched returns, across apps and ordered by SchedAt, at most limit
	// tasks that are pending with SchedAt <= now, or dispatching with
	// UpdatedAt <= staleBefore (left so by a crash).
	DueSched(ctx context.Context, now, staleBefore int64, limit int) ([]SchedTask, error)
	// MoveSched sets the status, dispatch fields and UpdatedAt of task
	// (t.App, t.ID) to t's if its status is from; it reports whether it did.
	MoveSched(ctx context.Context, from SchedStatus, t SchedTask) (bool, error)
}
