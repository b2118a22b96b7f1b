package deliver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"timd/internal/deliver"
	"timd/internal/deliver/delivertest"
	"timd/internal/im"
)

const testApp = 1400000001

// harness is a hub over the real SQLite task store behind a real HTTP
// server. Its handler stands in for
// the authenticated /v1/connect: the account comes from the query string
// (id, ord, kicked), so these tests exercise the hub alone; httpapi's
// tests add the UserSig check.
type harness struct {
	t     *testing.T
	hub   *deliver.Hub
	tasks *delivertest.Faulty // the real SQLite store, with failures on demand
	srv   *httptest.Server
}

func newHarness(t *testing.T, opt deliver.Options) *harness {
	t.Helper()
	tasks := delivertest.OpenFaulty(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := deliver.NewHub(tasks, nil, opt, log)
	hub.Start(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		ord, _ := strconv.ParseUint(q.Get("ord"), 10, 32)
		kicked, _ := strconv.ParseInt(q.Get("kicked"), 10, 64)
		platform := q.Get("platform")
		if platform == "" {
			platform = "Web"
		}
		hub.Accept(w, r, im.App{SDKAppID: testApp}, im.Account{ID: q.Get("id"), Ordinal: uint32(ord), KickedAt: kicked}, platform)
	}))
	t.Cleanup(func() {
		srv.Close()
		hub.Stop()
	})
	return &harness{t: t, hub: hub, tasks: tasks, srv: srv}
}

// client is a test WebSocket client whose reader goroutine collects frames.
type client struct {
	t      *testing.T
	ws     *websocket.Conn
	frames chan map[string]any
	raw    chan []byte
	caught chan int64 // the Seqs of caughtup frames, kept apart from frames
	done   chan struct{}
	err    error // the reader's final error, once done is closed
	// pending are frames received by dial's sync, returned first by next.
	pending []map[string]any
}

// dial connects account id with ordinal ord and waits until the hub
// serves the connection (a ping is answered: the hub registers a
// connection before it reads from it). extra is appended to the query
// string. Frames that arrive before the pong stay queued for next.
func (h *harness) dial(id string, ord uint32, extra string) *client {
	h.t.Helper()
	c := h.dialRaw(id, ord, extra, true)
	c.pending = c.sync()
	return c
}

// dialRaw connects without waiting for registration; read=false leaves
// the connection unread (a stalled client).
func (h *harness) dialRaw(id string, ord uint32, extra string, read bool) *client {
	h.t.Helper()
	u := strings.Replace(h.srv.URL, "http", "ws", 1) + fmt.Sprintf("/?id=%s&ord=%d&%s", id, ord, extra)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		h.t.Fatalf("dial %s: %v", id, err)
	}
	ws.SetReadLimit(1 << 20)
	c := &client{t: h.t, ws: ws, frames: make(chan map[string]any, 10000), raw: make(chan []byte, 10000),
		caught: make(chan int64, 100), done: make(chan struct{})}
	h.t.Cleanup(func() { _ = ws.CloseNow() })
	if read {
		go c.read()
	}
	return c
}

func (c *client) read() {
	defer close(c.done)
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.err = err
			return
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			c.err = fmt.Errorf("frame is not a JSON object: %q", b)
			return
		}
		if m["Type"] == deliver.TypeCaughtUp {
			seq, _ := m["Seq"].(float64)
			c.caught <- int64(seq)
			continue
		}
		c.raw <- b
		c.frames <- m
	}
}

// caughtUp returns the Seq of the connection's caughtup frame, failing
// after 5 s.
func (c *client) caughtUp() int64 {
	c.t.Helper()
	select {
	case seq := <-c.caught:
		return seq
	case <-time.After(5 * time.Second):
		c.t.Fatal("no caughtup frame within 5 s")
	}
	return 0
}

// next returns the next frame, failing after 5 s.
func (c *client) next() map[string]any {
	c.t.Helper()
	if len(c.pending) > 0 {
		m := c.pending[0]
		c.pending = c.pending[1:]
		return m
	}
	select {
	case m := <-c.frames:
		<-c.raw
		return m
	case <-c.done:
		c.t.Fatalf("connection ended while waiting for a frame: %v", c.err)
	case <-time.After(5 * time.Second):
		c.t.Fatal("no frame within 5 s")
	}
	return nil
}

// none fails if a frame arrives within d.
func (c *client) none(d time.Duration) {
	c.t.Helper()
	if len(c.pending) > 0 {
		c.t.Fatalf("unexpected frame %v", c.pending[0])
	}
	select {
	case m := <-c.frames:
		c.t.Fatalf("unexpected frame %v", m)
	case <-time.After(d):
	}
}

// send writes a text frame.
func (c *client) send(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// sync sends a ping and waits for the pong, so that every frame sent
// before has been processed and every live frame queued before the pong
// has been received (they share one queue). It returns the frames seen
// before the pong.
func (c *client) sync() []map[string]any {
	c.t.Helper()
	c.send(`{"Type":"ping"}`)
	seen := c.pending
	c.pending = nil
	for {
		m := c.next()
		if m["Type"] == "pong" {
			return seen
		}
		seen = append(seen, m)
	}
}

// closed waits for the connection to end and returns the close status.
func (c *client) closed() websocket.StatusCode {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Fatal("connection still open after 10 s")
	}
	return websocket.CloseStatus(c.err)
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var errBoom = errors.New("boom")

// pushTask is a stored message push from ops with a text body.
func pushTask(id string) im.PushTask {
	return im.PushTask{App: testApp, ID: id, Kind: im.PushCondition, From: "ops",
		MsgBody:   json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi ` + id + `"}}]`),
		Offline:   json.RawMessage(`{"Title":"T","Desc":"D"}`),
		CreatedAt: time.Now().Unix(), ExpiresAt: time.Now().Add(time.Hour).Unix()}
}

// ids lists the TaskIds of push frames.
func ids(frames []map[string]any) []string {
	var out []string
	for _, f := range frames {
		out = append(out, fmt.Sprint(f["TaskId"]))
	}
	return out
}
