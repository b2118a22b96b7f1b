package httpapi_test

import (
	"strings"
	"testing"

	"timd/internal/httpapi"
)

// FuzzRequests sends arbitrary bodies to every command of the routes table
// through the real router and store, authenticated as an admin. Whatever
// the body, the answer must be HTTP 200 with a consistent JSON envelope
// (checked by env.do), and never an internal-error code.
func FuzzRequests(f *testing.F) {
	seeds := []string{
		`{}`, `{"UserID":"alice"}`, `{"Accounts":["a","b"]}`, `{"AccountList":[{"UserID":"a"}]}`,
		`{"DeleteItem":[{"UserID":"a"}]}`, `{"CheckItem":[{"UserID":"a"}]}`, `{"To_Account":["a"]}`,
		`{"AttrNames":{"0":"sex","1":"city"},"AttrTypes":{"0":0}}`,
		`{"UserAttrs":[{"To_Account":"a","Attrs":{"sex":"m"}}]}`, `{"UserAttrs":[{"To_Account":"a","Attrs":["sex"]}]}`,
		`{"Replace":1,"UserTags":[{"To_Account":"a","Tags":["x","y"]}]}`,
		`{"MsgRandom":1,"Condition":{"TagsOr":["x"]},"OfflinePushInfo":{"Title":"t"}}`,
		`{"From_Account":"a","To_Account":["a"],"MsgRandom":2,"OfflinePushInfo":{"Desc":"d"}}`,
		`{"MsgRandom":3,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}`,
		`{"TaskId":"x"}`, `{"StartTime":1,"EndTime":2,"TaskID":[]}`,
		`{"Sdkappid":1400000001,"Type":"All","SchedAt":"2030-01-01 00:00:00","Content":{}}`,
		`null`, `[]`, `"x"`, `{"UserAttrs":null}`, `{"To_Account":[1]}`, `{"UserTags":[{"Tags":[null]}]}`,
		`{"MsgRandom":4,"Condition":{"TagOr":["x"]},"OfflinePushInfo":{}}`, `{"MsgRandom":5,"Condition":{},"OfflinePushInfo":{}}`,
		`{"UserAttrs":[{"To_Account":"a","Attrs":null}]}`, `{"UserTags":[{"To_Account":"a"}]}`,
		`{"Sdkappid":1400000001,"TaskID":1,"Type":"Tag","Content":{"Condition":{"TagsOr":["x"]},"OfflinePushInfo":{}}}`,
	}
	for _, s := range seeds {
		f.Add(uint8(0), s)
	}
	e := newEnv(f, envOpts{})
	cmds := httpapi.Commands()
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
