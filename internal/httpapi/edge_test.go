package httpapi_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"timd/internal/httpapi"
	"timd/internal/im"
)

// TestConditionClosed: a Condition, and a push or im_push body, accept
// only their documented keys; a misspelt key or a Condition that names no
// clause is 90001 and sends nothing, instead of pushing to everyone
// (issue 8, point 3).
func TestConditionClosed(t *testing.T) {
	e := newEnv(t, envOpts{})
	setupPush(t, e, 4)
	const off = `"OfflinePushInfo":{"Title":"t"}`
	for i, c := range []struct {
		name, cmd, body string
		info            string // part of ErrorInfo
	}{
		{"misspelt clause", "timpush/push", `{"Condition":{"TagOr":["even"]},` + off + `}`, "Condition.TagOr is not a field"},
		{"misspelt clause beside a real one", "timpush/push", `{"Condition":{"TagsAnd":["even"],"AttrOr":{"city":"x"}},` + off + `}`, "Condition.AttrOr"},
		{"clause in the wrong case", "timpush/push", `{"Condition":{"tagsOr":["even"]},` + off + `}`, "Condition.tagsOr"},
		{"empty Condition", "timpush/push", `{"Condition":{},` + off + `}`, "names no clause"},
		{"only null clauses", "timpush/push", `{"Condition":{"TagsAnd":null,"TagsOr":null},` + off + `}`, "names no clause"},
		{"only empty clauses", "timpush/push", `{"Condition":{"TagsOr":[],"AttrsAnd":{}},` + off + `}`, "names no clause"},
		{"misspelt Condition", "timpush/push", `{"Conditon":{"TagsOr":["even"]},` + off + `}`, "Conditon is not a field"},
		{"lower-case condition", "timpush/push", `{"condition":{"TagsOr":["even"]},` + off + `}`, "condition is not a field"},
		{"To_Account on push", "timpush/push", `{"To_Account":["u1"],` + off + `}`, "To_Account is not a field"},
		{"im_push misspelt clause", "all_member_push/im_push", `{"Condition":{"TagOr":["even"]},` + msg + `}`, "Condition.TagOr"},
		{"im_push TagsNot", "all_member_push/im_push", `{"Condition":{"TagsNot":["even"]},` + msg + `}`, "Condition.TagsNot"},
		{"im_push empty Condition", "all_member_push/im_push", `{"Condition":{},` + msg + `}`, "names no clause"},
		{"sched Tag misspelt clause", "timpush/add_sched_task", schedBody("Tag", e.at(time.Hour), `{"Condition":{"TagOr":["even"]},`+off+`}`), "Condition.TagOr"},
		{"sched All misspelt key", "timpush/add_sched_task", schedBody("All", e.at(time.Hour), `{"Conditon":{"TagsOr":["even"]},`+off+`}`), "Conditon"},
	} {
		body := c.body
		if !strings.Contains(c.cmd, "sched") {
			body = fmt.Sprintf(`{"MsgRandom":%d,`, 100+i) + body[1:]
		}
		r := e.call(c.cmd, body)
		wantCode(t, r, im.CodePushJSON)
		if info, _ := r["ErrorInfo"].(string); !strings.Contains(info, c.info) {
			t.Errorf("%s: ErrorInfo %q, want it to contain %q", c.name, info, c.info)
		}
	}
	// Nothing was pushed or scheduled.
	r := e.call("timpush/list_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"Want":10}`, appA.SDKAppID))
	if r["Total"] != 0.0 {
		t.Errorf("refused tasks were scheduled: %s", jsonOf(r))
	}

	// What real clients send still works: null clauses beside a real
	// one (dobyte/tencent-im sends every key), and a null Condition.
	id := e.pushOK("timpush/push", `{"MsgRandom":1,"Condition":{"TagsAnd":null,"TagsOr":["even"],"AttrsAnd":null,"AttrsOr":null},`+off+`}`)
	if tk := e.task(id); tk.Total != 2 {
		t.Errorf("tag push reached %d, want 2", tk.Total)
	}
	id = e.pushOK("all_member_push/im_push", `{"MsgRandom":2,"Condition":null,`+msg+`}`)
	if tk := e.task(id); tk.Total != 4 {
		t.Errorf("push without Condition reached %d, want 4", tk.Total)
	}
	// A batch body stays open: its audience is its To_Account.
	e.pushOK("timpush/batch", `{"MsgRandom":3,"To_Account":["u1"],"Extra":1,`+off+`}`)
}

// TestStatsClosed: a misspelt statistics filter is refused instead of
// answering for every task.
func TestStatsClosed(t *testing.T) {
	e := newEnv(t, envOpts{})
	now := e.clock.Now().Unix()
	for _, cmd := range []string{"timpush/all_member_push_statistics", "timpush/all_member_push_loss"} {
		r := e.call(cmd, fmt.Sprintf(`{"StartTime":%d,"EndTime":%d,"TaskId":["x"]}`, now-10, now))
		wantCode(t, r, im.CodePushJSON)
		if info := r["ErrorInfo"].(string); !strings.Contains(info, "TaskId is not a field") {
			t.Errorf("%s: ErrorInfo %q", cmd, info)
		}
		wantCode(t, e.call(cmd, fmt.Sprintf(`{"StartTime":%d,"EndTime":%d,"TaskID":["x"]}`, now-10, now)), 0)
	}
	wantCode(t, e.call("timpush/all_member_push_trace", `{"TaskID":"x","UserId":"u"}`), im.CodePushJSON)
}

// TestRequiredFields: a required field that is missing or null is 90001
// with its JSON path, never an OK that does nothing (issue 8, point 9).
func TestRequiredFields(t *testing.T) {
	e := newEnv(t, envOpts{})
	setupPush(t, e, 2)
	for _, c := range []struct{ cmd, body, info string }{
		{"timpush/set_attr", `{"UserAttrs":[{"To_Account":"u0","Attrs":null}]}`, "UserAttrs[0].Attrs is required"},
		{"timpush/set_attr", `{"UserAttrs":[{"To_Account":"u0","Attrs":{"city":"x"}},{"To_Account":"u1"}]}`, "UserAttrs[1].Attrs is required"},
		{"timpush/set_attr", `{"UserAttrs":[{"Attrs":{"city":"x"}}]}`, "UserAttrs[0].To_Account is required"},
		{"timpush/set_attr", `{}`, "UserAttrs is required"},
		{"all_member_push/im_set_attr", `{"UserAttrs":[{"To_Account":"u0"}]}`, "UserAttrs[0].Attrs is required"},
		{"timpush/remove_attr", `{"UserAttrs":[{"To_Account":"u0"}]}`, "UserAttrs[0].Attrs is required"},
		{"all_member_push/im_remove_attr", `{"UserAttrs":null}`, "UserAttrs is required"},
		{"timpush/add_tag", `{"UserTags":[{"To_Account":"u0"}]}`, "UserTags[0].Tags is required"},
		{"timpush/add_tag", `{"Replace":1,"UserTags":[{"To_Account":"u0","Tags":null}]}`, "UserTags[0].Tags is required"},
		{"timpush/add_tag", `{}`, "UserTags is required"},
		{"all_member_push/im_add_tag", `{"UserTags":[{"To_Account":"u0"}]}`, "UserTags[0].Tags is required"},
		{"timpush/remove_tag", `{"UserTags":[{"To_Account":"u0"}]}`, "UserTags[0].Tags is required"},
		{"all_member_push/im_remove_tag", `{"UserTags":[{"Tags":["a"]}]}`, "UserTags[0].To_Account is required"},
		{"timpush/clear_all_tags", `{}`, "To_Account is required"},
		{"all_member_push/im_remove_all_tags", `{"To_Account":null}`, "To_Account is required"},
		{"timpush/get_attr", `{}`, "To_Account is required"},
		{"all_member_push/im_get_attr", `{}`, "To_Account is required"},
		{"timpush/get_tag", `{}`, "To_Account is required"},
		{"all_member_push/im_get_tag", `{}`, "To_Account is required"},
		{"timpush/all_member_push_statistics", `{"EndTime":1}`, "StartTime and EndTime are required"},
	} {
		r := e.call(c.cmd, c.body)
		wantCode(t, r, im.CodePushJSON)
		if info := r["ErrorInfo"].(string); info != c.info {
			t.Errorf("%s %s: ErrorInfo %q, want %q", c.cmd, c.body, info, c.info)
		}
	}
	// set_attr_name without names keeps its attribute code, 90033.
	for _, body := range []string{`{}`, `{"AttrNames":null}`, `{"AttrTypes":{"1":0}}`} {
		wantCode(t, e.call("timpush/set_attr_name", body), im.CodeAttrInvalid)
	}
	// The refused writes changed nothing: u0 keeps its tag, u0 and u1 have
	// no attributes.
	r := e.call("timpush/get_tag", `{"To_Account":["u0"]}`)
	if got := jsonOf(r["UserTags"]); got != `[{"Tags":["even"],"To_Account":"u0"}]` {
		t.Errorf("u0 tags = %s", got)
	}
}

// goType matches text that only a Go program would write: a Go type or
// package name in an answer is a leak of the implementation.
var goType = regexp.MustCompile(`struct|map\[|\[\]|httpapi\.|service\.|im\.|\*|int64|uint|float64|interface`)

// TestWrongTypeErrorInfo: a body of the wrong JSON type, for every
// command, answers the family's JSON code with text in the API's words;
// and a wrong-type field is named by its JSON path with the JSON type
// expected (issue 8, point 10).
func TestWrongTypeErrorInfo(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, cmd := range httpapi.Commands() {
		for _, body := range []string{`[]`, `"x"`, `1`, `null`, `true`} {
			r := e.call(cmd, body)
			if c := r.code(); c != im.CodePushJSON && c != im.CodeBodyJSON {
				t.Errorf("%s %s: ErrorCode %d (%v), want the JSON error", cmd, body, c, r["ErrorInfo"])
			}
			info := r["ErrorInfo"].(string)
			if goType.MatchString(info) || !strings.Contains(info, "JSON object") {
				t.Errorf("%s %s: ErrorInfo %q is not in the API's words", cmd, body, info)
			}
		}
	}
	covered := map[string]bool{}
	for _, c := range []struct {
		cmd, body string
		code      int
		info      string
	}{
		{"timpush/set_attr", `{"UserAttrs":{}}`, im.CodePushJSON, "UserAttrs must be a JSON array, got object"},
		{"timpush/set_attr", `{"UserAttrs":[{"To_Account":"a","Attrs":{"city":"x"}},{"To_Account":"b","Attrs":["city"]}]}`, im.CodePushJSON, "UserAttrs[1].Attrs must be a JSON object, got array"},
		{"timpush/set_attr", `{"UserAttrs":[{"To_Account":"a","Attrs":{"city":7}}]}`, im.CodePushJSON, "UserAttrs[0].Attrs.city must be a JSON string, got number"},
		{"timpush/set_attr", `{"UserAttrs":[{"To_Account":7,"Attrs":{}}]}`, im.CodeAccountNotStr, "UserAttrs[0].To_Account must be a JSON string, got number"},
		{"timpush/remove_attr", `{"UserAttrs":[{"To_Account":"a","Attrs":"city"}]}`, im.CodePushJSON, "UserAttrs[0].Attrs must be a JSON array, got string"},
		{"timpush/add_tag", `{"Replace":"yes","UserTags":[]}`, im.CodePushJSON, "Replace must be a JSON integer, got string"},
		{"timpush/add_tag", `{"Replace":1.5,"UserTags":[]}`, im.CodePushJSON, "Replace must be an integer"},
		{"timpush/add_tag", `{"UserTags":[{"To_Account":"a","Tags":[true]}]}`, im.CodePushJSON, "UserTags[0].Tags[0] must be a JSON string, got boolean"},
		{"timpush/get_tag", `{"To_Account":["a",1]}`, im.CodeAccountNotStr, "To_Account[1] must be a JSON string, got number"},
		{"timpush/set_attr_name", `{"AttrNames":{"0":["city"]}}`, im.CodePushJSON, "AttrNames.0 must be a JSON string, got array"},
		{"timpush/set_attr_name", `{"AttrNames":{"0":"city"},"AttrTypes":{"0":"user"}}`, im.CodePushJSON, "AttrTypes.0 must be a JSON integer, got string"},
		{"timpush/all_member_push_statistics", `{"StartTime":"1","EndTime":2}`, im.CodePushJSON, "StartTime must be a JSON integer, got string"},
		{"timpush/all_member_push_statistics", `{"StartTime":1,"EndTime":2,"TaskID":"x"}`, im.CodePushJSON, "TaskID must be a JSON array, got string"},
		{"timpush/normal_push_trace", `{"PushID":5}`, im.CodePushJSON, "PushID must be a JSON string, got number"},
		{"im_open_login_svc/account_check", `{"CheckItem":{"UserID":"a"}}`, im.CodeBodyJSON, "CheckItem must be a JSON array, got object"},
		{"im_open_login_svc/account_import", `{"UserID":"a","Nick":7}`, im.CodeBodyJSON, "Nick must be a JSON string, got number"},
		{"im_open_login_svc/account_import", `{"UserID":["a"]}`, im.CodeAccountNotStr, "UserID must be a JSON string, got array"},
		{"im_open_login_svc/multiaccount_import", `{"Accounts":["a",{}]}`, im.CodeAccountNotStr, "Accounts[1] must be a JSON string, got object"},
		{"im_open_login_svc/multiaccount_import", `{"AccountList":[{"UserID":"a","FaceUrl":false}]}`, im.CodeBodyJSON, "AccountList[0].FaceUrl must be a JSON string, got boolean"},
		{"im_open_login_svc/account_delete", `{"DeleteItem":[{"UserID":1}]}`, im.CodeAccountNotStr, "DeleteItem[0].UserID must be a JSON string, got number"},
		{"im_open_login_svc/kick", `{"UserID":true}`, im.CodeAccountNotStr, "UserID must be a JSON string, got boolean"},
		{"openim/query_online_status", `{"To_Account":["a"],"IsNeedDetail":"1"}`, im.CodeBodyJSON, "IsNeedDetail must be a JSON integer, got string"},
		{"timpush/get_attr_name", `{}`, 0, ""},
		{"all_member_push/im_get_attr_name", `{}`, 0, ""},
		{"all_member_push/im_set_attr_name", `{"AttrNames":[]}`, im.CodePushJSON, "AttrNames must be a JSON object, got array"},
		{"timpush/get_attr", `{"To_Account":"a"}`, im.CodeAccountNotStr, "To_Account must be a JSON array, got string"},
		{"all_member_push/im_get_attr", `{"To_Account":[["a"]]}`, im.CodeAccountNotStr, "To_Account[0] must be a JSON string, got array"},
		{"all_member_push/im_set_attr", `{"UserAttrs":[{"To_Account":"a","Attrs":{"city":null,"x":1}}]}`, im.CodePushJSON, "UserAttrs[0].Attrs.x must be a JSON string, got number"},
		{"all_member_push/im_remove_attr", `{"UserAttrs":[{"To_Account":"a","Attrs":[1]}]}`, im.CodePushJSON, "UserAttrs[0].Attrs[0] must be a JSON string, got number"},
		{"all_member_push/im_add_tag", `{"UserTags":[{"To_Account":"a","Tags":{}}]}`, im.CodePushJSON, "UserTags[0].Tags must be a JSON array, got object"},
		{"timpush/remove_tag", `{"UserTags":"a"}`, im.CodePushJSON, "UserTags must be a JSON array, got string"},
		{"all_member_push/im_remove_tag", `{"UserTags":[7]}`, im.CodePushJSON, "UserTags[0] must be a JSON object, got number"},
		{"all_member_push/im_get_tag", `{"To_Account":{}}`, im.CodeAccountNotStr, "To_Account must be a JSON array, got object"},
		{"timpush/clear_all_tags", `{"To_Account":[null,2]}`, im.CodeAccountNotStr, "To_Account[1] must be a JSON string, got number"},
		{"all_member_push/im_remove_all_tags", `{"To_Account":1}`, im.CodeAccountNotStr, "To_Account must be a JSON array, got number"},
		{"timpush/push", `{"MsgRandom":1,"Condition":["x"],"OfflinePushInfo":{}}`, im.CodePushJSON, "Condition must be a JSON object"},
		{"timpush/push", `{"MsgRandom":1,"Condition":{"TagsOr":"x"},"OfflinePushInfo":{}}`, im.CodePushJSON, "Condition.TagsOr must be an array of strings"},
		{"timpush/batch", `{"MsgRandom":1,"To_Account":["a",2],"OfflinePushInfo":{}}`, im.CodeAccountNotStr, "To_Account[1] must be a JSON string"},
		{"all_member_push/im_push", `{"MsgRandom":1,"Condition":{"AttrsOr":["x"]},"MsgBody":[]}`, im.CodePushJSON, "Condition.AttrsOr must be an object of string values"},
		{"timpush/revoke", `{"TaskId":5}`, im.CodePushJSON, "TaskId must be a JSON string, got number"},
		{"timpush/revoke", `{"TaskId":"x","OfflinePushInfo":[]}`, im.CodePushJSON, "OfflinePushInfo must be an object"},
		{"timpush/add_sched_task", `{"Sdkappid":"1400000001"}`, im.CodePushJSON, "Sdkappid must be a JSON integer, got string"},
		{"timpush/modify_sched_task", `{"Sdkappid":1400000001,"TaskID":1.5}`, im.CodePushJSON, "TaskID must be an integer"},
		{"timpush/delete_sched_task", `{"Sdkappid":1400000001,"TaskID":1,"Type":1}`, im.CodePushJSON, "Type must be a JSON string, got number"},
		{"timpush/get_sched_task", `{"Sdkappid":1400000001,"TaskID":"1"}`, im.CodePushJSON, "TaskID must be a JSON integer, got string"},
		{"timpush/list_sched_task", `{"Sdkappid":1400000001,"Want":10,"Asc":"yes"}`, im.CodePushJSON, "Asc must be a JSON boolean, got string"},
		{"timpush/all_member_push_trace", `{"TaskID":["x"],"UserID":"u"}`, im.CodePushJSON, "TaskID must be a JSON string, got array"},
		{"timpush/all_member_push_loss", `{"StartTime":1,"EndTime":{}}`, im.CodePushJSON, "EndTime must be a JSON integer, got object"},
		{"timpush/normal_push_statistics", `{"StartTime":1,"EndTime":2e30}`, im.CodePushJSON, "EndTime must be an integer"},
		{"timpush/normal_push_loss", `{"StartTime":[],"EndTime":2}`, im.CodePushJSON, "StartTime must be a JSON integer, got array"},
		{"timd_ext/audience_count", `{"Condition":{"TagsNot":[1]}}`, im.CodePushJSON, "Condition.TagsNot must be an array of strings"},
		{"timd_ext/app_summary", `{}`, 0, ""},
		{"timd_ext/tag_histogram", `{"Limit":"5"}`, im.CodePushJSON, "Limit must be a JSON integer, got string"},
		{"timd_ext/account_list", `{"Cursor":5}`, im.CodePushJSON, "Cursor must be a JSON string, got number"},
		{"timd_ext/account_devices", `{"UserID":[]}`, im.CodeAccountNotStr, "UserID must be a JSON string, got array"},
		{"timd_ext/push_history", `{"Limit":[]}`, im.CodePushJSON, "Limit must be a JSON integer, got array"},
		{"timd_ext/live", `{}`, 0, ""},
	} {
		if c.code == 0 {
			continue // takes no fields
		}
		covered[c.cmd] = true
		r := e.call(c.cmd, c.body)
		wantCode(t, r, c.code)
		info := r["ErrorInfo"].(string)
		if !strings.HasPrefix(info, c.info) || goType.MatchString(info) {
			t.Errorf("%s %s: ErrorInfo %q, want %q", c.cmd, c.body, info, c.info)
		}
	}
	for _, cmd := range httpapi.Commands() {
		if !covered[cmd] && !strings.HasSuffix(cmd, "get_attr_name") && cmd != "timd_ext/app_summary" && cmd != "timd_ext/live" {
			t.Errorf("%s has no wrong-type field case", cmd)
		}
	}
}

// TestPushDisabled: on a server built without the push services, exactly
// the routes marked push answer 90045, whatever the body; the attribute,
// tag and account commands still work.
func TestPushDisabled(t *testing.T) {
	e := newEnv(t, envOpts{noPush: true})
	pushCmds := map[string]bool{"all_member_push/im_push": true}
	for _, c := range []string{"push", "batch", "revoke", "add_sched_task", "modify_sched_task",
		"delete_sched_task", "get_sched_task", "list_sched_task", "all_member_push_statistics",
		"all_member_push_trace", "all_member_push_loss", "normal_push_statistics", "normal_push_trace",
		"normal_push_loss"} {
		pushCmds["timpush/"+c] = true
	}
	for _, c := range []string{"audience_count", "app_summary", "tag_histogram", "account_list", "account_devices", "push_history", "live"} {
		pushCmds["timd_ext/"+c] = true
	}
	for _, cmd := range httpapi.Commands() {
		for _, body := range []string{`{}`, `[]`, `{"MsgRandom":1,"OfflinePushInfo":{}}`} {
			r := e.call(cmd, body)
			if got := r.code() == im.CodePushDisabled; got != pushCmds[cmd] {
				t.Errorf("%s %s: ErrorCode %d (%v); push route: %v", cmd, body, r.code(), r["ErrorInfo"], pushCmds[cmd])
			}
		}
	}
	wantCode(t, e.call("timpush/set_attr_name", `{"AttrNames":{"0":"city"}}`), 0)
}
