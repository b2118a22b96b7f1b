package deliver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/coder/websocket"

	"timd/internal/deliver"
	"timd/internal/im"
	"timd/internal/store/sqlite"
)

// slowStore is a real SQLite task store whose catch-up reads (heads,
// audiences, acknowledgement sets) are slow, and often fail, as under a
// reconnect storm on a loaded disk.
type slowStore struct {
	*sqlite.Store
	delay    time.Duration // each read waits up to this long
	failEach int64         // every failEach-th read fails (0: none)
	reads    atomic.Int64
	failed   atomic.Int64
}

var errSlow = errors.New("sqlite read tasks: context deadline exceeded (injected)")

func (s *slowStore) slow(ctx context.Context) error {
	n := s.reads.Add(1)
	select {
	case <-time.After(time.Duration(rand.Int64N(int64(s.delay) + 1))):
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.failEach > 0 && n%s.failEach == 0 {
		s.failed.Add(1)
		return errSlow
	}
	return nil
}

func (s *slowStore) StoredHeads(ctx context.Context, app uint64, after, now int64, limit int) ([]im.TaskHead, error) {
	if err := s.slow(ctx); err != nil {
		return nil, err
	}
	return s.Store.StoredHeads(ctx, app, after, now, limit)
}

func (s *slowStore) TaskAudience(ctx context.Context, app uint64, id string) ([]byte, error) {
	if err := s.slow(ctx); err != nil {
		return nil, err
	}
	return s.Store.TaskAudience(ctx, app, id)
}

func (s *slowStore) AckSets(ctx context.Context, app uint64, id string) ([]byte, []byte, error) {
	if err := s.slow(ctx); err != nil {
		return nil, nil, err
	}
	return s.Store.AckSets(ctx, app, id)
}

// stormClient is one reconnecting client: it records the TaskIds it
// receives and acks each, as a client should.
type stormClient struct {
	ord  uint32
	ws   *websocket.Conn
	mu   sync.Mutex
	got  map[string]int
	seqs []int64 // the Seq of every push frame, in the order received
	// caught is the Seq of the caughtup frame (-1 until it came), and
	// early the push frames received before it.
	caught int64
	early  int
	ended  error // set when the connection ended before the test closed it
	done   chan struct{}
}

func (c *stormClient) read(ctx context.Context) {
	defer close(c.done)
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.mu.Lock()
				c.ended = err
				c.mu.Unlock()
			}
			return
		}
		var f struct {
			Type, TaskId string
			Seq          int64
		}
		if json.Unmarshal(b, &f) != nil {
			continue
		}
		c.mu.Lock()
		switch f.Type {
		case deliver.TypeCaughtUp:
			c.caught, c.early = f.Seq, len(c.seqs)
		case deliver.TypePush:
			c.got[f.TaskId]++
			c.seqs = append(c.seqs, f.Seq)
		}
		c.mu.Unlock()
		if f.Type != deliver.TypePush {
			continue
		}
		_ = c.ws.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"Type":"ack","TaskId":%q}`, f.TaskId))
	}
}

// TestReconnectStormLosesNothingAndClosesNothing is issue 10's catch-up
// invariant. Clients reconnect all at once while the store's catch-up reads
// are slow and a third of them fail, and while new pushes are stored and
// delivered live: every client gets every stored push addressed to it, no
// connection is closed, and a second storm after the acks were recorded
// sends nothing already acknowledged.
func TestReconnectStormLosesNothingAndClosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("storm test skipped in -short mode")
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	store := &slowStore{Store: st, delay: 20 * time.Millisecond, failEach: 3}
	hub := deliver.NewHub(store, nil, deliver.Options{AckInterval: 20 * time.Millisecond, CatchUpPage: 16}, nil)
	hub.Start(ctx)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ord, _ := strconv.ParseUint(r.URL.Query().Get("ord"), 10, 32)
		hub.Accept(w, r, im.App{SDKAppID: testApp}, im.Account{ID: fmt.Sprint("u", ord), Ordinal: uint32(ord)}, "Web")
	}))
	t.Cleanup(func() { srv.Close(); hub.Stop() })

	const clients = 200
	everyone := roaring.New()
	everyone.AddRange(1, clients+1)
	odd := roaring.New()
	for o := uint32(1); o <= clients; o += 2 {
		odd.Add(o)
	}
	var mu sync.Mutex
	want := map[uint32]map[string]bool{} // ordinal → TaskIds owed
	seq := uint32(0)
	create := func(aud *roaring.Bitmap, live bool) {
		seq++
		id := fmt.Sprint("p", seq)
		b, _ := aud.ToBytes()
		task, _, err := st.CreateTask(ctx, im.PushTask{App: testApp, ID: id, Kind: im.PushCondition, MsgRandom: seq,
			From: "admin", MsgBody: json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]`),
			CreatedAt: time.Now().Unix(), ExpiresAt: time.Now().Add(time.Hour).Unix(), Audience: b,
			Total: int64(aud.GetCardinality()), State: im.TaskDone}, 0, im.TaskLimits{})
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		for _, o := range aud.ToArray() {
			if want[o] == nil {
				want[o] = map[string]bool{}
			}
			want[o][id] = true
		}
		mu.Unlock()
		if live {
			hub.Deliver(&task, aud)
		}
	}
	for i := range 40 { // stored before the storm: half to everyone, half to a Condition's audience
		if i%2 == 0 {
			create(everyone, false)
		} else {
			create(odd, false)
		}
	}

	storm := func(round int, during func()) []*stormClient {
		cctx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		cs := make([]*stormClient, clients)
		var wg sync.WaitGroup
		for i := range cs {
			c := &stormClient{ord: uint32(i + 1), got: map[string]int{}, caught: -1, done: make(chan struct{})}
			cs[i] = c
			wg.Go(func() {
				u := strings.Replace(srv.URL, "http", "ws", 1) + fmt.Sprintf("/?ord=%d", c.ord)
				ws, _, err := websocket.Dial(cctx, u, nil)
				if err != nil {
					t.Errorf("round %d: dial %d: %v", round, c.ord, err)
					close(c.done)
					return
				}
				c.ws = ws
				go c.read(cctx)
			})
		}
		if during != nil {
			during()
		}
		wg.Wait()
		return cs
	}
	check := func(round int, cs []*stormClient) {
		deadline := time.Now().Add(60 * time.Second)
		for _, c := range cs {
			for {
				mu.Lock()
				owed := want[c.ord]
				mu.Unlock()
				c.mu.Lock()
				missing := 0
				for id := range owed {
					if c.got[id] == 0 {
						missing++
					}
				}
				ended := c.ended
				c.mu.Unlock()
				if ended != nil {
					t.Fatalf("round %d: client %d was closed: %v", round, c.ord, ended)
				}
				if missing == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d: client %d is missing %d of %d stored pushes", round, c.ord, missing, len(owed))
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}

	// Round 1: everyone reconnects while 10 more pushes are stored and
	// delivered live, half to everyone, half to the odd ordinals.
	cs := storm(1, func() {
		for i := range 10 {
			aud := everyone
			if i%2 == 1 {
				aud = odd
			}
			create(aud, true)
			time.Sleep(2 * time.Millisecond)
		}
	})
	check(1, cs)
	if store.failed.Load() == 0 {
		t.Fatal("no read failed: the test did not exercise the retry path")
	}
	if s := hub.Stats(); s.SlowDrops != 0 || s.CatchUpRetries == 0 {
		t.Fatalf("hub stats %+v: want no slow drops and some retries", s)
	}
	// Wait for every ack to be recorded, then disconnect everyone.
	var owed uint64
	for _, c := range cs {
		owed += uint64(len(want[c.ord]))
	}
	waitFor(t, "acks recorded", func() bool { return hub.Stats().AcksRecorded >= owed })
	for _, c := range cs {
		c.ws.Close(websocket.StatusNormalClosure, "")
		<-c.done
	}

	// Round 2: a second storm owes only what was stored since.
	before := seq
	cs = storm(2, func() { create(everyone, true) })
	for _, c := range cs {
		mu.Lock()
		for id := range want[c.ord] {
			if n, _ := strconv.Atoi(strings.TrimPrefix(id, "p")); uint32(n) <= before {
				delete(want[c.ord], id)
			}
		}
		mu.Unlock()
	}
	check(2, cs)
	time.Sleep(100 * time.Millisecond)
	for _, c := range cs {
		c.mu.Lock()
		for id := range c.got {
			if n, _ := strconv.Atoi(strings.TrimPrefix(id, "p")); uint32(n) <= before {
				t.Errorf("round 2: client %d got %s again after acknowledging it", c.ord, id)
			}
		}
		c.mu.Unlock()
	}
}
