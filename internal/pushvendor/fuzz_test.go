package pushvendor_test

import (
	"testing"
	"time"

	"timd/internal/pushvendor"
)

func FuzzParseOfflinePushInfo(f *testing.F) {
	for _, s := range []string{``, `null`, `{}`, `{"PushFlag":1}`, `{"Title":"t","Desc":"d","Ext":"{}","ApnsInfo":{"Sound":"a.caf","BadgeMode":1},"AndroidInfo":{"Sound":"a"}}`,
		`{"Title":1}`, `[1]`, `{"ApnsInfo":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := pushvendor.ParseOfflinePushInfo(data)
		if err != nil {
			if o != (pushvendor.OfflinePushInfo{}) {
				t.Fatal("error with a non-zero value")
			}
			return
		}
		n := o.Notification(1, "t", time.Time{})
		if n.Title != o.Title || n.Desc != o.Desc || n.Apns != o.Apns {
			t.Fatal("notification lost a field")
		}
	})
}

func FuzzParseFCMError(f *testing.F) {
	for _, s := range []string{``, `{"error":{"code":404,"status":"NOT_FOUND","details":[{"errorCode":"UNREGISTERED"}]}}`,
		`{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"The registration token is not a valid FCM registration token"}}`,
		`{"error":{"details":[{"fieldViolations":[{"field":"message.token"}]}],"status":"INVALID_ARGUMENT"}}`, `{"error":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := pushvendor.ParseFCMError(data)
		if e.Unregistered() && e.Code() != "UNREGISTERED" && e.Code() != "INVALID_ARGUMENT" {
			t.Fatalf("unregistered on %q", e.Code())
		}
	})
}

func TestParseOfflinePushInfo(t *testing.T) {
	o, err := pushvendor.ParseOfflinePushInfo([]byte(`{"PushFlag":0,"Title":"T","Desc":"D","Ext":"{\"a\":1}","Unknown":5,
		"ApnsInfo":{"Sound":"x.caf","SubTitle":"S","Image":"https://i","MutableContent":1,"BadgeMode":1},
		"AndroidInfo":{"Sound":"x","GoogleChannelID":"c","HuaWeiChannelID":"h"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := pushvendor.OfflinePushInfo{Title: "T", Desc: "D", Ext: `{"a":1}`,
		Apns:    pushvendor.ApnsInfo{Sound: "x.caf", SubTitle: "S", Image: "https://i", MutableContent: 1, BadgeMode: 1},
		Android: pushvendor.AndroidInfo{Sound: "x", GoogleChannelID: "c"}}
	if o != want || !o.Offline() {
		t.Fatalf("got %+v", o)
	}
	for _, bad := range []string{`[]`, `"x"`, `{"Title":5}`, `{"PushFlag":"1"}`, `{"ApnsInfo":"x"}`} {
		if _, err := pushvendor.ParseOfflinePushInfo([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	if o, _ := pushvendor.ParseOfflinePushInfo([]byte(`{"PushFlag":1}`)); o.Offline() {
		t.Error("PushFlag 1 still offline")
	}
}
