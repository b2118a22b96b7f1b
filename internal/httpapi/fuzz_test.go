package httpapi_test

import (
	"strings"
	"testing"

	"timd/internal/httpapi"
)

// FuzzRequests sends arbitrary bodies to every command of the routes table
// through the real router and store, authenticated as an admin. The
// command is part of the input (an index into httpapi.Commands), and each
// seed body starts at the command it was written for; every command is
// also seeded with the bodies every command must survive. Whatever the
// body, the answer must be HTTP 200 with a consistent JSON envelope
// (checked by env.do), and never an internal-error code.
func FuzzRequests(f *testing.F) {
	seeds := []struct{ cmd, body string }{
		{"im_open_login_svc/account_import", `{"UserID":"alice"}`},
		{"im_open_login_svc/multiaccount_import", `{"Accounts":["a","b"]}`},
		{"im_open_login_svc/account_delete", `{"DeleteItem":[{"UserID":"a"}]}`},
		{"im_open_login_svc/account_check", `{"CheckItem":[{"UserID":"a"}]}`},
		{"im_open_login_svc/kick", `{"UserID":"a"}`},
		{"openim/query_online_status", `{"To_Account":["a"],"IsNeedDetail":1}`},
		{"timpush/set_attr_name", `{"AttrNames":{"0":"sex","1":"city"},"AttrTypes":{"0":0}}`},
		{"timpush/set_attr", `{"UserAttrs":[{"To_Account":"a","Attrs":{"sex":"m"}}]}`},
		{"timpush/get_attr", `{"To_Account":["a"]}`},
		{"timpush/remove_attr", `{"UserAttrs":[{"To_Account":"a","Attrs":["sex"]}]}`},
		{"timpush/add_tag", `{"Replace":1,"UserTags":[{"To_Account":"a","Tags":["x","y"]}]}`},
		{"timpush/get_tag", `{"To_Account":["a"]}`},
		{"timpush/remove_tag", `{"UserTags":[{"To_Account":"a","Tags":["x"]}]}`},
		{"timpush/clear_all_tags", `{"To_Account":["a"]}`},
		{"timpush/push", `{"MsgRandom":1,"Condition":{"TagsOr":["x"]},"OfflinePushInfo":{"Title":"t"}}`},
		{"timpush/push", `{"MsgRandom":3,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}`},
		{"timpush/batch", `{"From_Account":"a","To_Account":["a"],"MsgRandom":2,"OfflinePushInfo":{"Desc":"d"}}`},
		{"timpush/revoke", `{"TaskId":"x","OfflinePushInfo":{"Title":"r"}}`},
		{"timpush/add_sched_task", `{"Sdkappid":1400000001,"Type":"All","SchedAt":"2030-01-01 00:00:00","Content":{"OfflinePushInfo":{"Title":"t"}}}`},
		{"timpush/modify_sched_task", `{"Sdkappid":1400000001,"TaskID":1,"Type":"All","SchedAt":"2030-01-01 00:00:00"}`},
		{"timpush/delete_sched_task", `{"Sdkappid":1400000001,"TaskID":1,"Type":"All"}`},
		{"timpush/get_sched_task", `{"Sdkappid":1400000001,"TaskID":1}`},
		{"timpush/list_sched_task", `{"Sdkappid":1400000001,"Offset":0,"Want":10,"OrderBy":"schedAt"}`},
		{"timpush/all_member_push_statistics", `{"StartTime":1,"EndTime":2,"TaskID":[]}`},
		{"timpush/normal_push_statistics", `{"StartTime":1,"EndTime":2}`},
		{"all_member_push/im_set_attr", `{"UserAttrs":[{"To_Account":"a","Attrs":{"sex":"m"}}]}`},
		{"all_member_push/im_add_tag", `{"UserTags":[{"To_Account":"a","Tags":["x"]}]}`},
		{"all_member_push/im_push", `{"MsgRandom":4,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}`},
		{"timd_ext/audience_count", `{"Condition":{"TagsAnd":["x"],"TagsNot":["y"]}}`},
		{"timd_ext/audience_count", `{"Condition":{"AttrsOr":{"sex":"m"}}}`},
		{"timd_ext/tag_histogram", `{"Limit":3}`},
		{"timd_ext/account_list", `{"Limit":2,"Cursor":"3"}`},
		{"timd_ext/account_devices", `{"UserID":"a"}`},
		{"timd_ext/push_history", `{"Limit":5}`},
		// Misspelt and empty keys (a misspelt key never widens a request).
		{"timpush/push", `{"MsgRandom":4,"Condition":{"TagOr":["x"]},"OfflinePushInfo":{}}`},
		{"timpush/push", `{"MsgRandom":5,"Condition":{},"OfflinePushInfo":{}}`},
		{"timpush/set_attr", `{"UserAttrs":[{"To_Account":"a","Attrs":null}]}`},
		{"timpush/add_tag", `{"UserTags":[{"To_Account":"a"}]}`},
		{"timpush/modify_sched_task", `{"Sdkappid":1400000001,"TaskID":1,"Type":"Tag","Content":{"Condition":{"TagsOr":["x"]},"OfflinePushInfo":{}}}`},
	}
	everywhere := []string{`{}`, `null`, `[]`, `"x"`, `{"UserAttrs":null}`, `{"To_Account":[1]}`, `{"UserTags":[{"Tags":[null]}]}`}
	cmds := httpapi.Commands()
	index := map[string]uint8{}
	for i, c := range cmds {
		index[c] = uint8(i)
	}
	for _, s := range seeds {
		i, ok := index[s.cmd]
		if !ok {
			f.Fatalf("seed for %s: no such command in the routes table", s.cmd)
		}
		f.Add(i, s.body)
	}
	for i := range cmds {
		for _, body := range everywhere {
			f.Add(uint8(i), body)
		}
	}
	e := newEnv(f, envOpts{quiet: true})
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		e.t = t
		cmd := cmds[int(which)%len(cmds)]
		r := e.call(cmd, body)
		if c := r.code(); c == 70500 || c == 91000 {
			t.Fatalf("%s %q: internal error %d %v", cmd, body, c, r["ErrorInfo"])
		}
		if strings.Contains(strings.ToLower(jsonOf(r["ErrorInfo"])), "panic") {
			t.Fatalf("panic text leaked: %v", r["ErrorInfo"])
		}
	})
}
