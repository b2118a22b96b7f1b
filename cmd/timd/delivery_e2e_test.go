package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"
)

// liveClient is a device connected to /v1/connect, recording every frame.
type liveClient struct {
	id     string
	ws     *websocket.Conn
	mu     sync.Mutex
	frames []map[string]any
	closed websocket.StatusCode // the server's close code once closed (-1: none seen yet)
}

// connect opens a WebSocket for user id with a UserSig made by Tencent's
// official library.
func (p *proc) connect(id string) *liveClient {
	p.t.Helper()
	sig, err := tencentyun.GenUserSig(e2eApp, e2eKey, id, 86400)
	if err != nil {
		p.t.Fatal(err)
	}
	q := url.Values{"sdkappid": {fmt.Sprint(e2eApp)}, "identifier": {id}, "usersig": {sig}}
	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(p.base, "http")+"/v1/connect?"+q.Encode(), nil)
	if err != nil {
		p.t.Fatalf("connect %s: %v", id, err)
	}
	c := &liveClient{id: id, ws: ws, closed: -1}
	p.t.Cleanup(func() { ws.CloseNow() })
	go func() {
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				c.mu.Lock()
				c.closed = websocket.CloseStatus(err)
				c.mu.Unlock()
				return
			}
			var f map[string]any
			if json.Unmarshal(b, &f) == nil {
				c.mu.Lock()
				c.frames = append(c.frames, f)
				c.mu.Unlock()
			}
		}
	}()
	return c
}

// closeCode returns the close code the server sent, -1 while open (or
// when the connection broke without one).
func (c *liveClient) closeCode() websocket.StatusCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// count returns how many frames of type typ carry TaskId task.
func (c *liveClient) count(typ, task string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, f := range c.frames {
		if f["Type"] == typ && f["TaskId"] == task {
			n++
		}
	}
	return n
}

func (c *liveClient) send(t *testing.T, typ, task string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"Type": typ, "TaskId": task})
	if err := c.ws.Write(context.Background(), websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

// settle sends a ping and waits for its pong: every frame queued for the
// connection before the ping has then arrived (they share one queue).
func (c *liveClient) settle(t *testing.T) {
	t.Helper()
	pongs := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		n := 0
		for _, f := range c.frames {
			if f["Type"] == "pong" {
				n++
			}
		}
		return n
	}
	before := pongs()
	if err := c.ws.Write(context.Background(), websocket.MessageText, []byte(`{"Type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.id+"'s pong", func() bool { return pongs() > before })
}

// fanoutHold is the environment of a timd whose fan-outs hold after n
// recipients (the TIMD_TEST_FANOUT_HOLD test hook).
func fanoutHold(n int) []string { return []string{fmt.Sprint("TIMD_TEST_FANOUT_HOLD=", n)} }

// killMidFanout waits until the fan-out of task, held by the test hook at
// hold of total recipients, has saved exactly hold recipients, so that the
// kill lands mid-fan-out for sure. Every client that got the push by then
// must have got it once; those acknowledge it, and once the acks are
// recorded the server is killed with SIGKILL. It returns the clients that
// got the push.
func (p *proc) killMidFanout(t *testing.T, task string, hold, total int, clients []*liveClient) map[string]bool {
	t.Helper()
	if hold <= 0 || hold >= total {
		t.Fatalf("hold %d of %d is not mid-fan-out", hold, total)
	}
	waitFor(t, "the fan-out to hold", func() bool { return p.stats(task)["SentCount"] == float64(hold) })
	got := map[string]bool{}
	for _, c := range clients {
		c.settle(t) // the held chunk's frames were queued before its save
		switch n := c.count("push", task); n {
		case 0:
		case 1:
			got[c.id] = true
			c.send(t, "ack", task)
		default:
			t.Fatalf("%s got the push %d times before the kill", c.id, n)
		}
	}
	if len(got) == 0 || len(got) == len(clients) {
		t.Fatalf("%d of %d clients got the push before the kill; want some on each side of the hold", len(got), len(clients))
	}
	waitFor(t, "the acks to be recorded", func() bool { return p.stats(task)["DeliveredCount"] == float64(len(got)) })
	s := p.stats(task)
	if s["SentCount"] != float64(hold) {
		t.Fatalf("fan-out moved past the hold: %s", js(s))
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	t.Logf("killed mid-fan-out: %v of %d sent, %d of %d clients reached", s["SentCount"], total, len(got), len(clients))
	return got
}

// exactlyOnce reconnects every client id to the restarted p, waits for the
// resumed fan-out of task to finish, and checks that each client has the
// push exactly once across both runs. Those that got and acknowledged it
// before the kill must get no frame of it at all, so a fan-out that
// resumed from the start, or a catch-up that ignored acknowledgements,
// fails here; every other client must get exactly one frame of it, though
// both catch-up and the resumed live pass reach its connection (the hub
// writes a push to a connection once).
func (p *proc) exactlyOnce(t *testing.T, task string, total int, ids []string, before map[string]bool) {
	t.Helper()
	clients := make([]*liveClient, len(ids))
	for i, id := range ids {
		clients[i] = p.connect(id)
	}
	waitFor(t, "the fan-out to resume and finish", func() bool { return p.stats(task)["SentCount"] == float64(total) })
	for _, c := range clients {
		if !before[c.id] {
			waitFor(t, c.id+" receives the push after the restart", func() bool { return c.count("push", task) >= 1 })
		}
		c.settle(t)
		got := c.count("push", task)
		switch {
		case before[c.id] && got != 0:
			t.Errorf("%s acknowledged the push before the kill and received it %d more times", c.id, got)
		case !before[c.id] && got != 1:
			t.Errorf("%s received the push %d times after the restart, want exactly 1", c.id, got)
		}
	}
}

// inbox returns the TaskIds of user id's stored pushes, paging /v1/sync.
func (p *proc) inbox(id string) []string {
	p.t.Helper()
	sig, _ := tencentyun.GenUserSig(e2eApp, e2eKey, id, 86400)
	var out []string
	cursor := "0"
	for {
		q := url.Values{"sdkappid": {fmt.Sprint(e2eApp)}, "identifier": {id}, "usersig": {sig}, "cursor": {cursor}, "limit": {"2"}}
		resp, err := http.Get(p.base + "/v1/sync?" + q.Encode())
		if err != nil {
			p.t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r struct {
			ErrorCode int
			Pushes    []struct{ TaskId string }
			Cursor    json.Number
			Complete  bool
		}
		if err := json.Unmarshal(raw, &r); err != nil || r.ErrorCode != 0 {
			p.t.Fatalf("sync %s: %s", id, raw)
		}
		for _, x := range r.Pushes {
			out = append(out, x.TaskId)
		}
		if r.Complete {
			return out
		}
		cursor = r.Cursor.String()
	}
}

// TestE2EDeliverySequence is issue 4's acceptance sequence against the real
// binary: live clients, a tag push reaching exactly the tagged clients,
// MsgRandom idempotency, batch, revoke, statistics matching what the
// clients saw, and a kill -9 in the middle of a fan-out (held there by a
// test hook) after which every inbox holds the push exactly once and every
// live client has it exactly once across the two runs (see exactlyOnce).
func TestE2EDeliverySequence(t *testing.T) {
	store := t.TempDir()
	flags := append(writeConfig(t, "", nil), "--limits", "off")
	// The fan-out hook holds only fan-outs of more than 10,000 recipients:
	// step 7's.
	p := startEnv(t, store, fanoutHold(10_000), flags...)
	p.importN(10)
	p.want("timpush/add_tag", `{"UserTags":[{"To_Account":"u0","Tags":["gold"]},{"To_Account":"u1","Tags":["gold"]},{"To_Account":"u2","Tags":["gold"]},{"To_Account":"u3","Tags":["gold"]},{"To_Account":"u4","Tags":["gold"]}]}`, 0)

	// 1. Connect live clients, two devices for u0.
	clients := make([]*liveClient, 10)
	for i := range clients {
		clients[i] = p.connect(fmt.Sprint("u", i))
	}
	u0b := p.connect("u0")
	waitFor(t, "presence", func() bool {
		r := p.want("openim/query_online_status", `{"To_Account":["u0","u9"]}`, 0)
		return strings.Count(js(r["QueryResult"]), `"Online"`) == 2
	})

	// 2. Push to a tag audience: exactly the tagged clients receive it.
	push := `{"From_Account":"administrator","MsgRandom":1001,"Condition":{"TagsOr":["gold"]},"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"gold members"}}]}`
	t1 := p.want("timpush/push", push, 0)["TaskId"].(string)
	for i := 0; i < 5; i++ {
		c := clients[i]
		waitFor(t, c.id+" receives the tag push", func() bool { return c.count("push", t1) >= 1 })
	}
	waitFor(t, "u0's second device", func() bool { return u0b.count("push", t1) >= 1 })

	// 3. Repeat with the same MsgRandom: same TaskId, nothing new arrives.
	if again := p.want("timpush/push", push, 0)["TaskId"]; again != t1 {
		t.Fatalf("repeat answered %v, want %s", again, t1)
	}
	time.Sleep(500 * time.Millisecond)
	for i, c := range clients {
		want := 0
		if i < 5 {
			want = 1
		}
		if got := c.count("push", t1); got != want {
			t.Fatalf("%s got the tag push %d times, want %d", c.id, got, want)
		}
	}

	// 4. A batch to two users and an unknown one.
	r := p.want("timpush/batch", `{"From_Account":"administrator","To_Account":["u5","u6","ghost"],"MsgRandom":2002,"DataId":"order-1","OfflinePushInfo":{"Title":"Shipped","Desc":"Your order shipped"}}`, 0)
	b1 := r["TaskId"].(string)
	if js(r["ErrorList"]) != `[{"ErrorCode":70107,"To_Account":"ghost"}]` {
		t.Fatalf("batch ErrorList %s", js(r["ErrorList"]))
	}
	for _, i := range []int{5, 6} {
		c := clients[i]
		waitFor(t, c.id+" receives the batch", func() bool { return c.count("push", b1) == 1 })
	}

	// Clients acknowledge what they got; u0 clicks.
	for i := 0; i < 5; i++ {
		clients[i].send(t, "ack", t1)
	}
	clients[0].send(t, "click", t1)
	clients[5].send(t, "ack", b1)

	// 5. Revoke the tag push: the tagged clients are told to remove it and
	// the stored copies are withdrawn.
	if got := p.inbox("u1"); strings.Join(got, ",") != t1 {
		t.Fatalf("u1's inbox before revoke: %v", got)
	}
	p.want("timpush/revoke", fmt.Sprintf(`{"TaskId":%q,"OfflinePushInfo":{"Title":"Retracted"}}`, t1), 0)
	for i := 0; i < 5; i++ {
		c := clients[i]
		waitFor(t, c.id+" receives the revoke", func() bool { return c.count("revoke", t1) == 1 })
	}
	if got := p.inbox("u1"); len(got) != 0 {
		t.Fatalf("u1's inbox after revoke: %v", got)
	}
	for i := 5; i < 10; i++ {
		if clients[i].count("revoke", t1) != 0 {
			t.Fatalf("%s was told to revoke a push it never got", clients[i].id)
		}
	}

	// 6. Statistics match what the clients saw.
	waitFor(t, "acks to be recorded", func() bool {
		s := p.stats(t1)
		return s["DeliveredCount"] == 5.0 && s["ClickCount"] == 1.0
	})
	if s := p.stats(t1); s["TotalCount"] != 5.0 || s["SentCount"] != 5.0 {
		t.Fatalf("tag push statistics: %s", js(s))
	}
	// The batch's ack may be written by a later flush than the tag push's.
	batchStats := func() reply {
		now := time.Now().Unix()
		return p.want("timpush/normal_push_statistics", fmt.Sprintf(`{"StartTime":%d,"EndTime":%d}`, now-3600, now+60), 0)
	}
	waitFor(t, "the batch ack to be recorded", func() bool { return batchStats()["DeliveredCount"] == 1.0 })
	if r = batchStats(); r["TotalCount"] != 2.0 || r["DeliveredCount"] != 1.0 {
		t.Fatalf("batch statistics: %s", js(r))
	}

	// 7. kill -9 in the middle of a fan-out to everyone: 20,000 accounts
	// (u0..u19999) and the admin (an account, docs/compatibility.md, "UserSig and admins"), held by the test
	// hook after 10,000 recipients. Live clients spread over the audience:
	// u0..u9 (the first ordinals, u0 on two devices) and twenty of the new
	// accounts.
	p.importN(20_000)
	const total, hold = 20_001, 10_000
	ids := make([]string, 0, 30)
	for i := range clients {
		ids = append(ids, clients[i].id)
	}
	live := append([]*liveClient{u0b}, clients...)
	for i := 1; i <= 20; i++ {
		id := fmt.Sprint("u", i*1000-1)
		ids = append(ids, id)
		live = append(live, p.connect(id))
	}
	all := `{"From_Account":"administrator","MsgRandom":3003,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"everyone"}}]}`
	t3 := p.want("timpush/push", all, 0)["TaskId"].(string)
	before := p.killMidFanout(t, t3, hold, total, live)
	if !before["u0"] || u0b.count("push", t3) != 1 {
		t.Fatalf("u0's second device got the push %d times before the kill", u0b.count("push", t3))
	}

	p = start(t, store, flags...)
	p.exactlyOnce(t, t3, total, ids, before)
	// Every inbox holds it exactly once (sampled across the audience).
	for _, id := range []string{"u0", "u5", "u9", "u100", "u9999", "u19999"} {
		got := p.inbox(id)
		n := 0
		for _, x := range got {
			if x == t3 {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%s's inbox holds the push %d times: %v", id, n, got)
		}
	}
	if again := p.want("timpush/push", all, 0)["TaskId"]; again != t3 {
		t.Fatalf("MsgRandom after restart answers %v, want %s", again, t3)
	}
}

// TestE2EDeviceRegistration registers a device over /v1 with the user's
// own UserSig and uses its RegistrationID as a type-1 account in
// attributes, tags and batch.
func TestE2EDeviceRegistration(t *testing.T) {
	p := startApp(t, t.TempDir(), "--limits", "off")
	p.want("im_open_login_svc/account_import", `{"UserID":"alice"}`, 0)
	sig, _ := tencentyun.GenUserSig(e2eApp, e2eKey, "alice", 86400)
	q := url.Values{"sdkappid": {fmt.Sprint(e2eApp)}, "identifier": {"alice"}, "usersig": {sig}}
	resp, err := http.Post(p.base+"/v1/device/register?"+q.Encode(), "application/json", strings.NewReader(`{"Platform":"ios","Token":"apns-token-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		ErrorCode      int
		RegistrationID string
	}
	err = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	if err != nil || reg.ErrorCode != 0 || reg.RegistrationID == "" {
		t.Fatalf("register: %+v %v", reg, err)
	}
	rid := reg.RegistrationID
	p.want("timpush/set_attr_name", `{"AttrNames":{"0":"model"},"AttrTypes":{"0":1}}`, 0)
	// The UserID alice cannot take a RegistrationID attribute: one item
	// error, 90035, naming alice, with a text that names the attribute.
	r := p.want("timpush/set_attr", `{"UserAttrs":[{"To_Account":"`+rid+`","Attrs":{"model":"iPhone"}},{"To_Account":"alice","Attrs":{"model":"x"}}]}`, 0)
	var items []struct {
		ErrorCode  *int
		ErrorInfo  *string
		To_Account string
	}
	if err := json.Unmarshal([]byte(js(r["ErrorList"])), &items); err != nil || len(items) != 1 {
		t.Fatalf("set_attr ErrorList: %s", js(r))
	}
	if it := items[0]; it.ErrorCode == nil || *it.ErrorCode != 90035 || it.To_Account != "alice" ||
		it.ErrorInfo == nil || !strings.Contains(*it.ErrorInfo, "model") {
		t.Fatalf("set_attr ErrorList: %s", js(r))
	}
	p.want("timpush/add_tag", `{"UserTags":[{"To_Account":"`+rid+`","Tags":["ios-device"]}]}`, 0)
	r = p.want("timpush/get_attr", `{"To_Account":["`+rid+`"]}`, 0)
	if js(r["UserAttrs"]) != `[{"Attrs":{"model":"iPhone"},"To_Account":"`+rid+`"}]` {
		t.Fatalf("get_attr: %s", js(r))
	}
	r = p.want("timpush/batch", `{"From_Account":"administrator","To_Account":["`+rid+`"],"MsgRandom":9,"OfflinePushInfo":{"Title":"t","Desc":"d"}}`, 0)
	if r["TaskId"] == "" || r["ErrorList"] != nil {
		t.Fatalf("batch: %s", js(r))
	}
	waitFor(t, "the batch to finish", func() bool {
		now := time.Now().Unix()
		s := p.want("timpush/normal_push_statistics", fmt.Sprintf(`{"StartTime":%d,"EndTime":%d}`, now-3600, now+60), 0)
		return s["TotalCount"] == 1.0
	})
}
