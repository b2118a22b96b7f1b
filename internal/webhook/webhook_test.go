package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/audience"
	"timd/internal/fanout"
	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/sqlite"
	"timd/internal/webhook"
)

const app = 1400000001

// endpoint is a customer's callback server speaking the real protocol: it
// checks the query, decodes {"Events":[...]} and answers the OK envelope,
// unless told to fail, answer FAIL, or stall.
type endpoint struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	events   map[string]map[string]webhook.Event // TaskId → To_Account → last event
	perPost  []int
	mode     string // "", "500", "fail-envelope", "garbage", "slow"
	requests atomic.Int32
	failures atomic.Int32
	// token, when set, is the callback token every request must be
	// signed with (webhook.VerifyRequest); verified counts those that were.
	token    string
	verified atomic.Int32
}

func newEndpoint(t *testing.T) *endpoint {
	ep := &endpoint{t: t, events: map[string]map[string]webhook.Event{}}
	ep.srv = httptest.NewServer(http.HandlerFunc(ep.serve))
	t.Cleanup(ep.srv.Close)
	return ep
}

func (ep *endpoint) setMode(m string) {
	ep.mu.Lock()
	ep.mode = m
	ep.mu.Unlock()
}

func (ep *endpoint) serve(w http.ResponseWriter, r *http.Request) {
	ep.requests.Add(1)
	q := r.URL.Query()
	if r.Method != http.MethodPost || q.Get("SdkAppid") != fmt.Sprint(app) || q.Get("CallbackCommand") != "Push.AllMemberPush" ||
		q.Get("contenttype") != "json" || q.Get("token") != "s3cret" {
		ep.t.Errorf("bad callback request %s %s", r.Method, r.URL)
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil && r.Context().Err() != nil {
		return // the dispatcher timed out mid-body on a loaded machine; it retries
	}
	if ep.token != "" {
		if err := webhook.VerifyRequest(q, r.Header, raw, ep.token, time.Now()); err != nil {
			ep.t.Errorf("callback signature: %v", err)
		} else {
			ep.verified.Add(1)
		}
	}
	var body struct {
		Events []webhook.Event `json:"Events"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || len(body.Events) == 0 || len(body.Events) > 100 {
		if r.Context().Err() != nil {
			return // the dispatcher timed out mid-body on a loaded machine; it retries
		}
		ep.t.Errorf("bad callback body: %d events, %v", len(body.Events), err)
		return
	}
	ep.mu.Lock()
	mode := ep.mode
	ep.mu.Unlock()
	switch mode {
	case "500":
		ep.failures.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
		return
	case "fail-envelope":
		ep.failures.Add(1)
		_, _ = w.Write([]byte(`{"ActionStatus":"FAIL","ErrorCode":1,"ErrorInfo":"busy"}`))
		return
	case "garbage":
		ep.failures.Add(1)
		_, _ = w.Write([]byte(`<html>oops</html>`))
		return
	case "slow":
		// Answer only after the dispatcher's client gave up: a failure, so
		// the events are not recorded as acknowledged.
		ep.failures.Add(1)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * clientTimeout):
			ep.t.Errorf("the dispatcher waited %v for a slow endpoint (client timeout %v)", 10*clientTimeout, clientTimeout)
		}
		return
	}
	ep.mu.Lock()
	ep.perPost = append(ep.perPost, len(body.Events))
	for _, e := range body.Events {
		if e.CallbackCommand != webhook.Command {
			ep.t.Errorf("event command %q", e.CallbackCommand)
		}
		if ep.events[e.TaskID] == nil {
			ep.events[e.TaskID] = map[string]webhook.Event{}
		}
		ep.events[e.TaskID][e.ToAccount] = e
	}
	ep.mu.Unlock()
	_, _ = w.Write([]byte(`{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`))
}

func (ep *endpoint) got(task string) map[string]webhook.Event {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	out := map[string]webhook.Event{}
	for k, v := range ep.events[task] {
		out[k] = v
	}
	return out
}

// env is a store with n accounts u0..u(n-1) and a callback URL.
type env struct {
	t   *testing.T
	st  *sqlite.Store
	idx *audience.Index
	ep  *endpoint
	rnd atomic.Uint32 // a new MsgRandom per push
}

func newEnv(t *testing.T, n int, callback bool) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	idx := audience.New()
	st.SetChangeSink(idx)
	e := &env{t: t, st: st, idx: idx, ep: newEndpoint(t)}
	a := im.App{SDKAppID: app, SecretKey: "k", Admins: []string{"admin"}}
	if callback {
		a.CallbackURL = e.ep.srv.URL + "/cb?token=s3cret"
	}
	if err := st.PutApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 100 {
		var in []im.AccountInput
		for j := i; j < min(n, i+100); j++ {
			in = append(in, im.AccountInput{UserID: fmt.Sprint("u", j)})
		}
		if _, err := st.ImportAccounts(ctx, app, in); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *env) dispatcher(opt webhook.Options) *webhook.Dispatcher {
	if opt.MinBackoff == 0 {
		opt.MinBackoff = 5 * time.Millisecond
	}
	if opt.MaxBackoff == 0 {
		opt.MaxBackoff = 20 * time.Millisecond
	}
	opt.Client = &http.Client{Timeout: clientTimeout}
	opt.Scan = 10 * time.Millisecond
	opt.SaveEvery = time.Millisecond
	return webhook.New(e.st, e.st, e.idx, opt, nil)
}

// clientTimeout is the dispatcher's HTTP timeout in these tests: short,
// so the "slow" endpoint fails quickly, yet long enough that a healthy POST
// does not time out on a loaded CI machine (100 ms did, and the retries
// then outran the test's deadline).
const clientTimeout = time.Second

// push creates a task to ords (all accounts when nil) of kind.
func (e *env) push(id string, kind im.PushKind, ords *roaring.Bitmap) {
	e.t.Helper()
	if ords == nil {
		ords = roaring.New()
		ords.AddRange(1, e.idx.Count(app)+1)
	}
	b, _ := ords.ToBytes()
	t := im.PushTask{App: app, ID: id, Kind: kind, MsgRandom: e.rnd.Add(1),
		From: "admin", Offline: []byte(`{"Title":"x"}`), DataID: "d-" + id, CreatedAt: time.Now().Unix(),
		Audience: b, Total: int64(ords.GetCardinality()), State: im.TaskPending}
	if _, _, err := e.st.CreateTask(context.Background(), t, 1<<62, im.TaskLimits{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) task(id string) im.PushTask {
	e.t.Helper()
	t, err := e.st.Task(context.Background(), app, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return t
}

func (e *env) waitHook(id string, want im.HookState) im.PushTask {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		t := e.task(id)
		if t.HookState == want {
			return t
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("task %s hook state %d, want %d (cursor %d)", id, t.HookState, want, t.HookCursor)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// connected is a fanout.Live whose connected set is fixed.
type connected struct{ online *roaring.Bitmap }

func (c connected) Deliver(_ *im.PushTask, aud *roaring.Bitmap) int {
	return int(roaring.And(aud, c.online).GetCardinality())
}
func (connected) Revoke(uint64, string, *roaring.Bitmap) {}
func (c connected) Connected(uint64) *roaring.Bitmap     { return c.online.Clone() }

// TestWebhooksRetryNoLossNoBlocking drives the real engine and dispatcher
// against an endpoint that fails in every way for a while: fan-out goes on
// meanwhile, and once the endpoint recovers every recipient's event
// arrives, at most 100 per POST.
func TestWebhooksRetryNoLossNoBlocking(t *testing.T) {
	e := newEnv(t, 1000, true)
	ctx := context.Background()
	e.ep.setMode("500")
	d := e.dispatcher(webhook.Options{})
	eng := fanout.New(e.st, connected{roaring.BitmapOf(1, 2, 3)}, fanout.Options{Scan: 10 * time.Millisecond}, nil)
	eng.SetHooks(d)
	d.Start(ctx)
	eng.Start(ctx)
	defer func() { eng.Stop(); d.Stop() }()

	e.push("all", im.PushCondition, nil)
	waitTask(t, e, "all", im.TaskDone)
	for _, mode := range []string{"fail-envelope", "garbage", "slow"} {
		before := e.ep.failures.Load()
		e.ep.setMode(mode)
		for e.ep.failures.Load() < before+2 {
			time.Sleep(time.Millisecond)
		}
	}
	// While the endpoint is failing, other pushes still fan out.
	batch := roaring.BitmapOf(2, 500, 999)
	e.push("batch_1", im.PushBatch, batch)
	waitTask(t, e, "batch_1", im.TaskDone)
	if got := len(e.ep.got("all")); got != 0 {
		t.Fatalf("%d events acknowledged while the endpoint failed", got)
	}
	e.ep.setMode("")
	e.waitHook("all", im.HookDone)
	e.waitHook("batch_1", im.HookDone)

	all := e.ep.got("all")
	if len(all) != 1000 {
		t.Fatalf("%d of 1000 recipients got an event", len(all))
	}
	for i := range 1000 {
		ev, ok := all[fmt.Sprint("u", i)]
		if !ok {
			t.Fatalf("no event for u%d", i)
		}
		wantType := 1
		if i < 3 {
			wantType = 2
		}
		if ev.EventType != wantType || ev.TaskID != "all" || ev.ErrCode != 0 || ev.DataID != "" || ev.TaskTime == 0 || ev.EventTime == 0 {
			t.Fatalf("event of u%d = %+v", i, ev)
		}
	}
	b := e.ep.got("batch_1")
	if len(b) != 3 || b["u499"].DataID != "d-batch_1" || b["u1"].EventType != 2 {
		t.Errorf("batch events = %+v", b)
	}
	e.ep.mu.Lock()
	for _, n := range e.ep.perPost {
		if n > 100 {
			t.Errorf("a POST carried %d events", n)
		}
	}
	e.ep.mu.Unlock()
	if e.ep.failures.Load() < 6 {
		t.Errorf("only %d failed posts: retries not exercised", e.ep.failures.Load())
	}
	if c, _ := e.st.Counts(ctx, app, "all"); c.Lost != 0 {
		t.Errorf("Lost = %d", c.Lost)
	}
}

func waitTask(t *testing.T, e *env, id string, want im.TaskState) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for e.task(id).State != want {
		if time.Now().After(deadline) {
			t.Fatalf("task %s never reached state %d", id, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// finish marks a task's fan-out done without an engine.
func (e *env) finish(id string) {
	e.t.Helper()
	t := e.task(id)
	aud := roaring.New()
	_ = aud.UnmarshalBinary(t.Audience)
	cursor := int64(0)
	if !aud.IsEmpty() {
		cursor = int64(aud.Maximum())
	}
	if err := e.st.SaveProgress(context.Background(), app, id, cursor, im.TaskDone,
		im.TaskCounts{Total: t.Total, Sent: t.Total}); err != nil {
		e.t.Fatal(err)
	}
}

// TestWebhooksGiveUp: an endpoint failing past the bound loses the events,
// and the loss is counted in the task and in all_member_push_loss.
func TestWebhooksGiveUp(t *testing.T) {
	e := newEnv(t, 250, true)
	e.ep.setMode("500")
	e.push("t1", im.PushCondition, nil)
	e.finish("t1")
	d := e.dispatcher(webhook.Options{GiveUp: 100 * time.Millisecond})
	d.Start(context.Background())
	defer d.Stop()
	e.waitHook("t1", im.HookGaveUp)
	ctx := context.Background()
	if c, _ := e.st.Counts(ctx, app, "t1"); c.Lost != 250 {
		t.Errorf("Lost = %d, want 250", c.Lost)
	}
	now := time.Now().Unix()
	loss, err := service.NewStats(e.st, e.idx, nil).AllMemberLoss(ctx, app, service.Window{Start: now - 60, End: now + 60}, []string{"t1"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range loss[0].PostSendDeliveredLoss {
		if it.ErrCode == service.LossWebhook && it.ErrCount == 250 {
			found = true
		}
	}
	if !found {
		t.Errorf("webhook loss not in all_member_push_loss: %+v", loss[0])
	}
}

// TestWebhooksResume stops the dispatcher midway; a new one continues
// from the saved cursor and no event is lost.
func TestWebhooksResume(t *testing.T) {
	e := newEnv(t, 2000, true)
	e.push("t1", im.PushCondition, nil)
	e.finish("t1")
	d := e.dispatcher(webhook.Options{Batch: 10})
	d.Start(context.Background())
	for len(e.ep.got("t1")) < 300 {
		time.Sleep(time.Millisecond)
	}
	d.Stop()
	mid := e.task("t1")
	if mid.HookState != im.HookPending || mid.HookCursor < 200 || mid.HookCursor >= 2000 {
		t.Fatalf("after Stop: hook state %d cursor %d", mid.HookState, mid.HookCursor)
	}
	d2 := e.dispatcher(webhook.Options{})
	d2.Start(context.Background())
	defer d2.Stop()
	e.waitHook("t1", im.HookDone)
	if got := len(e.ep.got("t1")); got != 2000 {
		t.Fatalf("%d of 2000 events after resume", got)
	}
}

// TestWebhooksRevokedAndNoURL: a revoked task's events cover only the
// recipients its fan-out reached; an app without a callback URL gets none.
func TestWebhooksRevokedAndNoURL(t *testing.T) {
	e := newEnv(t, 100, true)
	ctx := context.Background()
	e.push("t1", im.PushCondition, nil)
	if err := e.st.SaveProgress(ctx, app, "t1", 40, im.TaskRunning, im.TaskCounts{Total: 100, Sent: 40}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.RevokeTask(ctx, app, "t1", time.Now().Unix(), nil, im.TaskLimits{}); err != nil {
		t.Fatal(err)
	}
	d := e.dispatcher(webhook.Options{})
	d.Start(ctx)
	defer d.Stop()
	e.waitHook("t1", im.HookDone)
	if got := len(e.ep.got("t1")); got != 40 {
		t.Errorf("%d events for a task revoked after 40 recipients", got)
	}

	n := newEnv(t, 10, false)
	n.push("t2", im.PushCondition, nil)
	n.finish("t2")
	d2 := n.dispatcher(webhook.Options{})
	d2.Start(ctx)
	defer d2.Stop()
	n.waitHook("t2", im.HookNone)
	if n.ep.requests.Load() != 0 {
		t.Error("events posted for an app without a callback URL")
	}
}

// TestWebhooksLeaseOneNode runs two dispatchers, as two nodes, on one
// store with the webhook lease: every event is posted once, by the holder.
func TestWebhooksLeaseOneNode(t *testing.T) {
	e := newEnv(t, 250, true)
	ctx := context.Background()
	for _, owner := range []string{"node-a", "node-b"} {
		d := e.dispatcher(webhook.Options{Leases: e.st, Owner: owner, LeaseFor: time.Minute})
		d.Start(ctx)
		defer d.Stop()
	}
	ids := []string{"t1", "t2", "t3"}
	for _, id := range ids {
		e.push(id, im.PushCondition, nil)
		e.finish(id)
	}
	for _, id := range ids {
		e.waitHook(id, im.HookDone)
		if got := len(e.ep.got(id)); got != 250 {
			t.Errorf("task %s: %d recipients' events, want 250", id, got)
		}
	}
	e.ep.mu.Lock()
	defer e.ep.mu.Unlock()
	posted := 0
	for _, n := range e.ep.perPost {
		posted += n
	}
	if posted != 3*250 {
		t.Fatalf("%d events posted for 750 recipients: two nodes posted the same events", posted)
	}
}

// TestWebhooksOnlineOnlyThroughVendors: an offline recipient of a push
// that is online-only on timd's own channel (a notification without
// MsgLifeTime) but may go through vendors is ErrCode 0 when it has a
// device a vendor can reach, -1 otherwise.
func TestWebhooksOnlineOnlyThroughVendors(t *testing.T) {
	e := newEnv(t, 3, true)
	ctx := context.Background()
	ord := func(id string) uint32 {
		o, ok := e.idx.Ordinal(app, id)
		if !ok {
			t.Fatalf("no ordinal for %s", id)
		}
		return o
	}
	for _, d := range []im.PushDevice{
		{RegistrationID: "u1-phone", Owner: "u1", Target: ord("u1"), Vendor: im.VendorAPNs, Token: "ab12"},
		{RegistrationID: "u2-phone", Owner: "u2", Target: ord("u2"), Vendor: im.VendorAPNs}, // lost its token
	} {
		if err := e.st.PutPushDevice(ctx, app, d); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().Unix()
	for _, tc := range []struct {
		id          string
		vendorUntil int64
	}{{"vendors", now + 3600}, {"no-vendors", 0 /* PushFlag 1 */}} {
		aud := roaring.BitmapOf(ord("u0"), ord("u1"), ord("u2"))
		b, _ := aud.ToBytes()
		task := im.PushTask{App: app, ID: tc.id, Kind: im.PushCondition, MsgRandom: e.rnd.Add(1), From: "admin",
			Offline: []byte(`{"Title":"x"}`), CreatedAt: now, OnlineOnly: true, VendorUntil: tc.vendorUntil,
			Audience: b, Total: 3, State: im.TaskPending}
		if _, _, err := e.st.CreateTask(ctx, task, 1<<62, im.TaskLimits{}); err != nil {
			t.Fatal(err)
		}
		e.finish(tc.id)
	}
	d := e.dispatcher(webhook.Options{})
	d.SetSends(e.st)
	d.Start(ctx)
	defer d.Stop()
	for _, id := range []string{"vendors", "no-vendors"} {
		e.waitHook(id, im.HookDone)
	}
	for _, tc := range []struct {
		id   string
		want map[string]int
	}{
		{"vendors", map[string]int{"u0": -1, "u1": 0, "u2": -1}},
		{"no-vendors", map[string]int{"u0": -1, "u1": -1, "u2": -1}},
	} {
		got := e.ep.got(tc.id)
		for who, code := range tc.want {
			if ev, ok := got[who]; !ok || ev.ErrCode != code || ev.EventType != 1 {
				t.Errorf("task %s, %s: event %+v (sent %v), want EventType 1 ErrCode %d", tc.id, who, ev, ok, code)
			}
		}
	}
}
