package httpapi_test

import (
	"strings"
	"testing"

	"timd/internal/im"
)

// TestInternalErrors is the table of the internal-error code of each
// family: a store that fails (here: closed under the running server) is
// answered with the family's internal code and a generic text, never the
// Go error or an HTTP 500.
func TestInternalErrors(t *testing.T) {
	e := newEnv(t, envOpts{quiet: true})
	setupPush(t, e, 2)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cmd, body string
		code      int
	}{
		{"im_open_login_svc/account_check", `{"CheckItem":[{"UserID":"u0"}]}`, im.CodeAccountInternal},
		{"im_open_login_svc/account_import", `{"UserID":"new"}`, im.CodeAccountInternal},
		{"openim/query_online_status", `{"To_Account":["u0"]}`, im.CodeAccountInternal},
		{"timpush/get_attr_name", `{}`, im.CodePushInternal},
		{"timpush/get_tag", `{"To_Account":["u0"]}`, im.CodePushInternal},
		{"timpush/add_tag", `{"UserTags":[{"To_Account":"u0","Tags":["x"]}]}`, im.CodePushInternal},
		{"timpush/push", `{"MsgRandom":1,` + msg + `}`, im.CodePushInternal},
		{"all_member_push/im_get_attr_name", `{}`, im.CodePushInternal},
	} {
		t.Run(c.cmd, func(t *testing.T) {
			r := e.call(c.cmd, c.body)
			wantCode(t, r, c.code)
			info, _ := r["ErrorInfo"].(string)
			if strings.Contains(info, "sql") || strings.Contains(info, "closed") {
				t.Errorf("ErrorInfo leaks the Go error: %q", info)
			}
		})
	}
}
