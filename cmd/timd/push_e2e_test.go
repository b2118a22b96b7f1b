package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"timd/internal/im"
	"timd/internal/store/sqlite"
)

// writeConfig writes a config file for the e2e app with callback URL and
// quotas, and returns the flags that use it.
func writeConfig(t *testing.T, callback string, quotas map[string]int64) []string {
	t.Helper()
	cfg := map[string]any{"apps": []map[string]any{{"sdkappid": e2eApp, "secret_key": e2eKey,
		"admins": []string{e2eAdmin}, "callback_url": callback, "quotas": quotas}}}
	b, _ := json.Marshal(cfg)
	path := filepath.Join(t.TempDir(), "timd.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--config", path}
}

// importN imports u0..u(n-1) with 8 concurrent clients.
func (p *proc) importN(n int) {
	p.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w * 100; i < n; i += 800 {
				var ids []string
				for j := i; j < min(i+100, n); j++ {
					ids = append(ids, fmt.Sprintf(`"u%d"`, j))
				}
				r, err := p.try("im_open_login_svc/multiaccount_import", `{"Accounts":[`+strings.Join(ids, ",")+`]}`)
				if err == nil && r.code() != 0 {
					err = fmt.Errorf("import: %v", r)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		p.t.Fatal(err)
	}
}

// stats returns the all_member_push_statistics result of one task.
func (p *proc) stats(id string) map[string]any {
	p.t.Helper()
	now := time.Now().Unix()
	r := p.want("timpush/all_member_push_statistics", fmt.Sprintf(`{"StartTime":%d,"EndTime":%d,"TaskID":["%s"]}`, now-3600, now+60, id), 0)
	return r["Results"].([]any)[0].(map[string]any)
}

// callbackServer is an app's callback endpoint speaking the real protocol.
type callbackServer struct {
	*httptest.Server
	mu     sync.Mutex
	events map[string]map[string]int // TaskId → To_Account → events
}

func newCallbackServer(t *testing.T) *callbackServer {
	cs := &callbackServer{events: map[string]map[string]int{}}
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Events []struct {
				CallbackCommand, TaskId, To_Account string
				EventType                           int
			}
		}
		if r.URL.Query().Get("CallbackCommand") != "Push.AllMemberPush" || json.NewDecoder(r.Body).Decode(&body) != nil || len(body.Events) > 100 {
			t.Errorf("bad callback %s", r.URL)
		}
		cs.mu.Lock()
		for _, e := range body.Events {
			if cs.events[e.TaskId] == nil {
				cs.events[e.TaskId] = map[string]int{}
			}
			cs.events[e.TaskId][e.To_Account]++
		}
		cs.mu.Unlock()
		_, _ = w.Write([]byte(`{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}`))
	}))
	t.Cleanup(cs.Close)
	return cs
}

func (cs *callbackServer) count(task string) int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.events[task])
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestE2EPush drives every new push endpoint of the real binary.
func TestE2EPush(t *testing.T) {
	cb := newCallbackServer(t)
	p := start(t, t.TempDir(), append(writeConfig(t, cb.URL, nil), "--limits", "off")...)
	p.importN(10)
	p.want("timpush/add_tag", `{"UserTags":[{"To_Account":"u1","Tags":["vip"]},{"To_Account":"u2","Tags":["vip"]}]}`, 0)

	msgPush := p.want("timpush/push", `{"From_Account":"ops","MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}`, 0)["TaskId"].(string)
	tagPush := p.want("timpush/push", `{"MsgRandom":2,"Condition":{"TagsOr":["vip"]},"OfflinePushInfo":{"Title":"VIP"}}`, 0)["TaskId"].(string)
	if again := p.want("timpush/push", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}`, 0)["TaskId"]; again != msgPush {
		t.Fatalf("MsgRandom repeat: %v, want %s", again, msgPush)
	}
	p.want("timpush/push", `{"MsgRandom":3}`, 90001)
	p.want("timpush/push", `{"MsgBody":[]}`, 90005)
	r := p.want("timpush/batch", `{"From_Account":"ops","To_Account":["u3","ghost"],"MsgRandom":4,"DataId":"d1","OfflinePushInfo":{"Title":"x"}}`, 0)
	batch := r["TaskId"].(string)
	if !strings.HasPrefix(batch, "batch_") || js(r["ErrorList"]) != `[{"ErrorCode":70107,"To_Account":"ghost"}]` {
		t.Fatalf("batch: %s", js(r))
	}
	legacy := p.want("all_member_push/im_push", `{"MsgRandom":5,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"old"}}]}`, 0)["TaskId"].(string)
	p.want("all_member_push/im_push", `{"MsgRandom":6}`, 90002)

	// Everyone is the 10 accounts and the admin (an account, docs/compatibility.md, "UserSig and admins").
	waitFor(t, "statistics of the message push", func() bool { return p.stats(msgPush)["SentCount"] == 11.0 })
	if s := p.stats(tagPush); s["TotalCount"] != 2.0 {
		t.Errorf("tag push statistics: %s", js(s))
	}
	now := time.Now().Unix()
	win := fmt.Sprintf(`"StartTime":%d,"EndTime":%d`, now-60, now+60)
	r = p.want("timpush/normal_push_statistics", `{`+win+`}`, 0)
	if r["TotalCount"] != 1.0 {
		t.Errorf("normal statistics: %s", js(r))
	}
	p.want("timpush/all_member_push_loss", `{`+win+`,"TaskID":["`+legacy+`"]}`, 0)
	p.want("timpush/normal_push_loss", `{`+win+`}`, 0)
	r = p.want("timpush/all_member_push_trace", `{"TaskID":"`+tagPush+`","UserID":"u1"}`, 0)
	if len(r["InstanceTrace"].([]any)) != 1 {
		t.Errorf("trace: %s", js(r))
	}
	r = p.want("timpush/normal_push_trace", `{"PushID":"`+batch+`"}`, 0)
	if len(r["InstanceTrace"].([]any)) != 1 {
		t.Errorf("normal trace: %s", js(r))
	}

	// Webhooks reach the callback URL.
	waitFor(t, "webhook events", func() bool { return cb.count(msgPush) == 11 && cb.count(batch) == 1 })

	// Revoke.
	p.want("timpush/revoke", `{"TaskId":"`+msgPush+`"}`, 90053)
	p.want("timpush/revoke", `{"TaskId":"`+msgPush+`","OfflinePushInfo":{"Title":"withdrawn"}}`, 0)
	p.want("timpush/revoke", `{"TaskId":"`+msgPush+`","OfflinePushInfo":{"Title":"withdrawn"}}`, 90050)
	p.want("timpush/revoke", `{"TaskId":"nope"}`, 90049)

	// Scheduled tasks.
	at := time.Now().UTC().Add(2 * time.Second).Format("2006-01-02 15:04:05")
	r = p.want("timpush/add_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"Type":"Tag","SchedAt":"%s","Content":{"Condition":{"TagsOr":["vip"]},"OfflinePushInfo":{"Title":"Gold","Desc":"week"}}}`, e2eApp, at), 0)
	sched := r["TaskID"].(float64)
	later := time.Now().UTC().Add(time.Hour).Format("2006-01-02 15:04:05")
	r = p.want("timpush/add_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"Type":"User","SchedAt":"%s","Content":{"To_Account":["u1"],"OfflinePushInfo":{"Title":"u"}}}`, e2eApp, later), 0)
	user := r["TaskID"].(float64)
	p.want("timpush/modify_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":%v,"Type":"User","Content":{"To_Account":["u2"],"OfflinePushInfo":{"Title":"v"}}}`, e2eApp, user), 0)
	r = p.want("timpush/list_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"Offset":0,"Want":10,"OrderBy":"createAt","Asc":true}`, e2eApp), 0)
	if r["Total"] != 2.0 {
		t.Errorf("list: %s", js(r))
	}
	p.want("timpush/delete_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":%v,"Type":"User"}`, e2eApp, user), 0)
	var info map[string]any
	waitFor(t, "the scheduled push", func() bool {
		info = p.want("timpush/get_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":%v}`, e2eApp, sched), 0)["TaskInfo"].(map[string]any)
		return info["Status"] == "dispatched"
	})
	if s := p.stats(info["PushTaskID"].(string)); s["TotalCount"] != 2.0 {
		t.Errorf("scheduled push statistics: %s", js(s))
	}
	p.want("timpush/delete_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":%v,"Type":"Tag"}`, e2eApp, sched), 90107)
	p.stop()
}

// TestE2EPushKill9 pushes to 50,000 accounts, kills the server with
// SIGKILL in the middle of the fan-out (held there after 20,000 recipients
// by the TIMD_TEST_FANOUT_HOLD test hook), restarts it and checks that the
// fan-out completes exactly once: statistics show every recipient sent
// once, each of 25 live clients spread over the audience has the push
// exactly once across the two runs (one that acknowledged before the kill
// gets no repeat at all), the store holds one task row in state
// Done, and the MsgRandom still answers the same TaskId.
func TestE2EPushKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 50,000 accounts")
	}
	const n, hold = 50_000, 20_000
	store := t.TempDir()
	flags := append(writeConfig(t, "", nil), "--limits", "off")
	p := startEnv(t, store, fanoutHold(hold), flags...)
	p.importN(n)
	var ids []string
	var clients []*liveClient
	for i := range 25 {
		id := fmt.Sprint("u", i*2000+1999)
		ids = append(ids, id)
		clients = append(clients, p.connect(id))
	}
	body := `{"MsgRandom":777,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"to everyone"}}]}`
	id := p.want("timpush/push", body, 0)["TaskId"].(string)
	// Everyone is the n accounts and the admin (an account, docs/compatibility.md, "UserSig and admins").
	before := p.killMidFanout(t, id, hold, n+1, clients)

	p = start(t, store, flags...)
	p.exactlyOnce(t, id, n+1, ids, before)
	s := p.stats(id)
	if s["TotalCount"] != float64(n+1) || s["SentCount"] != float64(n+1) {
		t.Fatalf("after restart: %s", js(s))
	}
	if again := p.want("timpush/push", body, 0)["TaskId"]; again != id {
		t.Fatalf("MsgRandom after restart answers %v, want %s", again, id)
	}
	p.stop()

	st, err := sqlite.Open(context.Background(), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	tk, err := st.Task(ctx, e2eApp, id)
	if err != nil || tk.State != im.TaskDone || tk.Total != n+1 {
		t.Fatalf("task after restart: state %d total %d, %v", tk.State, tk.Total, err)
	}
	if un, _ := st.UnfinishedTasks(ctx); len(un) != 0 {
		t.Errorf("%d unfinished tasks", len(un))
	}
	if k, _ := st.CountTasks(ctx, e2eApp, 0); k != 1 {
		t.Errorf("%d task rows, want 1 (one row per push, none per recipient)", k)
	}
	stored, err := st.StoredHeads(ctx, e2eApp, 0, time.Now().Unix(), 10)
	if err != nil || len(stored) != 1 || stored[0].ID != id {
		t.Errorf("stored copies: %d, %v; want the one task once", len(stored), err)
	}
}
