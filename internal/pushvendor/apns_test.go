package pushvendor_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"timd/internal/pushvendor"
	"timd/internal/pushvendor/vendortest"
)

const iosToken = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

func newAPNs(t testing.TB) (*vendortest.APNs, pushvendor.Sender) {
	t.Helper()
	f, err := vendortest.NewAPNs("com.example.app")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	key, err := pushvendor.APNsKey(f.KeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	s, err := pushvendor.NewAPNs(pushvendor.APNsOptions{Key: key, KeyID: f.KeyID, TeamID: f.TeamID,
		Topic: "com.example.app", Endpoint: f.URL(), Client: pushvendor.NewHTTPClient(f.CertPool())})
	if err != nil {
		t.Fatal(err)
	}
	return f, s
}

func TestAPNsSend(t *testing.T) {
	f, s := newAPNs(t)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	n := pushvendor.Notification{App: 1400000001, TaskID: "task_1", Title: "Title", Desc: "Body", Ext: `{"k":1}`,
		Sound: "ding", Expires: exp, Apns: pushvendor.ApnsInfo{Sound: "ding.caf", SubTitle: "Sub", Image: "https://example.com/i.png"}}
	for i := 0; i < 3; i++ {
		if r := s.Send(context.Background(), pushvendor.Target{Kind: pushvendor.APNs, Token: iosToken}, n); !r.OK() {
			t.Fatalf("send %d: %+v", i, r)
		}
	}
	got := f.Received()
	if len(got) != 3 {
		t.Fatalf("fake got %d pushes, want 3", len(got))
	}
	p := got[0]
	for h, want := range map[string]string{
		"apns-topic": "com.example.app", "apns-push-type": "alert", "apns-priority": "10",
		"apns-collapse-id": "task_1", "apns-expiration": strconv.FormatInt(exp.Unix(), 10),
	} {
		if g := p.Header.Get(h); g != want {
			t.Errorf("%s = %q, want %q", h, g, want)
		}
	}
	aps := p.Payload["aps"].(map[string]any)
	alert := aps["alert"].(map[string]any)
	if alert["title"] != "Title" || alert["body"] != "Body" || alert["subtitle"] != "Sub" ||
		aps["sound"] != "ding.caf" || aps["mutable-content"] != float64(1) ||
		p.Payload["ext"] != `{"k":1}` || p.Payload["image"] != "https://example.com/i.png" {
		t.Errorf("payload = %v", p.Payload)
	}
	if n := f.ProviderTokens(); n != 1 {
		t.Errorf("%d provider tokens for 3 sends, want 1 (cached)", n)
	}
}

func TestAPNsClassifies(t *testing.T) {
	f, s := newAPNs(t)
	tgt := pushvendor.Target{Kind: pushvendor.APNs, Token: iosToken}
	n := pushvendor.Notification{TaskID: "t", Title: "x"}
	cases := []struct {
		ans               vendortest.Answer
		retry, unregister bool
		code              string
	}{
		{vendortest.Answer{Status: 429, Reason: "TooManyRequests"}, true, false, "TooManyRequests"},
		{vendortest.Answer{Status: 503, Reason: "ServiceUnavailable"}, true, false, "ServiceUnavailable"},
		{vendortest.Answer{Status: 500, Reason: "InternalServerError"}, true, false, "InternalServerError"},
		{vendortest.Answer{Status: 410, Reason: "Unregistered"}, false, true, "Unregistered"},
		{vendortest.Answer{Status: 400, Reason: "BadDeviceToken"}, false, true, "BadDeviceToken"},
		{vendortest.Answer{Status: 400, Reason: "PayloadEmpty"}, false, false, "PayloadEmpty"},
	}
	for _, c := range cases {
		f.Force(c.ans)
		r := s.Send(context.Background(), tgt, n)
		if r.OK() || r.Retry != c.retry || r.Unregistered != c.unregister || r.ErrCode != c.code || r.Status != c.ans.Status {
			t.Errorf("%+v: got %+v", c.ans, r)
		}
	}
	f.Gone(iosToken)
	if r := s.Send(context.Background(), tgt, n); !r.Unregistered || r.Retry {
		t.Errorf("gone token: %+v", r)
	}
	// A token that is not hex never reaches the request path.
	for _, bad := range []string{"", "../../x", strings.Repeat("g", 64), iosToken + "/x"} {
		if r := s.Send(context.Background(), pushvendor.Target{Kind: pushvendor.APNs, Token: bad}, n); r.OK() || r.Retry {
			t.Errorf("token %q: %+v", bad, r)
		}
	}
}

func TestAPNsWrongKeyRefused(t *testing.T) {
	f, _ := newAPNs(t)
	other, _ := vendortest.NewAPNs("com.example.app")
	defer other.Close()
	key, _ := pushvendor.APNsKey(other.KeyPEM())
	s, err := pushvendor.NewAPNs(pushvendor.APNsOptions{Key: key, KeyID: f.KeyID, TeamID: f.TeamID,
		Topic: "com.example.app", Endpoint: f.URL(), Client: pushvendor.NewHTTPClient(f.CertPool())})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Send(context.Background(), pushvendor.Target{Kind: pushvendor.APNs, Token: iosToken}, pushvendor.Notification{Title: "x"})
	if r.OK() || r.Status != 403 || r.ErrCode != "InvalidProviderToken" {
		t.Fatalf("signed by another key: %+v", r)
	}
	if len(f.Received()) != 0 {
		t.Fatal("fake accepted a push signed by another key")
	}
}
