package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestFileVendors reads every vendor key in both spellings.
func TestFileVendors(t *testing.T) {
	body := `{"apps":[{"sdkappid":1400000001,"secret-key":"k","admins":["a"],"callback_token":"tok",
		"vendors":{
		 "apns":{"key-file":"AuthKey.p8","key_id":"K","team-id":"T","topic":"com.x","endpoint":"https://127.0.0.1:9/","ca-file":"ca.pem","rate":50},
		 "fcm":{"service-account-file":"sa.json","endpoint":"https://fcm.local","token_url":"https://tok.local/token","rate":10},
		 "webpush":{"vapid-public-key":"PUB","vapid-private-key-file":"vapid.key","subscriber":"mailto:a@b.c","allowed-hosts":["127.0.0.1",".mozilla.com"]}}}]}`
	c, err := Load([]string{"--config", writeFile(t, body)}, env2(nil))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps[0]
	want := Vendors{
		APNs: &APNsVendor{KeyFile: "AuthKey.p8", KeyID: "K", TeamID: "T", Topic: "com.x", Endpoint: "https://127.0.0.1:9/", CAFile: "ca.pem", Rate: 50},
		FCM:  &FCMVendor{ServiceAccountFile: "sa.json", Endpoint: "https://fcm.local", TokenURL: "https://tok.local/token", Rate: 10},
		WebPush: &WebPushVendor{VAPIDPublicKey: "PUB", VAPIDPrivateKeyFile: "vapid.key", Subscriber: "mailto:a@b.c",
			AllowedHosts: []string{"127.0.0.1", ".mozilla.com"}},
	}
	if !reflect.DeepEqual(a.Vendors, want) || a.CallbackToken != "tok" {
		t.Fatalf("vendors %+v token %q", a.Vendors, a.CallbackToken)
	}
	if strings.Contains(c.String(), "tok") {
		t.Fatal("String() shows the callback token")
	}
}

// TestFileVendorErrors refuses misspelt, missing and out-of-range keys.
func TestFileVendorErrors(t *testing.T) {
	for _, c := range []struct{ vendors, want string }{
		{`{"hms":{}}`, "unknown vendor"},
		{`{"apns":{"key-file":"f","key-id":"k","team-id":"t","topik":"x"}}`, "unknown field"},
		{`{"apns":{"key-file":"f","key-id":"k"}}`, "team-id are required"},
		{`{"apns":{"key-file":"f","key-id":"k","team-id":"t","endpoint":"http://x"}}`, "https"},
		{`{"apns":{"key-file":"f","key-id":"k","team-id":"t","rate":-1}}`, "out of range"},
		{`{"apns":{"key-file":"f","key-id":"k","team-id":"t","key_id":"k2"}}`, "given twice"},
		{`{"fcm":{}}`, "service-account-file is required"},
		{`{"fcm":{"service-account-file":"s","token-url":"ftp://x"}}`, "https"},
		{`{"webpush":{"vapid-public-key":"p","subscriber":"mailto:a@b"}}`, "required"},
		{`{"webpush":{"vapid-public-key":"p","vapid-private-key-file":"f","subscriber":"s","allowed-hosts":["http://x"]}}`, "not a host"},
		{`{"apns":"yes"}`, "want a JSON object"},
	} {
		body := `{"apps":[{"sdkappid":1400000001,"secret-key":"k","admins":["a"],"vendors":` + c.vendors + `}]}`
		_, err := Load([]string{"--config", writeFile(t, body)}, env2(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.vendors, err, c.want)
		}
	}
}
