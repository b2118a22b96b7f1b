// Package webhook posts Push.AllMemberPush callback events (docs/compatibility.md, "Webhooks") to
// each app's callback URL.
//
// Events are generated from a task's audience bitmap, never stored one
// per recipient: once a task's fan-out has ended, its events are the
// audience ordinals up to the fan-out cursor, in ordinal order, at most
// 100 per POST. A persisted per-task cursor (im.PushTask.HookCursor)
// advances only after the app answered 2xx with the OK envelope, so after
// a crash posting resumes where it stood; an event may be posted twice,
// never skipped. Failed posts are retried with exponential backoff. One
// goroutine serves each app, so a slow or failing endpoint delays only
// that app's events and never the fan-out. When an app's endpoint has
// failed for longer than GiveUp, the rest of the task being posted is
// dropped: counted in the task's Lost (the *_loss statistics), in
// timd_webhook_events_lost_total and logged.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/prometheus/client_golang/prometheus"

	"timd/internal/bitmap"
	"timd/internal/im"
)

// Command is the CallbackCommand of push result events.
const Command = "Push.AllMemberPush"

// MaxBatch is the most events one POST carries (docs/compatibility.md, "Webhooks").
const MaxBatch = 100

// Event is one Push.AllMemberPush event.
type Event struct {
	CallbackCommand string `json:"CallbackCommand"`
	EventType       int    `json:"EventType"` // 1 offline, 2 online
	TaskID          string `json:"TaskId"`
	TaskTime        int64  `json:"TaskTime"`
	EventTime       int64  `json:"EventTime"`
	ToAccount       string `json:"To_Account"`
	PushPlatform    int    `json:"PushPlatform"`
	PushStage       int    `json:"PushStage"`
	ErrCode         int    `json:"ErrCode"`
	ErrInfo         string `json:"ErrInfo"`
	DataID          string `json:"DataId,omitempty"`
}

// Apps looks up an app's callback URL.
type Apps interface {
	App(ctx context.Context, sdkappid uint64) (im.App, error)
}

// Names resolves account ordinals to IDs; "" for an ordinal no longer live.
type Names interface {
	IDs(app uint64, ords []uint32) []string
}

// Options tune the Dispatcher. Zero fields take the defaults.
type Options struct {
	Client     *http.Client  // default: 10 s timeout
	Batch      int           // events per POST, at most 100 (default 100)
	MinBackoff time.Duration // first retry delay (default 1 s)
	MaxBackoff time.Duration // longest retry delay (default 5 min)
	// GiveUp is how long an app's endpoint may keep failing before the
	// events of the task being posted are dropped (default 24 h).
	GiveUp time.Duration
	// Scan is how often pending tasks are looked for besides Wake (default
	// 10 s); it picks up tasks left by a restart or another node.
	Scan      time.Duration
	SaveEvery time.Duration // least time between two cursor saves (default 250 ms)
	// Leases, when set, makes posting one node's job among the nodes that
	// share the store: the dispatcher looks for pending tasks, and posts
	// each batch, only while it holds the lease LeaseName as Owner (taken
	// for LeaseFor, renewed at each scan and before each POST), so each
	// event is posted by one node unless a node stalls longer than the
	// lease (then the next holder resumes from the last saved cursor: at
	// least once, as every webhook retry is). Events of tasks finished on
	// another node wait for the holder's next scan. nil: this dispatcher
	// always posts (one process on its store).
	Leases   im.LeaseStore
	Owner    string
	LeaseFor time.Duration // default three Scans
	Now      func() time.Time
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// Tokens are the apps' callback tokens (by SDKAppID); an app with one
	// gets signed callbacks (sign.go).
	Tokens map[uint64]string
}

func (o *Options) defaults() {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Batch <= 0 || o.Batch > MaxBatch {
		o.Batch = MaxBatch
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.GiveUp <= 0 {
		o.GiveUp = 24 * time.Hour
	}
	if o.Scan <= 0 {
		o.Scan = 10 * time.Second
	}
	if o.SaveEvery <= 0 {
		o.SaveEvery = 250 * time.Millisecond
	}
	if o.LeaseFor <= 0 {
		o.LeaseFor = 3 * o.Scan
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Dispatcher posts the events of finished tasks. It implements
// fanout.Waker.
type Dispatcher struct {
	store im.PushStore
	apps  Apps
	names Names
	opt   Options
	log   *slog.Logger
	m     *metrics
	wake  chan struct{}

	mu      sync.Mutex
	workers map[uint64]*appWorker

	sends     im.Outbox      // vendor results to post (vendor.go); nil: none
	devices   im.DeviceStore // whom a vendor could reach (vendor.go); nil: none
	sendsWake chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// appWorker posts one app's tasks in acceptance order.
type appWorker struct {
	queue   chan im.PushTask
	pending map[string]bool // task IDs queued or being posted
	// failingSince is when the app's endpoint started failing (zero while
	// it answers); only the worker goroutine touches it.
	failingSince time.Time
}

// New returns a dispatcher.
func New(store im.PushStore, apps Apps, names Names, opt Options, log *slog.Logger) *Dispatcher {
	opt.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{store: store, apps: apps, names: names, opt: opt, log: log, m: newMetrics(opt.Registerer),
		wake: make(chan struct{}, 1), workers: map[uint64]*appWorker{}}
}

// Start runs the dispatcher until ctx ends or Stop is called.
func (d *Dispatcher) Start(ctx context.Context) {
	d.ctx, d.cancel = context.WithCancel(ctx)
	d.wg.Go(d.scanLoop)
	if d.sends != nil {
		d.wg.Go(d.sendsLoop)
	}
}

// Stop ends every worker; each saves its cursor first.
func (d *Dispatcher) Stop() {
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
}

// Wake makes the dispatcher look for finished tasks now.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) scanLoop() {
	tick := time.NewTicker(d.opt.Scan)
	defer tick.Stop()
	for {
		d.scan()
		select {
		case <-d.ctx.Done():
			return
		case <-tick.C:
		case <-d.wake:
		}
	}
}

// LeaseName is the im.LeaseStore name of posting webhooks.
const LeaseName = "webhooks"

// holdLease takes or renews the webhook lease; true without Leases.
func (d *Dispatcher) holdLease(ctx context.Context) bool {
	l := d.opt.Leases
	if l == nil {
		return true
	}
	now := d.opt.Now()
	held, err := l.TakeLease(ctx, LeaseName, d.opt.Owner, now.UnixMilli(), now.Add(d.opt.LeaseFor).UnixMilli())
	if err != nil && ctx.Err() == nil {
		d.log.Error("webhooks: taking the lease failed", "err", err)
	}
	return held
}

// scan hands pending tasks to their app's worker, if this node holds the
// webhook lease (Options.Leases).
func (d *Dispatcher) scan() {
	if !d.holdLease(d.ctx) {
		return
	}
	ts, err := d.store.PendingHooks(d.ctx, d.opt.Now().UnixMilli(), 256)
	if err != nil {
		if d.ctx.Err() == nil {
			d.log.Error("webhooks: reading pending tasks failed", "err", err)
		}
		return
	}
	for _, t := range ts {
		d.enqueue(t)
	}
}

func (d *Dispatcher) enqueue(t im.PushTask) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.workers[t.App]
	if w == nil {
		w = &appWorker{queue: make(chan im.PushTask, 1024), pending: map[string]bool{}}
		d.workers[t.App] = w
		d.wg.Go(func() { d.work(t.App, w) })
	}
	if w.pending[t.ID] {
		return
	}
	select {
	case w.queue <- t:
		w.pending[t.ID] = true
	default: // full: the next scan offers it again
	}
}

func (d *Dispatcher) done(w *appWorker, id string) {
	d.mu.Lock()
	delete(w.pending, id)
	d.mu.Unlock()
}

func (d *Dispatcher) work(app uint64, w *appWorker) {
	for {
		select {
		case <-d.ctx.Done():
			return
		case t := <-w.queue:
			if err := d.post(d.ctx, w, t); err != nil && d.ctx.Err() == nil {
				d.log.Error("webhooks: task failed; it will be retried", "sdkappid", app, "task", t.ID, "err", err)
			}
			d.done(w, t.ID)
		}
	}
}

// post sends every remaining event of t.
func (d *Dispatcher) post(ctx context.Context, w *appWorker, t im.PushTask) error {
	app, err := d.apps.App(ctx, t.App)
	if err != nil {
		return err
	}
	if app.CallbackURL == "" {
		return d.save(t, t.Cursor, im.HookNone, 0)
	}
	aud, err := bitmap.Decode(t.Audience)
	if err != nil {
		return err
	}
	online, err := bitmap.Decode(t.Online)
	if err != nil {
		return err
	}
	p := &poster{d: d, w: w, t: t, url: callbackURL(app), aud: aud, online: online, cursor: t.HookCursor,
		saved: d.opt.Now()}
	return p.run(ctx)
}

// poster posts one task's events.
type poster struct {
	d           *Dispatcher
	w           *appWorker
	t           im.PushTask
	url         string
	aud, online *roaring.Bitmap
	cursor      int64 // last ordinal acknowledged
	saved       time.Time
}

func (p *poster) run(ctx context.Context) error {
	it := p.aud.Iterator()
	ords := make([]uint32, 0, p.d.opt.Batch)
	for {
		ords = p.next(it, ords[:0])
		if len(ords) == 0 {
			return p.d.save(p.t, p.cursor, im.HookDone, 0)
		}
		events, err := p.events(ctx, ords)
		if err != nil {
			return err
		}
		if len(events) > 0 && !p.d.holdLease(ctx) {
			return nil // another node posts from the saved cursor
		}
		if len(events) > 0 {
			gaveUp, err := p.send(ctx, events)
			if err != nil || gaveUp {
				return err
			}
		}
		p.cursor = int64(ords[len(ords)-1])
		if p.d.opt.Now().Sub(p.saved) >= p.d.opt.SaveEvery {
			if err := p.d.save(p.t, p.cursor, im.HookPending, 0); err != nil {
				return err
			}
			p.saved = p.d.opt.Now()
		}
	}
}

// next collects the next audience ordinals after the cursor and up to the
// fan-out cursor.
func (p *poster) next(it roaring.IntPeekable, ords []uint32) []uint32 {
	if p.cursor >= 0 && p.cursor < math.MaxUint32 {
		it.AdvanceIfNeeded(uint32(p.cursor + 1))
	}
	limit := p.t.Cursor // every ordinal <= the fan-out cursor was handled
	for it.HasNext() && len(ords) < cap(ords) {
		o := it.PeekNext()
		if int64(o) <= p.cursor {
			it.Next()
			continue
		}
		if int64(o) > limit {
			break
		}
		ords = append(ords, it.Next())
	}
	return ords
}

// events builds the events of ords; ordinals whose account was deleted
// since have no ID and no event. An offline recipient of an online-only
// push is -1 on timd's own channel, unless the push went to its vendor
// devices (their results follow as events of their own PushPlatform).
func (p *poster) events(ctx context.Context, ords []uint32) ([]Event, error) {
	ids := p.d.names.IDs(p.t.App, ords)
	now := p.d.opt.Now().Unix()
	var byVendor map[uint32]bool
	if p.t.OnlineOnly && p.t.VendorUntil > 0 && p.d.devices != nil {
		var offline []uint32
		for _, o := range ords {
			if !p.online.Contains(o) {
				offline = append(offline, o)
			}
		}
		devs, err := p.d.devices.PushDevicesOf(ctx, p.t.App, offline)
		if err != nil {
			return nil, err
		}
		byVendor = map[uint32]bool{}
		for i := range devs {
			if devs[i].Reachable() {
				byVendor[devs[i].Target] = true
			}
		}
	}
	out := make([]Event, 0, len(ords))
	for i, o := range ords {
		if ids[i] == "" {
			p.d.m.skipped.Inc()
			continue
		}
		e := Event{CallbackCommand: Command, EventType: 1, TaskID: p.t.ID, TaskTime: p.t.CreatedAt,
			EventTime: now, ToAccount: ids[i], PushStage: 1, ErrInfo: "OK"}
		switch {
		case p.online.Contains(o):
			e.EventType = 2
		case p.t.OnlineOnly && byVendor[o]:
			e.ErrInfo = "offline: sent through its push vendors"
		case p.t.OnlineOnly:
			e.ErrCode, e.ErrInfo = -1, "offline, and the push is online-only"
		}
		if p.t.Kind == im.PushBatch {
			e.DataID = p.t.DataID
		}
		out = append(out, e)
	}
	return out, nil
}

// send posts events until the app accepts them, backing off between
// tries. It gives up (reporting true) once the app's endpoint has failed
// for GiveUp: the remaining events of the task are counted lost.
func (p *poster) send(ctx context.Context, events []Event) (gaveUp bool, err error) {
	body, err := json.Marshal(struct {
		Events []Event `json:"Events"`
	}{events})
	if err != nil {
		return false, err
	}
	for attempt := 0; ; attempt++ {
		err := p.d.postOnce(ctx, p.t.App, p.url, body)
		if err == nil {
			p.w.failingSince = time.Time{}
			p.d.m.events.Add(float64(len(events)))
			return false, nil
		}
		if ctx.Err() != nil {
			return false, errors.Join(ctx.Err(), p.d.save(p.t, p.cursor, im.HookPending, 0))
		}
		now := p.d.opt.Now()
		if p.w.failingSince.IsZero() {
			p.w.failingSince = now
		}
		if now.Sub(p.w.failingSince) >= p.d.opt.GiveUp {
			return true, p.giveUp(err)
		}
		p.d.log.Warn("webhook post failed; retrying", "sdkappid", p.t.App, "task", p.t.ID,
			"attempt", attempt+1, "err", err)
		select {
		case <-ctx.Done():
			return false, errors.Join(ctx.Err(), p.d.save(p.t, p.cursor, im.HookPending, 0))
		case <-time.After(p.d.backoff(attempt)):
		}
	}
}

// giveUp drops the task's remaining events (after the cursor, up to the
// fan-out cursor) and counts them.
func (p *poster) giveUp(cause error) error {
	rest := rankOf(p.aud, p.t.Cursor) - rankOf(p.aud, p.cursor)
	p.d.m.lost.Add(float64(rest))
	p.d.log.Error("webhook events dropped: the callback URL kept failing", "sdkappid", p.t.App, "task", p.t.ID,
		"events", rest, "failing_for", p.d.opt.Now().Sub(p.w.failingSince).Round(time.Second), "err", cause)
	return p.d.save(p.t, p.t.Cursor, im.HookGaveUp, rest)
}

// rankOf counts the ordinals of bm that are <= x.
func rankOf(bm *roaring.Bitmap, x int64) int64 {
	if x <= 0 {
		return 0
	}
	return int64(bm.Rank(uint32(min(x, math.MaxUint32))))
}

func (d *Dispatcher) backoff(attempt int) time.Duration {
	b := d.opt.MinBackoff << min(attempt, 30)
	if b <= 0 || b > d.opt.MaxBackoff {
		b = d.opt.MaxBackoff
	}
	return b
}

// postOnce posts body and checks the answer: HTTP 2xx and the envelope
// {"ActionStatus":"OK","ErrorCode":0}.
func (d *Dispatcher) postOnce(ctx context.Context, app uint64, u string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, d.opt.Client.Timeout+time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	SignRequest(req, d.opt.Tokens[app], body, d.opt.Now())
	resp, err := d.opt.Client.Do(req)
	if err != nil {
		d.m.posts.WithLabelValues("network").Inc()
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		d.m.posts.WithLabelValues("http").Inc()
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var env struct {
		ActionStatus string
		ErrorCode    *int
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.ActionStatus != "OK" || (env.ErrorCode != nil && *env.ErrorCode != 0) {
		d.m.posts.WithLabelValues("envelope").Inc()
		return fmt.Errorf("answer is not the OK envelope: %.200s", raw)
	}
	d.m.posts.WithLabelValues("ok").Inc()
	return nil
}

// save records progress, outliving the dispatcher's context.
func (d *Dispatcher) save(t im.PushTask, cursor int64, st im.HookState, lost int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return d.store.SaveHook(ctx, t.App, t.ID, cursor, st, lost)
}

// callbackURL adds the query of docs/compatibility.md, "Webhooks" to the app's URL.
func callbackURL(app im.App) string {
	q := url.Values{"SdkAppid": {strconv.FormatUint(app.SDKAppID, 10)}, "CallbackCommand": {Command},
		"contenttype": {"json"}}
	sep := "?"
	if strings.Contains(app.CallbackURL, "?") {
		sep = "&"
	}
	return app.CallbackURL + sep + q.Encode()
}

type metrics struct {
	posts   *prometheus.CounterVec
	events  prometheus.Counter
	lost    prometheus.Counter
	skipped prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		posts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "timd_webhook_posts_total",
			Help: "Callback POSTs by result: ok, http (non-2xx), envelope (not OK), network."}, []string{"result"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "timd_webhook_events_total",
			Help: "Push.AllMemberPush events acknowledged by the app."}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{Name: "timd_webhook_events_lost_total",
			Help: "Events dropped after the callback URL kept failing for the give-up bound."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "timd_webhook_events_skipped_total",
			Help: "Events not generated because the recipient account was deleted since."}),
	}
	if reg != nil {
		reg.MustRegister(m.posts, m.events, m.lost, m.skipped)
	}
	return m
}
