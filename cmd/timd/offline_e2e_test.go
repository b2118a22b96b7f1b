package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"

	"timd/internal/pushvendor/vendortest"
	"timd/internal/webhook"
)

// callbackToken is the e2e app's callback token: its webhooks are signed.
const callbackToken = "e2e-callback-token-0123456789"

// writeVendorConfig writes a config file for the e2e app that sends to the
// vendor fakes and posts webhooks to callback, and returns its flags.
func writeVendorConfig(t *testing.T, callback string, fakes *vendortest.Fakes) []string {
	t.Helper()
	app := map[string]any{"sdkappid": e2eApp, "secret-key": e2eKey, "admins": []string{e2eAdmin},
		"vendors": json.RawMessage(fakes.JSON())}
	if callback != "" {
		app["callback-url"], app["callback-token"] = callback, callbackToken
	}
	b, _ := json.Marshal(map[string]any{"apps": []any{app}})
	path := filepath.Join(t.TempDir(), "timd.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--config", path}
}

func startFakes(t *testing.T) *vendortest.Fakes {
	t.Helper()
	f, err := vendortest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// apnsToken is a well-formed 32-byte device token, distinct per i.
func apnsToken(i int) string { return fmt.Sprintf("%064x", i+1) }

// TestE2EOfflineVendors is issue 12's "done when": an account with an
// iOS, an Android and a browser device, none connected, gets one
// notification on each from one push by Condition, and the trace shows
// each device.
func TestE2EOfflineVendors(t *testing.T) {
	fakes := startFakes(t)
	cb := newEventServer(t)
	p := start(t, t.TempDir(), append(writeVendorConfig(t, cb.URL, fakes), "--limits", "off")...)
	p.want("im_open_login_svc/account_import", `{"UserID":"alice"}`, 0)
	p.want("im_open_login_svc/account_import", `{"UserID":"bob"}`, 0)
	p.want("timpush/add_tag", `{"UserTags":[{"To_Account":"alice","Tags":["vip"]}]}`, 0)
	sub, err := fakes.WebPush.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"Platform":"iPhone","RegistrationID":"alice-iphone","Vendor":"apns","Token":"` + apnsToken(0) + `","Bundle":"` + vendortest.Topic + `"}`,
		`{"Platform":"android","RegistrationID":"alice-pixel","Vendor":"fcm","Token":"fcm-token-alice"}`,
		fmt.Sprintf(`{"Platform":"web","RegistrationID":"alice-web","Vendor":"webpush","Subscription":{"endpoint":%q,"keys":{"p256dh":%q,"auth":%q}}}`,
			sub.Endpoint, sub.P256dh, sub.Auth),
		`{"Platform":"android","Vendor":"fcm","Token":"fcm-token-bob"}`, // bob is not in the Condition
	} {
		id := "alice"
		if strings.Contains(body, "bob") {
			id = "bob"
		}
		if r := userCall(t, p.base, "/v1/device/register", id, body); r.code() != 0 {
			t.Fatalf("register %s: %v", body, r)
		}
	}
	// A vendor the app did not configure, or a malformed token, is refused.
	if r := userCall(t, p.base, "/v1/device/register", "alice", `{"Platform":"iPhone","Vendor":"apns","Token":"abcd"}`); r.code() != 70402 {
		t.Fatalf("short APNs token: %v", r)
	}
	status := p.want("openim/query_online_status", `{"To_Account":["alice","bob"]}`, 0)
	if got := js(status["QueryResult"]); !strings.Contains(got, `"Status":"PushOnline","To_Account":"alice"`) {
		t.Fatalf("query_online_status = %s", got)
	}

	task := p.want("timpush/push", `{"MsgRandom":9,"Condition":{"TagsOr":["vip"]},
		"OfflinePushInfo":{"Title":"Sale","Desc":"50% off today","Ext":"{\"deeplink\":\"sale\"}"}}`, 0)["TaskId"].(string)
	waitFor(t, "one notification on each of alice's devices", func() bool {
		return len(fakes.APNs.Received()) >= 1 && len(fakes.FCM.Received()) >= 1 && len(fakes.WebPush.Received()) >= 1
	})
	time.Sleep(500 * time.Millisecond) // a second copy would have arrived by now
	apns, fcm, web := fakes.APNs.Received(), fakes.FCM.Received(), fakes.WebPush.Received()
	if len(apns) != 1 || len(fcm) != 1 || len(web) != 1 {
		t.Fatalf("got %d APNs, %d FCM, %d Web Push notifications; want one each", len(apns), len(fcm), len(web))
	}
	if apns[0].Token != apnsToken(0) || fcm[0].Token != "fcm-token-alice" || web[0].Endpoint != sub.Endpoint {
		t.Errorf("sent to the wrong devices: %s, %s, %s", apns[0].Token, fcm[0].Token, web[0].Endpoint)
	}
	if c := apns[0].Header.Get("apns-collapse-id"); c == "" || !strings.HasPrefix(task, c[:min(len(c), len(task))]) {
		t.Errorf("apns-collapse-id %q, want the TaskId %s", c, task)
	}
	if !strings.Contains(string(web[0].Payload), "Sale") || !strings.Contains(js(fcm[0].Message), "50% off today") {
		t.Errorf("content lost: web %s, fcm %s", web[0].Payload, js(fcm[0].Message))
	}

	// The trace shows the recipient and each of its three devices.
	var trace []any
	waitFor(t, "the trace of three devices", func() bool {
		r := p.want("timpush/all_member_push_trace", fmt.Sprintf(`{"TaskID":%q,"UserID":"alice"}`, task), 0)
		trace, _ = r["InstanceTrace"].([]any)
		return len(trace) == 4
	})
	platforms := map[float64]string{}
	for _, in := range trace[1:] {
		m := in.(map[string]any)
		stat := m["OfflinePushStat"].(map[string]any)["OfflineStat"].(map[string]any)
		if m["EventType"] != float64(1) || stat["PushStatus"] != float64(1) {
			t.Errorf("trace instance %v", m)
		}
		platforms[m["PushPlatform"].(float64)] = m["InstanceId"].(string)
	}
	if platforms[1] != "alice-iphone" || platforms[2] != "alice-pixel" || platforms[3] != "alice-web" {
		t.Errorf("trace devices by PushPlatform: %v", platforms)
	}
	// The statistics count one accepted notification per vendor.
	waitFor(t, "the vendor statistics", func() bool {
		got := js(p.stats(task)["PlatformStatistics"]) // keys in alphabetical order
		return strings.Contains(got, `"EventType":1,"PushPlatform":1,"SentCount":1,"TotalCount":1`) &&
			strings.Contains(got, `"EventType":1,"PushPlatform":2,"SentCount":1,"TotalCount":1`) &&
			strings.Contains(got, `"EventType":1,"PushPlatform":3,"SentCount":1,"TotalCount":1`)
	})
	// The webhook receiver hears of alice (EventType 1: offline), once as
	// a recipient (PushPlatform 0) and once per vendor notification.
	// timd's own channel kept no copy (a notification without MsgLifeTime),
	// but alice has vendor devices: ErrCode 0 there too; each vendor took one.
	want := []string{"alice 1 0 0", "alice 1 1 0", "alice 1 2 0", "alice 1 3 0"}
	waitFor(t, "the webhook events", func() bool { return len(cb.of(task)) >= len(want) })
	time.Sleep(300 * time.Millisecond)
	if got := cb.of(task); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("webhook events %v, want %v", got, want)
	}
}

// eventServer is an app's callback endpoint that keeps every event as
// "To_Account EventType PushPlatform ErrCode", per TaskId.
type eventServer struct {
	*httptest.Server
	mu     sync.Mutex
	events map[string][]string
}

func newEventServer(t *testing.T) *eventServer {
	es := &eventServer{events: map[string][]string{}}
	es.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Events []struct {
				CallbackCommand, TaskId, To_Account string
				EventType, PushPlatform, ErrCode    int
			}
		}
		raw, _ := io.ReadAll(r.Body)
		// The receiver checks both signatures, as docs/webhooks.md says.
		if err := webhook.VerifyRequest(r.URL.Query(), r.Header, raw, callbackToken, time.Now()); err != nil {
			t.Errorf("callback signature: %v", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if r.URL.Query().Get("CallbackCommand") != "Push.AllMemberPush" || json.Unmarshal(raw, &body) != nil || len(body.Events) > 100 {
			t.Errorf("bad callback %s", r.URL)
		}
		es.mu.Lock()
		for _, e := range body.Events {
			es.events[e.TaskId] = append(es.events[e.TaskId], fmt.Sprintf("%s %d %d %d", e.To_Account, e.EventType, e.PushPlatform, e.ErrCode))
		}
		es.mu.Unlock()
		_, _ = w.Write([]byte(`{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}`))
	}))
	t.Cleanup(es.Close)
	return es
}

// of returns the events of task, sorted.
func (es *eventServer) of(task string) []string {
	es.mu.Lock()
	defer es.mu.Unlock()
	out := slices.Clone(es.events[task])
	slices.Sort(out)
	return out
}

// deviceCall posts to a /v1 path as a RegistrationID-only device.
func deviceCall(t *testing.T, base, path, regID, cred, body string) reply {
	t.Helper()
	q := url.Values{"sdkappid": {fmt.Sprint(e2eApp)}, "identifier": {regID}, "devicetoken": {cred}}
	return postReply(t, base+path+"?"+q.Encode(), body)
}

// TestE2EDeviceOnly: a RegistrationID-only device registers with a UserSig
// for its RegistrationID, reads its inbox with its device credential, and
// gets a push through its vendor while not connected.
func TestE2EDeviceOnly(t *testing.T) {
	fakes := startFakes(t)
	p := start(t, t.TempDir(), append(writeVendorConfig(t, "", fakes), "--limits", "off")...)
	sig, _ := tencentyun.GenUserSig(e2eApp, e2eKey, "kiosk-7", 86400)
	q := url.Values{"sdkappid": {fmt.Sprint(e2eApp)}, "identifier": {"kiosk-7"}, "usersig": {sig}}
	r := postReply(t, p.base+"/v1/device/register?"+q.Encode(), `{"Platform":"android","RegistrationID":"kiosk-7","Vendor":"fcm","Token":"kiosk-token"}`)
	cred, _ := r["DeviceCredential"].(string)
	if r.code() != 0 || cred == "" {
		t.Fatalf("register: %v", r)
	}
	p.want("timpush/add_tag", `{"UserTags":[{"To_Account":"kiosk-7","Tags":["lobby"]}]}`, 0)
	task := p.want("timpush/push", `{"MsgRandom":1,"Condition":{"TagsOr":["lobby"]},"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"open"}}],
		"OfflinePushInfo":{"Title":"Lobby"}}`, 0)["TaskId"].(string)
	waitFor(t, "the FCM notification", func() bool { return len(fakes.FCM.Received()) == 1 })
	if got := fakes.FCM.Received()[0].Token; got != "kiosk-token" {
		t.Fatalf("sent to %s", got)
	}
	sync := getReply(t, p.base+"/v1/sync?"+url.Values{"sdkappid": {fmt.Sprint(e2eApp)}, "identifier": {"kiosk-7"}, "devicetoken": {cred}}.Encode())
	if sync.code() != 0 || !strings.Contains(js(sync["Pushes"]), task) {
		t.Fatalf("sync with the device credential: %v", sync)
	}
	// Token refresh by credential: one device, the new token.
	if r := deviceCall(t, p.base, "/v1/device/register", "kiosk-7", cred, `{"Platform":"android","Vendor":"fcm","Token":"kiosk-token-2"}`); r.code() != 0 {
		t.Fatalf("refresh: %v", r)
	}
	p.want("timpush/push", `{"MsgRandom":2,"Condition":{"TagsOr":["lobby"]},"OfflinePushInfo":{"Title":"Lobby 2"}}`, 0)
	waitFor(t, "the second FCM notification", func() bool { return len(fakes.FCM.Received()) == 2 })
	time.Sleep(300 * time.Millisecond)
	if got := fakes.FCM.Received(); len(got) != 2 || got[1].Token != "kiosk-token-2" {
		t.Fatalf("after refresh: %+v", got)
	}
}

// getReply GETs u and decodes the envelope.
func getReply(t *testing.T, u string) reply {
	t.Helper()
	var r reply
	if err := json.Unmarshal([]byte(get(t, u)), &r); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return r
}

// TestE2EOfflineKill9 kills the server with SIGKILL in the middle of an
// offline push to 2,000 devices (the fan-out held by the test hook after
// 40% of the recipients, and the kill once 3/8 of their sends reached
// the APNs fake, vendor sends paced at 300/s), restarts it on the same
// store, and checks that every device got the notification, that repeats
// are bounded by the in-flight window (256 sends), and that a repeat
// carries the same collapse id. TIMD_TEST_OFFLINE_USERS (default 100, 20
// devices each) and TIMD_TEST_OFFLINE_RATE (default 300/s) scale it up
// for a one-off run: BENCHMARKS.md records one with 100,000 devices.
func TestE2EOfflineKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 run: not in -short")
	}
	users, perUser := envInt(t, "TIMD_TEST_OFFLINE_USERS", 100), 20
	fakes := startFakes(t)
	fakes.Vendors.APNs.Rate = float64(envInt(t, "TIMD_TEST_OFFLINE_RATE", 300))
	flags := append(writeVendorConfig(t, "", fakes), "--limits", "off")
	store := t.TempDir()
	env := []string{"TIMD_TEST_VENDOR_LEASE=2s"}
	hold := max(1, users*2/5)          // recipients fanned out before the kill
	killAt := max(1, hold*perUser*3/8) // notifications received before the kill
	p := startEnv(t, store, append(env, fanoutHold(hold)...), flags...)
	p.importN(users)
	registering := time.Now()
	regs := make(chan int)
	errs := make(chan error, 8)
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range regs {
				r := userCall(t, p.base, "/v1/device/register", fmt.Sprintf("u%d", i/perUser),
					`{"Platform":"iPhone","Vendor":"apns","Token":"`+apnsToken(i)+`"}`)
				if r.code() != 0 {
					select { // the first few are enough; never block
					case errs <- fmt.Errorf("register device %d: %v", i, r):
					default:
					}
				}
			}
		}()
	}
	for i := range users * perUser {
		regs <- i
	}
	close(regs)
	for range 8 {
		<-done
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	t.Logf("%d devices registered in %v", users*perUser, time.Since(registering).Round(time.Millisecond))
	pushed := time.Now()
	task := p.want("timpush/push", `{"MsgRandom":5,"OfflinePushInfo":{"Title":"Everyone","Desc":"kill -9"}}`, 0)["TaskId"].(string)
	// waitFor's minute, plus a second per 100 notifications for a scaled-up run.
	for deadline := time.Now().Add(time.Minute + time.Duration(killAt/100)*time.Second); len(fakes.APNs.Received()) < killAt; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d notifications before the kill", len(fakes.APNs.Received()), killAt)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.kill()
	atKill := len(fakes.APNs.Received())
	if atKill >= users*perUser {
		t.Fatalf("all %d sent before the kill; the test did not kill mid-push", atKill)
	}
	p = startEnv(t, store, env, flags...)
	restarted := time.Now()
	// waitFor's minute, plus a second per 100 devices for a scaled-up run.
	for deadline := time.Now().Add(time.Minute + time.Duration(users*perUser/100)*time.Second); ; {
		seen := map[string]bool{}
		for _, n := range fakes.APNs.Received() {
			seen[n.Token] = true
		}
		if len(seen) == users*perUser {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d devices reached after the restart", len(seen), users*perUser)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("every device reached %v after the restart, %v after the push", time.Since(restarted).Round(time.Millisecond),
		time.Since(pushed).Round(time.Millisecond))
	time.Sleep(3 * time.Second) // past the lease: any straggler would be out now
	got := fakes.APNs.Received()
	collapse := map[string]string{}
	repeats := 0
	for _, n := range got {
		c := n.Header.Get("apns-collapse-id")
		if prev, ok := collapse[n.Token]; ok {
			repeats++
			if prev != c {
				t.Errorf("token %s: collapse ids %q then %q", n.Token, prev, c)
			}
		}
		collapse[n.Token] = c
		if c == "" || !strings.HasPrefix(task, c[:min(len(c), len(task))]) {
			t.Fatalf("apns-collapse-id %q is not the TaskId %s", c, task)
		}
	}
	t.Logf("%d sent before the kill, %d in all, %d repeats", atKill, len(got), repeats)
	if repeats > 256 {
		t.Errorf("%d repeats after the restart, more than the in-flight window (256)", repeats)
	}
}

// envInt reads a positive integer test setting, or returns def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
