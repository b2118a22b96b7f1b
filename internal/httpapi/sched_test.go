package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"timd/internal/im"
	"timd/internal/service"
)

func (e *env) at(d time.Duration) string {
	return e.clock.Now().Add(d).UTC().Format(service.SchedTimeLayout)
}

// schedBody is an add_sched_task body for app A.
func schedBody(typ, at, content string) string {
	return fmt.Sprintf(`{"Sdkappid":%d,"Type":"%s","SchedAt":"%s","Content":%s}`, appA.SDKAppID, typ, at, content)
}

// waitSched waits until scheduled task id reaches status, then reads it
// once through get_sched_task. The wait polls the store, not the API:
// get_sched_task allows 5 calls a second when limits are on, so polling
// it would fail with 60007 whenever the scheduler took longer than the
// burst to fire (TestSchedLifecycle did, about one run in ten).
func (e *env) waitSched(id float64, status string) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := e.store.Sched(context.Background(), appA.SDKAppID, int64(id))
		if err != nil {
			e.t.Fatalf("scheduled task %v: %v", id, err)
		}
		if string(st.Status) == status {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("scheduled task %v: status %v, want %s", id, st.Status, status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := e.call("timpush/get_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":%v}`, appA.SDKAppID, id))
	wantCode(e.t, r, 0)
	info := r["TaskInfo"].(map[string]any)
	if info["Status"] != status {
		e.t.Fatalf("scheduled task %v: store says %s, get_sched_task says %v", id, status, info["Status"])
	}
	return info
}

func TestSchedErrors(t *testing.T) {
	e := newEnv(t, envOpts{})
	setupPush(t, e, 2)
	note := `{"OfflinePushInfo":{"Title":"T","Desc":"D"}}`
	for _, c := range []struct {
		name, body string
		code       int
	}{
		{"not JSON", `{`, im.CodePushJSON},
		{"Sdkappid missing", `{"Type":"All","SchedAt":"` + e.at(time.Hour) + `","Content":` + note + `}`, im.CodeSchedInvalid},
		{"Sdkappid of another app", strings.Replace(schedBody("All", e.at(time.Hour), note), fmt.Sprint(appA.SDKAppID), fmt.Sprint(appB.SDKAppID), 1), im.CodeSchedInvalid},
		{"Type unknown", schedBody("Everyone", e.at(time.Hour), note), im.CodeSchedInvalid},
		{"SchedAt malformed", schedBody("All", "2030-01-01T00:00:00Z", note), im.CodeSchedInvalid},
		{"SchedAt in the past", schedBody("All", e.at(-time.Minute), note), im.CodeSchedInvalid},
		{"Content missing", fmt.Sprintf(`{"Sdkappid":%d,"Type":"All","SchedAt":"%s"}`, appA.SDKAppID, e.at(time.Hour)), im.CodeSchedInvalid},
		{"Tag without Condition", schedBody("Tag", e.at(time.Hour), note), im.CodeSchedInvalid},
		{"All with Condition", schedBody("All", e.at(time.Hour), `{"Condition":{"TagsOr":["even"]},"OfflinePushInfo":{"Title":"x"}}`), im.CodeSchedInvalid},
		{"User without To_Account", schedBody("User", e.at(time.Hour), note), im.CodePushJSON},
		{"content error keeps its code", schedBody("Tag", e.at(time.Hour), `{"Condition":{"TagsOr":[""]},"OfflinePushInfo":{"Title":"x"}}`), im.CodeEmptyTag},
		{"content MsgLifeTime", schedBody("All", e.at(time.Hour), `{"MsgLifeTime":604801,"OfflinePushInfo":{"Title":"x"}}`), im.CodeMsgLifeTime},
	} {
		t.Run(c.name, func(t *testing.T) { wantCode(t, e.call("timpush/add_sched_task", c.body), c.code) })
	}
	list := func(extra string) int {
		return e.call("timpush/list_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"Want":10%s}`, appA.SDKAppID, extra)).code()
	}
	for _, c := range []struct {
		extra string
		code  int
	}{
		{`,"Offset":-1`, im.CodeSchedInvalid},
		{`,"OrderBy":"name"`, im.CodeSchedInvalid},
		{`,"BeginTime":"2030-01-01 00:00:00"`, im.CodeSchedInvalid},
		{`,"BeginTime":"2030-01-02 00:00:00","EndTime":"2030-01-01 00:00:00"`, im.CodeSchedInvalid},
		{`,"OrderBy":"SCHEDAT"`, 0},
		{`,"BeginTime":"2030-01-01 00:00:00","EndTime":"2030-01-01 00:00:00"`, 0}, // a one-second window
	} {
		if got := list(c.extra); got != c.code {
			t.Errorf("list_sched_task %s: code %d, want %d", c.extra, got, c.code)
		}
	}
	wantCode(t, e.call("timpush/list_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"Want":0}`, appA.SDKAppID)), im.CodeSchedInvalid)
	wantCode(t, e.call("timpush/get_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":12345}`, appA.SDKAppID)), im.CodeSchedInvalid)
	r := e.call("timpush/delete_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":12345,"Type":"All"}`, appA.SDKAppID))
	wantCode(t, r, im.CodeSchedInvalid)
	if r["TaskID"] != 0.0 {
		t.Errorf("failed delete answers TaskID %v, want 0", r["TaskID"])
	}
	// delete_sched_task's Type is optional; when given it must be the task's.
	for _, c := range []struct {
		typ  string // "" leaves Type out
		code int
	}{{`"Tag"`, im.CodeSchedInvalid}, {`""`, im.CodeSchedInvalid}, {`"All"`, 0}, {"", 0}} {
		r := e.call("timpush/add_sched_task", schedBody("All", e.at(time.Hour), note))
		wantCode(t, r, 0)
		id := r["TaskID"]
		typ := ""
		if c.typ != "" {
			typ = `,"Type":` + c.typ
		}
		r = e.call("timpush/delete_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":%v%s}`, appA.SDKAppID, id, typ))
		wantCode(t, r, c.code)
		_, err := e.store.Sched(context.Background(), appA.SDKAppID, int64(id.(float64)))
		if deleted := err != nil; deleted != (c.code == 0) {
			t.Errorf("delete with Type %s: code %d, task deleted %v", c.typ, c.code, deleted)
		}
	}
}

// TestSchedLifecycle adds, reads, lists, modifies and deletes tasks, and
// checks that a task fires on time (fake clock) and then cannot change.
func TestSchedLifecycle(t *testing.T) {
	e := newEnv(t, envOpts{limits: true})
	setupPush(t, e, 4)
	ctx := context.Background()
	r := e.call("timpush/add_sched_task", schedBody("Tag", e.at(time.Hour),
		`{"Condition":{"TagsAnd":["even"]},"OfflinePushInfo":{"Title":"Gold week","Desc":"Starts now"}}`))
	wantCode(t, r, 0)
	tag := r["TaskID"].(float64)
	r = e.call("timpush/add_sched_task", schedBody("User", e.at(2*time.Hour),
		`{"From_Account":"ops","To_Account":["u1","u3"],"MsgRandom":5,"OfflinePushInfo":{"Title":"Parcel","Desc":"Shipped"}}`))
	wantCode(t, r, 0)
	user := r["TaskID"].(float64)
	r = e.call("timpush/get_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":%v}`, appA.SDKAppID, tag))
	info := r["TaskInfo"].(map[string]any)
	if info["Status"] != "pending" || info["Type"] != "Tag" || info["Title"] != "Gold week" || info["Desc"] != "Starts now" ||
		info["SchedAt"] != e.at(time.Hour) || info["Sdkappid"] != float64(appA.SDKAppID) || info["PushTaskID"] != "" ||
		jsonOf(info["Content"]) != `{"Condition":{"TagsAnd":["even"]},"From_Account":"administrator","OfflinePushInfo":{"Desc":"Starts now","Title":"Gold week"}}` {
		t.Errorf("TaskInfo = %s", jsonOf(info))
	}
	r = e.call("timpush/list_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"Offset":0,"Want":1,"OrderBy":"schedAt","Asc":true,"Keyword":"a"}`, appA.SDKAppID))
	if r["Total"] != 2.0 || len(r["Tasks"].([]any)) != 1 || r["Tasks"].([]any)[0].(map[string]any)["TaskID"] != tag {
		t.Errorf("list = %s", jsonOf(r))
	}
	// Modify: Type must match; SchedAt and Content replace.
	wantCode(t, e.call("timpush/modify_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":%v,"Type":"All","SchedAt":"%s"}`, appA.SDKAppID, tag, e.at(time.Minute))), im.CodeSchedInvalid)
	wantCode(t, e.call("timpush/modify_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":%v,"Type":"Tag"}`, appA.SDKAppID, tag)), im.CodeSchedInvalid)
	r = e.call("timpush/modify_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":%v,"Type":"Tag","SchedAt":"%s"}`, appA.SDKAppID, tag, e.at(time.Minute)))
	wantCode(t, r, 0)
	if r["TaskID"] != tag {
		t.Errorf("modify answers TaskID %v", r["TaskID"])
	}
	// Delete the user task.
	r = e.call("timpush/delete_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":%v,"Type":"User"}`, appA.SDKAppID, user))
	wantCode(t, r, 0)
	if r["TaskID"] != user {
		t.Errorf("delete answers TaskID %v", r["TaskID"])
	}
	// Not yet due.
	e.clock.Advance(59 * time.Second)
	time.Sleep(50 * time.Millisecond)
	if n, _ := e.store.CountTasks(ctx, appA.SDKAppID, 0); n != 0 {
		t.Fatalf("fired %d pushes before its time", n)
	}
	e.clock.Advance(time.Second)
	info = e.waitSched(tag, "dispatched")
	pushID := info["PushTaskID"].(string)
	if info["DispatchSuccess"] != 1.0 || pushID == "" {
		t.Fatalf("dispatched task = %s", jsonOf(info))
	}
	tk := e.waitDone(pushID)
	if tk.Total != 2 || tk.From != "administrator" || tk.Kind != im.PushCondition {
		t.Errorf("scheduled push = %+v", tk)
	}
	// Dispatched: no more changes (90107).
	wantCode(t, e.call("timpush/modify_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":%v,"Type":"Tag","SchedAt":"%s"}`, appA.SDKAppID, tag, e.at(time.Hour))), im.CodeSchedNotPending)
	wantCode(t, e.call("timpush/delete_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":%v,"Type":"Tag"}`, appA.SDKAppID, tag)), im.CodeSchedNotPending)
	// The statistics know the scheduled push.
	now := e.clock.Now().Unix()
	r = e.call("timpush/all_member_push_statistics", fmt.Sprintf(`{"StartTime":%d,"EndTime":%d,"TaskID":["%s"]}`, now-10, now+10, pushID))
	if res := r["Results"].([]any)[0].(map[string]any); res["TotalCount"] != 2.0 {
		t.Errorf("statistics of the scheduled push = %s", jsonOf(res))
	}
}

// TestSchedQuotaFailure: a scheduled push over the daily quota fails with
// the quota's code in DispatchErr.
func TestSchedQuotaFailure(t *testing.T) {
	e := newEnv(t, envOpts{limits: true, quotas: map[string]int64{"push_per_day": 1}})
	setupPush(t, e, 2)
	day := e.clock.Now().UTC().Truncate(24 * time.Hour)
	e.clock.Advance(day.Add(25 * time.Hour).Sub(e.clock.Now()))
	e.pushOK("timpush/push", `{"MsgRandom":1,"OfflinePushInfo":{"Title":"x"}}`)
	r := e.call("timpush/add_sched_task", schedBody("All", e.at(time.Minute), `{"OfflinePushInfo":{"Title":"late"}}`))
	wantCode(t, r, 0)
	e.clock.Advance(time.Minute)
	info := e.waitSched(r["TaskID"].(float64), "failed")
	if !strings.HasPrefix(info["DispatchErr"].(string), "90047") || info["DispatchSuccess"] != 0.0 {
		t.Errorf("failed task = %s", jsonOf(info))
	}
}
