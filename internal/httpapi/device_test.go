package httpapi_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"timd/internal/im"
)

// webSub returns a browser-shaped PushSubscription JSON with a real P-256
// key and auth secret.
func webSub(t *testing.T, endpoint string) string {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	return fmt.Sprintf(`{"endpoint":%q,"expirationTime":null,"keys":{"p256dh":%q,"auth":%q}}`, endpoint,
		base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), base64.RawURLEncoding.EncodeToString(auth))
}

// v1Device builds a /v1 URL authenticated with a device credential.
func (e *clientEnv) v1Device(path, regID, cred string) string {
	q := url.Values{"sdkappid": {fmt.Sprint(appA.SDKAppID)}, "identifier": {regID}, "devicetoken": {cred}}
	return e.srv.URL + path + "?" + q.Encode()
}

// TestDeviceOnlyCredential: a RegistrationID-only device registers with a
// UserSig made for its RegistrationID, gets a device credential, and uses
// /v1/connect and /v1/sync with it; registering again by UserSig rotates
// the credential, refreshing by credential keeps it, and an import of the
// same name revokes it.
func TestDeviceOnlyCredential(t *testing.T) {
	e := newClientEnv(t)
	ctx := context.Background()
	sub := webSub(t, "https://push.example.com/send/abc")
	regBySig := func(id, body string) reply {
		t.Helper()
		return e.do(http.MethodPost, e.v1("/v1/device/register", appA, id, sig(t, appA, id), nil), body)
	}
	// Without naming itself, an unknown identifier is still 70107.
	wantCode(t, regBySig("kiosk-1", `{"Platform":"web"}`), im.CodeAccountNotFound)
	r := regBySig("kiosk-1", `{"Platform":"web","RegistrationID":"kiosk-1","Vendor":"webpush","Subscription":`+sub+`}`)
	wantCode(t, r, 0)
	cred, _ := r["DeviceCredential"].(string)
	if r["RegistrationID"] != "kiosk-1" || !strings.HasPrefix(cred, "tdc1_") {
		t.Fatalf("registration answered %v", r)
	}
	d, err := e.store.PushDevice(ctx, appA.SDKAppID, "kiosk-1")
	if err != nil || d.Vendor != im.VendorWebPush || d.Endpoint != "https://push.example.com/send/abc" || d.Owner != "" || d.Target != e.ordinal("kiosk-1") {
		t.Fatalf("push device %+v, %v", d, err)
	}
	wantCode(t, e.do(http.MethodGet, e.v1Device("/v1/sync", "kiosk-1", cred), ""), 0)
	dial := func(c string) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, strings.Replace(e.v1Device("/v1/connect", "kiosk-1", c), "http", "ws", 1), nil)
		if err == nil {
			_ = ws.CloseNow()
		}
		return err
	}
	if err := dial(cred); err != nil {
		t.Fatalf("connect with the device credential: %v", err)
	}
	for _, tc := range []struct {
		name, id, cred string
		code           int
	}{
		{"wrong credential", "kiosk-1", cred + "x", im.CodeSigMismatch},
		{"another device's name", "kiosk-2", cred, im.CodeSigMismatch},
		{"a user's name", "alice", cred, im.CodeSigMismatch},
		{"oversize", "kiosk-1", strings.Repeat("c", 4096), im.CodeSigMismatch},
		{"neither usersig nor devicetoken", "kiosk-1", "", im.CodeSigEmpty},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, e.do(http.MethodGet, e.v1Device("/v1/sync", tc.id, tc.cred), ""), tc.code)
		})
	}
	// A device credential never opens /v4.
	q := url.Values{"sdkappid": {fmt.Sprint(appA.SDKAppID)}, "identifier": {"kiosk-1"}, "devicetoken": {cred},
		"contenttype": {"json"}, "random": {"1"}}
	wantCode(t, e.do(http.MethodPost, e.srv.URL+"/v4/timpush/get_tag?"+q.Encode(), `{"To_Account":["kiosk-1"]}`), im.CodeSigEmpty)

	// Refreshing by credential updates the one device and keeps the credential.
	sub2 := webSub(t, "https://push.example.com/send/def")
	r = e.do(http.MethodPost, e.v1Device("/v1/device/register", "kiosk-1", cred), `{"Platform":"web","Vendor":"webpush","Subscription":`+sub2+`}`)
	wantCode(t, r, 0)
	if r["DeviceCredential"] != nil {
		t.Fatalf("refresh issued a credential: %v", r)
	}
	devs, err := e.store.PushDevicesOf(ctx, appA.SDKAppID, []uint32{e.ordinal("kiosk-1")})
	if err != nil || len(devs) != 1 || devs[0].Endpoint != "https://push.example.com/send/def" {
		t.Fatalf("after refresh: %+v, %v", devs, err)
	}
	wantCode(t, e.do(http.MethodGet, e.v1Device("/v1/sync", "kiosk-1", cred), ""), 0)
	// By credential it may name itself, and no other device.
	wantCode(t, e.do(http.MethodPost, e.v1Device("/v1/device/register", "kiosk-1", cred), `{"Platform":"web","RegistrationID":"kiosk-1"}`), 0)
	wantCode(t, e.do(http.MethodPost, e.v1Device("/v1/device/register", "kiosk-1", cred), `{"Platform":"web","RegistrationID":"kiosk-2"}`), im.CodeAccountBadParam)

	// Registering again by UserSig rotates: the old credential stops working.
	r = regBySig("kiosk-1", `{"Platform":"web","RegistrationID":"kiosk-1"}`)
	wantCode(t, r, 0)
	cred2, _ := r["DeviceCredential"].(string)
	if cred2 == "" || cred2 == cred {
		t.Fatalf("re-registration answered %v", r)
	}
	wantCode(t, e.do(http.MethodGet, e.v1Device("/v1/sync", "kiosk-1", cred), ""), im.CodeSigMismatch)
	wantCode(t, e.do(http.MethodGet, e.v1Device("/v1/sync", "kiosk-1", cred2), ""), 0)

	// Importing the name makes it an account: the device and its credential go.
	wantCode(t, e.call("im_open_login_svc/account_import", `{"UserID":"kiosk-1"}`), 0)
	wantCode(t, e.do(http.MethodGet, e.v1Device("/v1/sync", "kiosk-1", cred2), ""), im.CodeSigMismatch)
	if err := dial(cred2); err == nil {
		t.Fatal("a revoked credential connected")
	}
}

// TestDeviceVendorFields: the vendor side of a registration, its limits,
// and a token refresh that updates the one device.
func TestDeviceVendorFields(t *testing.T) {
	e := newClientEnv(t)
	ctx := context.Background()
	register := func(user, body string) reply {
		t.Helper()
		return e.do(http.MethodPost, e.v1("/v1/device/register", appA, user, sig(t, appA, user), nil), body)
	}
	wantCode(t, register("alice", `{"Platform":"ios","RegistrationID":"alice-phone","Vendor":"apns","Token":"0a1b2c","Bundle":"com.example.app"}`), 0)
	wantCode(t, register("alice", `{"Platform":"ios","RegistrationID":"alice-phone","Vendor":"apns","Token":"ffee00","Bundle":"com.example.app"}`), 0)
	wantCode(t, register("alice", `{"Platform":"android","RegistrationID":"alice-pixel","Vendor":"fcm","Token":"fcm:tok-1"}`), 0)
	devs, err := e.store.PushDevicesOf(ctx, appA.SDKAppID, []uint32{e.ordinal("alice")})
	if err != nil || len(devs) != 2 {
		t.Fatalf("alice's devices %+v, %v", devs, err)
	}
	if d := devs[0]; d.RegistrationID != "alice-phone" || d.Token != "ffee00" || d.Bundle != "com.example.app" || d.Vendor != im.VendorAPNs || d.Owner != "alice" {
		t.Errorf("refreshed phone %+v", d)
	}
	if r := register("alice", `{"Platform":"ios","Vendor":"apns","Token":"0a1b2c"}`); r["DeviceCredential"] != nil {
		t.Errorf("an owned device got a credential: %v", r)
	}
	good := webSub(t, "https://push.example.com/x")
	for _, tc := range []struct{ name, body string }{
		{"unknown vendor", `{"Platform":"android","Vendor":"hms","Token":"x"}`},
		{"apns without token", `{"Platform":"ios","Vendor":"apns"}`},
		{"apns token not hex", `{"Platform":"ios","Vendor":"apns","Token":"xyz1"}`},
		{"apns token odd length", `{"Platform":"ios","Vendor":"apns","Token":"abc"}`},
		{"fcm without token", `{"Platform":"android","Vendor":"fcm"}`},
		{"fcm with subscription", `{"Platform":"android","Vendor":"fcm","Token":"t","Subscription":` + good + `}`},
		{"webpush with token", `{"Platform":"web","Vendor":"webpush","Token":"t","Subscription":` + good + `}`},
		{"webpush without subscription", `{"Platform":"web","Vendor":"webpush"}`},
		{"subscription without vendor", `{"Platform":"web","Subscription":` + good + `}`},
		{"http endpoint", `{"Platform":"web","Vendor":"webpush","Subscription":` + strings.Replace(good, "https:", "http:", 1) + `}`},
		{"endpoint with user info", `{"Platform":"web","Vendor":"webpush","Subscription":` + strings.Replace(good, "https://", "https://u:p@", 1) + `}`},
		{"long endpoint", `{"Platform":"web","Vendor":"webpush","Subscription":` + strings.Replace(good, "/x", "/"+strings.Repeat("x", 1100), 1) + `}`},
		{"short p256dh", `{"Platform":"web","Vendor":"webpush","Subscription":{"endpoint":"https://e/x","keys":{"p256dh":"AAAA","auth":"AAAAAAAAAAAAAAAAAAAAAA"}}}`},
		{"short auth", `{"Platform":"web","Vendor":"webpush","Subscription":{"endpoint":"https://e/x","keys":{"p256dh":"` + strings.Repeat("A", 87) + `","auth":"AAAA"}}}`},
		{"bundle with slash", `{"Platform":"ios","Vendor":"apns","Token":"00","Bundle":"a/b"}`},
		{"long bundle", `{"Platform":"ios","Vendor":"apns","Token":"00","Bundle":"` + strings.Repeat("b", 256) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, register("alice", tc.body), im.CodeAccountBadParam) })
	}
	wantCode(t, register("alice", `{"Platform":"ios","Vendor":"apns","Token":"00","Bundle":"`+strings.Repeat("b", 255)+`"}`), 0)
	wantCode(t, register("alice", `{"Platform":"web","Vendor":"webpush","Subscription":`+good+`}`), 0)
	wantCode(t, register("alice", `{"Platform":"web","Vendor":7}`), im.CodeBodyJSON)
}

// TestPushOnline: an account without a live connection but with a device
// a vendor can reach is PushOnline; with a connection it is Online; a
// device whose token is gone does not count.
func TestPushOnline(t *testing.T) {
	e := newClientEnv(t)
	status := func() string {
		t.Helper()
		r := e.call("openim/query_online_status", `{"To_Account":["alice","bob","carol"],"IsNeedDetail":1}`)
		wantCode(t, r, 0)
		return jsonOf(r["QueryResult"])
	}
	wantCode(t, e.do(http.MethodPost, e.v1("/v1/device/register", appA, "alice", sig(t, appA, "alice"), nil),
		`{"Platform":"iPhone","RegistrationID":"alice-phone","Vendor":"apns","Token":"0a0b"}`), 0)
	wantCode(t, e.do(http.MethodPost, e.v1("/v1/device/register", appA, "carol", sig(t, appA, "carol"), nil),
		`{"Platform":"web"}`), 0) // no vendor: not reachable offline
	want := `[{"Detail":[{"Platform":"iPhone","Status":"PushOnline"}],"Status":"PushOnline","To_Account":"alice"},` +
		`{"Status":"Offline","To_Account":"bob"},{"Status":"Offline","To_Account":"carol"}]`
	if got := status(); got != want {
		t.Fatalf("status\n got %s\nwant %s", got, want)
	}
	c := e.connect("alice", url.Values{"platform": {"Web"}})
	c.pingPong()
	want = `[{"Detail":[{"Platform":"Web","Status":"Online"},{"Platform":"iPhone","Status":"PushOnline"}],"Status":"Online","To_Account":"alice"},` +
		`{"Status":"Offline","To_Account":"bob"},{"Status":"Offline","To_Account":"carol"}]`
	if got := status(); got != want {
		t.Fatalf("connected status\n got %s\nwant %s", got, want)
	}
	if ok, err := e.store.DropToken(context.Background(), appA.SDKAppID, "alice-phone", "0a0b"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	_ = c.ws.CloseNow()
	waitUntil(t, func() bool { return strings.Contains(status(), `{"Status":"Offline","To_Account":"alice"}`) })
}
