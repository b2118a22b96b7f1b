package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"timd/internal/httpapi"
	"timd/internal/im"
	"timd/internal/usersig"
)

// fixture is app A with something behind every command: accounts (u0
// with an attribute and a tag, u1, victim, alice), a finished push, a
// finished batch, a spare push to revoke and a pending scheduled task.
type fixture struct {
	*env
	push, batch, revokable string
	sched, spareSched      float64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	e := newEnv(t, envOpts{quiet: true})
	wantCode(t, e.call("timpush/set_attr_name", `{"AttrNames":{"0":"city"}}`), 0)
	wantCode(t, e.call("im_open_login_svc/multiaccount_import", `{"Accounts":["u0","u1","victim","alice"]}`), 0)
	wantCode(t, e.call("timpush/set_attr", `{"UserAttrs":[{"To_Account":"u0","Attrs":{"city":"paris"}}]}`), 0)
	wantCode(t, e.call("timpush/add_tag", `{"UserTags":[{"To_Account":"u0","Tags":["gold"]}]}`), 0)
	f := &fixture{env: e}
	f.push = e.pushOK("timpush/push", `{"MsgRandom":1,"OfflinePushInfo":{"Title":"hello"}}`)
	f.batch = e.pushOK("timpush/batch", `{"MsgRandom":2,"To_Account":["u0"],"OfflinePushInfo":{"Title":"b"}}`)
	f.revokable = e.pushOK("timpush/push", `{"MsgRandom":3,"OfflinePushInfo":{"Title":"r"}}`)
	for _, id := range []string{f.push, f.batch, f.revokable} {
		e.waitDone(id)
	}
	note := `{"OfflinePushInfo":{"Title":"T","Desc":"D"}}`
	for _, id := range []*float64{&f.sched, &f.spareSched} {
		r := e.call("timpush/add_sched_task", schedBody("All", e.at(time.Hour), note))
		wantCode(t, r, 0)
		*id = r["TaskID"].(float64)
	}
	return f
}

// bodies returns, for every command of the routes table, a body that an
// admin of app as gets answered with code 0 on a fixture of app A. Each
// body would read or change app A's data.
func (f *fixture) bodies() map[string]string {
	now := f.clock.Now().Unix()
	win := fmt.Sprintf(`"StartTime":%d,"EndTime":%d`, now-60, now+60)
	sched := func(id float64, extra string) string {
		return fmt.Sprintf(`{"Sdkappid":%d,"TaskID":%v%s}`, appA.SDKAppID, id, extra)
	}
	return map[string]string{
		"im_open_login_svc/account_import":      `{"UserID":"intruder"}`,
		"im_open_login_svc/multiaccount_import": `{"Accounts":["intruder2"]}`,
		"im_open_login_svc/account_delete":      `{"DeleteItem":[{"UserID":"victim"}]}`,
		"im_open_login_svc/account_check":       `{"CheckItem":[{"UserID":"u0"}]}`,
		"im_open_login_svc/kick":                `{"UserID":"u1"}`,
		"openim/query_online_status":            `{"To_Account":["u0"]}`,

		"timpush/set_attr_name":  `{"AttrNames":{"1":"level"}}`,
		"timpush/get_attr_name":  `{}`,
		"timpush/set_attr":       `{"UserAttrs":[{"To_Account":"u0","Attrs":{"city":"rome"}}]}`,
		"timpush/get_attr":       `{"To_Account":["u0"]}`,
		"timpush/remove_attr":    `{"UserAttrs":[{"To_Account":"u0","Attrs":["city"]}]}`,
		"timpush/add_tag":        `{"UserTags":[{"To_Account":"u0","Tags":["silver"]}]}`,
		"timpush/get_tag":        `{"To_Account":["u0"]}`,
		"timpush/remove_tag":     `{"UserTags":[{"To_Account":"u0","Tags":["gold"]}]}`,
		"timpush/clear_all_tags": `{"To_Account":["u0"]}`,

		"timpush/push":                       `{"MsgRandom":10,"OfflinePushInfo":{"Title":"x"}}`,
		"timpush/batch":                      `{"MsgRandom":11,"To_Account":["u0"],"OfflinePushInfo":{"Title":"x"}}`,
		"timpush/revoke":                     `{"TaskId":"` + f.revokable + `","OfflinePushInfo":{"Title":"gone"}}`,
		"timpush/add_sched_task":             schedBody("All", f.at(2*time.Hour), `{"OfflinePushInfo":{"Title":"x"}}`),
		"timpush/modify_sched_task":          sched(f.sched, `,"Type":"All","SchedAt":"`+f.at(3*time.Hour)+`"`),
		"timpush/delete_sched_task":          sched(f.spareSched, `,"Type":"All"`),
		"timpush/get_sched_task":             sched(f.sched, ""),
		"timpush/list_sched_task":            fmt.Sprintf(`{"Sdkappid":%d,"Want":10}`, appA.SDKAppID),
		"timpush/all_member_push_statistics": `{` + win + `,"TaskID":["` + f.push + `"]}`,
		"timpush/all_member_push_trace":      `{"TaskID":"` + f.push + `","UserID":"u0"}`,
		"timpush/all_member_push_loss":       `{` + win + `,"TaskID":["` + f.push + `"]}`,
		"timpush/normal_push_statistics":     `{` + win + `}`,
		"timpush/normal_push_trace":          `{"PushID":"` + f.batch + `"}`,
		"timpush/normal_push_loss":           `{` + win + `}`,

		"all_member_push/im_set_attr_name":   `{"AttrNames":{"2":"sex"}}`,
		"all_member_push/im_get_attr_name":   `{}`,
		"all_member_push/im_set_attr":        `{"UserAttrs":[{"To_Account":"u0","Attrs":{"city":"oslo"}}]}`,
		"all_member_push/im_get_attr":        `{"To_Account":["u0"]}`,
		"all_member_push/im_remove_attr":     `{"UserAttrs":[{"To_Account":"u0","Attrs":["city"]}]}`,
		"all_member_push/im_add_tag":         `{"UserTags":[{"To_Account":"u0","Tags":["bronze"]}]}`,
		"all_member_push/im_get_tag":         `{"To_Account":["u0"]}`,
		"all_member_push/im_remove_tag":      `{"UserTags":[{"To_Account":"u0","Tags":["gold"]}]}`,
		"all_member_push/im_remove_all_tags": `{"To_Account":["u0"]}`,
		"all_member_push/im_push":            `{"MsgRandom":12,` + msg + `}`,
	}
}

// state is app A's data as its second admin (ops) and the store see it,
// for checking that a rejected request changed nothing.
func (f *fixture) state() string {
	f.t.Helper()
	ctx := context.Background()
	var b strings.Builder
	read := func(cmd, body string, fields ...string) {
		r := f.callAs(appA, "ops", cmd, body)
		wantCode(f.t, r, 0)
		for _, k := range fields {
			fmt.Fprintf(&b, "%s.%s=%s\n", cmd, k, jsonOf(r[k]))
		}
	}
	users := `{"To_Account":["u0","u1","victim","alice"]}`
	read("timpush/get_attr_name", `{}`, "AttrNames", "AttrTypes")
	read("timpush/get_attr", users, "UserAttrs")
	read("timpush/get_tag", users, "UserTags")
	read("timpush/get_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":%v}`, appA.SDKAppID, f.sched), "TaskInfo")
	read("timpush/list_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"Want":100}`, appA.SDKAppID), "Total", "Tasks")
	accts, err := f.store.Accounts(ctx, appA.SDKAppID, []string{"u0", "u1", "victim", "alice", "intruder", "intruder2"})
	if err != nil {
		f.t.Fatal(err)
	}
	fmt.Fprintf(&b, "accounts=%+v\n", accts)
	n, err := f.store.CountTasks(ctx, appA.SDKAppID, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	fmt.Fprintf(&b, "tasks=%d\n", n)
	for _, id := range []string{f.push, f.batch, f.revokable} {
		tk := f.task(id)
		fmt.Fprintf(&b, "task %s state=%d revoke=%s\n", id, tk.State, tk.RevokeInfo)
	}
	return b.String()
}

// TestEveryCommandRejectsBadCallers sends every command of the routes
// table with each kind of bad caller and checks the code and that app A's
// data did not change; then the same request from an admin (ops)
// succeeds, which shows that the rejection was the caller's and not the
// body's. Each kind but the non-admin one is a failed verification for
// "administrator": a fixture serves three commands (15 failures), to stay
// under the bad-signature throttle (20).
func TestEveryCommandRejectsBadCallers(t *testing.T) {
	now := time.Now().Unix()
	gen := func(app im.App, key, id string, expire, at int64) string {
		s, err := usersig.Gen(app.SDKAppID, key, id, expire, at)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const admin = "administrator"
	cases := []badCaller{
		{"missing usersig", admin, "-", fixed(im.CodeSigEmpty)},
		{"empty usersig", admin, "", fixed(im.CodeSigEmpty)},
		{"garbage usersig", admin, "eJyrVkrNTcxXslJKzs8rSc0rUaoFADDVBd0_", fixed(im.CodeSigInvalid)},
		{"expired sig", admin, gen(appA, appA.SecretKey, admin, 60, now-3600), fixed(im.CodeSigExpired)},
		{"app B's admin sig sent to app A", "boss", gen(appB, appB.SecretKey, "boss", 86400, now), fixed(im.CodeSigSDKAppID)},
		{"sig for app B's sdkappid made with B's key", admin, gen(appB, appB.SecretKey, admin, 86400, now), fixed(im.CodeSigSDKAppID)},
		{"sig made with the wrong key", admin, gen(appA, appB.SecretKey, admin, 86400, now), fixed(im.CodeSigMismatch)},
		{"another account's sig", admin, gen(appA, appA.SecretKey, "ops", 86400, now), fixed(im.CodeSigIdentifier)},
		{"valid sig of a non-admin", "alice", gen(appA, appA.SecretKey, "alice", 86400, now), adminCode},
	}
	cmds := httpapi.Commands()
	if len(cmds) < 39 {
		t.Fatalf("only %d commands", len(cmds))
	}
	tried := 0
	for i := 0; i < len(cmds); i += 3 {
		chunk := cmds[i:min(i+3, len(cmds))]
		t.Run(fmt.Sprint("fixture", i/3+1), func(t *testing.T) {
			f := newFixture(t)
			for _, cmd := range chunk {
				rejectAll(t, f, cmd, cases, &tried)
			}
		})
	}
	t.Logf("%d commands × %d bad callers = %d rejected requests", len(cmds), len(cases), tried)
}

// badCaller is one kind of caller every command must refuse.
type badCaller struct {
	name       string
	identifier string
	sig        string // "-": no usersig parameter
	code       func(cmd string) int
}

// rejectAll sends cmd from every bad caller, checks the codes and that
// app A did not change, then sends it as the admin ops.
func rejectAll(t *testing.T, f *fixture, cmd string, cases []badCaller, tried *int) {
	t.Run(cmd, func(t *testing.T) {
		body, ok := f.bodies()[cmd]
		if !ok {
			t.Fatalf("no body for %s: add one to fixture.bodies", cmd)
		}
		before := f.state()
		for _, c := range cases {
			q := url.Values{"sdkappid": {fmt.Sprint(appA.SDKAppID)}, "identifier": {c.identifier},
				"random": {"1"}, "contenttype": {"json"}}
			if c.sig != "-" {
				q.Set("usersig", c.sig)
			}
			r := f.do(http.MethodPost, f.srv.URL+"/v4/"+cmd+"?"+q.Encode(), body)
			if r.code() != c.code(cmd) {
				t.Errorf("%s: ErrorCode %d (%v), want %d", c.name, r.code(), r["ErrorInfo"], c.code(cmd))
			}
			*tried++
		}
		if after := f.state(); after != before {
			t.Fatalf("rejected requests changed app A:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		wantCode(t, f.callAs(appA, "ops", cmd, body), 0)
	})
}

// nonZeroCount finds a statistics count above zero in an answer.
var nonZeroCount = regexp.MustCompile(`"[A-Za-z]*Count":[1-9]`)

func fixed(code int) func(string) int { return func(string) int { return code } }

// adminCode is the not-an-admin code of cmd's service (docs/compatibility.md, "UserSig and admins").
func adminCode(cmd string) int {
	if strings.HasPrefix(cmd, "timpush/") || strings.HasPrefix(cmd, "all_member_push/") {
		return im.CodePushNotAdmin
	}
	return im.CodeAccountNotAdmin
}

// TestAppCannotReachAnotherApp: app B's admin, authenticated for app B,
// sends every command with a body naming app A's accounts, attributes,
// tags, push TaskIds and scheduled TaskIDs. Nothing of app A shows in the
// answers, app A's task ids answer as unknown, and app A's data is the
// same afterwards.
func TestAppCannotReachAnotherApp(t *testing.T) {
	f := newFixture(t)
	before := f.state()
	bodies := f.bodies()
	// In app B: the same slot name exists, so that attribute writes reach
	// the accounts step rather than failing on the schema.
	wantCode(t, f.callAs(appB, "boss", "timpush/set_attr_name", `{"AttrNames":{"0":"city"}}`), 0)
	secret := []string{"paris", "gold", `"hello"`, `"Imported"`}
	notFound := map[string]int{
		"timpush/revoke":                im.CodeTaskNotFound,
		"timpush/all_member_push_trace": im.CodeTaskNotFound,
		"timpush/normal_push_trace":     im.CodeTaskNotFound,
		"timpush/get_sched_task":        im.CodeSchedInvalid,
		"timpush/modify_sched_task":     im.CodeSchedInvalid,
		"timpush/delete_sched_task":     im.CodeSchedInvalid,
		"im_open_login_svc/kick":        im.CodeAccountNotFound,
		"timpush/set_attr":              0, // per item: 70107 for u0
	}
	for _, cmd := range httpapi.Commands() {
		t.Run(cmd, func(t *testing.T) {
			// The body as B would send it: its own Sdkappid where the
			// command takes one, app A's ids everywhere else.
			body := strings.ReplaceAll(bodies[cmd], fmt.Sprint(appA.SDKAppID), fmt.Sprint(appB.SDKAppID))
			r := f.callAs(appB, "boss", cmd, body)
			if want, ok := notFound[cmd]; ok {
				wantCode(t, r, want)
			}
			got := jsonOf(r)
			for _, s := range secret {
				if strings.Contains(got, s) {
					t.Errorf("app B's answer shows app A's %s: %s", s, got)
				}
			}
			if m := nonZeroCount.FindString(got); m != "" {
				t.Errorf("app B sees counts (%s): %s", m, got)
			}
			if after := f.state(); after != before {
				t.Fatalf("app B's %s changed app A:\nbefore:\n%s\nafter:\n%s", cmd, before, after)
			}
		})
	}
	// A's scheduled TaskIDs with A's Sdkappid in the body are refused too.
	for _, cmd := range []string{"timpush/get_sched_task", "timpush/modify_sched_task", "timpush/delete_sched_task", "timpush/list_sched_task"} {
		wantCode(t, f.callAs(appB, "boss", cmd, bodies[cmd]), im.CodeSchedInvalid)
	}
	if after := f.state(); after != before {
		t.Fatalf("app A changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// App B's own pushes reach none of app A's accounts.
	r := f.callAs(appB, "boss", "timpush/batch", `{"MsgRandom":50,"To_Account":["u0","u1"],"OfflinePushInfo":{"Title":"x"}}`)
	if got := jsonOf(r); r.code() == 0 && !strings.Contains(got, `"ErrorList"`) {
		t.Fatalf("app B's batch to app A's accounts: %s", got)
	}
}

// TestBodyLimits: every command refuses a body over the server's limit
// with 60008; the push commands and scheduled-task content refuse more
// than 10 KB with 90056. (The /v1 device registration limit, 4 KiB →
// 60008, is in TestDeviceRegister; the WebSocket frame limit, 4096 bytes
// → close 1009, is TestClientFrames/oversize in package deliver.)
func TestBodyLimits(t *testing.T) {
	e := newEnv(t, envOpts{limits: true})
	wantCode(t, e.call("im_open_login_svc/account_import", `{"UserID":"u0"}`), 0)
	huge := `{"Pad":"` + strings.Repeat("x", 64<<10) + `"}`
	for _, cmd := range httpapi.Commands() {
		wantCode(t, e.call(cmd, huge), im.CodeBadHTTP)
	}
	pad := `"Ext":"` + strings.Repeat("x", 10<<10) + `"`
	for cmd, body := range map[string]string{
		"timpush/push":            `{"MsgRandom":1,"OfflinePushInfo":{"Title":"x",` + pad + `}}`,
		"timpush/batch":           `{"MsgRandom":2,"To_Account":["u0"],"OfflinePushInfo":{"Title":"x",` + pad + `}}`,
		"all_member_push/im_push": `{"MsgRandom":3,` + msg + `,"OfflinePushInfo":{` + pad + `}}`,
		"timpush/add_sched_task":  schedBody("All", e.at(time.Hour), `{"OfflinePushInfo":{"Title":"x",`+pad+`}}`),
	} {
		wantCode(t, e.call(cmd, body), im.CodePushBodyTooLarge)
	}
	r := e.call("timpush/add_sched_task", schedBody("All", e.at(time.Hour), `{"OfflinePushInfo":{"Title":"x"}}`))
	wantCode(t, r, 0)
	wantCode(t, e.call("timpush/modify_sched_task", fmt.Sprintf(`{"Sdkappid":%d,"TaskID":%v,"Type":"All","Content":{"OfflinePushInfo":{"Title":"x",%s}}}`,
		appA.SDKAppID, r["TaskID"], pad)), im.CodePushBodyTooLarge)
	if n, _ := e.store.CountTasks(context.Background(), appA.SDKAppID, 0); n != 0 {
		t.Fatalf("%d pushes accepted", n)
	}
}

// TestThrottleIsPerIdentity: 20 failed verifications of one (app,
// identifier) from one address, of any kind, make its further failures
// answer 70050 — while its good sig, other identities and the same name in
// another app are served.
func TestThrottleIsPerIdentity(t *testing.T) {
	e := newEnv(t, envOpts{})
	now := time.Now().Unix()
	u := func(app im.App, id, s string) string { return e.url("timpush/get_attr_name", app, id, s) }
	// Mixed failures: expired, another app's, wrong key, garbage.
	bad := []string{}
	for i := range 5 {
		exp, _ := usersig.Gen(appA.SDKAppID, appA.SecretKey, "administrator", 10, now-100-int64(i))
		other, _ := usersig.Gen(appB.SDKAppID, appB.SecretKey, "administrator", 86400, now-int64(i))
		wrong, _ := usersig.Gen(appA.SDKAppID, fmt.Sprint("guess", i), "administrator", 86400, now)
		bad = append(bad, exp, other, wrong, fmt.Sprint("garbage", i))
	}
	for _, s := range bad {
		if r := e.do(http.MethodPost, u(appA, "administrator", s), `{}`); r.code() == im.CodeSigThrottled || r.code() == 0 {
			t.Fatalf("bad sig answered %d before the limit", r.code())
		}
	}
	wantCode(t, e.do(http.MethodPost, u(appA, "administrator", bad[0]), `{}`), im.CodeSigThrottled)
	wantCode(t, e.call("timpush/get_attr_name", `{}`), 0)
	wantCode(t, e.call("im_open_login_svc/account_check", `{"CheckItem":[{"UserID":"a"}]}`), 0)
	wantCode(t, e.callAs(appA, "ops", "timpush/get_attr_name", `{}`), 0)
	wantCode(t, e.callAs(appB, "boss", "timpush/get_attr_name", `{}`), 0)
	// The throttled name is still just a name in app B.
	wantCode(t, e.callAs(appB, "administrator", "timpush/get_attr_name", `{}`), im.CodePushNotAdmin)
	// Requests refused before verification (no usersig, unknown app) do
	// not count against an identity.
	for range 25 {
		wantCode(t, e.do(http.MethodPost, u(appA, "ops", ""), `{}`), im.CodeSigEmpty)
		wantCode(t, e.do(http.MethodPost, strings.Replace(u(appA, "ops", "x"), fmt.Sprint(appA.SDKAppID), "1400999999", 1), `{}`), im.CodeAppNotFound)
	}
	wantCode(t, e.callAs(appA, "ops", "timpush/get_attr_name", `{}`), 0)
}
