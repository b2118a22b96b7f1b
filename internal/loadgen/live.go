package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"timd/internal/usersig"
)

// LiveResult is what a live-delivery run measured: the time from the push
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

// Live imports n accounts, connects one WebSocket client for each over
// /v1/connect with its own UserSig, pushes one message to everyone through
// v4/timpush/push, and measures when each client receives it.
func (c *Client) Live(ctx context.Context, n int, wait time.Duration) (LiveResult, error) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("live%06d", i)
	}
	for i := 0; i < n; i += 100 {
		body, _ := json.Marshal(map[string]any{"Accounts": ids[i:min(n, i+100)]})
		if code, raw, err := c.Call(ctx, "im_open_login_svc/multiaccount_import", body); err != nil || code != 0 {
			return LiveResult{}, fmt.Errorf("import: %d %s %v", code, raw, err)
		}
	}
	got := make(chan time.Time, n)
	var taskID atomicString
	conns, err := c.connectAll(ctx, ids, got, &taskID)
	defer func() {
		for _, cn := range conns {
			cn.CloseNow()
		}
	}()
	if err != nil {
		return LiveResult{}, err
	}
	body := fmt.Sprintf(`{"From_Account":%q,"MsgRandom":%d,"OnlineOnlyFlag":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"bench"}}]}`,
		c.cfg.Admin, time.Now().UnixNano()&0x7fffffff)
	start := time.Now()
	code, raw, err := c.Call(ctx, "timpush/push", []byte(body))
	accept := time.Since(start)
	if err != nil || code != 0 {
		return LiveResult{}, fmt.Errorf("push: %d %s %v", code, raw, err)
	}
	var resp struct{ TaskId string }
	_ = json.Unmarshal(raw, &resp)
	taskID.set(resp.TaskId)
	lats := make([]time.Duration, 0, n)
	deadline := time.After(wait)
	for len(lats) < n {
		select {
		case at := <-got:
			lats = append(lats, max(0, at.Sub(start)))
		case <-deadline:
			n = len(lats)
		}
	}
	res := LiveResult{Clients: len(ids), Received: len(lats), TaskID: resp.TaskId, Accept: accept}
	res.P50, res.P99, res.Max = percentiles(lats)
	return res, nil
}

// connectAll opens one client per id; each reports the receipt time of the
// first push frame carrying the awaited TaskId.
func (c *Client) connectAll(ctx context.Context, ids []string, got chan<- time.Time, task *atomicString) ([]*websocket.Conn, error) {
	wsBase := "ws" + strings.TrimPrefix(c.cfg.Base, "http")
	conns := make([]*websocket.Conn, len(ids))
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	now := time.Now().Unix()
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, id string) {
			defer func() { <-sem; wg.Done() }()
			sig, err := usersig.Gen(c.cfg.SDKAppID, c.cfg.Key, id, 86400, now)
			if err == nil {
				q := url.Values{"sdkappid": {fmt.Sprint(c.cfg.SDKAppID)}, "identifier": {id}, "usersig": {sig}}
				conns[i], _, err = websocket.Dial(ctx, wsBase+"/v1/connect?"+q.Encode(), nil)
			}
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("connect %s: %w", id, err)
				}
				mu.Unlock()
				return
			}
			go readUntilTask(ctx, conns[i], got, task)
		}(i, id)
	}
	wg.Wait()
	return conns, firstErr
}

func readUntilTask(ctx context.Context, cn *websocket.Conn, got chan<- time.Time, task *atomicString) {
	for {
		_, data, err := cn.Read(ctx)
		if err != nil {
			return
		}
		at := time.Now()
		var f struct{ Type, TaskId string }
		if json.Unmarshal(data, &f) == nil && f.Type == "push" {
			// The push call may not have answered yet; wait for its TaskId.
			for task.get() == "" && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			if f.TaskId == task.get() {
				got <- at
				return
			}
		}
	}
}

type atomicString struct {
	mu sync.Mutex
	s  string
}

func (a *atomicString) set(s string) { a.mu.Lock(); a.s = s; a.mu.Unlock() }
func (a *atomicString) get() string  { a.mu.Lock(); defer a.mu.Unlock(); return a.s }
