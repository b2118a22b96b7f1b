package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"timd/internal/im"
)

// Vendor events: every finished vendor send (an APNs, FCM or Web Push
// notification, im.SendResult) is posted as one EventType 1 event, with
// the vendor's PushPlatform and, on failure, the vendor's reason in
// ErrInfo. Results are stored unposted and marked once the app accepted
// them, so a crash repeats at most the batch being posted, never skips
// one. An app without a callback URL has its results marked at once.

// Sends is what vendor events need of the store: the send results, and
// the devices (whether an offline recipient has one a vendor can reach).
type Sends interface {
	im.Outbox
	im.DeviceStore
}

// SetSends installs the vendor send results to post; call it before
// Start. WakeSends tells the dispatcher that results were recorded.
func (d *Dispatcher) SetSends(s Sends) {
	d.sends, d.devices = s, s
	d.sendsWake = make(chan struct{}, 1)
}

// WakeSends makes the dispatcher post vendor results now.
func (d *Dispatcher) WakeSends() {
	if d.sendsWake == nil {
		return
	}
	select {
	case d.sendsWake <- struct{}{}:
	default:
	}
}

// sendsBatch is how many results one round reads.
const sendsBatch = 500

func (d *Dispatcher) sendsLoop() {
	tick := time.NewTicker(d.opt.Scan)
	defer tick.Stop()
	attempt := 0
	for {
		n, err := d.postSends()
		switch {
		case err != nil && d.ctx.Err() == nil:
			d.log.Warn("webhooks: posting vendor results failed; retrying", "attempt", attempt+1, "err", err)
			attempt++
			select {
			case <-d.ctx.Done():
				return
			case <-time.After(d.backoff(attempt - 1)):
			}
			continue
		case err == nil:
			attempt = 0
		}
		if n == sendsBatch {
			continue
		}
		select {
		case <-d.ctx.Done():
			return
		case <-tick.C:
		case <-d.sendsWake:
		}
	}
}

// postSends posts one batch of unposted results, app by app, and returns
// how many it read.
func (d *Dispatcher) postSends() (int, error) {
	rs, err := d.sends.UnpostedSends(d.ctx, sendsBatch)
	if err != nil || len(rs) == 0 {
		return 0, err
	}
	byApp := map[uint64][]im.SendResult{}
	var apps []uint64
	for _, r := range rs {
		if _, ok := byApp[r.App]; !ok {
			apps = append(apps, r.App)
		}
		byApp[r.App] = append(byApp[r.App], r)
	}
	var errs []error
	for _, app := range apps {
		errs = append(errs, d.postAppSends(app, byApp[app]))
	}
	return len(rs), errors.Join(errs...)
}

func (d *Dispatcher) postAppSends(sdkappid uint64, rs []im.SendResult) error {
	app, err := d.apps.App(d.ctx, sdkappid)
	if errors.Is(err, im.ErrNotFound) || err == nil && app.CallbackURL == "" {
		return d.sends.MarkSendsPosted(context.WithoutCancel(d.ctx), rs)
	} else if err != nil {
		return err
	}
	tasks := map[string]*im.PushTask{}
	for len(rs) > 0 {
		n := min(len(rs), d.opt.Batch)
		events := make([]Event, 0, n)
		for _, r := range rs[:n] {
			t, err := d.taskOf(tasks, r)
			if err != nil {
				return err
			}
			events = append(events, vendorEvent(t, r))
		}
		body, err := json.Marshal(struct {
			Events []Event `json:"Events"`
		}{events})
		if err != nil {
			return err
		}
		if err := d.postOnce(d.ctx, app.SDKAppID, callbackURL(app), body); err != nil {
			return err
		}
		d.m.events.Add(float64(len(events)))
		if err := d.sends.MarkSendsPosted(context.WithoutCancel(d.ctx), rs[:n]); err != nil {
			return err
		}
		rs = rs[n:]
	}
	return nil
}

// taskOf returns r's task (its time and DataId), read once per batch; a
// task deleted since yields an event without them.
func (d *Dispatcher) taskOf(cache map[string]*im.PushTask, r im.SendResult) (*im.PushTask, error) {
	if t, ok := cache[r.TaskID]; ok {
		return t, nil
	}
	t, err := d.store.Task(d.ctx, r.App, r.TaskID)
	if errors.Is(err, im.ErrNotFound) {
		t = im.PushTask{App: r.App, ID: r.TaskID}
	} else if err != nil {
		return nil, err
	}
	t.Audience, t.Online = nil, nil
	cache[r.TaskID] = &t
	return &t, nil
}

// vendorEvent is the EventType 1 event of one vendor send: ErrCode 0 and
// "OK" when the vendor accepted it; otherwise the vendor's HTTP status
// (-1 when none came) and its reason.
func vendorEvent(t *im.PushTask, r im.SendResult) Event {
	e := Event{CallbackCommand: Command, EventType: 1, TaskID: r.TaskID, TaskTime: t.CreatedAt, EventTime: r.At,
		ToAccount: r.Account, PushPlatform: r.Vendor.PushPlatform(), PushStage: 1, ErrInfo: "OK"}
	if !r.OK() {
		e.ErrCode, e.ErrInfo = r.Status, r.ErrCode
		if e.ErrCode == 0 {
			e.ErrCode = -1
		}
	}
	if t.Kind == im.PushBatch {
		e.DataID = t.DataID
	}
	return e
}
