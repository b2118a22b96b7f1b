package offline_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/audience"
	"timd/internal/fanout"
	"timd/internal/im"
	"timd/internal/offline"
	"timd/internal/pushvendor"
	"timd/internal/service"
	"timd/internal/store/sqlite"
)

const app = 1400000001

// sender is a recording pushvendor.Sender: addresses in gone answer
// Unregistered, and busy[addr] answers 429 with Retry-After that many
// times first.
type sender struct {
	kind pushvendor.Kind
	mu   sync.Mutex
	sent []string // "task addr"
	gone map[string]bool
	busy map[string]int
}

func (s *sender) Kind() pushvendor.Kind { return s.kind }

func (s *sender) Send(_ context.Context, t pushvendor.Target, n pushvendor.Notification) pushvendor.Result {
	addr := t.Token + t.Endpoint
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone[addr] {
		return pushvendor.Result{Status: 410, Err: fmt.Errorf("gone"), ErrCode: "Unregistered", Unregistered: true}
	}
	if s.busy[addr] > 0 {
		s.busy[addr]--
		return pushvendor.Result{Status: 429, Err: fmt.Errorf("busy"), ErrCode: "TooManyRequests", Retry: true, RetryAfter: 50 * time.Millisecond}
	}
	s.sent = append(s.sent, n.TaskID+" "+addr)
	return pushvendor.Result{Status: 200}
}

func (s *sender) of(task string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, x := range s.sent {
		if len(x) > len(task) && x[:len(task)+1] == task+" " {
			out = append(out, x[len(task)+1:])
		}
	}
	slices.Sort(out)
	return out
}

// live has the ordinals in online connected.
type live struct{ online *roaring.Bitmap }

func (l live) Deliver(_ *im.PushTask, aud *roaring.Bitmap) int {
	return int(roaring.And(aud, l.online).GetCardinality())
}
func (live) Revoke(uint64, string, *roaring.Bitmap) {}
func (l live) Connected(uint64) *roaring.Bitmap     { return l.online.Clone() }

type world struct {
	t       *testing.T
	st      *sqlite.Store
	ord     map[string]uint32
	senders map[pushvendor.Kind]*sender
	engine  *fanout.Engine
	disp    *offline.Dispatcher
	random  uint32
	index   *audience.Index
}

// newWorld: alice (iOS and Android), bob (browser, connected), carol (iOS)
// and a RegistrationID-only kiosk (Android) in one app.
func newWorld(t *testing.T) *world {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	index := audience.New()
	st.SetChangeSink(index)
	w := &world{t: t, st: st, index: index, ord: map[string]uint32{}, senders: map[pushvendor.Kind]*sender{}}
	accts, err := st.ImportAccounts(ctx, app, []im.AccountInput{{UserID: "alice"}, {UserID: "bob"}, {UserID: "carol"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		w.ord[a.ID] = a.Ordinal
	}
	k, err := st.RegisterDevice(ctx, app, im.Device{RegistrationID: "kiosk", Platform: "android"}, im.DeviceLimits{})
	if err != nil {
		t.Fatal(err)
	}
	w.ord["kiosk"] = k.Ordinal
	for _, d := range []im.PushDevice{
		{RegistrationID: "alice-ios", Owner: "alice", Target: w.ord["alice"], Platform: "ios", Vendor: im.VendorAPNs, Token: "a1"},
		{RegistrationID: "alice-android", Owner: "alice", Target: w.ord["alice"], Platform: "android", Vendor: im.VendorFCM, Token: "a2"},
		{RegistrationID: "bob-web", Owner: "bob", Target: w.ord["bob"], Platform: "web", Vendor: im.VendorWebPush, Endpoint: "https://e/b"},
		{RegistrationID: "carol-ios", Owner: "carol", Target: w.ord["carol"], Platform: "ios", Vendor: im.VendorAPNs, Token: "c1"},
		{RegistrationID: "kiosk", Target: w.ord["kiosk"], Platform: "android", Vendor: im.VendorFCM, Token: "k1"},
	} {
		if err := st.PutPushDevice(ctx, app, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, kd := range pushvendor.Kinds {
		w.senders[kd] = &sender{kind: kd, gone: map[string]bool{}, busy: map[string]int{}}
	}
	w.engine = fanout.New(st, live{roaring.BitmapOf(w.ord["bob"])}, fanout.Options{Scan: 20 * time.Millisecond}, nil)
	w.disp = offline.New(st, func(_ uint64, k pushvendor.Kind) pushvendor.Sender { return w.senders[k] },
		offline.Options{Poll: 20 * time.Millisecond, Lease: time.Second}, nil)
	w.engine.SetOutbox(st, w.disp)
	return w
}

func (w *world) push(id string, vendorUntil int64) {
	w.t.Helper()
	aud := roaring.New()
	for _, o := range w.ord {
		aud.Add(o)
	}
	b, _ := aud.ToBytes()
	now := time.Now().Unix()
	w.random++
	_, _, err := w.st.CreateTask(context.Background(), im.PushTask{App: app, ID: id, Kind: im.PushCondition, From: "admin", MsgRandom: w.random,
		Offline: []byte(`{"Title":"T","Desc":"D"}`), CreatedAt: now, ExpiresAt: now + 3600, VendorUntil: vendorUntil,
		Audience: b, Total: int64(aud.GetCardinality()), State: im.TaskPending}, 0, im.TaskLimits{})
	if err != nil {
		w.t.Fatal(err)
	}
	w.engine.Notify(app, id)
}

func (w *world) waitQueue(id string, want int) {
	w.t.Helper()
	waitFor(w.t, func() bool {
		n, err := w.st.OutboxLen(context.Background(), app, id)
		return err == nil && n == want
	})
}

func (w *world) waitDone(id string) {
	w.t.Helper()
	waitFor(w.t, func() bool {
		tk, err := w.st.Task(context.Background(), app, id)
		return err == nil && tk.Finished()
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRouting: live where connected (bob), otherwise every vendor device
// of the recipient, the RegistrationID-only device included; nothing
// through vendors when the task may not (PushFlag 1 / OnlineOnlyFlag 1:
// VendorUntil 0) or no longer (MsgLifeTime over).
func TestRouting(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.engine.Start(ctx)
	defer w.engine.Stop()
	w.disp.Start(ctx)
	defer w.disp.Stop()
	now := time.Now().Unix()
	for _, tc := range []struct {
		name        string
		vendorUntil int64
		apns, fcm   []string
	}{
		{"offline push", now + 3600, []string{"a1", "c1"}, []string{"a2", "k1"}},
		{"PushFlag or OnlineOnlyFlag", 0, nil, nil},
		{"MsgLifeTime over", now - 1, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("t%d", tc.vendorUntil)
			w.push(id, tc.vendorUntil)
			w.waitDone(id)
			w.waitQueue(id, 0)
			if got := w.senders[pushvendor.APNs].of(id); !slices.Equal(got, tc.apns) {
				t.Errorf("APNs got %v, want %v", got, tc.apns)
			}
			if got := w.senders[pushvendor.FCM].of(id); !slices.Equal(got, tc.fcm) {
				t.Errorf("FCM got %v, want %v", got, tc.fcm)
			}
			if got := w.senders[pushvendor.WebPush].of(id); len(got) != 0 {
				t.Errorf("bob is connected, yet Web Push got %v", got)
			}
			res, err := w.st.SendResults(context.Background(), app, id, "", 100)
			if err != nil || len(res) != len(tc.apns)+len(tc.fcm) {
				t.Fatalf("results %+v, %v", res, err)
			}
			for _, r := range res {
				if !r.OK() || r.Status != 200 || r.Account != map[string]string{"alice-ios": "alice", "alice-android": "alice", "carol-ios": "carol", "kiosk": "kiosk"}[r.RegistrationID] {
					t.Errorf("result %+v", r)
				}
			}
		})
	}
}

// TestRevokeBeforeSend: sends queued for a push that is revoked before
// their turn are never sent.
func TestRevokeBeforeSend(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.engine.Start(ctx)
	defer w.engine.Stop()
	w.push("r1", time.Now().Unix()+3600)
	w.waitDone("r1")
	w.waitQueue("r1", 4) // queued, the dispatcher not started
	if err := w.st.RevokeTask(ctx, app, "r1", time.Now().Unix(), nil, im.TaskLimits{}); err != nil {
		t.Fatal(err)
	}
	w.disp.Start(ctx)
	defer w.disp.Stop()
	w.waitQueue("r1", 0)
	w.push("r2", time.Now().Unix()+3600) // the dispatcher is running: r2 goes out
	waitFor(t, func() bool { return len(w.senders[pushvendor.FCM].of("r2")) == 2 })
	for _, s := range w.senders {
		if got := s.of("r1"); len(got) != 0 {
			t.Errorf("%s sent revoked r1 to %v", s.kind, got)
		}
	}
}

// TestUnregisteredAndRetry: a device the vendor says is gone loses its
// token and its loss is recorded with the vendor's code; a 429 is retried
// after Retry-After and then sent once.
func TestUnregisteredAndRetry(t *testing.T) {
	w := newWorld(t)
	w.senders[pushvendor.APNs].gone["c1"] = true
	w.senders[pushvendor.FCM].busy["a2"] = 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.engine.Start(ctx)
	defer w.engine.Stop()
	w.disp.Start(ctx)
	defer w.disp.Stop()
	w.push("u1", time.Now().Unix()+3600)
	w.waitDone("u1")
	w.waitQueue("u1", 0)
	d, err := w.st.PushDevice(ctx, app, "carol-ios")
	if err != nil || d.Token != "" {
		t.Fatalf("carol's device after Unregistered: %+v, %v", d, err)
	}
	if got := w.senders[pushvendor.FCM].of("u1"); !slices.Equal(got, []string{"a2", "k1"}) {
		t.Errorf("FCM sent %v, want a2 once after its retries, and k1", got)
	}
	res, err := w.st.SendResults(ctx, app, "u1", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	for _, r := range res {
		codes[r.RegistrationID] = r.ErrCode
	}
	if codes["carol-ios"] != "Unregistered" || codes["alice-android"] != "" || len(codes) != 4 {
		t.Errorf("result codes %v", codes)
	}
	// The next push skips carol's device: it has no token any more.
	w.push("u2", time.Now().Unix()+3600)
	w.waitDone("u2")
	w.waitQueue("u2", 0)
	if got := w.senders[pushvendor.APNs].of("u2"); !slices.Equal(got, []string{"a1"}) {
		t.Errorf("APNs sent u2 to %v, want a1 only", got)
	}
}

// TestStatsTraceLoss: every vendor result counts in the statistics (per
// PushPlatform), the trace (one instance per device) and the loss report
// (the vendor's own ErrCode).
func TestStatsTraceLoss(t *testing.T) {
	w := newWorld(t)
	w.senders[pushvendor.APNs].gone["c1"] = true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.engine.Start(ctx)
	defer w.engine.Stop()
	w.disp.Start(ctx)
	defer w.disp.Stop()
	w.push("s1", time.Now().Unix()+3600)
	w.waitDone("s1")
	w.waitQueue("s1", 0)
	stats := service.NewStats(w.st, w.index, nil)
	stats.SetSends(w.st)
	res, err := stats.AllMember(ctx, app, service.Window{Start: 1, End: 2}, []string{"s1"})
	if err != nil {
		t.Fatal(err)
	}
	rows := map[int]service.PlatformCounts{}
	for _, p := range res[0].PlatformStatistics {
		if p.PushPlatform != 0 {
			rows[p.PushPlatform] = p
		}
	}
	if a, f := rows[im.VendorAPNs.PushPlatform()], rows[im.VendorFCM.PushPlatform()]; a.TotalCount != 2 || a.SentCount != 1 ||
		f.TotalCount != 2 || f.SentCount != 2 || a.EventType != 1 || len(rows) != 2 {
		t.Errorf("vendor rows %+v", res[0].PlatformStatistics)
	}
	loss, err := stats.AllMemberLoss(ctx, app, service.Window{Start: 1, End: 2}, []string{"s1"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range loss[0].PlatformPostSendDeliveredLoss {
		found = found || l.ErrCode == "Unregistered" && l.ErrCount == 1 && *l.PushPlatform == im.VendorAPNs.PushPlatform()
	}
	if !found {
		t.Errorf("loss %+v lacks the APNs Unregistered", loss[0])
	}
	tr, err := stats.Trace(ctx, app, "s1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(tr) != 3 || tr[1].InstanceID != "alice-android" || tr[1].PushPlatform != im.VendorFCM.PushPlatform() ||
		tr[2].InstanceID != "alice-ios" || tr[2].OfflinePushStat.OfflineStat.PushStatus != 1 {
		t.Errorf("alice's trace %+v", tr)
	}
	tr, err = stats.Trace(ctx, app, "s1", "carol")
	if err != nil || len(tr) != 2 || tr[1].OfflinePushStat.OfflineStat.ErrorInfo != "Unregistered" || tr[1].OfflinePushStat.OfflineStat.PushStatus != -1 {
		t.Errorf("carol's trace %+v, %v", tr, err)
	}
}

// slowSender blocks its send to addr until release is closed, telling
// blocked when it starts; other addresses go to its sender.
type slowSender struct {
	*sender
	addr             string
	blocked, release chan struct{}
}

func (s *slowSender) Send(ctx context.Context, t pushvendor.Target, n pushvendor.Notification) pushvendor.Result {
	if t.Token == s.addr {
		close(s.blocked)
		<-s.release
	}
	return s.sender.Send(ctx, t, n)
}

// TestLongSendKeepsLease: a send that takes several leases (a slow vendor)
// has its lease renewed, so another node polling the same queue never
// claims it and sends it a second time.
func TestLongSendKeepsLease(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.engine.Start(ctx)
	defer w.engine.Stop()
	w.push("l1", time.Now().Unix()+3600)
	w.waitDone("l1")
	w.waitQueue("l1", 4)
	const lease = 4 * time.Second // renewed every 1.3 s: slack for a slow fsync at high load
	slow := &slowSender{sender: w.senders[pushvendor.APNs], addr: "c1", blocked: make(chan struct{}), release: make(chan struct{})}
	first := offline.New(w.st, func(_ uint64, k pushvendor.Kind) pushvendor.Sender {
		if k == pushvendor.APNs {
			return slow
		}
		return w.senders[k]
	}, offline.Options{Owner: "n1", Poll: 20 * time.Millisecond, Lease: lease, Window: 8}, nil)
	first.Start(ctx)
	defer first.Stop()
	<-slow.blocked
	// The other node polls the queue while the send takes 2.5 leases.
	other := &sender{kind: pushvendor.APNs, gone: map[string]bool{}, busy: map[string]int{}}
	second := offline.New(w.st, func(_ uint64, k pushvendor.Kind) pushvendor.Sender {
		if k == pushvendor.APNs {
			return other
		}
		return w.senders[k]
	}, offline.Options{Owner: "n2", Poll: 20 * time.Millisecond, Lease: lease}, nil)
	second.Start(ctx)
	defer second.Stop()
	time.Sleep(lease * 5 / 2)
	close(slow.release)
	w.waitQueue("l1", 0)
	if got := other.of("l1"); len(got) != 0 {
		t.Errorf("the other node sent %v while the first still held the lease", got)
	}
	if got := w.senders[pushvendor.APNs].of("l1"); !slices.Equal(got, []string{"a1", "c1"}) {
		t.Errorf("APNs sent %v, want a1 and c1 once each", got)
	}
}

// TestTraceQueued: the trace shows a recipient's sends still in the queue
// (PushStatus 0, "queued", then "sending" once claimed) before they are
// sent, and their results after.
func TestTraceQueued(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.engine.Start(ctx)
	defer w.engine.Stop()
	w.push("q1", time.Now().Unix()+3600)
	w.waitDone("q1")
	w.waitQueue("q1", 4) // queued, the dispatcher not started
	stats := service.NewStats(w.st, w.index, nil)
	stats.SetSends(w.st)
	offlineStat := func(who string) map[string]string {
		t.Helper()
		tr, err := stats.Trace(ctx, app, "q1", who)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, in := range tr[1:] {
			st := in.OfflinePushStat.OfflineStat
			out[in.InstanceID] = fmt.Sprintf("%d %d %s %s", in.PushPlatform, st.PushStatus, st.ErrorInfo, in.ToAccount)
		}
		return out
	}
	want := map[string]string{"alice-ios": "1 0 queued alice", "alice-android": "2 0 queued alice"}
	if got := offlineStat("alice"); !maps.Equal(got, want) {
		t.Errorf("alice's queued trace %v, want %v", got, want)
	}
	if got := offlineStat("kiosk"); !maps.Equal(got, map[string]string{"kiosk": "2 0 queued kiosk"}) {
		t.Errorf("the kiosk's queued trace %v", got)
	}
	// Claimed by a node and not yet finished: "sending".
	its, err := w.st.ClaimOutbox(ctx, "n1", time.Now().UnixMilli(), time.Now().Add(time.Hour).UnixMilli(), 10)
	if err != nil || len(its) != 4 {
		t.Fatalf("claimed %+v, %v", its, err)
	}
	if got := offlineStat("carol"); !maps.Equal(got, map[string]string{"carol-ios": "1 0 sending carol"}) {
		t.Errorf("carol's trace while sending %v", got)
	}
	for _, it := range its {
		if err := w.st.FinishOutbox(ctx, im.SendResult{App: app, TaskID: "q1", RegistrationID: it.RegistrationID, Status: 200,
			Account: map[string]string{"alice-ios": "alice", "alice-android": "alice", "carol-ios": "carol", "kiosk": "kiosk"}[it.RegistrationID],
			At:      time.Now().Unix()}); err != nil {
			t.Fatal(err)
		}
	}
	if got := offlineStat("alice"); !maps.Equal(got, map[string]string{"alice-ios": "0 1 success alice", "alice-android": "0 1 success alice"}) {
		t.Errorf("alice's trace once sent %v", got)
	}
}
