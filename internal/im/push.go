package im

import (
	"context"
	"encoding/json"
	"errors"
)

// Push limits (docs/api.md, "Sending").
const (
	MaxPushBody       = 10 << 10 // bytes; 90056 above
	MaxMsgLifeTime    = 7 * 24 * 3600
	MaxBatchRecipient = 500
	MaxDataIDLen      = 64
	MaxTaskIDLen      = 64
	DedupWindow       = 7 * 24 * 3600 // MsgRandom idempotency, seconds
	RevokeWindow      = 24 * 3600
	// DefaultStoredLife is how long a message push with OnlineOnlyFlag 0
	// and no MsgLifeTime stays readable (the roaming retention timd gives
	// it; Tencent's depends on the edition).
	DefaultStoredLife = 7 * 24 * 3600
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

// HookState is the progress of a task's webhook events.
type HookState uint8

// Hook states. Events are generated once the fan-out has ended (Done or
// Revoked) for the recipients it handled.
const (
	HookPending HookState = iota // events not yet all posted
	HookDone                     // every event was acknowledged by the app
	HookGaveUp                   // the rest were dropped after the retry bound; counted in Lost
	HookNone                     // the app has no callback URL: no events
)

// PushTask is one accepted push, persisted before its TaskId is returned.
// Its audience, captured at send time, is stored once with it as a
// serialized Roaring bitmap of account ordinals: a push to 10M accounts is
// one row. The task row is also every recipient's stored copy: a stored
// (not OnlineOnly) task is readable by the recipients in its audience
// until ExpiresAt.
type PushTask struct {
	App       uint64
	ID        string // TaskId: [A-Za-z0-9_], at most 64 characters
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
	ExpiresAt  int64 // stored copies are readable until then (unix s); 0 never expires
	CreatedAt  int64
	Audience   []byte // roaring.Bitmap.ToBytes of recipient ordinals
	Total      int64  // audience cardinality
	State      TaskState
	// Cursor is the fan-out progress: every ordinal <= Cursor was handled.
	// Ordinals start at 1, so 0 means none.
	Cursor    int64
	RevokedAt int64
	// RevokeInfo is the OfflinePushInfo given with revoke, verbatim.
	RevokeInfo json.RawMessage
	// Lease: the node holding the task and until when (unix ms).
	Owner      string
	LeaseUntil int64
	// Online is the serialized bitmap of the recipients that were connected
	// when the task fanned out to them (nil when unknown or none).
	Online []byte
	// HookCursor is the webhook progress: events for every audience ordinal
	// <= HookCursor were acknowledged by the app (or given up, see Lost).
	HookCursor int64
	HookState  HookState
	// VendorUntil is until when (unix s) the push may be sent through
	// vendors (APNs, FCM, Web Push) to recipients without a live
	// connection; 0: never (OnlineOnlyFlag 1 or OfflinePushInfo.PushFlag 1).
	VendorUntil int64
}

// TaskHead is what a recipient reads of a stored push: its identity, its
// place in the app's order, its content and its lifetime. It is fixed when
// the task is created, so readers may cache it (or anything rendered from
// it) for as long as they like; revocation and expiry are decided by the
// store call that lists heads, not by the head.
type TaskHead struct {
	App       uint64
	ID        string
	Seq       int64
	From      string
	MsgBody   json.RawMessage
	Offline   json.RawMessage
	DataID    string
	CreatedAt int64
	ExpiresAt int64 // 0: never
}

// TaskRef names a stored task: its ID and its place in the app's order.
type TaskRef struct {
	ID  string
	Seq int64
}

// Head returns t's head.
func (t *PushTask) Head() TaskHead {
	return TaskHead{App: t.App, ID: t.ID, Seq: t.Seq, From: t.From, MsgBody: t.MsgBody, Offline: t.Offline,
		DataID: t.DataID, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt}
}

// Stored reports whether recipients keep a copy in their inbox.
func (t *PushTask) Stored() bool { return !t.OnlineOnly }

// Finished reports whether the fan-out has ended.
func (t *PushTask) Finished() bool { return t.State == TaskDone || t.State == TaskRevoked }

// TaskCounts are a push task's delivery statistics.
type TaskCounts struct {
	Total     int64 // recipients in the audience
	Sent      int64 // recipients fanned out to (stored or live)
	Online    int64 // recipients connected when fanned out
	Delivered int64 // recipients that acknowledged
	Clicked   int64 // recipients that reported a click
	Lost      int64 // webhook events dropped after the retry bound
}

// TaskLimits are the per-app limits CreateTask and RevokeTask check inside
// their transaction, so that they hold for every node of a cluster at once
// (two nodes can never both pass the same interval). The store keeps, per
// app and task kind, when the last task was created and how many were
// created in the current UTC day (and, apart, when the last revoke was),
// and updates them in that transaction: for every created task or revoke,
// even one whose limits are 0, so that turning limits on mid-day counts
// what was already sent. A zero NowMs checks and records nothing.
type TaskLimits struct {
	NowMs      int64 // the caller's clock, unix ms
	IntervalMs int64 // least time since the previous one (90024, 90051); 0: none
	PerDay     int64 // tasks of the kind per UTC day (90047); 0: none
}

// TaskStore persists push tasks and their progress.
type TaskStore interface {
	// CreateTask persists t, giving it the next Seq, unless the app already
	// has a task of t.Kind with t.MsgRandom created at or after dedupSince;
	// then it returns that task and false. A task whose ID exists is
	// ErrExists. In the same transaction, after the MsgRandom check, it
	// applies lim to the app's tasks of t.Kind (see TaskLimits): 90024 when
	// the previous one was created less than lim.IntervalMs before
	// lim.NowMs, 90047 when lim.PerDay were created in lim.NowMs's UTC day;
	// then nothing is written.
	CreateTask(ctx context.Context, t PushTask, dedupSince int64, lim TaskLimits) (PushTask, bool, error)
	// Task returns one task, or ErrNotFound.
	Task(ctx context.Context, app uint64, id string) (PushTask, error)
	// UnfinishedTasks returns Pending and Running tasks of every app, in
	// acceptance order.
	UnfinishedTasks(ctx context.Context) ([]PushTask, error)
	// ClaimTask leases a Pending/Running task to owner until leaseUntil
	// (unix ms) if it is unleased, already owner's, or its lease expired
	// (LeaseUntil <= now); it reports whether the claim succeeded. An
	// unknown task is ErrNotFound.
	ClaimTask(ctx context.Context, app uint64, id, owner string, now, leaseUntil int64) (bool, error)
	// SaveProgress records the fan-out cursor, the Total, Sent and Online
	// counts and the state. It never changes the state of a Revoked task.
	// It is not fenced by the lease (SaveFanout with owner ""): the
	// fan-out engine saves through SaveFanout.
	SaveProgress(ctx context.Context, app uint64, id string, cursor int64, state TaskState, c TaskCounts) error
	// RevokeTask marks a task Revoked: 90049 unknown, 90050 already revoked.
	// First, in the same transaction, 90051 when the app's previous revoke
	// was less than lim.IntervalMs before lim.NowMs (lim.PerDay is unused).
	RevokeTask(ctx context.Context, app uint64, id string, at int64, info json.RawMessage, lim TaskLimits) error
	// RevokedSince returns the IDs of the app's tasks revoked at or after
	// since (unix s, RevokedAt), in revoke order, at most limit: what a
	// node that may have missed revoke events tells its connections again.
	// Only tasks created at or after since-RevokeWindow are looked at (a
	// task is revocable for RevokeWindow after its creation).
	RevokedSince(ctx context.Context, app uint64, since int64, limit int) ([]string, error)
	// StoredHeads returns the heads of the app's stored, unrevoked tasks
	// with Seq > afterSeq that have not expired at now, in Seq order, at
	// most limit. It reads no audience, so its cost does not grow with
	// audience sizes.
	StoredHeads(ctx context.Context, app uint64, afterSeq, now int64, limit int) ([]TaskHead, error)
	// StoredRefs lists the same tasks as StoredHeads, by ID and Seq only:
	// a reader that caches heads (or frames rendered from them) lists
	// with it and reads a head only when it has not seen it.
	StoredRefs(ctx context.Context, app uint64, afterSeq, now int64, limit int) ([]TaskRef, error)
	// TaskAudience returns a task's audience exactly as created (see
	// PushTask.Audience), or ErrNotFound.
	TaskAudience(ctx context.Context, app uint64, id string) ([]byte, error)
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

// TaskReport is a task with its statistics, for the statistics APIs. The
// task's Audience is left empty.
type TaskReport struct {
	Task      PushTask
	Counts    TaskCounts
	Delivered []byte // serialized delivered set (nil when none)
	Clicked   []byte // serialized clicked set (nil when none)
}

// PushStore is what the push service, the fan-out engine, the webhook
// dispatcher and the statistics need beyond TaskStore. It is kept apart
// from TaskStore so that stores of the delivery side need only TaskStore.
type PushStore interface {
	TaskStore
	// TaskByRandom returns the app's newest task of kind with msgRandom
	// created at or after since, or ErrNotFound.
	TaskByRandom(ctx context.Context, app uint64, kind PushKind, msgRandom uint32, since int64) (PushTask, error)
	// CountKind counts the app's tasks of kind created at or after since.
	CountKind(ctx context.Context, app uint64, kind PushKind, since int64) (int, error)
	// SaveFanout is SaveProgress by the lease owner owner that also adds
	// online (a serialized bitmap; nil adds nothing) to the task's Online
	// set. It returns the task's state after the save, so that a worker
	// sees a revoke. A save that leaves the task Done or Revoked releases
	// its lease (Owner "", LeaseUntil 0). Unless the task is Revoked or
	// owner is "", a task whose Owner is not owner (its lease was taken
	// over, or released) is refused with ErrLeaseLost and nothing is
	// written. An unknown task is ErrNotFound.
	SaveFanout(ctx context.Context, app uint64, id, owner string, cursor int64, state TaskState, c TaskCounts, online []byte) (TaskState, error)
	// Reports returns the app's tasks of the given kinds created in
	// [since, until], newest first, at most limit.
	Reports(ctx context.Context, app uint64, kinds []PushKind, since, until int64, limit int) ([]TaskReport, error)
	// Report returns one task's report, or ErrNotFound.
	Report(ctx context.Context, app uint64, id string) (TaskReport, error)
	// PendingHooks returns tasks of every app whose HookState is
	// HookPending and whose fan-out has ended: Done, or Revoked and no
	// longer leased (Owner "" or LeaseUntil <= now, unix ms), so that the
	// worker that was fanning it out has saved its last cursor. In
	// acceptance order, at most limit.
	PendingHooks(ctx context.Context, now int64, limit int) ([]PushTask, error)
	// SaveHook records webhook progress: the cursor, the state, and lost
	// events, which are added to the task's Lost count.
	SaveHook(ctx context.Context, app uint64, id string, cursor int64, state HookState, lost int64) error
}

// ErrLeaseLost is returned by SaveFanout when the caller no longer holds
// the task's lease: another node took it over after it expired. The caller
// must stop working on the task.
var ErrLeaseLost = errors.New("the task's lease is held by another owner")

// ErrNotPending is returned when a scheduled task is no longer pending.
var ErrNotPending = errors.New("scheduled task is not pending")
