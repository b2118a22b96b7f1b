package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"timd/internal/im"
	"timd/internal/usersig"
)

func TestAccountImportAndCheck(t *testing.T) {
	e := newEnv(t, envOpts{})
	wantCode(t, e.call("im_open_login_svc/account_import", `{"UserID":"alice","Nick":"Alice","FaceUrl":"https://x/a.png"}`), 0)
	// Idempotent re-import.
	wantCode(t, e.call("im_open_login_svc/account_import", `{"UserID":"alice","Nick":"Alicia"}`), 0)
	for _, c := range []struct{ name, body string }{
		{"no UserID", `{"Nick":"x"}`},
		{"empty UserID", `{"UserID":""}`},
		{"UserID over 32 bytes", `{"UserID":"` + strings.Repeat("u", 33) + `"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantCode(t, e.call("im_open_login_svc/account_import", c.body), im.CodeAccountBadParam)
		})
	}
	wantCode(t, e.call("im_open_login_svc/account_import", `{"UserID":"`+strings.Repeat("u", 32)+`"}`), 0)

	r := e.call("im_open_login_svc/account_check", `{"CheckItem":[{"UserID":"alice"},{"UserID":"ghost"}]}`)
	wantCode(t, r, 0)
	want := `[{"AccountStatus":"Imported","ResultCode":0,"ResultInfo":"","UserID":"alice"},{"AccountStatus":"NotImported","ResultCode":0,"ResultInfo":"","UserID":"ghost"}]`
	if got := jsonOf(r["ResultItem"]); got != want {
		t.Fatalf("ResultItem = %s\nwant %s", got, want)
	}
}

func TestMultiAccountImport(t *testing.T) {
	e := newEnv(t, envOpts{})
	r := e.call("im_open_login_svc/multiaccount_import", `{"Accounts":["u1","u2","`+strings.Repeat("x", 33)+`"]}`)
	wantCode(t, r, 0)
	if got := jsonOf(r["FailAccounts"]); got != `["`+strings.Repeat("x", 33)+`"]` {
		t.Fatalf("FailAccounts = %s", got)
	}
	r = e.call("im_open_login_svc/multiaccount_import", `{"AccountList":[{"UserID":"u3","Nick":"Three"},{"UserID":"u4"}]}`)
	wantCode(t, r, 0)
	if got := jsonOf(r["FailAccounts"]); got != `[]` {
		t.Fatalf("FailAccounts = %s", got)
	}
	r = e.call("im_open_login_svc/account_check", `{"CheckItem":[{"UserID":"u1"},{"UserID":"u2"},{"UserID":"u3"},{"UserID":"u4"}]}`)
	if strings.Contains(jsonOf(r["ResultItem"]), "NotImported") {
		t.Fatalf("not all imported: %s", jsonOf(r["ResultItem"]))
	}
	var ids []string
	for i := 0; i < 101; i++ {
		ids = append(ids, fmt.Sprintf("%q", fmt.Sprint("m", i)))
	}
	wantCode(t, e.call("im_open_login_svc/multiaccount_import", `{"Accounts":[`+strings.Join(ids, ",")+`]}`), im.CodeAccountBadParam)
	wantCode(t, e.call("im_open_login_svc/multiaccount_import", `{"Accounts":[`+strings.Join(ids[:100], ",")+`]}`), 0)
	wantCode(t, e.call("im_open_login_svc/multiaccount_import", `{"Accounts":[]}`), im.CodeAccountBadParam)
	wantCode(t, e.call("im_open_login_svc/multiaccount_import", `{}`), im.CodeAccountBadParam)
	wantCode(t, e.call("im_open_login_svc/multiaccount_import", `{"AccountList":[{"Nick":"x"}]}`), im.CodeAccountBadParam)
}

func TestAccountDelete(t *testing.T) {
	e := newEnv(t, envOpts{})
	wantCode(t, e.call("im_open_login_svc/multiaccount_import", `{"Accounts":["u1","u2"]}`), 0)
	r := e.call("im_open_login_svc/account_delete", `{"DeleteItem":[{"UserID":"u1"},{"UserID":"ghost"}]}`)
	wantCode(t, r, 0)
	want := `[{"ResultCode":0,"ResultInfo":"","UserID":"u1"},{"ResultCode":70107,"ResultInfo":"Err_TLS_PT_Open_Login_Account_Not_Exist","UserID":"ghost"}]`
	if got := jsonOf(r["ResultItem"]); got != want {
		t.Fatalf("ResultItem = %s\nwant %s", got, want)
	}
	r = e.call("im_open_login_svc/account_check", `{"CheckItem":[{"UserID":"u1"},{"UserID":"u2"}]}`)
	if got := jsonOf(r["ResultItem"]); !strings.Contains(got, `"NotImported","ResultCode":0,"ResultInfo":"","UserID":"u1"`) || !strings.Contains(got, `"Imported","ResultCode":0,"ResultInfo":"","UserID":"u2"`) {
		t.Fatalf("after delete: %s", got)
	}
	wantCode(t, e.call("im_open_login_svc/account_delete", `{"DeleteItem":[]}`), im.CodeAccountBadParam)
	wantCode(t, e.call("im_open_login_svc/account_delete", `{"DeleteItem":[{}]}`), im.CodeAccountBadParam)
	var items []string
	for i := 0; i < 101; i++ {
		items = append(items, fmt.Sprintf(`{"UserID":"d%d"}`, i))
	}
	wantCode(t, e.call("im_open_login_svc/account_delete", `{"DeleteItem":[`+strings.Join(items, ",")+`]}`), im.CodeAccountBadParam)
	wantCode(t, e.call("im_open_login_svc/account_check", `{"CheckItem":[`+strings.Join(items, ",")+`]}`), im.CodeAccountBadParam)
}

// TestKick checks that kick invalidates every earlier UserSig of the
// account while a sig issued after it works.
func TestKick(t *testing.T) {
	e := newEnv(t, envOpts{})
	now := time.Now().Unix()
	old, _ := usersig.Gen(appA.SDKAppID, appA.SecretKey, "ops", 86400, now-5)
	u := e.url("timpush/get_attr_name", appA, "ops", old)
	wantCode(t, e.do(http.MethodPost, u, `{}`), 0)
	wantCode(t, e.call("im_open_login_svc/kick", `{"UserID":"ops"}`), im.CodeAccountNotFound)
	wantCode(t, e.call("im_open_login_svc/account_import", `{"UserID":"ops"}`), 0)
	wantCode(t, e.call("im_open_login_svc/kick", `{"UserID":"ops"}`), 0)
	wantCode(t, e.do(http.MethodPost, u, `{}`), im.CodeSigKicked)
	fresh, _ := usersig.Gen(appA.SDKAppID, appA.SecretKey, "ops", 86400, time.Now().Unix()+1)
	wantCode(t, e.do(http.MethodPost, e.url("timpush/get_attr_name", appA, "ops", fresh), `{}`), 0)
	wantCode(t, e.call("im_open_login_svc/kick", `{}`), im.CodeAccountBadParam)
	wantCode(t, e.call("im_open_login_svc/kick", `{"UserID":""}`), im.CodeAccountBadParam)
}

func TestQueryOnlineStatus(t *testing.T) {
	e := newEnv(t, envOpts{})
	wantCode(t, e.call("im_open_login_svc/multiaccount_import", `{"Accounts":["u1","u2"]}`), 0)
	r := e.call("openim/query_online_status", `{"To_Account":["u1","ghost","u2"],"IsNeedDetail":1}`)
	wantCode(t, r, 0)
	if got := jsonOf(r["QueryResult"]); got != `[{"Status":"Offline","To_Account":"u1"},{"Status":"Offline","To_Account":"u2"}]` {
		t.Fatalf("QueryResult = %s", got)
	}
	if got := jsonOf(r["ErrorList"]); got != `[{"ErrorCode":70107,"To_Account":"ghost"}]` {
		t.Fatalf("ErrorList = %s", got)
	}
	var ids []string
	for i := 0; i < 501; i++ {
		ids = append(ids, fmt.Sprintf(`"q%d"`, i))
	}
	wantCode(t, e.call("openim/query_online_status", `{"To_Account":[`+strings.Join(ids, ",")+`]}`), im.CodeAccountBadParam)
	wantCode(t, e.call("openim/query_online_status", `{"To_Account":[`+strings.Join(ids[:500], ",")+`]}`), 0)
}
