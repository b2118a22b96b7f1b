package deliver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/coder/websocket"

	"timd/internal/deliver"
	"timd/internal/im"
)

// frameLog reads a connection's frames in order, every type included.
type frameLog struct {
	t      *testing.T
	ws     *websocket.Conn
	frames chan map[string]any
	done   chan struct{}
}

func readFrames(t *testing.T, c *client) *frameLog {
	l := &frameLog{t: t, ws: c.ws, frames: make(chan map[string]any, 1000), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			_, b, err := c.ws.Read(context.Background())
			if err != nil {
				return
			}
			var m map[string]any
			if json.Unmarshal(b, &m) == nil {
				l.frames <- m
			}
		}
	}()
	return l
}

// next returns the next frame, failing after 10 s.
func (l *frameLog) next() map[string]any {
	l.t.Helper()
	select {
	case m := <-l.frames:
		return m
	case <-l.done:
		l.t.Fatal("connection ended while waiting for a frame")
	case <-time.After(10 * time.Second):
		l.t.Fatal("no frame within 10 s")
	}
	return nil
}

// upToPong sends a ping and returns the frames received before its pong:
// everything queued for the connection before the ping has arrived.
func (l *frameLog) upToPong() []map[string]any {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.ws.Write(ctx, websocket.MessageText, []byte(`{"Type":"ping"}`)); err != nil {
		l.t.Fatal(err)
	}
	var seen []map[string]any
	for {
		m := l.next()
		if m["Type"] == deliver.TypePong {
			return seen
		}
		seen = append(seen, m)
	}
}

// describe renders frames as "push s1", "pushes s1,s2", "caughtup 7", …
// for comparison.
func describe(frames []map[string]any) []string {
	var out []string
	for _, f := range frames {
		switch f["Type"] {
		case deliver.TypePush:
			out = append(out, fmt.Sprint("push ", f["TaskId"]))
		case deliver.TypeCaughtUp:
			out = append(out, fmt.Sprint("caughtup ", f["Seq"]))
		case deliver.TypePushes:
			var ids []string
			for _, p := range f["Pushes"].([]any) {
				ids = append(ids, fmt.Sprint(p.(map[string]any)["TaskId"]))
			}
			out = append(out, "pushes "+strings.Join(ids, ","))
		default:
			out = append(out, fmt.Sprint(f["Type"]))
		}
	}
	return out
}

// holdShortPage installs hooks on h that hold account id's catch-up once,
// when it has read a page shorter than a full one (the store's head, as it
// was), until release is closed; held is closed when it holds. rereads
// counts the catch-ups that read on because of a noted live push.
func holdShortPage(h *harness, id string, full int) (held, release chan struct{}, rereads *atomic.Int32) {
	held, release, rereads = make(chan struct{}), make(chan struct{}), new(atomic.Int32)
	var once sync.Once
	deliver.SetCatchUpHooks(h.hub, func(acct string, _ int64, n int) {
		if acct == id && n < full {
			once.Do(func() {
				close(held)
				<-release
			})
		}
	}, func(acct string) {
		if acct == id {
			rereads.Add(1)
		}
	})
	h.t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return held, release, rereads
}

// TestPushFannedOutDuringCatchUpArrivesOnceInSeqOrder is issue 10's
// ordering invariant. A client's catch-up is held after it read the
// store's head (s3 not yet sent); meanwhile p4 is stored and fanned out to
// the client live. p4 must not overtake s3 (a client resuming from the
// highest Seq it saw would skip s3 for good), must not be lost although the
// held read never saw it, and must arrive once. An online-only push, which
// no catch-up can find, is written at once.
func TestPushFannedOutDuringCatchUpArrivesOnceInSeqOrder(t *testing.T) {
	h := newHarness(t, deliver.Options{CatchUpPage: 2})
	held, release, rereads := holdShortPage(h, "alice", 2)
	for _, id := range []string{"s1", "s2", "s3"} {
		h.tasks.Add(pushTask(id), 1)
	}
	l := readFrames(t, h.dialRaw("alice", 1, "", false))
	<-held // s1 and s2 are written; the page [s3] is read, not sent

	aud := roaring.BitmapOf(1)
	p4 := h.tasks.Add(pushTask("p4"), 1)
	if n := h.hub.Deliver(&p4, aud); n != 1 {
		t.Fatalf("Deliver(p4) reached %d, want 1 (the connection catching up takes it)", n)
	}
	o1 := pushTask("o1")
	o1.OnlineOnly = true
	o1 = h.tasks.Add(o1, 1)
	h.hub.Deliver(&o1, aud)
	if got, want := describe(l.upToPong()), []string{"push s1", "push s2", "push o1"}; !slices.Equal(got, want) {
		t.Fatalf("while catch-up is held the client got %v, want %v (p4 held for the catch-up)", got, want)
	}

	close(release)
	var got []map[string]any
	for len(got) < 3 {
		got = append(got, l.next())
	}
	if d, want := describe(got), []string{"push s3", "push p4", fmt.Sprint("caughtup ", p4.Seq)}; !slices.Equal(d, want) {
		t.Fatalf("after the release the client got %v, want %v", d, want)
	}
	if n := rereads.Load(); n != 1 {
		t.Fatalf("catch-up read on %d times for the noted p4, want 1", n)
	}

	// Live now: p4 is not written again; a new push comes live.
	h.hub.Deliver(&p4, aud)
	p5 := h.tasks.Add(pushTask("p5"), 1)
	h.hub.Deliver(&p5, aud)
	if d, want := describe(l.upToPong()), []string{"push p5"}; !slices.Equal(d, want) {
		t.Fatalf("once live the client got %v, want %v", d, want)
	}
}

// TestNotedPushAlreadyReadNeedsNoReread: a live push whose Seq the
// catch-up has already read past (it was stored before the read, and its
// fan-out reaches the connection late) is sent by the catch-up itself;
// noting it does not make the catch-up read the store again.
func TestNotedPushAlreadyReadNeedsNoReread(t *testing.T) {
	h := newHarness(t, deliver.Options{CatchUpPage: 2})
	held, release, rereads := holdShortPage(h, "alice", 2)
	s1 := h.tasks.Add(pushTask("s1"), 1)
	l := readFrames(t, h.dialRaw("alice", 1, "", false))
	<-held // the page [s1] is read, not sent
	h.hub.Deliver(&s1, roaring.BitmapOf(1))
	close(release)
	got := []map[string]any{l.next(), l.next()}
	if d, want := describe(got), []string{"push s1", fmt.Sprint("caughtup ", s1.Seq)}; !slices.Equal(d, want) {
		t.Fatalf("client got %v, want %v", d, want)
	}
	if d := describe(l.upToPong()); len(d) != 0 {
		t.Fatalf("then %v, want nothing more", d)
	}
	if n := rereads.Load(); n != 0 {
		t.Fatalf("catch-up read on %d times, want 0", n)
	}
}

// TestResyncDuringCatchUpReadsAfresh: a cluster resync (a lost fan-out
// event) reaching a connection still in its catch-up makes that catch-up
// read the store afresh before it goes live, so the push whose event was
// lost arrives, in Seq order, and no second catch-up runs beside it.
func TestResyncDuringCatchUpReadsAfresh(t *testing.T) {
	h := newHarness(t, deliver.Options{CatchUpPage: 2})
	held, release, rereads := holdShortPage(h, "alice", 2)
	h.tasks.Add(pushTask("s1"), 1)
	l := readFrames(t, h.dialRaw("alice", 1, "", false))
	<-held
	lost := h.tasks.Add(pushTask("lost"), 1) // stored; its live event never comes
	h.hub.Resync(testApp)
	close(release)
	got := []map[string]any{l.next(), l.next(), l.next()}
	if d, want := describe(got), []string{"push s1", "push lost", fmt.Sprint("caughtup ", lost.Seq)}; !slices.Equal(d, want) {
		t.Fatalf("client got %v, want %v", d, want)
	}
	if d := describe(l.upToPong()); len(d) != 0 {
		t.Fatalf("then %v, want nothing more", d)
	}
	if n := rereads.Load(); n != 1 {
		t.Fatalf("catch-up read on %d times, want 1", n)
	}
}

// TestFirstHeartbeatAfterCatchUpWaitsAFullInterval: a client that said
// nothing while its catch-up waited (here: it never answers anything) is
// not pinged the moment the catch-up ends, when the storm that made it
// wait is still on, but a full PingInterval later; then the heartbeat
// applies and closes it.
func TestFirstHeartbeatAfterCatchUpWaitsAFullInterval(t *testing.T) {
	const interval, pong = 600 * time.Millisecond, 100 * time.Millisecond
	h := newHarness(t, deliver.Options{PingInterval: interval, PongTimeout: pong, CloseGrace: 50 * time.Millisecond})
	held, release, _ := holdShortPage(h, "mute", 100)
	h.dialRaw("mute", 1, "", false) // reads nothing, so answers no ping
	<-held
	// Several ping rounds pass while the catch-up waits: the client is
	// silent all along, and not closed for it.
	time.Sleep(interval * 3 / 2)
	if n := h.hub.Stats().HeartbeatTimeouts; n != 0 {
		t.Fatalf("closed while its catch-up waited (%d heartbeat timeouts)", n)
	}
	released := time.Now()
	close(release)
	waitFor(t, "the heartbeat to close the silent client", func() bool { return h.hub.Stats().HeartbeatTimeouts == 1 })
	// The catch-up ended after the release, and the ping is due a full
	// interval after that and fails PongTimeout later: load can only make
	// this longer.
	if took := time.Since(released); took < interval+pong {
		t.Fatalf("closed %v after its catch-up ended, want at least PingInterval + PongTimeout = %v", took, interval+pong)
	}
}

// TestPushNotedAtTheHeadIsReadAfresh: the catch-up found nothing after
// since (an empty page at the head) and is held; a push stored and fanned
// out then is noted, and the catch-up must read the same position again
// from the store, not reuse the shared read that missed it.
func TestPushNotedAtTheHeadIsReadAfresh(t *testing.T) {
	h := newHarness(t, deliver.Options{CatchUpPage: 2})
	held, release, rereads := holdShortPage(h, "alice", 2)
	s1 := h.tasks.Add(pushTask("s1"), 1)
	l := readFrames(t, h.dialRaw("alice", 1, "since="+itoa(s1.Seq), false))
	<-held // the page after s1 is read, empty
	p2 := h.tasks.Add(pushTask("p2"), 1)
	h.hub.Deliver(&p2, roaring.BitmapOf(1))
	close(release)
	got := []map[string]any{l.next(), l.next()}
	if d, want := describe(got), []string{"push p2", fmt.Sprint("caughtup ", p2.Seq)}; !slices.Equal(d, want) {
		t.Fatalf("client got %v, want %v", d, want)
	}
	if n := rereads.Load(); n != 1 {
		t.Fatalf("catch-up read on %d times, want 1", n)
	}
}

// TestPushUpToSinceIsNotHeldByCatchUp: a client that resumed from a Seq
// past a push still fanning out to it (as one resuming from the highest
// Seq it saw would) gets that push live as it comes, though its catch-up
// is held: catch-up covers only what follows since, and noting the push
// would lose it.
func TestPushUpToSinceIsNotHeldByCatchUp(t *testing.T) {
	h := newHarness(t, deliver.Options{CatchUpPage: 2})
	held, release, _ := holdShortPage(h, "alice", 2)
	slow := h.tasks.Add(pushTask("slow"), 1)
	fast := h.tasks.Add(pushTask("fast"), 1)
	l := readFrames(t, h.dialRaw("alice", 1, "since="+itoa(fast.Seq), false))
	<-held
	h.hub.Deliver(&slow, roaring.BitmapOf(1))
	if d, want := describe(l.upToPong()), []string{"push slow"}; !slices.Equal(d, want) {
		t.Fatalf("while catch-up is held the client got %v, want %v", d, want)
	}
	close(release)
	if d, want := describe([]map[string]any{l.next()}), []string{fmt.Sprint("caughtup ", fast.Seq)}; !slices.Equal(d, want) {
		t.Fatalf("then %v, want %v", d, want)
	}
}

// TestCatchUpReadsAreShared: connections that register one after another
// while no stored push is fanned out share one read of the store's heads
// (within the read cache's second), however many there are.
func TestCatchUpReadsAreShared(t *testing.T) {
	h := newHarness(t, deliver.Options{})
	for _, id := range []string{"s1", "s2"} {
		h.tasks.Add(pushTask(id), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	}
	before := h.tasks.HeadReads()
	for i := range 10 {
		l := readFrames(t, h.dialRaw(fmt.Sprint("u", i), uint32(i+1), "", false))
		var got []map[string]any
		for len(got) < 3 {
			got = append(got, l.next())
		}
		if d := describe(got); !slices.Equal(d[:2], []string{"push s1", "push s2"}) {
			t.Fatalf("client %d got %v", i, d)
		}
	}
	if n := h.tasks.HeadReads() - before; n != 1 {
		t.Fatalf("%d reads of the store's heads for 10 connections in a row, want 1", n)
	}
}

// TestCatchUpReadNotReusedAcrossFanOut: a read that started before a
// stored push was fanned out may lack it, so a connection that registers
// after that fan-out (which therefore never noted the push for it) must
// not reuse the read. Here alice's read finds only s1 and stays fresh in
// the read cache; p2 is stored and fanned out (to alice, not yet to bob);
// bob then connects and must get p2 from a read of its own. Likewise after
// a revoke, a connection must not be sent the revoked push from an older
// read.
func TestCatchUpReadNotReusedAcrossFanOut(t *testing.T) {
	h := newHarness(t, deliver.Options{})
	held, release, _ := holdShortPage(h, "alice", 100)
	h.tasks.Add(pushTask("s1"), 1, 2, 3, 4)
	la := readFrames(t, h.dialRaw("alice", 1, "", false))
	<-held // alice's read [s1] is done and cached
	p2 := h.tasks.Add(pushTask("p2"), 1, 2, 3, 4)
	h.hub.Deliver(&p2, roaring.BitmapOf(1, 2, 3, 4))
	lb := readFrames(t, h.dialRaw("bob", 2, "", false))
	var got []map[string]any
	for len(got) < 3 {
		got = append(got, lb.next())
	}
	if d, want := describe(got), []string{"push s1", "push p2", fmt.Sprint("caughtup ", p2.Seq)}; !slices.Equal(d, want) {
		t.Fatalf("bob, connecting after p2's fan-out, got %v, want %v", d, want)
	}
	close(release)
	got = nil
	for len(got) < 3 {
		got = append(got, la.next())
	}
	if d, want := describe(got), []string{"push s1", "push p2", fmt.Sprint("caughtup ", p2.Seq)}; !slices.Equal(d, want) {
		t.Fatalf("alice got %v, want %v", d, want)
	}

	// A revoke between a read and a registration: carol's read (with
	// p2) is cached; p2 is revoked; dave must read afresh and not get p2.
	held2, release2, _ := holdShortPage(h, "carol", 100)
	lc := readFrames(t, h.dialRaw("carol", 3, "", false))
	<-held2
	if err := h.tasks.RevokeTask(context.Background(), testApp, "p2", time.Now().Unix(), nil, im.TaskLimits{}); err != nil {
		t.Fatal(err)
	}
	h.hub.Revoke(testApp, "p2", roaring.BitmapOf(1, 2, 3, 4))
	ld := readFrames(t, h.dialRaw("dave", 4, "", false))
	got = nil
	for len(got) < 2 {
		select {
		case m := <-ld.frames:
			got = append(got, m)
		case <-time.After(3 * time.Second):
			t.Fatalf("dave got only %v", describe(got))
		}
	}
	if d := describe(got); d[0] != "push s1" || !strings.HasPrefix(d[1], "caughtup ") {
		t.Fatalf("dave, connecting after p2's revoke, got %v, want s1 then caughtup", d)
	}
	close(release2)
	lc.next()
}
