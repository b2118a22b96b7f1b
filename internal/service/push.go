package service

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"golang.org/x/time/rate"

	"timd/internal/audience"
	"timd/internal/im"
)

// PushLimits are one app's push limits (docs/api.md, "Sending"). Each is a key of the
// app's "quotas" in the configuration; 0 or negative disables that limit.
type PushLimits struct {
	IntervalMs       int64 // push_interval_ms: least time between two pushes (90024)
	PerDay           int64 // push_per_day: timpush/push per UTC day (90047)
	LegacyPerDay     int64 // legacy_push_per_day: im_push per UTC day (90047)
	BatchPerSecond   int64 // batch_per_second: batch recipients per second (60007)
	RevokeIntervalMs int64 // revoke_interval_ms: least time between two revokes (90051)
	BodyBytes        int64 // push_body_bytes: largest push body (90056)
}

// DefaultPushLimits are the documented defaults: pushes 1 s apart, 100 a
// day per family, 500 batch recipients a second (the standard edition),
// one revoke a second, 10 KB bodies.
func DefaultPushLimits() PushLimits {
	return PushLimits{IntervalMs: 1000, PerDay: 100, LegacyPerDay: 100, BatchPerSecond: 500,
		RevokeIntervalMs: 1000, BodyBytes: im.MaxPushBody}
}

// PushLimitsFrom overlays the quota keys present in quotas on the
// defaults.
func PushLimitsFrom(quotas map[string]int64) PushLimits {
	l := DefaultPushLimits()
	for key, dst := range map[string]*int64{
		"push_interval_ms": &l.IntervalMs, "push_per_day": &l.PerDay,
		"legacy_push_per_day": &l.LegacyPerDay, "batch_per_second": &l.BatchPerSecond,
		"revoke_interval_ms": &l.RevokeIntervalMs, "push_body_bytes": &l.BodyBytes,
	} {
		if v, ok := quotas[key]; ok {
			*dst = v
		}
	}
	return l
}

// Fanout is the background delivery of accepted tasks (package fanout).
type Fanout interface {
	// Notify says a task was created and should be fanned out soon.
	Notify(app uint64, id string)
	// Revoke stops t's unfinished fan-out and tells live clients to drop it.
	Revoke(t *im.PushTask)
}

// IndexSyncer waits until this node's audience index has every account
// change the store had committed for app when it was called (IndexTail).
type IndexSyncer interface {
	Sync(ctx context.Context, app uint64) error
}

// PushConfig configures the push service.
type PushConfig struct {
	// Limits enables the limits; false (--limits off) disables every one.
	Limits bool
	// AppLimits returns an app's limits; nil means the defaults.
	AppLimits func(app uint64) PushLimits
	// Audience tunes Condition evaluation.
	Audience audience.Options
	// RateShare, when set, returns the part of the in-memory rates
	// (batch_per_second) this node enforces, in (0, 1]: the N nodes of a
	// cluster take 1/N each. nil is a single node (1).
	RateShare func() float64
	// IndexSync, when set, is waited on before an audience is resolved, so
	// that a push sees the account, attribute and tag writes made through
	// other nodes before it (IndexTail.Sync; nil on a single node).
	IndexSync IndexSyncer
	Now       func() time.Time
	Log       *slog.Logger
}

// Push implements v4/timpush/push, batch and revoke and the legacy
// all_member_push/im_push (docs/api.md, "Sending"): it validates, applies the
// limits and MsgRandom idempotency, evaluates the audience once and
// persists the task before answering; fan-out runs in the background.
type Push struct {
	store  im.PushStore
	schema im.AudienceStore
	index  *audience.Index
	fanout Fanout
	cfg    PushConfig

	mu   sync.Mutex
	apps map[uint64]*appPush
}

// appPush is one app's limit state on this node. mu serializes the app's
// pushes through this node. The interval, the quota and the MsgRandom
// check that hold for the cluster are made by the store, inside the task's
// transaction (im.TaskLimits); last and lastRevoke only let this node
// refuse early what it already knows is too soon.
type appPush struct {
	mu         sync.Mutex
	last       map[im.PushKind]time.Time
	lastRevoke time.Time
	batch      *rate.Limiter
	batchRate  int64
}

// NewPush returns the push service. fanout may be nil (tasks then wait for
// the engine's next scan).
func NewPush(store im.PushStore, schema im.AudienceStore, index *audience.Index, fanout Fanout, cfg PushConfig) *Push {
	if cfg.AppLimits == nil {
		cfg.AppLimits = func(uint64) PushLimits { return DefaultPushLimits() }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Push{store: store, schema: schema, index: index, fanout: fanout, cfg: cfg, apps: map[uint64]*appPush{}}
}

// SetFanout installs the fan-out engine.
func (p *Push) SetFanout(f Fanout) { p.fanout = f }

func (p *Push) app(id uint64) *appPush {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.apps[id]
	if a == nil {
		a = &appPush{last: map[im.PushKind]time.Time{}}
		p.apps[id] = a
	}
	return a
}

// Push serves timpush/push: a message (MsgBody) or a notification
// (OfflinePushInfo only) to everyone or to a Condition. req is of kind
// im.PushCondition. It returns the TaskId. Errors: 90056 body over the
// limit; 90024 less than the interval after the previous push; 90047
// daily quota; 90020, 90022, 90032, 90033, 90039, 90040 from the
// Condition.
func (p *Push) Push(ctx context.Context, app uint64, caller string, req *PushRequest) (string, error) {
	t, _, err := p.send(ctx, app, caller, im.PushCondition, req)
	return t, err
}

// Legacy serves all_member_push/im_push: as Push, for a req of kind
// im.PushLegacy (MsgLifeTime 0 = online only).
func (p *Push) Legacy(ctx context.Context, app uint64, caller string, req *PushRequest) (string, error) {
	t, _, err := p.send(ctx, app, caller, im.PushLegacy, req)
	return t, err
}

// Batch serves timpush/batch: a notification to 1–500 UserIDs or
// RegistrationIDs (req of kind im.PushBatch). Unknown recipients are
// returned as per-item 70107; the others get the push. Errors: 90056;
// 60007 over the app's batch recipient rate.
func (p *Push) Batch(ctx context.Context, app uint64, caller string, req *PushRequest) (string, []ItemError, error) {
	return p.send(ctx, app, caller, im.PushBatch, req)
}

// send is the one path of every push command.
func (p *Push) send(ctx context.Context, app uint64, caller string, kind im.PushKind, req *PushRequest) (string, []ItemError, error) {
	if req.Kind != kind {
		return "", nil, fmt.Errorf("push: a request of kind %d sent as kind %d", req.Kind, kind)
	}
	lim := p.limits(app)
	if err := checkSize(lim, "request body", req.Size); err != nil {
		return "", nil, err
	}
	if req.From == "" {
		req.From = caller
	}
	t, errs, err := p.Send(ctx, app, req, SendOptions{Limits: lim, Interval: true})
	return t.ID, errs, err
}

// SendOptions say which limits Send applies.
type SendOptions struct {
	Limits   PushLimits
	Interval bool // apply IntervalMs (scheduled dispatches do not)
	// TaskID, when set, is the TaskId to create (scheduled dispatches use a
	// deterministic one, so that a repeated dispatch finds its task).
	TaskID string
}

// Send accepts a decoded request: MsgRandom idempotency first (a repeat
// within the window returns the first task and sends nothing), then the
// interval, quota and rate limits, the audience, and the durable task.
func (p *Push) Send(ctx context.Context, app uint64, req *PushRequest, o SendOptions) (im.PushTask, []ItemError, error) {
	a := p.app(app)
	a.mu.Lock()
	defer a.mu.Unlock()
	now := p.cfg.Now()
	hash := req.Hash()
	since := dedupSince(req.Kind, now)
	if prev, err := p.store.TaskByRandom(ctx, app, req.Kind, req.MsgRandom, since); err == nil {
		p.repeat(app, req, prev, hash)
		return prev, nil, nil
	} else if !errors.Is(err, im.ErrNotFound) {
		return im.PushTask{}, nil, err
	}
	if err := p.checkLimits(ctx, app, a, req, o, now); err != nil {
		return im.PushTask{}, nil, err
	}
	t, errs, err := p.build(ctx, app, req, now)
	if err != nil {
		return im.PushTask{}, nil, err
	}
	t.BodyHash = hash
	if o.TaskID != "" {
		t.ID = o.TaskID
	}
	out, created, err := p.store.CreateTask(ctx, t, since, p.taskLimits(req, o, now))
	if err != nil {
		return im.PushTask{}, nil, err
	}
	if !created {
		p.repeat(app, req, out, hash)
		return out, nil, nil
	}
	if p.cfg.Limits {
		a.last[req.Kind] = now
	}
	if p.fanout != nil {
		p.fanout.Notify(app, out.ID)
	}
	return out, errs, nil
}

// taskLimits are the limits CreateTask checks again inside the task's
// transaction (checkLimits only refuses early what this node already knows
// is over, before the audience is evaluated): the interval unless o says
// otherwise, and the kind's daily quota. Batches have neither. With limits
// off every field but NowMs is 0, so the store only records the task.
func (p *Push) taskLimits(req *PushRequest, o SendOptions, now time.Time) im.TaskLimits {
	lim := im.TaskLimits{NowMs: now.UnixMilli()}
	if req.Kind == im.PushBatch {
		return lim
	}
	if o.Interval {
		lim.IntervalMs = max(o.Limits.IntervalMs, 0)
	}
	lim.PerDay = o.Limits.PerDay
	if req.Kind == im.PushLegacy {
		lim.PerDay = o.Limits.LegacyPerDay
	}
	lim.PerDay = max(lim.PerDay, 0)
	return lim
}

// repeat logs a MsgRandom repeat whose content differs from the first.
func (p *Push) repeat(app uint64, req *PushRequest, prev im.PushTask, hash string) {
	if prev.BodyHash != hash {
		p.cfg.Log.Warn("MsgRandom reused with a different body; answering the first task, sending nothing",
			"sdkappid", app, "msg_random", req.MsgRandom, "task", prev.ID)
	}
}

// dedupSince is the start of the MsgRandom window: 7 days for push and
// im_push, the current second for batch (its page: "dedup within the same
// second"), so that random MsgRandoms of frequent batches never collide.
func dedupSince(kind im.PushKind, now time.Time) int64 {
	if kind == im.PushBatch {
		return now.Unix()
	}
	return now.Unix() - im.DedupWindow
}

func (p *Push) limits(app uint64) PushLimits {
	if !p.cfg.Limits {
		return PushLimits{}
	}
	return p.cfg.AppLimits(app)
}

// checkLimits applies the interval (90024), the daily quota (90047) and
// the batch recipient rate (60007); a.mu is held.
func (p *Push) checkLimits(ctx context.Context, app uint64, a *appPush, req *PushRequest, o SendOptions, now time.Time) error {
	l := o.Limits
	if req.Kind == im.PushBatch {
		return p.batchRate(a, l.BatchPerSecond, len(req.To), now)
	}
	if iv := time.Duration(l.IntervalMs) * time.Millisecond; o.Interval && iv > 0 {
		if last, ok := a.last[req.Kind]; ok && now.Sub(last) < iv {
			return im.Errorf(im.CodePushTooFrequent, "pushes must be at least %v apart", iv)
		}
	}
	quota := l.PerDay
	if req.Kind == im.PushLegacy {
		quota = l.LegacyPerDay
	}
	if quota <= 0 {
		return nil
	}
	day := now.UTC().Truncate(24 * time.Hour).Unix()
	n, err := p.store.CountKind(ctx, app, req.Kind, day)
	if err != nil {
		return err
	}
	if int64(n) >= quota {
		return im.Errorf(im.CodeDailyQuota, "daily push quota of %d used up; it resets at 00:00 UTC", quota)
	}
	return nil
}

// batchRate takes n recipients from the app's token bucket (burst: one
// second's worth, at least one full batch).
func (p *Push) batchRate(a *appPush, perSec int64, n int, now time.Time) error {
	if perSec <= 0 {
		return nil
	}
	if p.cfg.RateShare != nil {
		if share := p.cfg.RateShare(); share > 0 && share < 1 {
			perSec = max(1, int64(float64(perSec)*share))
		}
	}
	if a.batch == nil || a.batchRate != perSec {
		a.batch = rate.NewLimiter(rate.Limit(perSec), int(max(perSec, im.MaxBatchRecipient)))
		a.batchRate = perSec
	}
	if !a.batch.AllowN(now, n) {
		return im.KindErrorf(im.KindRate, "batch over the app's rate of %d recipients per second", perSec)
	}
	return nil
}

// build evaluates the audience and makes the task.
func (p *Push) build(ctx context.Context, app uint64, req *PushRequest, now time.Time) (im.PushTask, []ItemError, error) {
	var aud *roaring.Bitmap
	var errs []ItemError
	var err error
	if p.cfg.IndexSync != nil {
		if err := p.cfg.IndexSync.Sync(ctx, app); err != nil {
			return im.PushTask{}, nil, err
		}
	}
	if req.Kind == im.PushBatch {
		aud, errs = p.resolve(app, req.To)
	} else {
		schema, serr := p.schema.AttrSchema(ctx, app)
		if serr != nil {
			return im.PushTask{}, nil, serr
		}
		if aud, err = p.index.Evaluate(app, &schema, req.Condition, p.cfg.Audience); err != nil {
			return im.PushTask{}, nil, err
		}
	}
	aud = p.index.Recipients(app, aud)
	aud.RunOptimize()
	blob, err := aud.ToBytes()
	if err != nil {
		return im.PushTask{}, nil, fmt.Errorf("serialize audience: %w", err)
	}
	id, err := newTaskID(req.Kind, app, now, req.MsgRandom)
	if err != nil {
		return im.PushTask{}, nil, err
	}
	t := im.PushTask{App: app, ID: id, Kind: req.Kind, MsgRandom: req.MsgRandom, From: req.From,
		Condition: req.Condition, MsgBody: req.MsgBody, Offline: req.Offline, DataID: req.DataID,
		CreatedAt: now.Unix(), Audience: blob, Total: int64(aud.GetCardinality()), State: im.TaskPending}
	t.OnlineOnly, t.ExpiresAt = storage(req, now.Unix())
	t.VendorUntil = vendorUntil(req, now.Unix())
	return t, errs, nil
}

// vendorUntil decides whether recipients without a live connection get
// the push through their vendor devices, and until when: never with
// OnlineOnlyFlag 1 or OfflinePushInfo.PushFlag 1; otherwise for
// MsgLifeTime, or im.DefaultStoredLife without one (the vendor's own
// expiry is the shorter of the two).
func vendorUntil(req *PushRequest, now int64) int64 {
	if req.OnlineOnly || offlinePushFlag(req.Offline) == 1 {
		return 0
	}
	if req.MsgLifeTime > 0 {
		return now + req.MsgLifeTime
	}
	return now + im.DefaultStoredLife
}

// offlinePushFlag returns OfflinePushInfo.PushFlag (0 when absent; the
// request was validated at the edge).
func offlinePushFlag(info json.RawMessage) int {
	if len(info) == 0 {
		return 0
	}
	var v struct {
		PushFlag int `json:"PushFlag"`
	}
	_ = json.Unmarshal(info, &v)
	return v.PushFlag
}

// storage decides whether recipients keep a copy and until when:
// OnlineOnlyFlag 1 is online only; otherwise MsgLifeTime > 0 stores for
// that long; a message push (MsgBody, timpush/push) with neither stores
// for DefaultStoredLife; notifications, batches and im_push without
// MsgLifeTime are online only.
func storage(req *PushRequest, now int64) (onlineOnly bool, expiresAt int64) {
	switch {
	case req.OnlineOnly:
		return true, 0
	case req.MsgLifeTime > 0:
		return false, now + req.MsgLifeTime
	case req.Kind == im.PushCondition && req.MsgBody != nil:
		return false, now + im.DefaultStoredLife
	}
	return true, 0
}

// resolve maps batch recipients to ordinals (RegistrationIDs first, as
// everywhere); unknown ones are per-item 70107.
func (p *Push) resolve(app uint64, ids []string) (*roaring.Bitmap, []ItemError) {
	aud := roaring.New()
	var errs []ItemError
	for _, id := range ids {
		if ord, ok := p.index.Ordinal(app, id); ok {
			aud.Add(ord)
			continue
		}
		errs = append(errs, ItemError{Account: id, Code: im.CodeAccountNotFound})
	}
	return aud, errs
}

// newTaskID mints a TaskId shaped like Tencent's: lowercase hex fields
// joined by '_' (time, app, 64 random bits, MsgRandom), batch ones
// prefixed "batch_"; at most 49 characters.
func newTaskID(kind im.PushKind, app uint64, now time.Time, msgRandom uint32) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("task id: %w", err)
	}
	id := fmt.Sprintf("%08x_%08x_%016x_%x", uint32(now.Unix()), uint32(app), binary.BigEndian.Uint64(b[:]), msgRandom)
	if kind == im.PushBatch {
		id = "batch_" + id
	}
	return id, nil
}

// checkSize applies the app's push body limit (90056) to n bytes of what.
func checkSize(lim PushLimits, what string, n int) error {
	if lim.BodyBytes > 0 && int64(n) > lim.BodyBytes {
		return im.Errorf(im.CodePushBodyTooLarge, "%s of %d bytes is over the %d-byte limit", what, n, lim.BodyBytes)
	}
	return nil
}

// Revoke serves timpush/revoke: it terminates the task's unfinished
// fan-out, withdraws its stored copies (sync no longer returns it) and
// tells live clients to remove it. Batch TaskIds are accepted too.
// Errors: 90001 no TaskId; 90051 less than the revoke interval after the
// previous revoke; 90049 unknown task; 90050 already revoked; 90052 more
// than 24 h after the task started; 90053 the task stored copies and no
// OfflinePushInfo was given.
func (p *Push) Revoke(ctx context.Context, app uint64, taskID string, offline []byte) error {
	if taskID == "" {
		return im.KindErrorf(im.KindBadParam, "TaskId is required")
	}
	a := p.app(app)
	a.mu.Lock()
	defer a.mu.Unlock()
	now := p.cfg.Now()
	if iv := time.Duration(p.limits(app).RevokeIntervalMs) * time.Millisecond; iv > 0 && now.Sub(a.lastRevoke) < iv {
		return im.Errorf(im.CodeRevokeTooFrequent, "revokes must be at least %v apart", iv)
	}
	t, err := p.store.Task(ctx, app, taskID)
	if errors.Is(err, im.ErrNotFound) {
		return im.Errorf(im.CodeTaskNotFound, "task %s does not exist", taskID)
	}
	if err != nil {
		return err
	}
	switch {
	case t.State == im.TaskRevoked:
		return im.Errorf(im.CodeTaskRevoked, "task %s was already revoked", taskID)
	case now.Unix()-t.CreatedAt > im.RevokeWindow:
		return im.Errorf(im.CodeRevokeExpired, "task %s started more than 24 hours ago", taskID)
	case t.Stored() && len(offline) == 0:
		return im.Errorf(im.CodeRevokeNeedsInfo, "task %s stored copies: OfflinePushInfo is required to revoke it", taskID)
	}
	lim := im.TaskLimits{NowMs: now.UnixMilli(), IntervalMs: max(p.limits(app).RevokeIntervalMs, 0)}
	if err := p.store.RevokeTask(ctx, app, taskID, now.Unix(), offline, lim); err != nil {
		return err
	}
	a.lastRevoke = now
	if p.fanout != nil {
		p.fanout.Revoke(&t)
	}
	return nil
}
