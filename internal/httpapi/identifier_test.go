package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"timd/internal/im"
	"timd/internal/usersig"
)

// TestIdentifierAlias: Identifier is the earlier name of UserID in
// account_import (and AccountList items) and kick. The bodies are the ones
// older clients send: dobyte/tencent-im (account.Info and kickAccountReq,
// Nick and FaceUrl always present), the fastjson and Jackson Java SDKs
// (AccountImportRequest, KickRequest).
func TestIdentifierAlias(t *testing.T) {
	e := newEnv(t, envOpts{})
	check := func(id, want string) {
		t.Helper()
		r := e.call("im_open_login_svc/account_check", `{"CheckItem":[{"UserID":"`+id+`"}]}`)
		if got := jsonOf(r["ResultItem"]); got != `[{"AccountStatus":"`+want+`","ResultCode":0,"ResultInfo":"","UserID":"`+id+`"}]` {
			t.Errorf("account_check %s = %s, want %s", id, got, want)
		}
	}
	for _, tc := range []struct{ name, body, id string }{
		{"dobyte account.Info", `{"Identifier":"dobyte_user","Nick":"","FaceUrl":""}`, "dobyte_user"},
		{"fastjson AccountImportRequest", `{"FaceUrl":"http://www.qq.com","Identifier":"java_user","Nick":"test"}`, "java_user"},
		{"both names agreeing", `{"UserID":"both","Identifier":"both"}`, "both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(tc.id, "NotImported")
			wantCode(t, e.call("im_open_login_svc/account_import", tc.body), 0)
			check(tc.id, "Imported")
		})
	}
	r := e.call("im_open_login_svc/multiaccount_import", `{"AccountList":[{"Identifier":"list_user","Nick":"L"}]}`)
	wantCode(t, r, 0)
	check("list_user", "Imported")

	// kick accepts Identifier (TestKickByIdentifier checks its effect).
	wantCode(t, e.call("im_open_login_svc/kick", `{"Identifier":"java_user"}`), 0)
	wantCode(t, e.call("im_open_login_svc/kick", `{"Identifier":"ghost"}`), im.CodeAccountNotFound)
	wantCode(t, e.call("im_open_login_svc/kick", `{"UserID":"dobyte_user","Identifier":"dobyte_user"}`), 0)

	for _, tc := range []struct {
		name, cmd, body string
		code            int
	}{
		{"import: names differ", "account_import", `{"UserID":"a","Identifier":"b"}`, im.CodeAccountBadParam},
		{"import: empty Identifier", "account_import", `{"Identifier":""}`, im.CodeAccountBadParam},
		{"import: Identifier over 32 bytes", "account_import", `{"Identifier":"123456789012345678901234567890123"}`, im.CodeAccountBadParam},
		{"import: Identifier not a string", "account_import", `{"Identifier":7}`, im.CodeAccountNotStr},
		{"import: Identifier null", "account_import", `{"Identifier":null}`, im.CodeAccountBadParam},
		{"list item: names differ", "multiaccount_import", `{"AccountList":[{"UserID":"a","Identifier":"b"}]}`, im.CodeAccountBadParam},
		{"kick: names differ", "kick", `{"UserID":"java_user","Identifier":"dobyte_user"}`, im.CodeAccountBadParam},
		{"kick: Identifier not a string", "kick", `{"Identifier":["x"]}`, im.CodeAccountNotStr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, e.call("im_open_login_svc/"+tc.cmd, tc.body), tc.code)
		})
	}
	check("a", "NotImported")
	check("b", "NotImported")
}

// TestKickByIdentifier: a sig issued before a kick by Identifier is
// refused with 70052; a new one works.
func TestKickByIdentifier(t *testing.T) {
	e := newEnv(t, envOpts{})
	wantCode(t, e.call("im_open_login_svc/account_import", `{"Identifier":"ops"}`), 0)
	old, _ := usersig.Gen(appA.SDKAppID, appA.SecretKey, "ops", 86400, time.Now().Unix()-5)
	u := e.url("timpush/get_attr_name", appA, "ops", old)
	wantCode(t, e.do(http.MethodPost, u, `{}`), 0)
	wantCode(t, e.call("im_open_login_svc/kick", `{"Identifier":"ops"}`), 0)
	wantCode(t, e.do(http.MethodPost, u, `{}`), im.CodeSigKicked)
}
