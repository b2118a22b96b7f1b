package deliver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/coder/websocket"

	"timd/internal/deliver"
	"timd/internal/im"
	"timd/internal/store/sqlite"
)

// heldStore is a real SQLite task store whose audience reads wait until
// release is closed: a store that cannot answer for a while.
type heldStore struct {
	*sqlite.Store
	release chan struct{}
	once    sync.Once
}

// newHeldStore opens a store in a temporary directory, held until Release
// or the end of the test.
func newHeldStore(t *testing.T) *heldStore {
	st, err := sqlite.Open(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s := &heldStore{Store: st, release: make(chan struct{})}
	t.Cleanup(s.Release) // before Close
	return s
}

// Release lets the held reads answer.
func (s *heldStore) Release() { s.once.Do(func() { close(s.release) }) }

func (s *heldStore) TaskAudience(ctx context.Context, app uint64, id string) ([]byte, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Store.TaskAudience(ctx, app, id)
}

// TestCatchUpsAreBoundedAndWaitersAllCatchUp: with Options.CatchUps 3 and
// 60 clients reconnecting at once, no more than 3 catch-ups ever run at
// once; while the 3 running ones wait on a store that does not answer,
// the other 57 wait for their turn without being closed. Meanwhile an
// online-only push reaches them at once, and a stored push fanned out to
// them is held for their catch-up (it may not overtake the older stored
// pushes). Once the store answers, every client gets every stored push
// it is owed, once, in Seq order, then a caughtup frame with the last.
func TestCatchUpsAreBoundedAndWaitersAllCatchUp(t *testing.T) {
	ctx := context.Background()
	store := newHeldStore(t)
	st := store.Store
	const clients, limit, stored = 60, 3, 20
	hub := deliver.NewHub(store, nil, deliver.Options{CatchUps: limit, AckInterval: 20 * time.Millisecond}, nil)
	hub.Start(ctx)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ord, _ := strconv.ParseUint(r.URL.Query().Get("ord"), 10, 32)
		hub.Accept(w, r, im.App{SDKAppID: testApp}, im.Account{ID: fmt.Sprint("u", ord), Ordinal: uint32(ord)}, "Web")
	}))
	t.Cleanup(func() { srv.Close(); hub.Stop() })

	everyone := roaring.New()
	everyone.AddRange(1, clients+1)
	aud, _ := everyone.ToBytes()
	var tasks []im.PushTask
	for i := range stored + 1 { // the last one is pushed live, later
		task := pushTask(fmt.Sprint("p", i))
		task.Audience, task.Total, task.State, task.MsgRandom = aud, clients, im.TaskDone, uint32(i)
		task, _, err := st.CreateTask(ctx, task, 0, im.TaskLimits{})
		if err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, task)
	}
	// The live push is stored last; catch-ups are held before they could
	// reach it (the first task's audience read does not answer), so the
	// clients can only get it live.
	cctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	cs := make([]*stormClient, clients)
	for i := range cs {
		c := &stormClient{ord: uint32(i + 1), got: map[string]int{}, caught: -1, done: make(chan struct{})}
		u := strings.Replace(srv.URL, "http", "ws", 1) + fmt.Sprintf("/?ord=%d", c.ord)
		ws, _, err := websocket.Dial(cctx, u, nil)
		if err != nil {
			t.Fatalf("dial %d: %v", c.ord, err)
		}
		c.ws = ws
		go c.read(cctx)
		cs[i] = c
	}
	poll := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second) // generous: the machine may run at load 30
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; hub stats %+v", what, hub.Stats())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	poll("3 catch-ups running and 57 waiting", func() bool {
		s := hub.Stats()
		return s.CatchUpsRunning == limit && s.CatchUpsWaiting == clients-limit
	})

	// Waiting for a turn holds live stored pushes, not online-only ones.
	live := tasks[stored]
	if n := hub.Deliver(&live, everyone); n != clients {
		t.Fatalf("the live stored push reached %d connections, want all %d (held for their catch-up)", n, clients)
	}
	online := pushTask("online")
	online.OnlineOnly, online.Audience, online.Total, online.State, online.MsgRandom = true, aud, clients, im.TaskDone, 999
	online, _, err := st.CreateTask(ctx, online, 0, im.TaskLimits{})
	if err != nil {
		t.Fatal(err)
	}
	hub.Deliver(&online, everyone)
	for _, c := range cs {
		poll(fmt.Sprintf("client %d to get the online-only push", c.ord), func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.got[online.ID] == 1
		})
	}
	for _, c := range cs {
		c.mu.Lock()
		if n := len(c.got); n != 1 {
			t.Errorf("client %d got %d pushes while its catch-up waited (%v), want only the online-only one", c.ord, n, c.got)
		}
		c.mu.Unlock()
	}
	if s := hub.Stats(); s.CatchUpsRunning != limit || s.CatchUpsWaiting != clients-limit {
		t.Fatalf("while the store is held: %+v", s)
	}

	store.Release()
	for _, c := range cs {
		poll(fmt.Sprintf("client %d to catch up", c.ord), func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.ended != nil {
				t.Fatalf("client %d was closed: %v", c.ord, c.ended)
			}
			for _, task := range tasks {
				if c.got[task.ID] == 0 {
					return false
				}
			}
			return c.caught >= 0
		})
	}
	poll("every catch-up to end", func() bool {
		s := hub.Stats()
		return s.CatchUpsRunning == 0 && s.CatchUpsWaiting == 0
	})
	if s := hub.Stats(); s.CatchUpsPeak != limit || s.SlowDrops != 0 || s.Connections != clients {
		t.Fatalf("hub stats %+v: want a peak of exactly %d catch-ups, no drops, every client connected", s, limit)
	}
	for _, c := range cs {
		c.mu.Lock()
		for id, n := range c.got {
			if n != 1 {
				t.Errorf("client %d got %s %d times", c.ord, id, n)
			}
		}
		var storedSeqs []int64
		for _, q := range c.seqs {
			if q != online.Seq {
				storedSeqs = append(storedSeqs, q)
			}
		}
		if !slices.IsSorted(storedSeqs) || len(storedSeqs) != len(tasks) {
			t.Errorf("client %d got stored pushes with Seqs %v, want %d in increasing order", c.ord, storedSeqs, len(tasks))
		}
		if c.caught != live.Seq || c.early != len(tasks)+1 {
			t.Errorf("client %d: caughtup Seq %d after %d pushes, want Seq %d after %d", c.ord, c.caught, c.early, live.Seq, len(tasks)+1)
		}
		c.mu.Unlock()
	}
}

// TestWaitingForCatchUpIsNoHeartbeatTimeout: a client whose catch-up
// cannot proceed (the store does not answer) and that answers no ping is
// not closed for the heartbeat while it waits; once its catch-up ends, the
// heartbeat applies again and closes it.
func TestWaitingForCatchUpIsNoHeartbeatTimeout(t *testing.T) {
	ctx := context.Background()
	store := newHeldStore(t)
	st := store.Store
	hub := deliver.NewHub(store, nil, deliver.Options{CatchUps: 1, PingInterval: 10 * time.Millisecond,
		PongTimeout: 10 * time.Millisecond}, nil)
	hub.Start(ctx)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hub.Accept(w, r, im.App{SDKAppID: testApp}, im.Account{ID: "u1", Ordinal: 1}, "Web")
	}))
	t.Cleanup(func() { srv.Close(); hub.Stop() })
	everyone := roaring.BitmapOf(1)
	task := pushTask("p1")
	task.Audience, _ = everyone.ToBytes()
	task.Total, task.State = 1, im.TaskDone
	if _, _, err := st.CreateTask(ctx, task, 0, im.TaskLimits{}); err != nil {
		t.Fatal(err)
	}
	// A client that never reads: it answers no ping.
	ws, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	deadline := time.Now().Add(90 * time.Second)
	for hub.Stats().CatchUpsRunning != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("catch-up never started: %+v", hub.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // 30 ping intervals
	if s := hub.Stats(); s.HeartbeatTimeouts != 0 || s.Connections != 1 {
		t.Fatalf("closed while waiting for its catch-up: %+v", s)
	}
	store.Release()
	for hub.Stats().HeartbeatTimeouts != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("not closed for the heartbeat after its catch-up: %+v", hub.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
