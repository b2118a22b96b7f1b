package crashtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"timd/internal/usersig"
)

// liveClient is one device on /v1/connect. It records every push frame
// it receives, across reconnects, and acknowledges them when ack is set.
type liveClient struct {
	id  string
	ack bool

	mu     sync.Mutex
	ws     *websocket.Conn
	conn   int            // connections made so far
	frames []pushFrame    // every push frame, in order of receipt
	byTask map[string]int // push frames per TaskId
}

type pushFrame struct {
	task string
	conn int // 1 before the kill, 2 after the restart
}

// connect opens a new connection with the account's own UserSig and
// starts reading it.
func (c *liveClient) connect(ctx context.Context, base string, app appCreds) error {
	sig, err := usersig.Gen(app.id, app.key, c.id, 86400, time.Now().Unix())
	if err != nil {
		return err
	}
	q := url.Values{"sdkappid": {fmt.Sprint(app.id)}, "identifier": {c.id}, "usersig": {sig}}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/connect?"+q.Encode(), nil)
	if err != nil {
		return fmt.Errorf("connect %s: %w", c.id, err)
	}
	c.mu.Lock()
	c.ws = ws
	c.conn++
	gen := c.conn
	if c.byTask == nil {
		c.byTask = map[string]int{}
	}
	c.mu.Unlock()
	go c.read(ctx, ws, gen)
	return nil
}

func (c *liveClient) read(ctx context.Context, ws *websocket.Conn, gen int) {
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return
		}
		var f struct{ Type, TaskId string }
		if json.Unmarshal(data, &f) != nil || f.Type != "push" {
			continue
		}
		c.mu.Lock()
		c.frames = append(c.frames, pushFrame{f.TaskId, gen})
		c.byTask[f.TaskId]++
		c.mu.Unlock()
		if c.ack {
			b, _ := json.Marshal(map[string]string{"Type": "ack", "TaskId": f.TaskId})
			_ = ws.Write(ctx, websocket.MessageText, b)
		}
	}
}

// close drops the connection.
func (c *liveClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ws != nil {
		c.ws.CloseNow()
		c.ws = nil
	}
}

// received returns how many push frames of task arrived in all and on
// connection gen.
func (c *liveClient) received(task string, gen int) (all, onGen int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.frames {
		if f.task == task {
			all++
			if f.conn == gen {
				onGen++
			}
		}
	}
	return all, onGen
}

// tasks returns the push frames per TaskId.
func (c *liveClient) tasks() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.byTask))
	for k, v := range c.byTask {
		out[k] = v
	}
	return out
}

// inbox returns the TaskIds of id's stored pushes, paging /v1/sync.
func inbox(ctx context.Context, base string, app appCreds, id string) ([]string, error) {
	sig, err := usersig.Gen(app.id, app.key, id, 86400, time.Now().Unix())
	if err != nil {
		return nil, err
	}
	var out []string
	cursor := "0"
	for range 1000 {
		q := url.Values{"sdkappid": {fmt.Sprint(app.id)}, "identifier": {id}, "usersig": {sig},
			"cursor": {cursor}, "limit": {"200"}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/sync?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("sync %s: %w", id, err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("sync %s: %w", id, err)
		}
		var page struct {
			ErrorCode int
			Pushes    []struct{ TaskId string }
			Cursor    json.Number
			Complete  bool
		}
		if err := json.Unmarshal(raw, &page); err != nil || page.ErrorCode != 0 {
			return nil, fmt.Errorf("sync %s: %.300s", id, raw)
		}
		for _, p := range page.Pushes {
			out = append(out, p.TaskId)
		}
		if page.Complete {
			return out, nil
		}
		cursor = page.Cursor.String()
	}
	return nil, fmt.Errorf("sync %s: no end after 1000 pages", id)
}
