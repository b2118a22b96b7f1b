package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"timd/internal/usersig"
)

// Listeners are live WebSocket clients. Each records when it first reads
// the push frame of every task (by TaskId) and, against timd, acks it as a
// client should.
type Listeners struct {
	conns   []*websocket.Conn
	ack     bool
	cancel  context.CancelFunc
	closing atomic.Bool

	mu    sync.Mutex
	got   map[string]map[int]time.Time // TaskId → client → first receipt
	dups  int                          // repeated frames of a task at one client
	ended map[string]int               // connections that ended before Close, by close reason
}

// liveID names live client i's account.
func liveID(i int) string { return fmt.Sprintf("live%06d", i) }

// Listen imports n accounts live000000…, gives account i the profile
// ProfileOf(i), and connects one client for each over /v1/connect with its
// own UserSig.
func (c *Client) Listen(ctx context.Context, n int) (*Listeners, error) {
	if err := c.nameAttrs(ctx); err != nil {
		return nil, err
	}
	if err := c.populate(ctx, liveID, n); err != nil {
		return nil, err
	}
	bases := c.cfg.LiveBases
	if len(bases) == 0 {
		bases = []string{c.cfg.Base}
	}
	now := time.Now().Unix()
	urls := make([]string, n)
	for i := range urls {
		sig, err := usersig.Gen(c.cfg.SDKAppID, c.cfg.Key, liveID(i), 86400, now)
		if err != nil {
			return nil, err
		}
		base := "ws" + strings.TrimPrefix(bases[i%len(bases)], "http") + "/v1/connect?"
		urls[i] = base + url.Values{"sdkappid": {fmt.Sprint(c.cfg.SDKAppID)}, "identifier": {liveID(i)}, "usersig": {sig}}.Encode()
	}
	return listen(ctx, urls, true)
}

// listen dials every URL, 64 at a time, and starts reading.
func listen(ctx context.Context, urls []string, ack bool) (*Listeners, error) {
	ctx, cancel := context.WithCancel(ctx)
	l := &Listeners{conns: make([]*websocket.Conn, len(urls)), ack: ack, cancel: cancel,
		got: map[string]map[int]time.Time{}, ended: map[string]int{}}
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i, u := range urls {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			cn, _, err := websocket.Dial(ctx, u, nil)
			if err != nil {
				errs[i] = fmt.Errorf("connect client %d: %w", i, err)
				return
			}
			l.conns[i] = cn
			go l.read(ctx, i, cn)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// read records client i's push frames until its connection ends.
func (l *Listeners) read(ctx context.Context, i int, cn *websocket.Conn) {
	for {
		_, data, err := cn.Read(ctx)
		if err != nil {
			if !l.closing.Load() {
				l.mu.Lock()
				l.ended[endReason(err)]++
				l.mu.Unlock()
			}
			return
		}
		at := time.Now()
		var f struct{ Type, TaskId string }
		if json.Unmarshal(data, &f) != nil || f.Type != "push" {
			continue
		}
		l.mu.Lock()
		if l.got[f.TaskId] == nil {
			l.got[f.TaskId] = map[int]time.Time{}
		}
		if _, dup := l.got[f.TaskId][i]; dup {
			l.dups++
		} else {
			l.got[f.TaskId][i] = at
		}
		l.mu.Unlock()
		if l.ack {
			_ = cn.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"Type":"ack","TaskId":%q}`, f.TaskId))
		}
	}
}

func endReason(err error) string {
	if s := websocket.CloseStatus(err); s != -1 {
		var ce websocket.CloseError
		errors.As(err, &ce)
		return fmt.Sprintf("closed %d %s", s, ce.Reason)
	}
	return err.Error()
}

// N is the number of clients.
func (l *Listeners) N() int { return len(l.conns) }

// Receipts returns when each client first read task's push frame.
func (l *Listeners) Receipts(task string) map[int]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[int]time.Time, len(l.got[task]))
	for i, at := range l.got[task] {
		out[i] = at
	}
	return out
}

// Wait waits, up to max, until every accepted push has reached every
// client in its audience.
func (l *Listeners) Wait(pushes []Push, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && l.missing(pushes) > 0 {
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *Listeners) missing(pushes []Push) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, p := range pushes {
		if p.Fail == "" {
			for _, i := range p.Expect {
				if _, ok := l.got[p.TaskID][i]; !ok {
					n++
				}
			}
		}
	}
	return n
}

// Health reports repeated frames and the connections that ended before
// Close, by reason.
func (l *Listeners) Health() (dups int, ended map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ended = map[string]int{}
	for k, v := range l.ended {
		ended[k] = v
	}
	return l.dups, ended
}

// Close disconnects every client.
func (l *Listeners) Close() {
	l.closing.Store(true)
	l.cancel()
	for _, cn := range l.conns {
		if cn != nil {
			cn.CloseNow()
		}
	}
}

// LiveResult is what a one-shot live run measured: the time from the push
// call to each client's receipt of the push frame.
type LiveResult struct {
	Clients  int
	Received int
	TaskID   string
	Accept   time.Duration // push call round trip
	P50, P99 time.Duration
	Max      time.Duration
}

func (r LiveResult) String() string {
	return fmt.Sprintf("live: %d/%d clients received task %s; push call %v; receipt after call p50 %v p99 %v max %v",
		r.Received, r.Clients, r.TaskID, r.Accept.Round(time.Microsecond), r.P50.Round(time.Millisecond),
		r.P99.Round(time.Millisecond), r.Max.Round(time.Millisecond))
}

// PushOnce pushes one online-only message to everyone through
// v4/timpush/push and measures when each of the listeners receives it.
func (c *Client) PushOnce(ctx context.Context, l *Listeners, wait time.Duration) (LiveResult, error) {
	p := c.push(ctx, Condition{}, true)
	if p.Fail != "" {
		return LiveResult{}, fmt.Errorf("push: %s", p.Fail)
	}
	p.Expect = Audience(p.Cond, l.N())
	return oneShot(l, p, wait), nil
}

// oneShot waits for p's receipts and sums them up.
func oneShot(l *Listeners, p Push, wait time.Duration) LiveResult {
	l.Wait([]Push{p}, wait)
	r := summarize("", []Push{p}, l.Receipts)
	return LiveResult{Clients: l.N(), Received: r.Received, TaskID: p.TaskID, Accept: p.Call,
		P50: r.P50, P99: r.P99, Max: r.Max}
}
