package im

import (
	"context"
	"encoding/json"
)

// Push limits (spec §7).
const (
	MaxPushBody       = 10 << 10 // bytes; 90056 above
	MaxMsgLifeTime    = 7 * 24 * 3600
	MaxBatchRecipient = 500
	MaxDataIDLen      = 64
	DedupWindow       = 7 * 24 * 3600 // MsgRandom idempotency, seconds
	RevokeWindow      = 24 * 3600
)

// PushKind says which command created a push task.
type PushKind uint8

// Push kinds.
const (
	PushCondition PushKind = iota + 1 // timpush/push: everyone or a Condition
	PushBatch                         // timpush/batch: an explicit list
	PushLegacy                        // all_member_push/im_push
)

// TaskState is a push task's fan-out state.
type TaskState uint8

// Task states. A task is Pending until a worker starts it, Running while
// it fans out, and Done when every recipient was handled. Revoked stops
// fan-out and withdraws stored copies.
const (
	TaskPending TaskState = iota + 1
	TaskRunning
	TaskDone
	TaskRevoked
)

// PushTask is one accepted push, persisted before its TaskId is returned.
// Its audience, captured at send time, is stored once with it as a
// serialized Roaring bitmap of account ordinals: a push to 10M accounts is
// one row.
type PushTask struct {
	App       uint64
	ID        string // TaskId
	Seq       int64  // per-app order of acceptance; the sync cursor
	Kind      PushKind
	MsgRandom uint32
	// BodyHash fingerprints the request for the MsgRandom idempotency check.
	BodyHash   string
	From       string
	Condition  *Condition      // nil: everyone (PushCondition) or n/a (batch)
	MsgBody    json.RawMessage // nil for a notification-only push
	Offline    json.RawMessage // OfflinePushInfo, verbatim
	DataID     string
	OnlineOnly bool  // not stored in inboxes
	ExpiresAt  int64 // stored copies are readable until then (unix s)
	CreatedAt  int64
	Audience   []byte // roaring.Bitmap.ToBytes of recipient ordinals
	Total      int64  // audience cardinality
	State      TaskState
	// Cursor is the fan-out progress: every ordinal <= Cursor was handled.
	Cursor    int64
	RevokedAt int64
	// RevokeInfo is the OfflinePushInfo given with revoke, verbatim.
	RevokeInfo json.RawMessage
	// Lease: the node holding the task and until when (unix ms).
	Owner      string
	LeaseUntil int64
}

// Stored reports whether recipients keep a copy in their inbox.
func (t *PushTask) Stored() bool { return !t.OnlineOnly }

// TaskCounts are a push task's delivery statistics.
type TaskCounts struct {
	Total     int64 // recipients in the audience
	Sent      int64 // recipients fanned out to (stored or live)
	Online    int64 // recipients connected when fanned out
	Delivered int64 // recipients that acknowledged
	Clicked   int64 // recipients that reported a click
}

// TaskStore persists push tasks and their progress.
type TaskStore interface {
	// CreateTask persists t, giving it the next Seq, unless the app already
	// has a task with t.MsgRandom created at or after dedupSince; then it
	// returns that task and false.
	CreateTask(ctx context.Context, t PushTask, dedupSince int64) (PushTask, bool, error)
	// Task returns one task, or ErrNotFound.
	Task(ctx context.Context, app uint64, id string) (PushTask, error)
	// UnfinishedTasks returns Pending and Running tasks of every app, in
	// acceptance order.
	UnfinishedTasks(ctx context.Context) ([]PushTask, error)
	// ClaimTask leases a Pending/Running task to owner until leaseUntil
	// (unix ms) if it is unleased or its lease expired; it reports whether
	// the claim succeeded.
	ClaimTask(ctx context.Context, app uint64, id, owner string, now, leaseUntil int64) (bool, error)
	// SaveProgress records the fan-out cursor, counts and state.
	SaveProgress(ctx context.Context, app uint64, id string, cursor int64, state TaskState, c TaskCounts) error
	// RevokeTask marks a task Revoked: 90049 unknown, 90050 already revoked.
	RevokeTask(ctx context.Context, app uint64, id string, at int64, info json.RawMessage) error
	// StoredTasks returns the app's stored, unrevoked tasks with Seq >
	// afterSeq that have not expired at now, in Seq order, at most limit.
	StoredTasks(ctx context.Context, app uint64, afterSeq, now int64, limit int) ([]PushTask, error)
	// CountTasks counts the app's tasks created at or after since.
	CountTasks(ctx context.Context, app uint64, since int64) (int, error)
	// Counts returns a task's statistics.
	Counts(ctx context.Context, app uint64, id string) (TaskCounts, error)
	// RecordAcks adds delivered and clicked ordinals to a task's sets and
	// updates its counts; ordinals already in a set are not counted again.
	RecordAcks(ctx context.Context, app uint64, id string, delivered, clicked []uint32) error
	// AckSets returns a task's delivered and clicked sets as serialized
	// Roaring bitmaps (empty slices when none).
	AckSets(ctx context.Context, app uint64, id string) (delivered, clicked []byte, err error)
}
