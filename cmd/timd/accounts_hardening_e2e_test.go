package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"
)

// callAs posts body to /v4/cmd of app as identifier, signing with key.
func callAs(t *testing.T, base string, app uint64, key, identifier, cmd, body string) reply {
	t.Helper()
	sig, err := tencentyun.GenUserSig(int(app), key, identifier, 86400)
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"sdkappid": {fmt.Sprint(app)}, "identifier": {identifier}, "usersig": {sig},
		"random": {"7"}, "contenttype": {"json"}}
	return postReply(t, base+"/v4/"+cmd+"?"+q.Encode(), body)
}

// userCall posts body to a /v1 path as the end user id of the e2e app.
func userCall(t *testing.T, base, path, id, body string) reply {
	t.Helper()
	sig, _ := tencentyun.GenUserSig(e2eApp, e2eKey, id, 86400)
	q := url.Values{"sdkappid": {fmt.Sprint(e2eApp)}, "identifier": {id}, "usersig": {sig}}
	return postReply(t, base+path+"?"+q.Encode(), body)
}

func postReply(t *testing.T, u, body string) reply {
	t.Helper()
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r reply
	if resp.StatusCode != 200 || json.Unmarshal(raw, &r) != nil {
		t.Fatalf("POST %s: HTTP %d %s", u, resp.StatusCode, raw)
	}
	return r
}

func wantReply(t *testing.T, what string, r reply, code int) {
	t.Helper()
	if r.code() != code {
		t.Fatalf("%s: ErrorCode %d (%v), want %d", what, r.code(), r["ErrorInfo"], code)
	}
}

// TestE2EAccountSquatting is issue 8's squatting sequence against the real
// binary: a user registers a device under the name of an account the admin
// has yet to import. The import makes an account all the same, the real
// user can sync, and the admin's writes land on the account.
func TestE2EAccountSquatting(t *testing.T) {
	p := startApp(t, t.TempDir(), "--limits", "off")
	p.want("im_open_login_svc/account_import", `{"UserID":"mallory"}`, 0)
	r := userCall(t, p.base, "/v1/device/register", "mallory", `{"Platform":"ios","RegistrationID":"victim"}`)
	wantReply(t, "squat register", r, 0)

	p.want("im_open_login_svc/account_import", `{"UserID":"victim"}`, 0)
	r = p.want("im_open_login_svc/account_check", `{"CheckItem":[{"UserID":"victim"}]}`, 0)
	if !strings.Contains(js(r["ResultItem"]), `"AccountStatus":"Imported"`) {
		t.Fatalf("account_check victim: %s", js(r["ResultItem"]))
	}
	p.inbox("victim") // fails the test unless /v1/sync answers 0
	p.want("timpush/add_tag", `{"UserTags":[{"To_Account":"victim","Tags":["vip"]}]}`, 0)
	r = p.want("timpush/get_tag", `{"To_Account":["victim"]}`, 0)
	if got := js(r["UserTags"]); got != `[{"Tags":["vip"],"To_Account":"victim"}]` {
		t.Fatalf("get_tag victim: %s", got)
	}
	// The squatter's device is gone: a push to "vip" reaches the victim only.
	task := p.want("timpush/push", `{"MsgRandom":1,"Condition":{"TagsOr":["vip"]},"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}`, 0)["TaskId"].(string)
	waitFor(t, "the push to be stored", func() bool { return len(p.inbox("victim")) == 1 })
	if got := p.inbox("mallory"); len(got) != 0 {
		t.Fatalf("mallory received the victim's push: %v", got)
	}
	if s := p.stats(task); s["TotalCount"] != 1.0 {
		t.Errorf("push statistics: %s", js(s))
	}
	// Names of accounts and other users' devices cannot be chosen.
	wantReply(t, "register an imported name", userCall(t, p.base, "/v1/device/register", "mallory", `{"Platform":"ios","RegistrationID":"victim"}`), 70402)
	wantReply(t, "register the admin's name", userCall(t, p.base, "/v1/device/register", "mallory", `{"Platform":"ios","RegistrationID":"administrator"}`), 70402)
	r = userCall(t, p.base, "/v1/device/register", "victim", `{"Platform":"android"}`)
	wantReply(t, "victim's own device", r, 0)
	rid := r["RegistrationID"].(string)
	if len(rid) != 36 {
		t.Errorf("server-issued RegistrationID %q: want a 36-byte UUID, longer than any UserID", rid)
	}
	wantReply(t, "take another user's device", userCall(t, p.base, "/v1/device/register", "mallory", `{"Platform":"ios","RegistrationID":"`+rid+`"}`), 70402)
	p.want("im_open_login_svc/account_import", `{"UserID":"`+rid+`"}`, 70402) // longer than a UserID may be
}

// TestE2EDevicesPerUser: one user registers at most devices_per_user
// devices (70398 past it), and a push to everyone counts each user once,
// however many devices they have.
func TestE2EDevicesPerUser(t *testing.T) {
	p := start(t, t.TempDir(), append(writeConfig(t, "", map[string]int64{"devices_per_user": 3}), "--limits", "off")...)
	p.want("im_open_login_svc/multiaccount_import", `{"Accounts":["alice","bob"]}`, 0)
	var rids []string
	for i := range 3 {
		r := userCall(t, p.base, "/v1/device/register", "alice", `{"Platform":"ios"}`)
		wantReply(t, fmt.Sprint("device ", i+1), r, 0)
		rids = append(rids, r["RegistrationID"].(string))
	}
	wantReply(t, "device 4", userCall(t, p.base, "/v1/device/register", "alice", `{"Platform":"ios"}`), 70398)
	wantReply(t, "device 4 with a chosen id", userCall(t, p.base, "/v1/device/register", "alice", `{"Platform":"ios","RegistrationID":"alice-4"}`), 70398)
	wantReply(t, "re-register at the limit", userCall(t, p.base, "/v1/device/register", "alice", `{"Platform":"android","RegistrationID":"`+rids[0]+`"}`), 0)
	wantReply(t, "bob's device", userCall(t, p.base, "/v1/device/register", "bob", `{"Platform":"ios"}`), 0)

	p.want("timpush/add_tag", `{"UserTags":[{"To_Account":"`+rids[1]+`","Tags":["phone"]},{"To_Account":"`+rids[2]+`","Tags":["phone"]}]}`, 0)
	all := p.want("timpush/push", `{"MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"all"}}]}`, 0)["TaskId"].(string)
	tag := p.want("timpush/push", `{"MsgRandom":2,"Condition":{"TagsOr":["phone"]},"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"tag"}}]}`, 0)["TaskId"].(string)
	// Everyone is administrator, alice and bob: 3, not 3 + 4 devices.
	waitFor(t, "the push to everyone", func() bool { return p.stats(all)["SentCount"] == 3.0 })
	if s := p.stats(all); s["TotalCount"] != 3.0 {
		t.Errorf("push to everyone: %s", js(s))
	}
	// Two of alice's devices match: alice is one recipient and gets it.
	if s := p.stats(tag); s["TotalCount"] != 1.0 {
		t.Errorf("device-tag push: %s", js(s))
	}
	waitFor(t, "alice's inbox", func() bool { return len(p.inbox("alice")) == 2 })
	if got := p.inbox("bob"); len(got) != 1 {
		t.Errorf("bob's inbox: %v", got)
	}
	r := p.want("timpush/batch", `{"From_Account":"administrator","To_Account":["alice","`+rids[0]+`","`+rids[1]+`"],"MsgRandom":3,"OfflinePushInfo":{"Title":"t"}}`, 0)
	waitFor(t, "the batch", func() bool {
		now := time.Now().Unix()
		s := p.want("timpush/normal_push_statistics", fmt.Sprintf(`{"StartTime":%d,"EndTime":%d}`, now-3600, now+60), 0)
		return s["TotalCount"] == 1.0
	})
	_ = r
}

// TestE2EAdminsAreAccounts: configured admins are imported accounts (spec
// §4): account_check says Imported, they can be From_Account, and kick
// works on them.
func TestE2EAdminsAreAccounts(t *testing.T) {
	p := startApp(t, t.TempDir(), "--limits", "off")
	r := p.want("im_open_login_svc/account_check", `{"CheckItem":[{"UserID":"administrator"}]}`, 0)
	if !strings.Contains(js(r["ResultItem"]), `"AccountStatus":"Imported"`) {
		t.Fatalf("account_check administrator: %s", js(r["ResultItem"]))
	}
	p.want("im_open_login_svc/account_import", `{"UserID":"alice"}`, 0)
	p.want("timpush/batch", `{"From_Account":"administrator","To_Account":["alice"],"MsgRandom":1,"OfflinePushInfo":{"Title":"t"}}`, 0)
	p.want("timpush/push", `{"From_Account":"administrator","MsgRandom":2,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}`, 0)
	// The admin can hold a live connection and an inbox like anyone.
	p.inbox("administrator")

	time.Sleep(1100 * time.Millisecond) // the kick must postdate p.sig's second
	p.want("im_open_login_svc/kick", `{"UserID":"administrator"}`, 0)
	if r, err := p.try("timpush/get_attr_name", `{}`); err != nil || r.code() != 70052 {
		t.Fatalf("the admin's sig after kick: %v %v, want 70052", r, err)
	}
	time.Sleep(1100 * time.Millisecond)
	r = callAs(t, p.base, e2eApp, e2eKey, "administrator", "timpush/get_attr_name", `{}`)
	wantReply(t, "a new admin sig after kick", r, 0)
}

// timdCLI runs the binary with args and returns its stdout, stderr and
// exit code.
func timdCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

var madeKeyRE = regexp.MustCompile(`SecretKey: ([0-9a-f]{64})`)

// TestE2EAppCommand: `timd app` lists, adds, removes apps and rotates keys
// on a stopped store and on a running one; the running server stops
// accepting a removed app or an old key within service.AppRefresh (2 s);
// serve with --app warns about each stored app it does not configure.
func TestE2EAppCommand(t *testing.T) {
	store := t.TempDir()
	// A first bare start makes the development app.
	dev := start(t, store)
	m := regexp.MustCompile(`SDKAppID:\s+(\d+)`).FindStringSubmatch(dev.stdout.String())
	k := regexp.MustCompile(`SecretKey:\s+(\S+)`).FindStringSubmatch(dev.stdout.String())
	if m == nil || k == nil {
		t.Fatalf("no development app in the banner:\n%s", dev.stdout)
	}
	devApp, devKey := m[1], k[1]
	dev.stop()

	// Stopped store: add an app with a made key.
	out, errOut, code := timdCLI(t, "app", "add", "--store", store, "--sdkappid", "1400000100", "--admin", "ops,bot")
	mk := madeKeyRE.FindStringSubmatch(out)
	if code != 0 || mk == nil {
		t.Fatalf("app add: %d %s %s", code, out, errOut)
	}
	key100 := mk[1]
	out, _, code = timdCLI(t, "app", "list", "--store", store)
	if code != 0 || !strings.Contains(out, "1400000100") || !strings.Contains(out, "ops,bot") || !strings.Contains(out, devApp) {
		t.Fatalf("app list: %d\n%s", code, out)
	}
	if strings.Contains(out, key100) || strings.Contains(out, devKey) {
		t.Fatalf("app list printed a key:\n%s", out)
	}

	// A start with --app warns about both stored apps it does not name.
	p := startLogged(t, store, nil, "--app", fmt.Sprintf("%d:%s:%s", e2eApp, e2eKey, e2eAdmin))
	for _, id := range []string{devApp, "1400000100"} {
		if !regexp.MustCompile(`level=WARN msg="stored app is not in the configuration[^\n]*sdkappid=` + id).MatchString(p.stderr.String()) {
			t.Errorf("no start-up warning naming stored app %s:\n%s", id, p.stderr)
		}
	}
	if regexp.MustCompile(`not in the configuration[^\n]*sdkappid=` + fmt.Sprint(e2eApp)).MatchString(p.stderr.String()) {
		t.Errorf("warned about the configured app")
	}
	wantReply(t, "added app", callAs(t, p.base, 1400000100, key100, "ops", "timpush/get_attr_name", `{}`), 0)
	// Its admins became accounts when the server loaded the app.
	wantReply(t, "added app's admin is an account",
		callAs(t, p.base, 1400000100, key100, "ops", "im_open_login_svc/kick", `{"UserID":"bot"}`), 0)

	// Running store: rotate the key; the old key stops within the bound.
	out, _, code = timdCLI(t, "app", "rotate-key", "--store", store, "--sdkappid", "1400000100")
	mk = madeKeyRE.FindStringSubmatch(out)
	if code != 0 || mk == nil || mk[1] == key100 {
		t.Fatalf("rotate-key: %d %s", code, out)
	}
	newKey := mk[1]
	within(t, "the old key refused", 3*time.Second, func() bool {
		return callAs(t, p.base, 1400000100, key100, "ops", "timpush/get_attr_name", `{}`).code() == 70009
	})
	wantReply(t, "new key", callAs(t, p.base, 1400000100, newKey, "ops", "timpush/get_attr_name", `{}`), 0)

	// Running store: remove the forgotten development app.
	wantReply(t, "dev app before remove", callAs(t, p.base, parseID(t, devApp), devKey, "administrator", "timpush/get_attr_name", `{}`), 0)
	if out, errOut, code := timdCLI(t, "app", "remove", "--store", store, "--sdkappid", devApp); code != 0 {
		t.Fatalf("app remove: %d %s %s", code, out, errOut)
	}
	within(t, "the removed app refused", 3*time.Second, func() bool {
		return callAs(t, p.base, parseID(t, devApp), devKey, "administrator", "timpush/get_attr_name", `{}`).code() == 70020
	})
	p.stop()
	p = startLogged(t, store, nil, "--app", fmt.Sprintf("%d:%s:%s", e2eApp, e2eKey, e2eAdmin))
	if strings.Contains(p.stderr.String(), "sdkappid="+devApp) {
		t.Errorf("the removed app came back:\n%s", p.stderr)
	}
	wantReply(t, "removed app after restart", callAs(t, p.base, parseID(t, devApp), devKey, "administrator", "timpush/get_attr_name", `{}`), 70020)
	wantReply(t, "rotated key after restart", callAs(t, p.base, 1400000100, newKey, "ops", "timpush/get_attr_name", `{}`), 0)
	p.stop()

	// --configured-apps-only refuses the stored app the configuration
	// does not name, and says so.
	p = startLogged(t, store, nil, "--configured-apps-only", "on", "--app", fmt.Sprintf("%d:%s:%s", e2eApp, e2eKey, e2eAdmin))
	if !regexp.MustCompile(`level=WARN msg="stored app is not in the configuration and is refused[^\n]*sdkappid=1400000100`).MatchString(p.stderr.String()) {
		t.Errorf("no warning that app 1400000100 is refused:\n%s", p.stderr)
	}
	wantReply(t, "unconfigured app with --configured-apps-only", callAs(t, p.base, 1400000100, newKey, "ops", "timpush/get_attr_name", `{}`), 70020)
	wantReply(t, "configured app with --configured-apps-only", callAs(t, p.base, e2eApp, e2eKey, e2eAdmin, "timpush/get_attr_name", `{}`), 0)
	p.stop()
	if _, errOut, code := timdCLI(t, "serve", "--store", store, "--listen", "127.0.0.1:0", "--configured-apps-only", "on"); code == 0 ||
		!strings.Contains(errOut, "--configured-apps-only needs an app") {
		t.Errorf("--configured-apps-only without an app: exit %d, %s", code, errOut)
	}

	// A given key is never echoed; bad calls fail with a reason.
	out, _, code = timdCLI(t, "app", "add", "--store", store, "--sdkappid", "1400000101", "--admin", "a", "--key", "given-key-123")
	if code != 0 || strings.Contains(out, "given-key-123") {
		t.Fatalf("add with --key: %d %s", code, out)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no subcommand", nil},
		{"unknown subcommand", []string{"drop"}},
		{"add an existing app", []string{"add", "--sdkappid", "1400000101", "--admin", "a"}},
		{"add without admins", []string{"add", "--sdkappid", "1400000102"}},
		{"add 11 admins", []string{"add", "--sdkappid", "1400000102", "--admin", "a,b,c,d,e,f,g,h,i,j,k"}},
		{"add an admin over 32 bytes", []string{"add", "--sdkappid", "1400000102", "--admin", strings.Repeat("a", 33)}},
		{"add without sdkappid", []string{"add", "--admin", "a"}},
		{"sdkappid over 32 bits", []string{"remove", "--sdkappid", "4294967296"}},
		{"key with a space", []string{"rotate-key", "--sdkappid", "1400000101", "--key", "a b"}},
		{"remove an unknown app", []string{"remove", "--sdkappid", "1400000199"}},
		{"rotate an unknown app", []string{"rotate-key", "--sdkappid", "1400000199"}},
		{"stray argument", []string{"list", "extra"}},
	} {
		args := tc.args
		if len(args) > 0 {
			args = append([]string{args[0], "--store", store}, args[1:]...)
		}
		out, errOut, code := timdCLI(t, append([]string{"app"}, args...)...)
		if code == 0 || errOut == "" {
			t.Errorf("%s: exit %d, stdout %q stderr %q; want a failure with a reason", tc.name, code, out, errOut)
		}
	}
	out, _, _ = timdCLI(t, "app", "list", "--store", store)
	if strings.Contains(out, "1400000102") || strings.Contains(out, "1400000199") {
		t.Errorf("a refused call stored an app:\n%s", out)
	}
}

func parseID(t *testing.T, s string) uint64 {
	t.Helper()
	var id uint64
	if _, err := fmt.Sscan(s, &id); err != nil {
		t.Fatal(err)
	}
	return id
}

// within polls ok until it holds or d has passed.
func within(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
	}
}
