package httpapi_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"timd/internal/im"
)

const msg = `"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hello"}}]`

// setupPush imports n accounts u0..u(n-1) of app A and tags the even ones
// "even", and names attribute slot 0 "city".
func setupPush(t *testing.T, e *env, n int) {
	t.Helper()
	wantCode(t, e.call("timpush/set_attr_name", `{"AttrNames":{"0":"city"}}`), 0)
	for i := 0; i < n; i += 100 {
		var ids []string
		for j := i; j < min(i+100, n); j++ {
			ids = append(ids, fmt.Sprintf(`"u%d"`, j))
		}
		wantCode(t, e.call("im_open_login_svc/multiaccount_import", `{"Accounts":[`+strings.Join(ids, ",")+`]}`), 0)
	}
	var items []string
	for i := 0; i < min(n, 100); i += 2 {
		items = append(items, fmt.Sprintf(`{"To_Account":"u%d","Tags":["even"]}`, i))
	}
	wantCode(t, e.call("timpush/add_tag", `{"UserTags":[`+strings.Join(items, ",")+`]}`), 0)
}

var taskIDRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// pushOK pushes body and returns the TaskId.
func (e *env) pushOK(cmd, body string) string {
	e.t.Helper()
	r := e.call(cmd, body)
	wantCode(e.t, r, 0)
	id, _ := r["TaskId"].(string)
	if !taskIDRE.MatchString(id) {
		e.t.Fatalf("TaskId %q is not [A-Za-z0-9_]{1,64}", id)
	}
	return id
}

// task reads a task from the store.
func (e *env) task(id string) im.PushTask {
	e.t.Helper()
	t, err := e.store.Task(context.Background(), appA.SDKAppID, id)
	if err != nil {
		e.t.Fatalf("Task(%s): %v", id, err)
	}
	return t
}

// waitDone waits until the engine has finished task id.
func (e *env) waitDone(id string) im.PushTask {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		t := e.task(id)
		if t.Finished() {
			return t
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("task %s still in state %d", id, t.State)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPushErrors is the table of every request error of push, im_push and
// batch, through the real router on the real store.
func TestPushErrors(t *testing.T) {
	e := newEnv(t, envOpts{limits: true, quotas: map[string]int64{"push_interval_ms": 0}})
	setupPush(t, e, 4)
	long := func(n int) string { return strings.Repeat("x", n) }
	tags := func(n int) string {
		var s []string
		for i := range n {
			s = append(s, fmt.Sprintf(`"t%d"`, i))
		}
		return strings.Join(s, ",")
	}
	for _, c := range []struct {
		name, cmd, body string
		code            int
	}{
		{"not JSON", "timpush/push", `{"MsgRandom":1,`, im.CodePushJSON},
		{"not an object", "timpush/push", `[1]`, im.CodePushJSON},
		{"null", "timpush/push", `null`, im.CodePushJSON},
		{"MsgRandom missing", "timpush/push", `{` + msg + `}`, im.CodeMsgRandom},
		{"MsgRandom null", "timpush/push", `{"MsgRandom":null,` + msg + `}`, im.CodeMsgRandom},
		{"MsgRandom string", "timpush/push", `{"MsgRandom":"12",` + msg + `}`, im.CodeMsgRandom},
		{"MsgRandom fraction", "timpush/push", `{"MsgRandom":1.5,` + msg + `}`, im.CodeMsgRandom},
		{"MsgRandom negative", "timpush/push", `{"MsgRandom":-1,` + msg + `}`, im.CodeMsgRandom},
		{"MsgRandom over uint32", "timpush/push", `{"MsgRandom":4294967296,` + msg + `}`, im.CodeMsgRandom},
		{"neither MsgBody nor OfflinePushInfo", "timpush/push", `{"MsgRandom":1}`, im.CodePushJSON},
		{"MsgBody object", "timpush/push", `{"MsgRandom":1,"MsgBody":{"MsgType":"TIMTextElem"}}`, im.CodeMsgBodyNotArray},
		{"MsgBody string", "timpush/push", `{"MsgRandom":1,"MsgBody":"hi"}`, im.CodeMsgBodyNotArray},
		{"MsgBody empty", "timpush/push", `{"MsgRandom":1,"MsgBody":[]}`, im.CodeMsgBodyFormat},
		{"element not object", "timpush/push", `{"MsgRandom":1,"MsgBody":[1]}`, im.CodeMsgElem},
		{"unknown MsgType", "timpush/push", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMFooElem","MsgContent":{}}]}`, im.CodeMsgElem},
		{"MsgContent missing", "timpush/push", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem"}]}`, im.CodeMsgElem},
		{"Text missing", "timpush/push", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{}}]}`, im.CodeMsgElem},
		{"Text not string", "timpush/push", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":5}}]}`, im.CodeMsgElem},
		{"Latitude not number", "timpush/push", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMLocationElem","MsgContent":{"Latitude":"1","Longitude":2}}]}`, im.CodeMsgElem},
		{"Face Index string", "timpush/push", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMFaceElem","MsgContent":{"Index":"1"}}]}`, im.CodeMsgElem},
		{"Face Index missing", "timpush/push", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMFaceElem","MsgContent":{"Data":"x"}}]}`, im.CodeMsgElem},
		{"Location Longitude missing", "timpush/push", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMLocationElem","MsgContent":{"Latitude":1}}]}`, im.CodeMsgElem},
		{"Custom Data number", "timpush/push", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMCustomElem","MsgContent":{"Data":1}}]}`, im.CodeMsgElem},
		{"From_Account over 128 bytes", "timpush/push", `{"MsgRandom":1,"From_Account":"` + long(129) + `",` + msg + `}`, im.CodePushJSON},
		{"two custom elements", "timpush/push", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMCustomElem","MsgContent":{"Data":"a"}},{"MsgType":"TIMCustomElem","MsgContent":{"Data":"b"}}]}`, im.CodeMsgElem},
		{"OfflinePushInfo not object", "timpush/push", `{"MsgRandom":1,"OfflinePushInfo":"x"}`, im.CodePushJSON},
		{"OnlineOnlyFlag 2", "timpush/push", `{"MsgRandom":1,"OnlineOnlyFlag":2,` + msg + `}`, im.CodePushJSON},
		{"MsgLifeTime over 7 days", "timpush/push", `{"MsgRandom":1,"MsgLifeTime":604801,` + msg + `}`, im.CodeMsgLifeTime},
		{"MsgLifeTime negative", "timpush/push", `{"MsgRandom":1,"MsgLifeTime":-1,` + msg + `}`, im.CodeMsgLifeTime},
		{"MsgLifeTime string", "timpush/push", `{"MsgRandom":1,"MsgLifeTime":"60",` + msg + `}`, im.CodeMsgLifeTime},
		{"DataId 65 bytes", "timpush/push", `{"MsgRandom":1,"DataId":"` + long(65) + `",` + msg + `}`, im.CodeDataIDTooLong},
		{"From_Account number", "timpush/push", `{"MsgRandom":1,"From_Account":5,` + msg + `}`, im.CodeAccountNotStr},
		{"Condition not object", "timpush/push", `{"MsgRandom":1,"Condition":[],` + msg + `}`, im.CodePushJSON},
		{"tag over 50 bytes", "timpush/push", `{"MsgRandom":1,"Condition":{"TagsOr":["` + long(51) + `"]},` + msg + `}`, im.CodeTagTooLong},
		{"tag in TagsAnd and TagsOr", "timpush/push", `{"MsgRandom":1,"Condition":{"TagsAnd":["a"],"TagsOr":["a"]},` + msg + `}`, im.CodeTagAndOr},
		{"11 tags", "timpush/push", `{"MsgRandom":1,"Condition":{"TagsOr":[` + tags(11) + `]},` + msg + `}`, im.CodeTooManyTags},
		{"unknown attribute", "timpush/push", `{"MsgRandom":1,"Condition":{"AttrsAnd":{"planet":"mars"}},` + msg + `}`, im.CodeAttrInvalid},
		{"tags and attributes", "timpush/push", `{"MsgRandom":1,"Condition":{"TagsOr":["a"],"AttrsOr":{"city":"x"}},` + msg + `}`, im.CodeAttrAndTag},
		{"empty tag", "timpush/push", `{"MsgRandom":1,"Condition":{"TagsAnd":[""]},` + msg + `}`, im.CodeEmptyTag},
		{"body over 10 KB", "timpush/push", `{"MsgRandom":1,"OfflinePushInfo":{"Ext":"` + long(10<<10) + `"}}`, im.CodePushBodyTooLarge},
		{"im_push without MsgBody", "all_member_push/im_push", `{"MsgRandom":1,"OfflinePushInfo":{"Title":"x"}}`, im.CodeMsgBodyFormat},
		{"im_push MsgLifeTime over 7 days", "all_member_push/im_push", `{"MsgRandom":1,"MsgLifeTime":700000,` + msg + `}`, im.CodeMsgLifeTime},
		{"im_push MsgRandom missing", "all_member_push/im_push", `{` + msg + `}`, im.CodeMsgRandom},
		{"batch without To_Account", "timpush/batch", `{"MsgRandom":1,"OfflinePushInfo":{"Title":"x"}}`, im.CodePushJSON},
		{"batch empty To_Account", "timpush/batch", `{"MsgRandom":1,"To_Account":[],"OfflinePushInfo":{"Title":"x"}}`, im.CodePushJSON},
		{"batch 501 recipients", "timpush/batch", `{"MsgRandom":1,"To_Account":[` + strings.TrimSuffix(strings.Repeat(`"u1",`, 501), ",") + `],"OfflinePushInfo":{"Title":"x"}}`, im.CodeTooManyAccounts},
		{"batch number recipient", "timpush/batch", `{"MsgRandom":1,"To_Account":["u1",7],"OfflinePushInfo":{"Title":"x"}}`, im.CodeAccountNotStr},
		{"batch without OfflinePushInfo", "timpush/batch", `{"MsgRandom":1,"To_Account":["u1"]}`, im.CodePushJSON},
		{"batch DataId 65 bytes", "timpush/batch", `{"MsgRandom":1,"To_Account":["u1"],"DataId":"` + long(65) + `","OfflinePushInfo":{"Title":"x"}}`, im.CodeDataIDTooLong},
		{"batch MsgRandom missing", "timpush/batch", `{"To_Account":["u1"],"OfflinePushInfo":{"Title":"x"}}`, im.CodeMsgRandom},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.call(c.cmd, c.body)
			wantCode(t, r, c.code)
			if c.cmd == "timpush/batch" {
				if id, ok := r["TaskId"]; !ok || id != "" {
					t.Errorf(`failed batch answer has TaskId %v, want ""`, id)
				}
			}
		})
	}
	if n, _ := e.store.CountTasks(context.Background(), appA.SDKAppID, 0); n != 0 {
		t.Errorf("%d tasks created by failing requests", n)
	}
	// At the limits: accepted.
	e.pushOK("timpush/push", `{"MsgRandom":90,"MsgLifeTime":604800,"DataId":"`+long(64)+`",`+msg+`}`)
	e.pushOK("timpush/push", `{"MsgRandom":91,"Condition":{"TagsOr":[`+tags(10)+`]},"OfflinePushInfo":{"Ext":"`+long(9<<10)+`"}}`)
	// Element fields of the right JSON type, optional ones left out, one
	// TIMCustomElem, and a From_Account of 128 bytes.
	e.pushOK("timpush/push", `{"MsgRandom":93,"From_Account":"`+long(128)+`","MsgBody":[`+
		`{"MsgType":"TIMFaceElem","MsgContent":{"Index":1}},`+
		`{"MsgType":"TIMLocationElem","MsgContent":{"Latitude":1.5,"Longitude":-2}},`+
		`{"MsgType":"TIMSoundElem","MsgContent":{"Url":"https://example.com/a.mp3","Second":3}},`+
		`{"MsgType":"TIMCustomElem","MsgContent":{"Data":"d","Desc":"x"}}]}`)
	e.pushOK("timpush/batch", `{"MsgRandom":92,"To_Account":[`+strings.TrimSuffix(strings.Repeat(`"u1",`, 500), ",")+`],"OfflinePushInfo":{"Title":"x"}}`)
}

// TestPushNotAdmin: the push commands need an admin (90009).
func TestPushNotAdmin(t *testing.T) {
	e := newEnv(t, envOpts{})
	wantCode(t, e.call("im_open_login_svc/account_import", `{"UserID":"mallory"}`), 0)
	for _, cmd := range []string{"timpush/push", "timpush/batch", "timpush/revoke", "all_member_push/im_push",
		"timpush/add_sched_task", "timpush/all_member_push_statistics"} {
		wantCode(t, e.callAs(appA, "mallory", cmd, `{}`), im.CodePushNotAdmin)
	}
}

func TestPushInterval(t *testing.T) {
	e := newEnv(t, envOpts{limits: true})
	setupPush(t, e, 2)
	e.pushOK("timpush/push", `{"MsgRandom":1,`+msg+`}`)
	wantCode(t, e.call("timpush/push", `{"MsgRandom":2,`+msg+`}`), im.CodePushTooFrequent)
	e.clock.Advance(999 * time.Millisecond)
	wantCode(t, e.call("timpush/push", `{"MsgRandom":2,`+msg+`}`), im.CodePushTooFrequent)
	e.clock.Advance(time.Millisecond)
	e.pushOK("timpush/push", `{"MsgRandom":2,`+msg+`}`)
	// im_push keeps its own spacing.
	e.pushOK("all_member_push/im_push", `{"MsgRandom":3,`+msg+`}`)
	wantCode(t, e.call("all_member_push/im_push", `{"MsgRandom":4,`+msg+`}`), im.CodePushTooFrequent)
	// Per app: app B is not held back by app A.
	wantCode(t, e.callAs(appB, "boss", "timpush/push", `{"MsgRandom":1,`+msg+`}`), 0)
}

func TestPushDailyQuota(t *testing.T) {
	e := newEnv(t, envOpts{limits: true, quotas: map[string]int64{"push_interval_ms": 0, "push_per_day": 2, "legacy_push_per_day": 1}})
	setupPush(t, e, 2)
	// Start just after midnight UTC so that advancing a day crosses one.
	day := e.clock.Now().UTC().Truncate(24 * time.Hour)
	e.clock.Advance(day.Add(24*time.Hour + time.Minute).Sub(e.clock.Now()))
	e.pushOK("timpush/push", `{"MsgRandom":1,`+msg+`}`)
	e.pushOK("timpush/push", `{"MsgRandom":2,`+msg+`}`)
	wantCode(t, e.call("timpush/push", `{"MsgRandom":3,`+msg+`}`), im.CodeDailyQuota)
	e.pushOK("all_member_push/im_push", `{"MsgRandom":4,`+msg+`}`)
	wantCode(t, e.call("all_member_push/im_push", `{"MsgRandom":5,`+msg+`}`), im.CodeDailyQuota)
	// A repeat of an accepted MsgRandom is not a new push: no 90047.
	wantCode(t, e.call("timpush/push", `{"MsgRandom":2,`+msg+`}`), 0)
	e.clock.Advance(24 * time.Hour)
	e.pushOK("timpush/push", `{"MsgRandom":3,`+msg+`}`)
}

func TestPushDefaultQuota(t *testing.T) {
	e := newEnv(t, envOpts{limits: true})
	setupPush(t, e, 1)
	day := e.clock.Now().UTC().Truncate(24 * time.Hour)
	e.clock.Advance(day.Add(25 * time.Hour).Sub(e.clock.Now())) // 01:00 UTC tomorrow
	for i := range 100 {
		e.clock.Advance(time.Second)
		e.pushOK("timpush/push", fmt.Sprintf(`{"MsgRandom":%d,"OfflinePushInfo":{"Title":"n"}}`, i))
	}
	e.clock.Advance(time.Second)
	wantCode(t, e.call("timpush/push", `{"MsgRandom":100,"OfflinePushInfo":{"Title":"n"}}`), im.CodeDailyQuota)
}

// TestLimitsOff: --limits off lifts the interval, the quota, the body size
// and the batch rate, but not the validation.
func TestLimitsOff(t *testing.T) {
	e := newEnv(t, envOpts{limits: false, quotas: map[string]int64{"push_per_day": 1, "batch_per_second": 1}})
	setupPush(t, e, 2)
	for i := range 5 {
		e.pushOK("timpush/push", fmt.Sprintf(`{"MsgRandom":%d,`+msg+`}`, i))
	}
	e.pushOK("timpush/push", `{"MsgRandom":99,"OfflinePushInfo":{"Ext":"`+strings.Repeat("x", 20<<10)+`"}}`)
	for i := range 3 {
		e.pushOK("timpush/batch", fmt.Sprintf(`{"MsgRandom":%d,"To_Account":["u0","u1"],"OfflinePushInfo":{"Title":"x"}}`, 200+i))
	}
	wantCode(t, e.call("timpush/push", `{"MsgRandom":7,"MsgLifeTime":604801,`+msg+`}`), im.CodeMsgLifeTime)
}

func TestBatchRate(t *testing.T) {
	e := newEnv(t, envOpts{limits: true, quotas: map[string]int64{"batch_per_second": 10}})
	setupPush(t, e, 2)
	all := `[` + strings.TrimSuffix(strings.Repeat(`"u0",`, 500), ",") + `]`
	e.pushOK("timpush/batch", `{"MsgRandom":1,"To_Account":`+all+`,"OfflinePushInfo":{"Title":"x"}}`)
	wantCode(t, e.call("timpush/batch", `{"MsgRandom":2,"To_Account":["u1"],"OfflinePushInfo":{"Title":"x"}}`), im.CodeRESTRate)
	e.clock.Advance(time.Second)
	e.pushOK("timpush/batch", `{"MsgRandom":2,"To_Account":["u1"],"OfflinePushInfo":{"Title":"x"}}`)
}

// TestBatchRateSplitAcrossNodes: batch_per_second is split between the
// nodes of a cluster like the REST rates: with two nodes, one takes 500 of
// 1000 recipients a second.
func TestBatchRateSplitAcrossNodes(t *testing.T) {
	for _, c := range []struct {
		name   string
		share  func() float64
		second int // code of a second full batch in the same second
	}{
		{"single node", nil, 0},
		{"one of two nodes", func() float64 { return 0.5 }, im.CodeRESTRate},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, envOpts{limits: true, quotas: map[string]int64{"batch_per_second": 1000}, share: c.share, quiet: true})
			setupPush(t, e, 2)
			all := `[` + strings.TrimSuffix(strings.Repeat(`"u0",`, 500), ",") + `]`
			e.pushOK("timpush/batch", `{"MsgRandom":1,"To_Account":`+all+`,"OfflinePushInfo":{"Title":"x"}}`)
			wantCode(t, e.call("timpush/batch", `{"MsgRandom":2,"To_Account":`+all+`,"OfflinePushInfo":{"Title":"x"}}`), c.second)
			e.clock.Advance(time.Second)
			e.pushOK("timpush/batch", `{"MsgRandom":3,"To_Account":`+all+`,"OfflinePushInfo":{"Title":"x"}}`)
		})
	}
}

// TestPushIdempotent: one app and MsgRandom within 7 days is one push.
func TestPushIdempotent(t *testing.T) {
	e := newEnv(t, envOpts{limits: true})
	setupPush(t, e, 3)
	ctx := context.Background()
	first := e.pushOK("timpush/push", `{"MsgRandom":42,`+msg+`}`)
	// A retry at once is answered with the first TaskId, not 90024.
	if again := e.pushOK("timpush/push", `{"MsgRandom":42,`+msg+`}`); again != first {
		t.Fatalf("retry TaskId %s, want %s", again, first)
	}
	// A different body with the same MsgRandom: still the first task, nothing sent.
	if other := e.pushOK("timpush/push", `{"MsgRandom":42,"OfflinePushInfo":{"Title":"other"}}`); other != first {
		t.Fatalf("different body: TaskId %s, want %s", other, first)
	}
	if n, _ := e.store.CountTasks(ctx, appA.SDKAppID, 0); n != 1 {
		t.Fatalf("%d tasks after three sends of one MsgRandom", n)
	}
	// Another app, or im_push, may use the same MsgRandom.
	e.clock.Advance(time.Second)
	if other := e.pushOK("all_member_push/im_push", `{"MsgRandom":42,`+msg+`}`); other == first {
		t.Fatal("im_push deduplicated against timpush/push")
	}
	// The window is 7 days: a repeat one second before its end is still
	// the first task, one second after it is a new one.
	e.clock.Advance(7*24*time.Hour - 2*time.Second)
	if again := e.pushOK("timpush/push", `{"MsgRandom":42,`+msg+`}`); again != first {
		t.Fatalf("retry 7 days less a second later: TaskId %s, want %s", again, first)
	}
	e.clock.Advance(2 * time.Second)
	if later := e.pushOK("timpush/push", `{"MsgRandom":42,`+msg+`}`); later == first {
		t.Fatal("MsgRandom still deduplicated after 7 days")
	}
	// Batch deduplicates within the same second only.
	b1 := e.pushOK("timpush/batch", `{"MsgRandom":7,"To_Account":["u0"],"OfflinePushInfo":{"Title":"x"}}`)
	if b2 := e.pushOK("timpush/batch", `{"MsgRandom":7,"To_Account":["u0"],"OfflinePushInfo":{"Title":"x"}}`); b2 != b1 {
		t.Fatalf("batch retry in the same second: %s, want %s", b2, b1)
	}
	e.clock.Advance(2 * time.Second)
	if b3 := e.pushOK("timpush/batch", `{"MsgRandom":7,"To_Account":["u0"],"OfflinePushInfo":{"Title":"x"}}`); b3 == b1 || !strings.HasPrefix(b3, "batch_") {
		t.Fatalf("batch two seconds later: %s (first %s)", b3, b1)
	}
}

// TestPushAudienceAndStorage checks who a push reaches and whether it is
// stored, for each form.
func TestPushAudienceAndStorage(t *testing.T) {
	e := newEnv(t, envOpts{})
	setupPush(t, e, 10)
	wantCode(t, e.call("timpush/set_attr", `{"UserAttrs":[{"To_Account":"u3","Attrs":{"city":"Oslo"}}]}`), 0)
	now := e.clock.Now().Unix()
	for _, c := range []struct {
		name, cmd, body string
		total           int64
		stored          bool
		expires         int64
	}{
		{"everyone, message", "timpush/push", `{"MsgRandom":1,` + msg + `}`, 10, true, now + im.DefaultStoredLife},
		{"tag", "timpush/push", `{"MsgRandom":2,"Condition":{"TagsAnd":["even"]},` + msg + `}`, 5, true, now + im.DefaultStoredLife},
		{"TagsNot alone", "timpush/push", `{"MsgRandom":3,"Condition":{"TagsNot":["even"]},` + msg + `}`, 5, true, now + im.DefaultStoredLife},
		{"attribute", "timpush/push", `{"MsgRandom":4,"Condition":{"AttrsOr":{"city":"Oslo"}},` + msg + `}`, 1, true, now + im.DefaultStoredLife},
		{"unknown tag reaches nobody", "timpush/push", `{"MsgRandom":5,"Condition":{"TagsOr":["nobody"]},` + msg + `}`, 0, true, now + im.DefaultStoredLife},
		{"online only", "timpush/push", `{"MsgRandom":6,"OnlineOnlyFlag":1,"MsgLifeTime":600,` + msg + `}`, 10, false, 0},
		{"MsgLifeTime", "timpush/push", `{"MsgRandom":7,"MsgLifeTime":600,` + msg + `}`, 10, true, now + 600},
		{"notification", "timpush/push", `{"MsgRandom":8,"OfflinePushInfo":{"Title":"t"}}`, 10, false, 0},
		{"notification with MsgLifeTime", "timpush/push", `{"MsgRandom":9,"MsgLifeTime":60,"OfflinePushInfo":{"Title":"t"}}`, 10, true, now + 60},
		{"im_push", "all_member_push/im_push", `{"MsgRandom":10,` + msg + `}`, 10, false, 0},
		{"im_push MsgLifeTime", "all_member_push/im_push", `{"MsgRandom":11,"MsgLifeTime":30,"Condition":{"TagsOr":["even"]},` + msg + `}`, 5, true, now + 30},
		{"batch", "timpush/batch", `{"MsgRandom":12,"To_Account":["u1","u2","u2"],"OfflinePushInfo":{"Title":"t"}}`, 2, false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			tk := e.task(e.pushOK(c.cmd, c.body))
			if tk.Total != c.total || tk.Stored() != c.stored || tk.ExpiresAt != c.expires {
				t.Errorf("total %d stored %v expires %d; want %d %v %d", tk.Total, tk.Stored(), tk.ExpiresAt, c.total, c.stored, c.expires)
			}
			if tk.From != "administrator" {
				t.Errorf("From = %q, want the caller", tk.From)
			}
		})
	}
}

func TestBatch(t *testing.T) {
	e := newEnv(t, envOpts{})
	setupPush(t, e, 3)
	if _, err := e.store.RegisterDevice(context.Background(), appA.SDKAppID, im.Device{RegistrationID: "REG-9", Platform: "ios"}, im.DeviceLimits{}); err != nil {
		t.Fatal(err)
	}
	r := e.call("timpush/batch", `{"From_Account":"ops","To_Account":["u0","ghost","REG-9","u2"],"MsgRandom":5,"DataId":"order-1","OfflinePushInfo":{"Title":"t","Desc":"d"}}`)
	wantCode(t, r, 0)
	if got := jsonOf(r["ErrorList"]); got != `[{"ErrorCode":70107,"To_Account":"ghost"}]` {
		t.Errorf("ErrorList = %s", got)
	}
	id := r["TaskId"].(string)
	if !strings.HasPrefix(id, "batch_") {
		t.Errorf("TaskId %s lacks batch_", id)
	}
	tk := e.waitDone(id)
	if tk.Total != 3 || tk.DataID != "order-1" || tk.From != "ops" || tk.Kind != im.PushBatch || string(tk.Offline) != `{"Title":"t","Desc":"d"}` {
		t.Errorf("task = %+v", tk)
	}
	// Every recipient unknown: still a task, with everyone in ErrorList.
	r = e.call("timpush/batch", `{"To_Account":["x","y"],"MsgRandom":6,"OfflinePushInfo":{"Title":"t"}}`)
	wantCode(t, r, 0)
	if got := jsonOf(r["ErrorList"]); got != `[{"ErrorCode":70107,"To_Account":"x"},{"ErrorCode":70107,"To_Account":"y"}]` {
		t.Errorf("ErrorList = %s", got)
	}
}

// TestRevoke covers every revoke code and what a revoke does.
func TestRevoke(t *testing.T) {
	e := newEnv(t, envOpts{limits: true, quotas: map[string]int64{"push_interval_ms": 0}})
	setupPush(t, e, 4)
	ctx := context.Background()
	stored := e.pushOK("timpush/push", `{"MsgRandom":1,`+msg+`}`)
	note := e.pushOK("timpush/push", `{"MsgRandom":2,"OfflinePushInfo":{"Title":"n"}}`)
	batch := e.pushOK("timpush/batch", `{"MsgRandom":3,"To_Account":["u1"],"OfflinePushInfo":{"Title":"n"}}`)
	old := e.pushOK("timpush/push", `{"MsgRandom":4,"OfflinePushInfo":{"Title":"n"}}`)
	e.waitDone(stored)

	wantCode(t, e.call("timpush/revoke", `{}`), im.CodePushJSON)
	wantCode(t, e.call("timpush/revoke", `{"TaskId":5}`), im.CodePushJSON)
	wantCode(t, e.call("timpush/revoke", `{"TaskId":"nope"}`), im.CodeTaskNotFound)
	e.clock.Advance(time.Second)
	wantCode(t, e.call("timpush/revoke", `{"TaskId":"`+stored+`"}`), im.CodeRevokeNeedsInfo)
	e.clock.Advance(time.Second)
	wantCode(t, e.call("timpush/revoke", `{"TaskId":"`+stored+`","OfflinePushInfo":"x"}`), im.CodePushJSON)
	wantCode(t, e.call("timpush/revoke", `{"TaskId":"`+stored+`","OfflinePushInfo":{"Title":"Retracted"}}`), 0)
	wantCode(t, e.call("timpush/revoke", `{"TaskId":"`+note+`"}`), im.CodeRevokeTooFrequent)
	e.clock.Advance(time.Second)
	wantCode(t, e.call("timpush/revoke", `{"TaskId":"`+stored+`","OfflinePushInfo":{"Title":"x"}}`), im.CodeTaskRevoked)
	e.clock.Advance(time.Second)
	wantCode(t, e.call("timpush/revoke", `{"TaskId":"`+note+`"}`), 0) // online only: no OfflinePushInfo needed
	e.clock.Advance(time.Second)
	wantCode(t, e.call("timpush/revoke", `{"TaskId":"`+batch+`"}`), 0) // batch TaskIds are accepted
	e.clock.Advance(24*time.Hour + time.Second)
	wantCode(t, e.call("timpush/revoke", `{"TaskId":"`+old+`"}`), im.CodeRevokeExpired)

	if tk := e.task(stored); tk.State != im.TaskRevoked || string(tk.RevokeInfo) != `{"Title":"Retracted"}` {
		t.Errorf("revoked task: state %d info %s", tk.State, tk.RevokeInfo)
	}
	if !e.live.wasRevoked(stored) || !e.live.wasRevoked(note) {
		t.Error("live clients were not told of the revoke")
	}
	ts, err := e.store.StoredHeads(ctx, appA.SDKAppID, 0, e.clock.Now().Unix()-24*3600, 10)
	if err != nil || len(ts) != 0 {
		t.Errorf("StoredHeads after revoke = %d tasks, %v; want none", len(ts), err)
	}
}

// TestRevokeWindow: a task can be revoked until exactly 24 hours after it
// started (90052 after).
func TestRevokeWindow(t *testing.T) {
	e := newEnv(t, envOpts{limits: true, quotas: map[string]int64{"push_interval_ms": 0}})
	setupPush(t, e, 2)
	edge := e.pushOK("timpush/push", `{"MsgRandom":1,"OfflinePushInfo":{"Title":"n"}}`)
	late := e.pushOK("timpush/push", `{"MsgRandom":2,"OfflinePushInfo":{"Title":"n"}}`)
	if a, b := e.task(edge).CreatedAt, e.task(late).CreatedAt; a != e.clock.Now().Unix() || b != a {
		t.Fatalf("CreatedAt %d and %d, clock %d", a, b, e.clock.Now().Unix())
	}
	e.clock.Advance(24 * time.Hour)
	wantCode(t, e.call("timpush/revoke", `{"TaskId":"`+edge+`"}`), 0)
	e.clock.Advance(time.Second)
	wantCode(t, e.call("timpush/revoke", `{"TaskId":"`+late+`"}`), im.CodeRevokeExpired)
}

// TestStatistics: the statistics report what the fan-out and RecordAcks
// recorded.
func TestStatistics(t *testing.T) {
	e := newEnv(t, envOpts{})
	setupPush(t, e, 6)
	ctx := context.Background()
	e.live.online.AddMany([]uint32{1, 2}) // u0, u1 connected
	all := e.pushOK("timpush/push", `{"MsgRandom":1,`+msg+`}`)
	even := e.pushOK("timpush/push", `{"MsgRandom":2,"OnlineOnlyFlag":1,"Condition":{"TagsAnd":["even"]},`+msg+`}`)
	b := e.pushOK("timpush/batch", `{"MsgRandom":3,"To_Account":["u0","u5"],"OfflinePushInfo":{"Title":"t"}}`)
	for _, id := range []string{all, even, b} {
		e.waitDone(id)
	}
	if err := e.store.RecordAcks(ctx, appA.SDKAppID, all, []uint32{1, 3, 4}, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.RecordAcks(ctx, appA.SDKAppID, even, []uint32{1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.store.RecordAcks(ctx, appA.SDKAppID, b, []uint32{6}, []uint32{6}); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now().Unix()
	win := fmt.Sprintf(`"StartTime":%d,"EndTime":%d`, now-60, now+60)
	r := e.call("timpush/all_member_push_statistics", `{`+win+`,"TaskID":["`+all+`","`+even+`","missing"]}`)
	wantCode(t, r, 0)
	want := `[{"ClickCount":1,"DeliveredCount":3,"PlatformStatistics":[` +
		`{"ClickCount":0,"DeliveredCount":2,"EventType":1,"PushPlatform":0,"SentCount":4,"TotalCount":4},` +
		`{"ClickCount":1,"DeliveredCount":1,"EventType":2,"PushPlatform":0,"SentCount":2,"TotalCount":2}],` +
		`"SentCount":6,"TaskID":"` + all + `","TotalCount":6},` +
		`{"ClickCount":0,"DeliveredCount":1,"PlatformStatistics":[` +
		`{"ClickCount":0,"DeliveredCount":0,"EventType":1,"PushPlatform":0,"SentCount":0,"TotalCount":2},` +
		`{"ClickCount":0,"DeliveredCount":1,"EventType":2,"PushPlatform":0,"SentCount":1,"TotalCount":1}],` +
		`"SentCount":1,"TaskID":"` + even + `","TotalCount":3},` +
		`{"ClickCount":0,"DeliveredCount":0,"PlatformStatistics":[` +
		`{"ClickCount":0,"DeliveredCount":0,"EventType":1,"PushPlatform":0,"SentCount":0,"TotalCount":0},` +
		`{"ClickCount":0,"DeliveredCount":0,"EventType":2,"PushPlatform":0,"SentCount":0,"TotalCount":0}],` +
		`"SentCount":0,"TaskID":"missing","TotalCount":0}]`
	if got := jsonOf(r["Results"]); got != want {
		t.Errorf("Results =\n%s\nwant\n%s", got, want)
	}
	r = e.call("timpush/all_member_push_statistics", `{`+win+`}`)
	overall := r["Results"].([]any)[0].(map[string]any)
	if overall["TaskID"] != "" || overall["TotalCount"] != 9.0 || overall["DeliveredCount"] != 4.0 || overall["ClickCount"] != 1.0 {
		t.Errorf("overall = %s", jsonOf(overall))
	}
	r = e.call("timpush/normal_push_statistics", `{`+win+`}`)
	if r["TotalCount"] != 2.0 || r["DeliveredCount"] != 1.0 || r["ClickCount"] != 1.0 || r["SentCount"] != 1.0 {
		t.Errorf("normal = %s", jsonOf(r))
	}
	r = e.call("timpush/all_member_push_loss", `{`+win+`,"TaskID":["`+even+`"]}`)
	if got := jsonOf(r["Results"]); got != `[{"PlatformPostSendDeliveredLoss":[],"PlatformReadyToSendLoss":[{"ErrCode":"-1","ErrCount":2,"ErrInfo":"recipient offline and the push is online-only","EventType":1,"PushPlatform":0}],"PostSendDeliveredLoss":[],"ReadyToSendLoss":[{"ErrCode":"-1","ErrCount":2,"ErrInfo":"recipient offline and the push is online-only"}],"TaskID":"`+even+`"}]` {
		t.Errorf("loss = %s", got)
	}
	r = e.call("timpush/normal_push_loss", `{`+win+`}`)
	if got := jsonOf(r["ReadyToSendLoss"]); !strings.Contains(got, `"ErrCount":1`) {
		t.Errorf("normal loss = %s", jsonOf(r))
	}
	r = e.call("timpush/all_member_push_trace", `{"TaskID":"`+all+`","UserID":"u0"}`)
	tr := r["InstanceTrace"].([]any)
	if len(tr) != 1 || tr[0].(map[string]any)["EventType"] != 2.0 || tr[0].(map[string]any)["IMCommitStat"].(map[string]any)["IMStat"].(map[string]any)["PushStatus"] != 3.0 {
		t.Errorf("trace = %s", jsonOf(r))
	}
	r = e.call("timpush/all_member_push_trace", `{"TaskID":"`+even+`","UserID":"u1"}`)
	if got := jsonOf(r["InstanceTrace"]); got != `[]` {
		t.Errorf("trace of a non-recipient = %s", got)
	}
	wantCode(t, e.call("timpush/all_member_push_trace", `{"TaskID":"nope","UserID":"u1"}`), im.CodeTaskNotFound)
	r = e.call("timpush/normal_push_trace", `{"PushID":"`+b+`"}`)
	if tr := r["InstanceTrace"].([]any); len(tr) != 2 {
		t.Errorf("normal trace = %s", jsonOf(r))
	}
	// Request errors.
	wantCode(t, e.call("timpush/all_member_push_statistics", `{`+win+`,"TaskID":["a","b","c","d","e","f"]}`), im.CodeTooManyAccounts)
	wantCode(t, e.call("timpush/all_member_push_statistics", fmt.Sprintf(`{"StartTime":%d,"EndTime":%d}`, now, now-1)), im.CodePushJSON)
	wantCode(t, e.call("timpush/all_member_push_statistics", fmt.Sprintf(`{"StartTime":%d,"EndTime":%d}`, now-31*86400, now)), im.CodePushJSON)
	wantCode(t, e.call("timpush/all_member_push_loss", fmt.Sprintf(`{"StartTime":%d,"EndTime":%d}`, now-8*86400, now)), im.CodePushJSON)
	wantCode(t, e.call("timpush/normal_push_statistics", `{}`), im.CodePushJSON)
}

// TestUnknownKeyNamesTheLeast: with several unknown keys, the answer names
// the least, so the message does not depend on map order.
func TestUnknownKeyNamesTheLeast(t *testing.T) {
	e := newEnv(t, envOpts{})
	setupPush(t, e, 1)
	for _, c := range []struct{ body, want, not string }{
		{`{"MsgRandom":1,"zeta":1,"alpha":2,"mid":3,` + msg + `}`, "alpha", "zeta"},
		{`{"MsgRandom":1,"Condition":{"TagsOr":["a"],"zz":1,"Ab":2},` + msg + `}`, "Condition.Ab", "zz"},
	} {
		for range 5 {
			r := e.call("timpush/push", c.body)
			wantCode(t, r, im.CodePushJSON)
			info, _ := r["ErrorInfo"].(string)
			if !strings.Contains(info, c.want) || strings.Contains(info, c.not) {
				t.Fatalf("%s: ErrorInfo %q, want it to name %q only", c.body, info, c.want)
			}
		}
	}
}
