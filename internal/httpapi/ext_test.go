package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"timd/internal/im"
)

// TestExtCodes is the table of timd_ext's limits and codes: each body is
// answered with the code given, on app A with 10 accounts (u0..u9, the
// even ones tagged "even") and the attribute city.
func TestExtCodes(t *testing.T) {
	e := newEnv(t, envOpts{quiet: true})
	setupPush(t, e, 10)
	long := strings.Repeat("x", 51)
	for _, c := range []struct {
		cmd, body string
		code      int
	}{
		{"audience_count", `{}`, 0},
		{"audience_count", `{"Condition":null}`, 0},
		{"audience_count", `{"Condition":{"TagsAnd":["even"]}}`, 0},
		{"audience_count", `{"Condition":{"AttrsAnd":{"city":"x"}}}`, 0},
		{"audience_count", `[]`, im.CodePushJSON},
		{"audience_count", `{"Conditon":{"TagsAnd":["even"]}}`, im.CodePushJSON}, // misspelt: never "everyone"
		{"audience_count", `{"Condition":{"TagAnd":["even"]}}`, im.CodePushJSON},
		{"audience_count", `{"Condition":{}}`, im.CodePushJSON},
		{"audience_count", `{"Condition":{"TagsAnd":"even"}}`, im.CodePushJSON},
		{"audience_count", `{"Condition":{"TagsAnd":["a"],"AttrsAnd":{"city":"x"}}}`, im.CodeAttrAndTag},
		{"audience_count", `{"Condition":{"TagsAnd":["` + long + `"]}}`, im.CodeTagTooLong},
		{"audience_count", `{"Condition":{"TagsAnd":[""]}}`, im.CodeEmptyTag},
		{"audience_count", `{"Condition":{"TagsOr":["1","2","3","4","5","6","7","8","9","10","11"]}}`, im.CodeTooManyTags},
		{"audience_count", `{"Condition":{"AttrsAnd":{"nosuch":"x"}}}`, im.CodeAttrInvalid},

		{"app_summary", `{}`, 0},
		{"app_summary", `{"Since":1}`, im.CodePushJSON},
		{"app_summary", `"x"`, im.CodePushJSON},

		{"tag_histogram", `{}`, 0},
		{"tag_histogram", `{"Limit":1}`, 0},
		{"tag_histogram", `{"Limit":100}`, 0},
		{"tag_histogram", `{"Limit":0}`, im.CodePushJSON},
		{"tag_histogram", `{"Limit":101}`, im.CodePushJSON},
		{"tag_histogram", `{"Limit":-1}`, im.CodePushJSON},
		{"tag_histogram", `{"Limit":18446744073709551617}`, im.CodePushJSON},
		{"tag_histogram", `{"Limit":"5"}`, im.CodePushJSON},
		{"tag_histogram", `{"Limit":1.5}`, im.CodePushJSON},
		{"tag_histogram", `{"Limt":5}`, im.CodePushJSON},
		{"tag_histogram", `{"Cursor":"1"}`, im.CodePushJSON},

		{"account_list", `{}`, 0},
		{"account_list", `{"Limit":1000}`, 0},
		{"account_list", `{"Limit":1001}`, im.CodePushJSON},
		{"account_list", `{"Limit":0}`, im.CodePushJSON},
		{"account_list", `{"Cursor":"abc"}`, im.CodePushJSON},
		{"account_list", `{"Cursor":"0"}`, im.CodePushJSON},
		{"account_list", `{"Cursor":"-1"}`, im.CodePushJSON},
		{"account_list", `{"Cursor":"4294967296"}`, im.CodePushJSON},
		{"account_list", `{"Cursor":5}`, im.CodePushJSON},
		{"account_list", `{"Filter":"u1"}`, im.CodePushJSON},

		{"account_devices", `{"UserID":"u0"}`, 0},
		{"account_devices", `{"UserID":"nobody"}`, 0},
		{"account_devices", `{}`, im.CodePushJSON},
		{"account_devices", `{"UserID":""}`, im.CodePushJSON},
		{"account_devices", `{"UserID":7}`, im.CodeAccountNotStr},
		{"account_devices", `{"UserID":"u0","All":true}`, im.CodePushJSON},

		{"push_history", `{}`, 0},
		{"push_history", `{"Limit":200}`, 0},
		{"push_history", `{"Limit":201}`, im.CodePushJSON},
		{"push_history", `{"Limit":0}`, im.CodePushJSON},
		{"push_history", `{"Cursor":"1"}`, im.CodePushJSON},
		{"push_history", `{"Kind":"batch"}`, im.CodePushJSON},

		{"live", `{}`, 0},
		{"live", `{"App":1}`, im.CodePushJSON},
	} {
		t.Run(c.cmd+" "+c.body, func(t *testing.T) {
			wantCode(t, e.call("timd_ext/"+c.cmd, c.body), c.code)
		})
	}
}

// TestExtAudienceCount checks the count against the audience a real push
// gets (its TotalCount): the same Condition, the same number, devices
// folded into their owners.
func TestExtAudienceCount(t *testing.T) {
	e := newEnv(t, envOpts{quiet: true})
	setupPush(t, e, 10)
	ctx := context.Background()
	for _, d := range []string{"dev-a", "dev-b"} {
		if _, err := e.store.RegisterDevice(ctx, appA.SDKAppID, im.Device{RegistrationID: d, Owner: "u0", Platform: "web"}, im.DeviceLimits{PerOwner: 5}); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, e.call("timpush/add_tag", `{"UserTags":[{"To_Account":"dev-a","Tags":["even"]}]}`), 0)
	wantCode(t, e.call("timpush/set_attr", `{"UserAttrs":[{"To_Account":"u3","Attrs":{"city":"paris"}}]}`), 0)
	for i, c := range []struct {
		cond string
		want float64
	}{
		{``, 10}, // everyone: 10 users, their 2 devices fold into u0
		{`"Condition":{"TagsAnd":["even"]}`, 5},
		{`"Condition":{"TagsNot":["even"]}`, 6}, // the odd users, and u0 through its untagged dev-b
		{`"Condition":{"TagsOr":["nobody-has-this"]}`, 0},
		{`"Condition":{"AttrsAnd":{"city":"paris"}}`, 1},
	} {
		r := e.call("timd_ext/audience_count", "{"+c.cond+"}")
		wantCode(t, r, 0)
		if r["Count"] != c.want {
			t.Errorf("%s: Count %v, want %v", c.cond, r["Count"], c.want)
		}
		if _, ok := r["ElapsedMicros"].(float64); !ok {
			t.Errorf("%s: no ElapsedMicros: %v", c.cond, r)
		}
		sep := ""
		if c.cond != "" {
			sep = ","
		}
		id := e.pushOK("timpush/push", fmt.Sprintf(`{"MsgRandom":%d%s%s,"OfflinePushInfo":{"Title":"t"}}`, 100+i, sep, c.cond))
		if got := e.waitDone(id).Total; float64(got) != c.want {
			t.Errorf("%s: the push's TotalCount %d, audience_count %v", c.cond, got, c.want)
		}
	}
}

// TestExtSummaryAndHistogram checks the counters after imports, devices,
// tags and a push, and the histogram's order and bound.
func TestExtSummaryAndHistogram(t *testing.T) {
	e := newEnv(t, envOpts{quiet: true})
	setupPush(t, e, 6) // u0..u5; even: u0 u2 u4
	ctx := context.Background()
	if _, err := e.store.RegisterDevice(ctx, appA.SDKAppID, im.Device{RegistrationID: "dev", Owner: "u1"}, im.DeviceLimits{PerOwner: 5}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.call("timpush/add_tag", `{"UserTags":[{"To_Account":"u1","Tags":["b","a"]},{"To_Account":"u2","Tags":["b","a","<img src=x>"]}]}`), 0)
	id := e.pushOK("timpush/push", `{"MsgRandom":1,"OfflinePushInfo":{"Title":"t"}}`)
	e.waitDone(id)

	r := e.call("timd_ext/app_summary", `{}`)
	wantCode(t, r, 0)
	if r["Accounts"] != 6.0 || r["Devices"] != 1.0 || r["PushesToday"] != 1.0 || r["Online"] != 0.0 {
		t.Errorf("summary %v", r)
	}
	funnel, _ := r["Funnel"].(map[string]any)
	if funnel["TotalCount"] != 6.0 {
		t.Errorf("Funnel %v, want TotalCount 6 (u1 and its device are one recipient)", funnel)
	}
	days, _ := r["Days"].([]any)
	if len(days) != 7 {
		t.Fatalf("Days %v", days)
	}
	last, _ := days[6].(map[string]any)
	if last["Date"] != e.clock.Now().UTC().Format("2006-01-02") || last["TotalCount"] != 6.0 {
		t.Errorf("today %v", last)
	}

	r = e.call("timd_ext/tag_histogram", `{"Limit":2}`)
	wantCode(t, r, 0)
	if got := jsonOf(r["Tags"]); got != `[{"Count":3,"Tag":"even"},{"Count":2,"Tag":"a"}]` {
		t.Errorf("Tags %s", got)
	}
	if r["Distinct"] != 4.0 {
		t.Errorf("Distinct %v", r["Distinct"])
	}
	r = e.call("timd_ext/tag_histogram", `{}`)
	if got := jsonOf(r["Tags"]); got != `[{"Count":3,"Tag":"even"},{"Count":2,"Tag":"a"},{"Count":2,"Tag":"b"},{"Count":1,"Tag":"\u003cimg src=x\u003e"}]` {
		t.Errorf("Tags %s", got)
	}
	r = e.call("timd_ext/account_devices", `{"UserID":"u1"}`)
	if got := jsonOf(r["Devices"]); got != `[{"Account":"dev","Owner":"u1","Type":1}]` {
		t.Errorf("Devices %s", got)
	}
	r = e.call("timd_ext/push_history", `{}`)
	wantCode(t, r, 0)
	tasks, _ := r["Tasks"].([]any)
	if len(tasks) != 1 {
		t.Fatalf("history %v", r)
	}
	task := tasks[0].(map[string]any)
	now := e.clock.Now().Unix()
	st := e.call("timpush/all_member_push_statistics", fmt.Sprintf(`{"StartTime":%d,"EndTime":%d,"TaskID":[%q]}`, now-60, now+60, id))
	res := st["Results"].([]any)[0].(map[string]any)
	if task["TaskId"] != id || task["Kind"] != "push" || task["State"] != "done" || task["TotalCount"] != 6.0 {
		t.Errorf("history item %v", task)
	}
	for _, k := range []string{"TotalCount", "SentCount", "DeliveredCount", "ClickCount"} {
		if task[k] != res[k] {
			t.Errorf("history %s %v, statistics %v", k, task[k], res[k])
		}
	}
	r = e.call("timd_ext/live", `{}`)
	wantCode(t, r, 0)
	if r["SentToday"] != res["SentCount"] || r["Running"] != 0.0 || r["Online"] != 0.0 {
		t.Errorf("live %v", r)
	}
	// App B sees none of it.
	r = e.callAs(appB, "boss", "timd_ext/app_summary", `{}`)
	if r["Accounts"] != 0.0 || r["PushesToday"] != 0.0 {
		t.Errorf("app B summary %v", r)
	}
}

// TestExtAccountList walks every page and finds each account once, in
// creation order, and a deleted account gone.
func TestExtAccountList(t *testing.T) {
	e := newEnv(t, envOpts{quiet: true})
	setupPush(t, e, 25)
	wantCode(t, e.call("im_open_login_svc/account_delete", `{"DeleteItem":[{"UserID":"u7"}]}`), 0)
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		r := e.call("timd_ext/account_list", fmt.Sprintf(`{"Limit":10,"Cursor":%q}`, cursor))
		wantCode(t, r, 0)
		accts, _ := r["Accounts"].([]any)
		if len(accts) > 10 {
			t.Fatalf("page of %d", len(accts))
		}
		for _, a := range accts {
			got = append(got, a.(map[string]any)["Account"].(string))
		}
		cursor, _ = r["NextCursor"].(string)
		if cursor == "" {
			break
		}
	}
	var want []string
	for i := 0; i < 25; i++ {
		if i != 7 {
			want = append(want, fmt.Sprint("u", i))
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("listed %v\nwant %v", got, want)
	}
}

// TestConsoleRoutes: the console's files are GET-only endpoints of the one
// table, with the security headers; any other method, an unknown file,
// and an unclean or slash-less path get the JSON envelope.
func TestConsoleRoutes(t *testing.T) {
	e := newEnv(t, envOpts{quiet: true, console: true})
	for _, p := range []string{"/console/", "/console/app.js", "/console/style.css"} {
		resp, err := http.Get(e.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d %v", p, resp.StatusCode, resp.Header)
		}
	}
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{http.MethodPost, "/console/", im.CodeBadURL},
		{http.MethodPut, "/console/app.js", im.CodeBadURL},
		{http.MethodGet, "/console", im.CodeUnknownCommand},
		{http.MethodGet, "/console/nope.js", im.CodeUnknownCommand},
		{http.MethodGet, "/console//app.js", im.CodeUnknownCommand},
		{http.MethodGet, "/console/pages/../app.js", im.CodeUnknownCommand},
	} {
		wantCode(t, e.do(c.method, e.srv.URL+c.path, ""), c.code)
	}
	// Without the console, its paths are unknown.
	plain := newEnv(t, envOpts{quiet: true})
	wantCode(t, plain.do(http.MethodGet, plain.srv.URL+"/console/", ""), im.CodeUnknownCommand)
}
