package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"timd/internal/testenv"
	"time"

	"github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"
)

// natsForTest returns TIMD_TEST_NATS and a subject prefix of its own, or
// skips the test without NATS.
func natsForTest(t *testing.T) (string, string) {
	t.Helper()
	return testenv.NATSURL(t), testenv.Prefix("timde2e-")
}

// syncCode calls /v1/sync on p as id with sig and returns the ErrorCode.
func (p *proc) syncCode(id, sig string) int {
	p.t.Helper()
	q := url.Values{"sdkappid": {fmt.Sprint(e2eApp)}, "identifier": {id}, "usersig": {sig}}
	resp, err := http.Get(p.base + "/v1/sync?" + q.Encode())
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r struct{ ErrorCode int }
	if err := json.Unmarshal(raw, &r); err != nil {
		p.t.Fatalf("sync %s on %s: %s", id, p.base, raw)
	}
	return r.ErrorCode
}

// TestE2EThreeNodes runs three timd processes on one PostgreSQL store,
// joined through NATS, as scripts/cluster.sh does: writes and pushes go
// round-robin across the nodes; a tag written through one node is in the
// audience of a push made at once through another; a push through any node reaches every
// client on every node exactly once (a user's devices on different nodes
// each once); presence answers for the whole cluster; a kick through one
// node refuses the old UserSig on the others within a second and closes
// the user's connections there; and a node killed with SIGKILL in the
// middle of a fan-out (held there by TIMD_TEST_FANOUT_HOLD) leaves its
// task to another node, which finishes it with nothing lost or repeated.
func TestE2EThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("three timd processes: not in -short")
	}
	natsURL, prefix := natsForTest(t)
	store := pgStore(t)
	flags := append(writeConfig(t, "", nil), "--limits", "off", "--nats", natsURL, "--nats-prefix", prefix)
	const users, hold = 30, 12
	// Node 0 holds every fan-out of more than `hold` recipients; the
	// others never hold, so they can finish the task node 0 dies holding.
	nodes := []*proc{startEnv(t, store, fanoutHold(hold), flags...), startEnv(t, store, nil, flags...), startEnv(t, store, nil, flags...)}
	// Writes go round-robin: u<i> is imported through node i%3, and its
	// tag written through node (i+1)%3.
	for i := range users {
		nodes[i%3].want("im_open_login_svc/account_import", fmt.Sprintf(`{"UserID":"u%d"}`, i), 0)
	}
	for i := range users {
		nodes[(i+1)%3].want("timpush/add_tag", fmt.Sprintf(`{"UserTags":[{"To_Account":"u%d","Tags":["t%d"]}]}`, i, i%3), 0)
	}

	// Clients: u<i> on node i%3, and u0 on every node (three devices).
	clients := make([]*liveClient, users)
	for i := range clients {
		clients[i] = nodes[i%3].connect(fmt.Sprint("u", i))
	}
	u0 := []*liveClient{clients[0], nodes[1].connect("u0"), nodes[2].connect("u0")}

	// Presence answers for the cluster through any node.
	for _, p := range nodes {
		waitFor(t, "cluster-wide presence through "+p.base, func() bool {
			r := p.want("openim/query_online_status", `{"To_Account":["u0","u1","u2"],"IsNeedDetail":1}`, 0)
			res := js(r["QueryResult"])
			// Three accounts online, and in Detail u0's three devices and the others' one each.
			return strings.Count(res, `"Status":"Online"`) == 3+5 && strings.Count(res, `"Platform"`) == 5
		})
	}

	// Round-robin pushes: push k goes through node k to u0..u8 (clients on
	// all three nodes); every client gets each push exactly once.
	var tasks []string
	for k, p := range nodes {
		body := fmt.Sprintf(`{"From_Account":"administrator","To_Account":["u0","u1","u2","u3","u4","u5","u6","u7","u8"],"MsgRandom":%d,`+
			`"OfflinePushInfo":{"Title":"Hello","Desc":"via node %d"}}`, 5000+k, k)
		tasks = append(tasks, p.want("timpush/batch", body, 0)["TaskId"].(string))
	}
	recipients := append(append([]*liveClient{}, clients[:9]...), u0[1:]...)
	for _, task := range tasks {
		for _, c := range recipients {
			waitFor(t, c.id+" receives "+task, func() bool { return c.count("push", task) >= 1 })
		}
	}
	for _, c := range append(recipients, clients[9:]...) {
		c.settle(t)
		for _, task := range tasks {
			want := 0
			if c.id < "u9" && len(c.id) == 2 {
				want = 1
			}
			if got := c.count("push", task); got != want {
				t.Errorf("%s got %s %d times, want %d", c.id, task, got, want)
			}
		}
	}

	// A tag written through one node is in the audience of a push made at
	// once through another (the pushing node waits for its index to reach
	// the store's change sequence).
	nodes[1].want("timpush/add_tag", `{"UserTags":[{"To_Account":"u4","Tags":["fresh"]},{"To_Account":"u9","Tags":["fresh"]}]}`, 0)
	fresh := nodes[2].want("timpush/push", `{"From_Account":"administrator","MsgRandom":5100,"Condition":{"TagsOr":["fresh"]},`+
		`"OfflinePushInfo":{"Title":"fresh"}}`, 0)["TaskId"].(string)
	for _, c := range []*liveClient{clients[4], clients[9]} {
		waitFor(t, c.id+" receives the push to a tag written through another node", func() bool { return c.count("push", fresh) >= 1 })
	}
	if s := nodes[2].stats(fresh); s["TotalCount"] != 2.0 {
		t.Fatalf("push to a fresh tag: %s, want TotalCount 2", js(s))
	}

	// A revoke through another node reaches the clients on every node.
	nodes[1].want("timpush/revoke", fmt.Sprintf(`{"TaskId":%q}`, tasks[0]), 0)
	for _, c := range recipients {
		waitFor(t, c.id+" is told to revoke", func() bool { return c.count("revoke", tasks[0]) == 1 })
	}

	// Kick: u3 (connected to node 0) holds a sig that every node has
	// accepted and cached; a kick through node 1 must refuse it on every
	// node within a second, and close its connection on node 0.
	sig, err := tencentyun.GenUserSig(e2eApp, e2eKey, "u3", 86400)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range nodes {
		if code := p.syncCode("u3", sig); code != 0 {
			t.Fatalf("u3's sig before the kick on %s: %d", p.base, code)
		}
	}
	time.Sleep(1100 * time.Millisecond) // the kick must postdate the sig's second
	nodes[1].want("im_open_login_svc/kick", `{"UserID":"u3"}`, 0)
	kicked := time.Now()
	for _, p := range []*proc{nodes[0], nodes[2]} {
		for p.syncCode("u3", sig) != 70052 {
			if time.Since(kicked) > time.Second {
				t.Fatalf("node %s still accepts u3's old sig %v after the kick through another node", p.base, time.Since(kicked))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("kick enforced on the other nodes %v after the kick answered", time.Since(kicked))
	waitFor(t, "u3's connection on node 0 to close with 4001", func() bool { return clients[3].closeCode() == 4001 })
	time.Sleep(1100 * time.Millisecond) // a sig made in a later second than the kick works again
	newSig, _ := tencentyun.GenUserSig(e2eApp, e2eKey, "u3", 86400)
	if code := nodes[2].syncCode("u3", newSig); code != 0 {
		t.Fatalf("a sig made after the kick: %d", code)
	}

	// SIGKILL mid-fan-out: a push to everyone through node 0 holds after
	// `hold` recipients; the clients that got it by then acknowledge it,
	// node 0 dies, and node 1 or 2 takes the task over once its lease
	// runs out. Every client ends with the push exactly once: those of
	// node 0 reconnect to node 1 and catch up.
	live := append(append([]*liveClient{}, clients[:3]...), clients[4:]...) // u3 was kicked
	live = append(live, u0[1:]...)
	all := nodes[0].want("timpush/push", `{"From_Account":"administrator","MsgRandom":6000,`+
		`"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"everyone"}}]}`, 0)["TaskId"].(string)
	total := nodes[0].stats(all)["TotalCount"].(float64)
	waitFor(t, "the fan-out to hold", func() bool { return nodes[0].stats(all)["SentCount"] == float64(hold) })
	before := map[*liveClient]bool{}
	for _, c := range live {
		c.settle(t)
		switch n := c.count("push", all); n {
		case 0:
		case 1:
			before[c] = true
			c.send(t, "ack", all)
		default:
			t.Fatalf("%s got the push %d times before the kill", c.id, n)
		}
	}
	if len(before) == 0 || len(before) == len(live) {
		t.Fatalf("%d of %d clients got the push before the kill; want some on each side of the hold", len(before), len(live))
	}
	acked := map[string]bool{}
	for c := range before {
		acked[c.id] = true
	}
	waitFor(t, "the acks to be recorded", func() bool { return nodes[0].stats(all)["DeliveredCount"] == float64(len(acked)) })
	nodes[0].kill()
	killed := time.Now()
	waitFor(t, "another node to take the fan-out over and finish it", func() bool {
		return nodes[1].stats(all)["SentCount"] == total
	})
	t.Logf("takeover: the fan-out finished %v after the kill (lease 30 s)", time.Since(killed).Round(time.Millisecond))
	// Node 0's clients reconnect to node 1. A device that stayed connected
	// has the push exactly once; a reconnected one has it once unless its
	// account acknowledged it before the kill (then catch-up owes it nothing
	// and the resumed fan-out starts after it).
	final := map[*liveClient]int{}
	for _, c := range live {
		if c == clients[0] || c.id != "u0" && strings.TrimPrefix(c.id, "u") != "" && atoi(c.id[1:])%3 == 0 {
			want := 1
			if acked[c.id] {
				want = 0
			}
			final[nodes[1].connect(c.id)] = want
			continue
		}
		final[c] = 1
	}
	for c, want := range final {
		if want == 1 {
			waitFor(t, c.id+" has the push after the takeover", func() bool { return c.count("push", all) >= 1 })
		}
		c.settle(t)
		if got := c.count("push", all); got != want {
			t.Errorf("%s has the push %d times, want %d", c.id, got, want)
		}
	}
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}
