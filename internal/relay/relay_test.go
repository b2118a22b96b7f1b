package relay_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"timd/internal/testenv"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"timd/internal/cluster"
	"timd/internal/deliver"
	"timd/internal/im"
	"timd/internal/relay"
	"timd/internal/store/sqlite"
)

const testApp = 1400000077

// node is one cluster node in this process: a hub serving WebSockets, its
// bus and its relay, over the store every node shares.
type node struct {
	hub   *deliver.Hub
	bus   *cluster.Bus
	relay *relay.Relay
	srv   *httptest.Server
}

func natsURL(t *testing.T) string {
	t.Helper()
	return testenv.NATSURL(t)
}

func newNode(t *testing.T, st *sqlite.Store, url, prefix string) *node {
	t.Helper()
	hub := deliver.NewHub(st, nil, deliver.Options{}, nil)
	hub.Start(context.Background())
	bus, err := cluster.Open(cluster.Options{URL: url, Prefix: prefix}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := relay.New(bus, hub, nil, st, nil)
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ord, _ := strconv.ParseUint(req.URL.Query().Get("ord"), 10, 32)
		hub.Accept(w, req, im.App{SDKAppID: testApp}, im.Account{ID: fmt.Sprint("u", ord), Ordinal: uint32(ord)}, "Web")
	}))
	t.Cleanup(func() { srv.Close(); r.Stop(); hub.Stop(); bus.Close() })
	return &node{hub: hub, bus: bus, relay: r, srv: srv}
}

// client is one WebSocket, counting push frames by TaskId.
type client struct {
	mu      sync.Mutex
	pushes  map[string]int
	revokes map[string]int
	pongs   int
	closed  websocket.StatusCode // the server's close code, -1 while open
	ws      *websocket.Conn
}

func (n *node) connect(t *testing.T, ord uint32) *client {
	t.Helper()
	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(n.srv.URL, "http")+fmt.Sprint("/?ord=", ord), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	c := &client{pushes: map[string]int{}, revokes: map[string]int{}, ws: ws, closed: -1}
	go func() {
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				c.mu.Lock()
				c.closed = websocket.CloseStatus(err)
				c.mu.Unlock()
				return
			}
			var f struct{ Type, TaskId string }
			_ = json.Unmarshal(b, &f)
			c.mu.Lock()
			switch f.Type {
			case "push":
				c.pushes[f.TaskId]++
			case "revoke":
				c.revokes[f.TaskId]++
			case "pong":
				c.pongs++
			}
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *client) count(task string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pushes[task]
}

// settle waits for the answer to a ping: every frame queued before it
// has arrived.
func (c *client) settle(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	before := c.pongs
	c.mu.Unlock()
	if err := c.ws.Write(context.Background(), websocket.MessageText, []byte(`{"Type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pong", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.pongs > before })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func storeTask(t *testing.T, st *sqlite.Store, id string, aud *roaring.Bitmap) im.PushTask {
	t.Helper()
	b, _ := aud.ToBytes()
	var r [4]byte
	_, _ = rand.Read(r[:])
	task, _, err := st.CreateTask(context.Background(), im.PushTask{App: testApp, ID: id, Kind: im.PushCondition,
		MsgRandom: uint32(r[0]) | uint32(r[1])<<8 | uint32(r[2])<<16 | uint32(r[3])<<24, // no dedup between tasks
		From:      "admin", MsgBody: json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]`),
		CreatedAt: time.Now().Unix(), ExpiresAt: time.Now().Add(time.Hour).Unix(), Audience: b,
		Total: int64(aud.GetCardinality()), State: im.TaskDone}, 0, im.TaskLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if task.ID != id {
		t.Fatalf("stored %s as %s", id, task.ID)
	}
	return task
}

// TestChunkReachesOtherNodeOnce: a chunk delivered through node A reaches
// node B's client once, and A's own client once (A does not deliver its
// own event again).
func TestChunkReachesOtherNodeOnce(t *testing.T) {
	url := natsURL(t)
	st, err := sqlite.Open(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	prefix := randomPrefix()
	a, b := newNode(t, st, url, prefix), newNode(t, st, url, prefix)
	ca, cb, other := a.connect(t, 1), b.connect(t, 2), b.connect(t, 3)
	for _, c := range []*client{ca, cb, other} {
		c.settle(t)
	}
	aud := roaring.BitmapOf(1, 2)
	task := storeTask(t, st, "p1", aud)
	a.relay.Deliver(&task, aud)
	waitFor(t, "node B's client", func() bool { return cb.count("p1") >= 1 })
	for _, c := range []*client{ca, cb, other} {
		c.settle(t)
	}
	if ca.count("p1") != 1 || cb.count("p1") != 1 || other.count("p1") != 0 {
		t.Fatalf("counts: A's client %d, B's %d, B's outside the audience %d; want 1, 1, 0",
			ca.count("p1"), cb.count("p1"), other.count("p1"))
	}
}

// TestLostChunkIsRefetched: a chunk event that never arrives (the
// publisher's sequence skips it) is made up from the store: the next event
// from that publisher shows the gap, and node B catches its connections up
// on the stored push they were owed.
func TestLostChunkIsRefetched(t *testing.T) {
	url := natsURL(t)
	st, err := sqlite.Open(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	prefix := randomPrefix()
	b := newNode(t, st, url, prefix)
	cb := b.connect(t, 2)
	cb.settle(t) // its catch-up has run: the store held nothing yet

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subject := b.bus.Subject(testApp, "chunk")
	send := func(seq int, task im.PushTask, aud *roaring.Bitmap) {
		ords, _ := aud.ToBytes()
		data, _ := json.Marshal(map[string]any{"Head": task.Head(), "Ordinals": ords})
		m := nats.NewMsg(subject)
		m.Header.Set("Timd-Node", "other-node")
		m.Header.Set("Timd-Seq", fmt.Sprint(seq))
		m.Data = data
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	aud := roaring.BitmapOf(2)
	first := storeTask(t, st, "first", aud)
	send(1, first, aud)
	waitFor(t, "the first push", func() bool { return cb.count("first") == 1 })
	storeTask(t, st, "lost", aud) // its event, seq 2, is "lost"
	third := storeTask(t, st, "third", aud)
	send(3, third, aud)
	waitFor(t, "the lost push, refetched from the store", func() bool { return cb.count("lost") == 1 })
	waitFor(t, "the third push", func() bool { return cb.count("third") == 1 })
	cb.settle(t)
	for _, id := range []string{"first", "lost", "third"} {
		if n := cb.count(id); n != 1 {
			t.Errorf("%s arrived %d times, want once", id, n)
		}
	}
}

func (c *client) revoked(task string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.revokes[task]
}

// TestLostRevokeIsRefetched: a revoke event that never arrives (the
// publisher's sequence skips it) is made up from the store: the next
// revoke event from that publisher shows the gap, and node B reads the
// tasks revoked since it last heard from it and tells its connection.
func TestLostRevokeIsRefetched(t *testing.T) {
	url := natsURL(t)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	b := newNode(t, st, url, randomPrefix())
	cb := b.connect(t, 2)
	cb.settle(t)
	aud := roaring.BitmapOf(2)
	for _, id := range []string{"first", "lost", "third", "kept"} {
		task := storeTask(t, st, id, aud)
		b.hub.Deliver(&task, aud)
	}
	waitFor(t, "the pushes", func() bool { return cb.count("kept") == 1 })

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	revoke := func(seq int, id string, publish bool) { // through "other-node"
		if err := st.RevokeTask(ctx, testApp, id, time.Now().Unix(), nil, im.TaskLimits{}); err != nil {
			t.Fatal(err)
		}
		if !publish {
			return
		}
		m := nats.NewMsg(b.bus.Subject(testApp, "revoke"))
		m.Header.Set("Timd-Node", "other-node")
		m.Header.Set("Timd-Seq", fmt.Sprint(seq))
		m.Data = []byte(id)
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	revoke(1, "first", true)
	waitFor(t, "the first revoke", func() bool { return cb.revoked("first") == 1 })
	revoke(2, "lost", false) // its event, seq 2, is lost
	cb.settle(t)
	if cb.revoked("lost") != 0 {
		t.Fatal("the lost revoke arrived: the test cannot tell")
	}
	revoke(3, "third", true)
	waitFor(t, "the lost revoke, refetched from the store", func() bool { return cb.revoked("lost") >= 1 })
	waitFor(t, "the third revoke", func() bool { return cb.revoked("third") >= 1 })
	cb.settle(t)
	if n := cb.revoked("kept"); n != 0 {
		t.Errorf("a task never revoked was revoked %d times", n)
	}
}

// TestOnlineAnswersForTheCluster: presence asked on one node includes the
// connections of the others.
func TestOnlineAnswersForTheCluster(t *testing.T) {
	url := natsURL(t)
	st, err := sqlite.Open(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	prefix := randomPrefix()
	a, b := newNode(t, st, url, prefix), newNode(t, st, url, prefix)
	a.connect(t, 1).settle(t)
	b.connect(t, 1).settle(t)
	b.connect(t, 2).settle(t)
	waitFor(t, "the peers to hear each other", func() bool { return a.bus.Peers() == 1 && b.bus.Peers() == 1 })
	got := a.relay.Online(testApp, []string{"u1", "u2", "u3"})
	if len(got["u1"]) != 2 || len(got["u2"]) != 1 || len(got["u3"]) != 0 {
		t.Fatalf("Online through A = %v; want u1 on two nodes, u2 on one, u3 offline", got)
	}
	if c := a.relay.Connected(testApp); !c.Equals(roaring.BitmapOf(1, 2)) {
		t.Fatalf("Connected through A = %v, want [1 2]", c.ToArray())
	}
}

func randomPrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "relaytest-" + hex.EncodeToString(b)
}

// TestMissedKickClosesStaleConnections: a node that may have missed a kick
// (the kick events' sequence skips one) re-reads the KickedAt of every
// account it has connections for and closes, with 4001, those kicked
// after they authenticated; the others stay.
func TestMissedKickClosesStaleConnections(t *testing.T) {
	url := natsURL(t)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.ImportAccounts(ctx, testApp, []im.AccountInput{{UserID: "u1"}, {UserID: "u2"}}); err != nil {
		t.Fatal(err)
	}
	b := newNode(t, st, url, randomPrefix())
	kicked, kept := b.connect(t, 1), b.connect(t, 2)
	kicked.settle(t)
	kept.settle(t)
	if err := st.Kick(ctx, testApp, "u1", time.Now().Unix()); err != nil { // through another node, whose event is lost
		t.Fatal(err)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, seq := range []string{"1", "3"} { // the kick of u1 was seq 2
		m := nats.NewMsg(b.bus.Subject(testApp, "kick"))
		m.Header.Set("Timd-Node", "other-node")
		m.Header.Set("Timd-Seq", seq)
		m.Data = []byte(`{"ID":"nobody"}`)
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "u1's connection to close with 4001", func() bool {
		kicked.mu.Lock()
		defer kicked.mu.Unlock()
		return kicked.closed == deliver.StatusKicked
	})
	kept.settle(t) // still open: it answers
}
