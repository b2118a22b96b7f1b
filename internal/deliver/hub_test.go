package deliver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"timd/internal/deliver"
	"timd/internal/im"
	"timd/internal/service"
)

var _ service.Presence = (*deliver.Hub)(nil)

func TestDeliverReachesExactlyTheAudience(t *testing.T) {
	h := newHarness(t, deliver.Options{})
	alicePhone := h.dial("alice", 1, "platform=iPhone")
	aliceWeb := h.dial("alice", 1, "")
	bob := h.dial("bob", 2, "")
	carol := h.dial("carol", 3, "")

	task := h.tasks.Add(pushTask("t1"), 1, 2, 99)
	aud := roaring.BitmapOf(1, 2, 99)
	if n := h.hub.Deliver(&task, aud); n != 2 {
		t.Fatalf("Deliver reached %d accounts, want 2 (alice, bob)", n)
	}
	for name, c := range map[string]*client{"alice iPhone": alicePhone, "alice Web": aliceWeb, "bob": bob} {
		got := c.sync()
		if len(got) != 1 {
			t.Fatalf("%s got %d frames, want 1: %v", name, len(got), got)
		}
		f := got[0]
		if f["Type"] != "push" || f["TaskId"] != "t1" || f["From_Account"] != "ops" || f["Seq"] != float64(task.Seq) ||
			f["CreatedAt"] != float64(task.CreatedAt) {
			t.Fatalf("%s: frame %v", name, f)
		}
		if !sameJSON(f["MsgBody"], task.MsgBody) || !sameJSON(f["OfflinePushInfo"], task.Offline) {
			t.Fatalf("%s: frame %v, want MsgBody %s and OfflinePushInfo %s", name, f, task.MsgBody, task.Offline)
		}
	}
	if got := carol.sync(); len(got) != 0 {
		t.Fatalf("carol is not in the audience but got %v", got)
	}

	// An online-only notification push (no MsgBody) is delivered the same way.
	note := im.PushTask{App: testApp, ID: "n1", From: "ops", OnlineOnly: true, Offline: json.RawMessage(`{"Title":"x"}`)}
	if n := h.hub.Deliver(&note, roaring.BitmapOf(3)); n != 1 {
		t.Fatalf("Deliver(n1) = %d, want 1", n)
	}
	got := carol.sync()
	if len(got) != 1 || got[0]["TaskId"] != "n1" || got[0]["MsgBody"] != nil {
		t.Fatalf("carol got %v", got)
	}
	// Another app's push reaches nobody here.
	other := pushTask("o1")
	other.App = testApp + 1
	if n := h.hub.Deliver(&other, roaring.BitmapOf(1, 2, 3)); n != 0 {
		t.Fatalf("other app's Deliver reached %d", n)
	}
}

func TestDeliverLargeAudienceFewConnections(t *testing.T) {
	h := newHarness(t, deliver.Options{})
	c := h.dial("u", 5_000_000, "")
	aud := roaring.New()
	aud.AddRange(0, 10_000_000)
	task := pushTask("big")
	if n := h.hub.Deliver(&task, aud); n != 1 {
		t.Fatalf("Deliver = %d, want 1", n)
	}
	if got := ids(c.sync()); !slices.Equal(got, []string{"big"}) {
		t.Fatalf("got %v", got)
	}
}

func TestAckAndClickAreCheckedAndBatched(t *testing.T) {
	h := newHarness(t, deliver.Options{AckInterval: time.Hour}) // only Stop flushes
	t1 := h.tasks.Add(pushTask("t1"), 1, 2)
	t2 := h.tasks.Add(pushTask("t2"), 2)
	alice := h.dial("alice", 1, "")
	bob := h.dial("bob", 2, "")
	alice.sync()
	bob.sync()
	alice.send(`{"Type":"ack","TaskId":"t1"}`)
	alice.send(`{"Type":"click","TaskId":"t1"}`)
	alice.send(`{"Type":"ack","TaskId":"t2"}`)   // not in t2's audience: ignored
	alice.send(`{"Type":"ack","TaskId":"nope"}`) // unknown: ignored
	bob.send(`{"Type":"ack","TaskId":"t1"}`)
	bob.send(`{"Type":"ack","TaskId":"t1"}`) // repeat: counted once
	bob.send(`{"Type":"click","TaskId":"t2"}`)
	alice.sync()
	bob.sync()
	if n := h.tasks.RecordCalls(); n != 0 {
		t.Fatalf("RecordAcks called %d times before the flush", n)
	}
	h.hub.Stop()
	if n := h.tasks.RecordCalls(); n != 2 {
		t.Fatalf("RecordAcks called %d times, want one per task (2)", n)
	}
	want := map[string]im.TaskCounts{
		t1.ID: {Total: 2, Delivered: 2, Clicked: 1},
		t2.ID: {Total: 1, Delivered: 1, Clicked: 1},
	}
	for id, w := range want {
		got, err := h.tasks.Counts(context.Background(), testApp, id)
		if err != nil || got != w {
			t.Fatalf("Counts(%s) = %+v, %v; want %+v", id, got, err, w)
		}
	}
	if s := h.hub.Stats(); s.AcksRecorded != 5 {
		t.Fatalf("AcksRecorded = %d, want 5", s.AcksRecorded)
	}
}

func TestAcksFlushPeriodically(t *testing.T) {
	h := newHarness(t, deliver.Options{AckInterval: 20 * time.Millisecond})
	task := h.tasks.Add(pushTask("t1"), 1)
	c := h.dial("alice", 1, "")
	c.sync()
	c.send(`{"Type":"ack","TaskId":"t1"}`)
	waitFor(t, "ack recorded", func() bool {
		n, _ := h.tasks.Counts(context.Background(), testApp, task.ID)
		return n.Delivered == 1
	})
}

// TestAckWriteFailureIsRetried: acks whose write fails are kept and
// written by a later flush, merged with acks that arrived meanwhile; only
// the final flush at Stop gives up on them.
func TestAckWriteFailureIsRetried(t *testing.T) {
	h := newHarness(t, deliver.Options{AckInterval: 20 * time.Millisecond})
	task := h.tasks.Add(pushTask("t1"), 1, 2)
	h.tasks.FailAcks(3, errBoom)
	alice := h.dial("alice", 1, "")
	bob := h.dial("bob", 2, "")
	alice.send(`{"Type":"click","TaskId":"t1"}`)
	alice.sync()
	waitFor(t, "a failed ack write", func() bool { return h.tasks.RecordCalls() >= 1 })
	bob.send(`{"Type":"ack","TaskId":"t1"}`)
	bob.sync()
	waitFor(t, "acks written after the failures", func() bool {
		n, _ := h.tasks.Counts(context.Background(), testApp, task.ID)
		return n.Delivered == 2
	})
	if n, _ := h.tasks.Counts(context.Background(), testApp, task.ID); n != (im.TaskCounts{Total: 2, Delivered: 2, Clicked: 1}) {
		t.Fatalf("Counts = %+v", n)
	}
	if n := h.tasks.RecordCalls(); n < 4 {
		t.Fatalf("RecordAcks called %d times, want 3 failures and a success", n)
	}
	// The counter moves just after the write returns, so the counts can be
	// seen a moment before it; wait for it, then check it went no further.
	waitFor(t, "acks counted", func() bool { return h.hub.Stats().AcksRecorded >= 3 })
	h.hub.Stop()
	if s := h.hub.Stats(); s.AcksRecorded != 3 {
		t.Fatalf("AcksRecorded = %d, want 3 (2 delivered, 1 clicked)", s.AcksRecorded)
	}
}

// TestFinalAckFlushFailureGivesUp: a failed write at Stop is not retried
// (the hub is going away), and Stop returns.
func TestFinalAckFlushFailureGivesUp(t *testing.T) {
	h := newHarness(t, deliver.Options{AckInterval: time.Hour}) // only Stop flushes
	task := h.tasks.Add(pushTask("t1"), 1)
	h.tasks.FailAcks(1, errBoom)
	c := h.dial("alice", 1, "")
	c.send(`{"Type":"ack","TaskId":"t1"}`)
	c.sync()
	h.hub.Stop()
	if n := h.tasks.RecordCalls(); n != 1 {
		t.Fatalf("RecordAcks called %d times at Stop, want 1", n)
	}
	if n, _ := h.tasks.Counts(context.Background(), testApp, task.ID); n.Delivered != 0 {
		t.Fatalf("Counts = %+v after a failed final flush", n)
	}
}

// TestAckedPushesNeedNoAudience: catch-up reads a task's acknowledgements
// before its audience, so a reconnect (after a restart: the caches are
// empty) reads no audience of a push the account has acknowledged, and
// the audience of one it has not exactly once.
func TestAckedPushesNeedNoAudience(t *testing.T) {
	h := newHarness(t, deliver.Options{})
	ctx := context.Background()
	seen := h.tasks.Add(pushTask("seen"), 1, 2)
	h.tasks.Add(pushTask("new"), 1, 2)
	if err := h.tasks.RecordAcks(ctx, testApp, seen.ID, []uint32{1}, nil); err != nil {
		t.Fatal(err)
	}
	alice := h.dial("alice", 1, "")
	if got := alice.next()["TaskId"]; got != "new" {
		t.Fatalf("alice caught up %v, want new", got)
	}
	alice.none(100 * time.Millisecond)
	if s, n := h.tasks.AudienceReads("seen"), h.tasks.AudienceReads("new"); s != 0 || n != 1 {
		t.Fatalf("audience reads: %d of the acknowledged push, %d of the other; want 0 and 1", s, n)
	}
	// Bob has acknowledged neither: both audiences are read, "new" from
	// the cache.
	bob := h.dial("bob", 2, "")
	var got []string
	for range 2 {
		got = append(got, bob.next()["TaskId"].(string))
	}
	if !slices.Equal(got, []string{"seen", "new"}) {
		t.Fatalf("bob caught up %v", got)
	}
	if s, n := h.tasks.AudienceReads("seen"), h.tasks.AudienceReads("new"); s != 1 || n != 1 {
		t.Fatalf("audience reads after bob: %d and %d, want 1 and 1", s, n)
	}
}

func TestCatchUpSendsUnackedStoredPushes(t *testing.T) {
	h := newHarness(t, deliver.Options{AckInterval: 10 * time.Millisecond, CatchUpPage: 2})
	ctx := context.Background()
	h.tasks.Add(pushTask("s1"), 1)
	acked := h.tasks.Add(pushTask("s2"), 1)
	if err := h.tasks.RecordAcks(ctx, testApp, acked.ID, []uint32{1}, nil); err != nil {
		t.Fatal(err)
	}
	h.tasks.Add(pushTask("other"), 2) // another account's
	online := pushTask("online")
	online.OnlineOnly = true
	h.tasks.Add(online, 1) // never stored
	h.tasks.Add(pushTask("revoked"), 1)
	if err := h.tasks.RevokeTask(ctx, testApp, "revoked", time.Now().Unix(), nil, im.TaskLimits{}); err != nil {
		t.Fatal(err)
	}
	expired := pushTask("expired")
	expired.ExpiresAt = time.Now().Add(-time.Second).Unix()
	h.tasks.Add(expired, 1)
	s3 := h.tasks.Add(pushTask("s3"), 1, 2)
	h.tasks.Add(pushTask("s4"), 1)

	c := h.dial("alice", 1, "")
	var got []string
	for range 3 {
		got = append(got, c.next()["TaskId"].(string))
	}
	c.none(200 * time.Millisecond)
	if want := []string{"s1", "s3", "s4"}; !slices.Equal(got, want) {
		t.Fatalf("catch-up sent %v, want %v", got, want)
	}

	// After acknowledging s1 and s3, a reconnect catches up s4 only.
	c.send(`{"Type":"ack","TaskId":"s1"}`)
	c.send(`{"Type":"ack","TaskId":"s3"}`)
	c.sync()
	waitFor(t, "acks recorded", func() bool {
		n, _ := h.tasks.Counts(ctx, testApp, s3.ID)
		return n.Delivered == 1
	})
	c2 := h.dial("alice", 1, "platform=Android")
	if got := c2.next()["TaskId"]; got != "s4" {
		t.Fatalf("reconnect caught up %v, want s4", got)
	}
	c2.none(200 * time.Millisecond)

	// since skips what the client already has.
	c3 := h.dial("alice", 1, "since="+itoa(s3.Seq))
	if got := c3.next()["TaskId"]; got != "s4" {
		t.Fatalf("since=%d caught up %v", s3.Seq, got)
	}
	c3.none(100 * time.Millisecond)
}

// TestCatchUpWaitsOutStoreFailure: while the store fails, a connecting
// client is kept open (it answers pings) and catch-up retries; once the
// store answers, the client gets its stored pushes.
func TestCatchUpWaitsOutStoreFailure(t *testing.T) {
	h := newHarness(t, deliver.Options{})
	h.tasks.Add(pushTask("s1"), 1)
	h.tasks.SetFail(errBoom)
	c := h.dial("alice", 1, "")
	c.none(300 * time.Millisecond)
	c.sync() // still open and served
	if n := h.hub.Stats().CatchUpRetries; n == 0 {
		t.Fatal("no retry counted while the store failed")
	}
	h.tasks.SetFail(nil)
	if got := c.next()["TaskId"]; got != "s1" {
		t.Fatalf("after the store recovered caught up %v, want s1", got)
	}
}

func TestRevokeFrame(t *testing.T) {
	h := newHarness(t, deliver.Options{})
	alice := h.dial("alice", 1, "")
	bob := h.dial("bob", 2, "")
	h.hub.Revoke(testApp, "t9", roaring.BitmapOf(1))
	got := alice.sync()
	if len(got) != 1 || !reflect.DeepEqual(got[0], map[string]any{"Type": "revoke", "TaskId": "t9"}) {
		t.Fatalf("alice got %v", got)
	}
	if got := bob.sync(); len(got) != 0 {
		t.Fatalf("bob got %v", got)
	}
}

func TestKickClosesEveryConnectionOfTheUser(t *testing.T) {
	h := newHarness(t, deliver.Options{})
	a1 := h.dial("alice", 1, "platform=iPhone")
	a2 := h.dial("alice", 1, "")
	bob := h.dial("bob", 2, "")
	h.hub.Kick(testApp, "alice")
	for _, c := range []*client{a1, a2} {
		if code := c.closed(); code != deliver.StatusKicked {
			t.Fatalf("close status %v, want %v", code, deliver.StatusKicked)
		}
	}
	if got := h.hub.Online(testApp, []string{"alice", "bob"}); !reflect.DeepEqual(got, map[string][]string{"bob": {"Web"}}) {
		t.Fatalf("Online after kick = %v", got)
	}
	bob.sync()
	waitFor(t, "kicked connections gone", func() bool { return h.hub.Stats().Connections == 1 })

	// A connection that authenticated before the kick (its account's
	// KickedAt predates it) is refused; one after a new kick time is not.
	late := h.dialRaw("alice", 1, "kicked=0", true)
	if code := late.closed(); code != deliver.StatusKicked {
		t.Fatalf("late connection: status %v, want 4001", code)
	}
	fresh := h.dial("alice", 1, "kicked="+itoa(time.Now().Unix()))
	fresh.sync()
}

func TestOnlineListsPlatformsPerConnection(t *testing.T) {
	h := newHarness(t, deliver.Options{})
	if got := h.hub.Online(testApp, []string{"alice"}); len(got) != 0 {
		t.Fatalf("Online with nobody connected = %v", got)
	}
	h.dial("alice", 1, "platform=iPhone")
	h.dial("alice", 1, "")
	h.dial("bob", 2, "platform=Android")
	got := h.hub.Online(testApp, []string{"alice", "bob", "carol"})
	slices.Sort(got["alice"])
	want := map[string][]string{"alice": {"Web", "iPhone"}, "bob": {"Android"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Online = %v, want %v", got, want)
	}
	if got := h.hub.Online(testApp+1, []string{"alice"}); len(got) != 0 {
		t.Fatalf("other app sees %v", got)
	}
}

func TestSlowClientIsCutOffAndDeliverNeverBlocks(t *testing.T) {
	h := newHarness(t, deliver.Options{QueueSize: 16, CloseGrace: 100 * time.Millisecond})
	h.dialRaw("stalled", 1, "", false) // never reads
	waitFor(t, "registered", func() bool { return h.hub.Stats().Connections == 1 })
	task := pushTask("big")
	task.MsgBody = json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"` + strings.Repeat("x", 8000) + `"}}]`)
	aud := roaring.BitmapOf(1)
	var slowest time.Duration
	for i := range 5000 {
		start := time.Now()
		each := task // distinct TaskIds: a connection is written each push once
		each.ID = fmt.Sprint("big", i)
		h.hub.Deliver(&each, aud)
		slowest = max(slowest, time.Since(start))
	}
	// A blocked Deliver would wait for WriteTimeout (10 s); a generous
	// bound still tells the two apart.
	if slowest > time.Second {
		t.Fatalf("slowest Deliver took %v", slowest)
	}
	if s := h.hub.Stats(); s.SlowDrops != 1 {
		t.Fatalf("SlowDrops = %d, want 1", s.SlowDrops)
	}
	waitFor(t, "stalled connection torn down", func() bool { return h.hub.Stats().Connections == 0 })
	if got := h.hub.Online(testApp, []string{"stalled"}); len(got) != 0 {
		t.Fatalf("stalled still online: %v", got)
	}
	// The hub still serves a healthy client.
	ok := h.dial("healthy", 2, "")
	h.hub.Deliver(&task, roaring.BitmapOf(2))
	if got := ids(ok.sync()); !slices.Equal(got, []string{"big"}) {
		t.Fatalf("healthy client got %v", got)
	}
}

// TestHeartbeatSparesAClientThatTalks: a client that does not answer
// pings in time (here: reads nothing) but keeps sending frames is alive,
// as a client deep in a long catch-up on a loaded machine is; it is not
// closed. Once it falls silent, it is.
func TestHeartbeatSparesAClientThatTalks(t *testing.T) {
	// The pong timeout is 50 times the client's pause between frames, so
	// that a loaded machine (CI saw a 50 ms timeout missed) cannot starve
	// the client for a whole round; 3 s still spans about six rounds.
	h := newHarness(t, deliver.Options{PingInterval: 30 * time.Millisecond, PongTimeout: 500 * time.Millisecond,
		CloseGrace: 50 * time.Millisecond})
	c := h.dialRaw("busy", 1, "", false)
	for range 300 {
		c.send(`{"Type":"ack","TaskId":"none"}`)
		time.Sleep(10 * time.Millisecond)
	}
	if n := h.hub.Stats().HeartbeatTimeouts; n != 0 {
		t.Fatalf("%d heartbeat timeouts for a client that kept talking", n)
	}
	waitFor(t, "silent client closed", func() bool { return h.hub.Stats().HeartbeatTimeouts == 1 })
}

func TestHeartbeatTimeoutClosesUnresponsiveConnection(t *testing.T) {
	// A pong timeout of 2 s, not 50 ms: at load 45 the "alive" client's
	// reader missed 50 ms and was closed too.
	h := newHarness(t, deliver.Options{PingInterval: 30 * time.Millisecond, PongTimeout: 2 * time.Second,
		CloseGrace: 50 * time.Millisecond})
	alive := h.dial("alive", 1, "") // its reader answers pings
	h.dialRaw("mute", 2, "", false) // never reads, so never answers
	waitFor(t, "mute connection closed", func() bool { return h.hub.Stats().HeartbeatTimeouts >= 1 })
	waitFor(t, "mute connection gone", func() bool { return h.hub.Stats().Connections == 1 })
	time.Sleep(200 * time.Millisecond) // several more ping rounds
	if got := h.hub.Online(testApp, []string{"alive", "mute"}); !reflect.DeepEqual(got, map[string][]string{"alive": {"Web"}}) {
		t.Fatalf("Online = %v", got)
	}
	alive.sync()
}

func TestClientFrames(t *testing.T) {
	h := newHarness(t, deliver.Options{})
	c := h.dial("alice", 1, "")
	c.send(`{"Type":"ping"}`)
	if f := c.next(); !reflect.DeepEqual(f, map[string]any{"Type": "pong"}) {
		t.Fatalf("ping answered %v", f)
	}
	c.send(`{"Type":"ping","TaskId":"x","Extra":[1,2]}`) // unknown fields are ignored
	c.sync()
	for _, tc := range []struct {
		name  string
		frame func(*client)
		code  websocket.StatusCode
	}{
		{"oversize", func(c *client) { c.send(`{"Type":"ping","Pad":"` + strings.Repeat("x", 17000) + `"}`) }, websocket.StatusMessageTooBig},
		{"not JSON", func(c *client) { c.send(`hello`) }, websocket.StatusPolicyViolation},
		{"unknown type", func(c *client) { c.send(`{"Type":"subscribe"}`) }, websocket.StatusPolicyViolation},
		{"ack without TaskId", func(c *client) { c.send(`{"Type":"ack"}`) }, websocket.StatusPolicyViolation},
		{"binary", func(c *client) {
			_ = c.ws.Write(context.Background(), websocket.MessageBinary, []byte(`{"Type":"ping"}`))
		}, websocket.StatusUnsupportedData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newHarness(t, deliver.Options{}).dial("bob", 2, "")
			tc.frame(c)
			if code := c.closed(); code != tc.code {
				t.Fatalf("close status %v, want %v", code, tc.code)
			}
		})
	}
}

func TestFrameRateLimitSlowsTheReader(t *testing.T) {
	h := newHarness(t, deliver.Options{FrameRate: 50, FrameBurst: 1})
	c := h.dial("alice", 1, "") // its ping took the one token
	start := time.Now()
	for range 10 {
		c.send(`{"Type":"ping"}`)
	}
	for range 10 {
		if f := c.next(); f["Type"] != "pong" {
			t.Fatalf("got %v", f)
		}
	}
	// Ten frames at 50/s cannot be read in less than ~200 ms.
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("10 frames read in %v despite a 50/s limit", d)
	}
	c.sync() // still connected
}

func TestStopClosesConnectionsAndRefusesNewOnes(t *testing.T) {
	h := newHarness(t, deliver.Options{})
	c := h.dial("alice", 1, "")
	h.hub.Stop()
	if code := c.closed(); code != websocket.StatusGoingAway {
		t.Fatalf("close status %v, want 1001", code)
	}
	late := h.dialRaw("bob", 2, "", true)
	if code := late.closed(); code != websocket.StatusGoingAway {
		t.Fatalf("after Stop: status %v, want 1001", code)
	}
	if s := h.hub.Stats(); s.Connections != 0 {
		t.Fatalf("Connections = %d", s.Connections)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, deliver.Options{Registerer: reg})
	c := h.dial("alice", 1, "")
	c.sync()
	gather := func() map[string]float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			m := mf.GetMetric()[0]
			if m.GetGauge() != nil {
				got[mf.GetName()] = m.GetGauge().GetValue()
			} else {
				got[mf.GetName()] = m.GetCounter().GetValue()
			}
		}
		return got
	}
	// A frame is counted once its write returns, which may be just after
	// the client read it.
	var got map[string]float64
	waitFor(t, "two pongs counted", func() bool {
		got = gather()
		return got["timd_deliver_frames_sent_total"] == 3 // caughtup, and two pongs: dial and sync
	})
	if got["timd_deliver_connections"] != 1 {
		t.Fatalf("metrics %v", got)
	}
	for _, name := range []string{"timd_deliver_slow_consumer_drops_total", "timd_deliver_heartbeat_timeouts_total", "timd_deliver_acks_recorded_total",
		"timd_deliver_catchup_retries_total"} {
		if _, ok := got[name]; !ok {
			t.Fatalf("metric %s missing from %v", name, got)
		}
	}
}

// sameJSON reports whether decoded frame field v equals raw JSON want.
func sameJSON(v any, want json.RawMessage) bool {
	var w any
	if err := json.Unmarshal(want, &w); err != nil {
		return false
	}
	return reflect.DeepEqual(v, w)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestEveryStoredPushArrivesWhileConnecting connects clients while pushes
// are being stored and delivered: whether a push is delivered before,
// during or after a client's catch-up, the client gets it at least once.
func TestEveryStoredPushArrivesWhileConnecting(t *testing.T) {
	h := newHarness(t, deliver.Options{CatchUpPage: 7})
	const clients, pushes = 12, 150
	aud := roaring.New()
	aud.AddRange(1, clients+1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range pushes {
			task := h.tasks.Add(pushTask(fmt.Sprint("p", i)), aud.ToArray()...)
			h.hub.Deliver(&task, aud)
			if i%10 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	var cs []*client
	for i := range clients {
		cs = append(cs, h.dial(fmt.Sprint("u", i), uint32(i+1), ""))
		time.Sleep(time.Duration(i) * time.Millisecond)
	}
	<-done
	for i, c := range cs {
		seen := map[string]bool{}
		for _, f := range c.sync() {
			seen[f["TaskId"].(string)] = true
		}
		for len(seen) < pushes { // catch-up frames may still be on the way
			seen[c.next()["TaskId"].(string)] = true
		}
		for p := range pushes {
			if !seen[fmt.Sprint("p", p)] {
				t.Fatalf("client %d never got p%d", i, p)
			}
		}
	}
}

// TestPushReachesAConnectionOnce: a stored push that a connection got by
// catch-up is not written to it again by a live pass of the same task (a
// fan-out resumed after a restart while the client reconnects), nor twice
// by two live passes; another connection of the same account still gets
// it, and a revoke frame is never held back.
func TestPushReachesAConnectionOnce(t *testing.T) {
	h := newHarness(t, deliver.Options{})
	task := h.tasks.Add(pushTask("s1"), 1)
	c := h.dial("alice", 1, "")
	if got := c.next()["TaskId"]; got != "s1" {
		t.Fatalf("catch-up sent %v, want s1", got)
	}
	aud := roaring.BitmapOf(1)
	if n := h.hub.Deliver(&task, aud); n != 1 {
		t.Fatalf("Deliver reached %d, want 1 (alice has it already)", n)
	}
	h.hub.Deliver(&task, aud)
	c.none(200 * time.Millisecond)

	live := pushTask("l1")
	live.OnlineOnly = true
	h.hub.Deliver(&live, aud)
	h.hub.Deliver(&live, aud)
	if got := ids(c.sync()); !slices.Equal(got, []string{"l1"}) {
		t.Fatalf("two live passes of l1 wrote %v, want [l1]", got)
	}
	h.hub.Revoke(testApp, "s1", aud)
	h.hub.Revoke(testApp, "s1", aud)
	if got := c.sync(); len(got) != 2 || got[0]["Type"] != "revoke" || got[1]["Type"] != "revoke" {
		t.Fatalf("two revokes wrote %v, want two revoke frames", got)
	}

	// A second device of alice connects: it gets s1 once, by catch-up.
	c2 := h.dial("alice", 1, "platform=Android")
	if got := c2.next()["TaskId"]; got != "s1" {
		t.Fatalf("second device caught up %v, want s1", got)
	}
	h.hub.Deliver(&task, aud)
	c2.none(200 * time.Millisecond)
}
