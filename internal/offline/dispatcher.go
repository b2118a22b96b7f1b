// Package offline sends queued vendor notifications: the Dispatcher drains
// the store's durable send queue (im.Outbox), which the fan-out engine
// fills with one send per task and vendor device for every recipient
// without a live connection, through the app's vendor Senders
// (package pushvendor), paced per app and vendor.
//
// A send is claimed with a lease, sent, and finished (deleted with its
// result recorded, in one transaction). A process killed mid-send leaves
// its claimed sends leased; once the lease ends they are claimed and sent
// again, so after a crash at most the in-flight window (Options.Window)
// is repeated, each with the task's collapse id, and nothing is lost. A
// live process renews the lease of the sends it is still sending, so a
// window that outlasts the lease is not sent again by another node.
// Retryable answers (429, 5xx, network) go back to the queue, due after
// the vendor's Retry-After or the backoff; an unregistered device loses
// its token.
package offline

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"timd/internal/im"
	"timd/internal/pushvendor"
)

// Store is what the Dispatcher needs of the store.
type Store interface {
	im.Outbox
	im.DeviceStore
	// Task returns one task, or im.ErrNotFound.
	Task(ctx context.Context, app uint64, id string) (im.PushTask, error)
}

// Senders returns app's Sender for a vendor, or nil when the app has no
// credentials for it (its sends then finish with ErrCode NoSender).
type Senders func(app uint64, kind pushvendor.Kind) pushvendor.Sender

// ErrCodes of sends that never reached a vendor.
const (
	NoSender = "NoCredentials" // the app has no credentials for the device's vendor
	NoToken  = "NoToken"       // the device lost its token (unregistered) before its turn
)

// Options tune the Dispatcher. Zero fields take the defaults.
type Options struct {
	Owner   string        // this node's lease owner name (default "timd")
	Window  int           // sends claimed at once: the most repeated after a crash (default 256)
	Workers int           // concurrent sends (default 32)
	Lease   time.Duration // how long a claimed send is reserved (default 60 s)
	Poll    time.Duration // how often the queue is looked at when idle (default 1 s)
	Backoff pushvendor.Backoff
	Pacer   *pushvendor.Pacer // nil: pushvendor.NewPacer(0)
	// OnResult, if set, is called with every finished send (the webhook
	// events of package webhook), after it is recorded.
	OnResult func(r im.SendResult, t *im.PushTask)
	Now      func() time.Time
}

func (o *Options) defaults() {
	if o.Owner == "" {
		o.Owner = "timd"
	}
	if o.Window <= 0 {
		o.Window = 256
	}
	if o.Workers <= 0 {
		o.Workers = 32
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Pacer == nil {
		o.Pacer = pushvendor.NewPacer(0)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Dispatcher drains the send queue. Start it once; Stop ends it.
type Dispatcher struct {
	store   Store
	senders Senders
	opt     Options
	log     *slog.Logger
	wake    chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu    sync.Mutex
	tasks map[taskKey]*im.PushTask // content of tasks being sent, cleared when large
}

type taskKey struct {
	app uint64
	id  string
}

// maxCachedTasks bounds the task cache.
const maxCachedTasks = 1024

// New returns a Dispatcher over store sending through senders.
func New(store Store, senders Senders, opt Options, log *slog.Logger) *Dispatcher {
	opt.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{store: store, senders: senders, opt: opt, log: log, wake: make(chan struct{}, 1),
		tasks: map[taskKey]*im.PushTask{}}
}

// Wake tells the Dispatcher that sends were queued.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Start runs the loop until ctx ends or Stop is called. Sends left by a
// previous process are taken up once their lease ends.
func (d *Dispatcher) Start(ctx context.Context) {
	ctx, d.cancel = context.WithCancel(ctx)
	d.wg.Go(func() { d.loop(ctx) })
}

// Stop ends the loop after the sends in flight have finished or been
// abandoned to their lease.
func (d *Dispatcher) Stop() {
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
}

func (d *Dispatcher) loop(ctx context.Context) {
	tick := time.NewTicker(d.opt.Poll)
	defer tick.Stop()
	for {
		n, err := d.round(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.Error("vendor send queue", "err", err)
		}
		if n > 0 && err == nil {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-tick.C:
		}
	}
}

// round claims one window of due sends and sends them; it returns how
// many it claimed. While the window is being sent its lease is renewed
// every third of the lease, so that a window that takes longer than the
// lease (slow pacing, a slow vendor) is not claimed and sent again by
// another node; a send starts only while the lease has at least a quarter
// left, so one whose renewals failed stops instead of outliving it.
func (d *Dispatcher) round(ctx context.Context) (int, error) {
	now := d.opt.Now()
	items, err := d.store.ClaimOutbox(ctx, d.opt.Owner, now.UnixMilli(), now.Add(d.opt.Lease).UnixMilli(), d.opt.Window)
	if err != nil || len(items) == 0 {
		return 0, err
	}
	w := &window{items: items, done: make([]bool, len(items))}
	w.until.Store(now.Add(d.opt.Lease).UnixMilli())
	renewCtx, stopRenew := context.WithCancel(ctx)
	var renewer sync.WaitGroup
	renewer.Go(func() { d.renew(renewCtx, w) })
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(d.opt.Workers, len(items)) {
		wg.Go(func() {
			for i := range work {
				it := items[i]
				if err := d.send(ctx, it, w); err != nil && ctx.Err() == nil {
					d.log.Error("vendor send", "sdkappid", it.App, "task", it.TaskID, "device", it.RegistrationID, "err", err)
				}
				w.finish(i)
			}
		})
	}
	for i := range items {
		select {
		case work <- i:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	stopRenew()
	renewer.Wait()
	return len(items), nil
}

// window is the sends one round claimed, and until when (unix ms) their
// lease is known to hold.
type window struct {
	items []im.OutboxItem
	until atomic.Int64
	mu    sync.Mutex
	done  []bool // items[i] finished, retried or abandoned
}

func (w *window) finish(i int) {
	w.mu.Lock()
	w.done[i] = true
	w.mu.Unlock()
}

// pending returns the items not yet done.
func (w *window) pending() []im.OutboxItem {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []im.OutboxItem
	for i, it := range w.items {
		if !w.done[i] {
			out = append(out, it)
		}
	}
	return out
}

// renew extends the lease of w's unfinished sends every third of the
// lease until ctx ends.
func (d *Dispatcher) renew(ctx context.Context, w *window) {
	tick := time.NewTicker(d.opt.Lease / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pending := w.pending()
		if len(pending) == 0 {
			continue
		}
		until := d.opt.Now().Add(d.opt.Lease).UnixMilli()
		if _, err := d.store.RenewOutbox(ctx, d.opt.Owner, pending, until); err != nil {
			if ctx.Err() == nil {
				d.log.Warn("vendor sends: renewing their lease failed", "sends", len(pending), "err", err)
			}
			continue
		}
		w.until.Store(until)
	}
}

// leaseHolds reports whether a send may start: the window's lease has at
// least a quarter of its length left.
func (d *Dispatcher) leaseHolds(w *window) bool {
	return d.opt.Now().Add(d.opt.Lease/4).UnixMilli() < w.until.Load()
}

// send sends one queued notification and records its outcome.
func (d *Dispatcher) send(ctx context.Context, it im.OutboxItem, w *window) error {
	if ctx.Err() != nil || !d.leaseHolds(w) {
		return nil // left to its lease
	}
	t, err := d.task(ctx, it.App, it.TaskID)
	if errors.Is(err, im.ErrNotFound) {
		return d.finish(it, nil, im.PushDevice{}, pushvendor.Result{ErrCode: "NoTask"})
	} else if err != nil {
		return err
	}
	dev, err := d.store.PushDevice(ctx, it.App, it.RegistrationID)
	if err != nil && !errors.Is(err, im.ErrNotFound) {
		return err
	}
	if err != nil || !dev.Reachable() {
		return d.finish(it, t, dev, pushvendor.Result{ErrCode: NoToken})
	}
	kind := pushvendor.Kind(dev.Vendor)
	s := d.senders(it.App, kind)
	if s == nil {
		return d.finish(it, t, dev, pushvendor.Result{ErrCode: NoSender})
	}
	if err := d.opt.Pacer.Wait(ctx, it.App, kind); err != nil || !d.leaseHolds(w) {
		return nil // stopping, or the lease is ending: left to it
	}
	target := pushvendor.Target{Kind: kind, Token: dev.Token, Bundle: dev.Bundle, Endpoint: dev.Endpoint, P256dh: dev.P256dh, Auth: dev.Auth}
	r := s.Send(ctx, target, Notification(t))
	if ctx.Err() != nil && !r.OK() {
		return nil // cut short by Stop: left to its lease, sent again
	}
	if r.Unregistered {
		addr := dev.Token
		if kind == pushvendor.WebPush {
			addr = dev.Endpoint
		}
		if _, err := d.store.DropToken(ctx, it.App, dev.RegistrationID, addr); err != nil {
			return err
		}
	}
	if delay, again := d.opt.Backoff.Delay(it.Attempts+1, r); again && !r.OK() {
		return d.store.RetryOutbox(context.WithoutCancel(ctx), it.App, it.TaskID, it.RegistrationID, d.opt.Now().Add(delay).UnixMilli())
	}
	return d.finish(it, t, dev, r)
}

// finish records a send's result and deletes it from the queue.
func (d *Dispatcher) finish(it im.OutboxItem, t *im.PushTask, dev im.PushDevice, r pushvendor.Result) error {
	res := im.SendResult{App: it.App, TaskID: it.TaskID, RegistrationID: it.RegistrationID, Account: dev.Owner,
		Vendor: dev.Vendor, Platform: dev.Platform, Status: r.Status, At: d.opt.Now().Unix()}
	if res.Account == "" {
		res.Account = it.RegistrationID
	}
	if !r.OK() || r.ErrCode != "" {
		res.ErrCode = r.ErrCode
		if res.ErrCode == "" {
			res.ErrCode = "error"
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.store.FinishOutbox(ctx, res); err != nil {
		return err
	}
	if d.opt.OnResult != nil && t != nil {
		d.opt.OnResult(res, t)
	}
	return nil
}

// task returns the task's content, cached.
func (d *Dispatcher) task(ctx context.Context, app uint64, id string) (*im.PushTask, error) {
	k := taskKey{app, id}
	d.mu.Lock()
	t, ok := d.tasks[k]
	d.mu.Unlock()
	if ok {
		return t, nil
	}
	got, err := d.store.Task(ctx, app, id)
	if err != nil {
		return nil, err
	}
	got.Audience, got.Online = nil, nil // not needed; keeps the cache small
	d.mu.Lock()
	if len(d.tasks) >= maxCachedTasks {
		clear(d.tasks)
	}
	d.tasks[k] = &got
	d.mu.Unlock()
	return &got, nil
}

// offlinePushInfo is the part of Tencent's OfflinePushInfo the vendors use
// (docs/offline-push.md maps it field by field).
type offlinePushInfo struct {
	Title       string                 `json:"Title"`
	Desc        string                 `json:"Desc"`
	Ext         string                 `json:"Ext"`
	Sound       string                 `json:"Sound"`
	ApnsInfo    pushvendor.ApnsInfo    `json:"ApnsInfo"`
	AndroidInfo pushvendor.AndroidInfo `json:"AndroidInfo"`
}

// Notification is what a task says to a device: its OfflinePushInfo
// content, its TaskId (the collapse id) and its vendor lifetime.
func Notification(t *im.PushTask) pushvendor.Notification {
	var info offlinePushInfo
	if len(t.Offline) > 0 {
		_ = json.Unmarshal(t.Offline, &info) // validated when the push was accepted
	}
	n := pushvendor.Notification{App: t.App, TaskID: t.ID, Title: info.Title, Desc: info.Desc, Ext: info.Ext,
		Sound: info.Sound, Priority: pushvendor.PriorityHigh, Apns: info.ApnsInfo, Android: info.AndroidInfo}
	if t.VendorUntil > 0 {
		n.Expires = time.Unix(t.VendorUntil, 0)
	}
	return n
}
