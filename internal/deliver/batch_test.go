package deliver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/coder/websocket"

	"timd/internal/deliver"
	"timd/internal/im"
)

// readMessages reads c's messages as they came, raw, until a caughtup
// frame (included), failing after 10 s.
func readMessages(t *testing.T, c *client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", len(out), err)
		}
		out = append(out, string(b))
		if strings.HasPrefix(string(b), `{"Type":"caughtup"`) {
			return out
		}
	}
}

// pushes renders the pushes message of tasks, from their push frames.
func pushes(tasks ...im.PushTask) string {
	var frames [][]byte
	for _, t := range tasks {
		hd := t.Head()
		frames = append(frames, deliver.PushFrame(&hd))
	}
	return string(deliver.AppendPushesFrame(nil, frames...))
}

// TestBatchedCatchUpSendsEachPageAsOneMessage: with batch=1 the owed
// pushes of each catch-up page arrive as one pushes message holding
// their exact push frames in Seq order — each once, nothing not owed —
// then caughtup; live pushes afterwards are single push frames.
func TestBatchedCatchUpSendsEachPageAsOneMessage(t *testing.T) {
	h := newHarness(t, deliver.Options{CatchUpPage: 3})
	ctx := context.Background()
	s1 := h.tasks.Add(pushTask("s1"), 1)
	h.tasks.Add(pushTask("s2"), 2) // bob's
	s3 := h.tasks.Add(pushTask("s3"), 1, 2)
	s4 := h.tasks.Add(pushTask("s4"), 1)
	s5 := h.tasks.Add(pushTask("s5"), 1)
	if err := h.tasks.RecordAcks(ctx, testApp, s5.ID, []uint32{1}, nil); err != nil {
		t.Fatal(err)
	}
	s6 := h.tasks.Add(pushTask("s6"), 1)
	s7 := h.tasks.Add(pushTask("s7"), 1)

	c := h.dialRaw("alice", 1, "batch=1", false)
	got := readMessages(t, c)
	want := []string{pushes(s1, s3), pushes(s4, s6), pushes(s7), string(deliver.CaughtUpFrame(s7.Seq))}
	if !slices.Equal(got, want) {
		t.Fatalf("batched catch-up wrote\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	l := readFrames(t, c)
	if d := describe(l.upToPong()); len(d) != 0 {
		t.Fatalf("then %v, want nothing more", d)
	}
	p8 := h.tasks.Add(pushTask("p8"), 1)
	h.hub.Deliver(&p8, roaring.BitmapOf(1))
	if d, want := describe(l.upToPong()), []string{"push p8"}; !slices.Equal(d, want) {
		t.Fatalf("live: %v, want %v", d, want)
	}

	// batch=0 is one push frame per push, as without the parameter.
	l0 := readFrames(t, h.dialRaw("alice", 1, "batch=0&platform=Android", false))
	var frames []map[string]any
	for len(frames) < 7 {
		frames = append(frames, l0.next())
	}
	if d, want := describe(frames), []string{"push s1", "push s3", "push s4", "push s6", "push s7", "push p8",
		fmt.Sprint("caughtup ", p8.Seq)}; !slices.Equal(d, want) {
		t.Fatalf("batch=0 caught up %v, want %v", d, want)
	}
}

// TestBatchedCatchUpSplitsLargeMessages: a pushes message holds at most
// MaxPushesBytes; a push frame that would take it over starts the next
// one, and a push larger than the bound goes alone.
func TestBatchedCatchUpSplitsLargeMessages(t *testing.T) {
	h := newHarness(t, deliver.Options{})
	big := func(id string, n int) im.PushTask {
		p := pushTask(id)
		p.MsgBody = json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"` + strings.Repeat("x", n) + `"}}]`)
		return h.tasks.Add(p, 1)
	}
	b1, b2, b3 := big("b1", 100<<10), big("b2", 100<<10), big("b3", 100<<10)
	huge := big("huge", 300<<10)
	s5, s6 := h.tasks.Add(pushTask("s5"), 1), h.tasks.Add(pushTask("s6"), 1)
	got := readMessages(t, h.dialRaw("alice", 1, "batch=1", false))
	want := []string{pushes(b1, b2), pushes(b3), pushes(huge), pushes(s5, s6), string(deliver.CaughtUpFrame(s6.Seq))}
	if !slices.Equal(got, want) {
		t.Fatalf("got %d messages of %v bytes, want %d of %v", len(got), lens(got), len(want), lens(want))
	}
	for _, m := range got[:2] {
		if len(m) > deliver.MaxPushesBytes {
			t.Fatalf("a message of two pushes has %d bytes, over %d", len(m), deliver.MaxPushesBytes)
		}
	}
}

func lens(ms []string) []int {
	var out []int
	for _, m := range ms {
		out = append(out, len(m))
	}
	return out
}

// TestBatchedCatchUpKeepsSeqOrderWithLivePushes is
// TestPushFannedOutDuringCatchUpArrivesOnceInSeqOrder on a batched
// connection: a live stored push fanned out while catch-up is held
// comes once, in its own pushes message after the held page, before
// caughtup; an online-only push comes at once as a push frame.
func TestBatchedCatchUpKeepsSeqOrderWithLivePushes(t *testing.T) {
	h := newHarness(t, deliver.Options{CatchUpPage: 2})
	held, release, rereads := holdShortPage(h, "alice", 2)
	for _, id := range []string{"s1", "s2", "s3"} {
		h.tasks.Add(pushTask(id), 1)
	}
	l := readFrames(t, h.dialRaw("alice", 1, "batch=1", false))
	<-held // [s1 s2] is written; the page [s3] is read, not sent

	aud := roaring.BitmapOf(1)
	p4 := h.tasks.Add(pushTask("p4"), 1)
	if n := h.hub.Deliver(&p4, aud); n != 1 {
		t.Fatalf("Deliver(p4) reached %d, want 1", n)
	}
	o1 := pushTask("o1")
	o1.OnlineOnly = true
	o1 = h.tasks.Add(o1, 1)
	h.hub.Deliver(&o1, aud)
	if got, want := describe(l.upToPong()), []string{"pushes s1,s2", "push o1"}; !slices.Equal(got, want) {
		t.Fatalf("while catch-up is held the client got %v, want %v", got, want)
	}
	close(release)
	got := []map[string]any{l.next(), l.next(), l.next()}
	if d, want := describe(got), []string{"pushes s3", "pushes p4", fmt.Sprint("caughtup ", p4.Seq)}; !slices.Equal(d, want) {
		t.Fatalf("after the release the client got %v, want %v", d, want)
	}
	if n := rereads.Load(); n != 1 {
		t.Fatalf("catch-up read on %d times, want 1", n)
	}
	h.hub.Deliver(&p4, aud) // live now: not again
	if d := describe(l.upToPong()); len(d) != 0 {
		t.Fatalf("then %v, want nothing", d)
	}
}

// TestBatchedAckCountsEachTask: {"Type":"ack","TaskIds":[…]} acknowledges
// each listed task the account is in the audience of, as that many single
// acks would, on a connection with or without batch=1; a reconnect is owed
// only what was not acknowledged.
func TestBatchedAckCountsEachTask(t *testing.T) {
	for _, extra := range []string{"", "batch=1"} {
		t.Run("query "+extra, func(t *testing.T) {
			h := newHarness(t, deliver.Options{AckInterval: time.Hour}) // only Stop flushes
			a1 := h.tasks.Add(pushTask("a1"), 1, 2)
			a2 := h.tasks.Add(pushTask("a2"), 1)
			a3 := h.tasks.Add(pushTask("a3"), 2) // bob's: alice's ack is ignored
			a4 := h.tasks.Add(pushTask("a4"), 1)
			c := h.dial("alice", 1, extra)
			c.send(`{"Type":"ack","TaskIds":["a1","a2","a3","ghost","a1"]}`)
			c.sync()
			again := readFrames(t, h.dialRaw("alice", 1, "platform=Android", false))
			if got := describe([]map[string]any{again.next(), again.next()}); !slices.Equal(got, []string{"push a4", fmt.Sprint("caughtup ", a4.Seq)}) {
				t.Fatalf("after the batched ack a reconnect got %v, want a4 only", got)
			}
			h.hub.Stop()
			for id, w := range map[string]im.TaskCounts{a1.ID: {Total: 2, Delivered: 1}, a2.ID: {Total: 1, Delivered: 1},
				a3.ID: {Total: 1}, a4.ID: {Total: 1}} {
				got, err := h.tasks.Counts(context.Background(), testApp, id)
				if err != nil || got != w {
					t.Fatalf("Counts(%s) = %+v, %v; want %+v", id, got, err, w)
				}
			}
		})
	}
}

// TestBatchedAckFrames: the largest batched ack (MaxAckIDs TaskIds of
// MaxTaskIDLen bytes) fits the default ReadLimit; malformed ones close
// the connection with 1008.
func TestBatchedAckFrames(t *testing.T) {
	long := strings.Repeat("t", deliver.MaxTaskIDLen)
	ids := func(n int, id string) string {
		return `"` + strings.TrimSuffix(strings.Repeat(id+`","`, n), `","`) + `"`
	}
	c := newHarness(t, deliver.Options{}).dial("alice", 1, "batch=1")
	c.send(`{"Type":"ack","TaskIds":[` + ids(deliver.MaxAckIDs, long) + `]}`)
	c.sync() // still open
	for _, tc := range []struct{ name, frame string }{
		{"0 ids", `{"Type":"ack","TaskIds":[]}`},
		{"101 ids", `{"Type":"ack","TaskIds":[` + ids(deliver.MaxAckIDs+1, "t") + `]}`},
		{"129-byte id", `{"Type":"ack","TaskIds":["t","` + long + `x"]}`},
		{"TaskId and TaskIds", `{"Type":"ack","TaskId":"t","TaskIds":["u"]}`},
		{"non-string id", `{"Type":"ack","TaskIds":["t",1]}`},
		{"click with TaskIds", `{"Type":"click","TaskIds":["t"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newHarness(t, deliver.Options{}).dial("bob", 2, "batch=1")
			c.send(tc.frame)
			if code := c.closed(); code != websocket.StatusPolicyViolation {
				t.Fatalf("close status %v, want 1008", code)
			}
		})
	}
}
