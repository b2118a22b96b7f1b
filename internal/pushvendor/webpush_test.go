package pushvendor_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"timd/internal/pushvendor"
	"timd/internal/pushvendor/vendortest"
)

func newWebPush(t testing.TB) (*vendortest.WebPush, pushvendor.Sender, pushvendor.Target) {
	t.Helper()
	f, err := vendortest.NewWebPush()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	pub, priv, err := vendortest.VAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	f.RequireVAPIDKey(pub)
	s, err := pushvendor.NewWebPush(pushvendor.WebPushOptions{PublicKey: pub, PrivateKey: priv, Subscriber: "mailto:ops@example.com",
		AllowedHosts: []string{"127.0.0.1"}, Client: pushvendor.NewHTTPClient(f.CertPool())})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := f.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	return f, s, pushvendor.Target{Kind: pushvendor.WebPush, Endpoint: sub.Endpoint, P256dh: sub.P256dh, Auth: sub.Auth}
}

func TestWebPushSend(t *testing.T) {
	f, s, tgt := newWebPush(t)
	n := pushvendor.Notification{TaskID: "task_3", Title: "T", Desc: "D", Ext: `{"x":1}`, Expires: time.Now().Add(time.Hour), Priority: pushvendor.PriorityNormal}
	if r := s.Send(context.Background(), tgt, n); !r.OK() || r.Status != 201 {
		t.Fatalf("send: %+v", r)
	}
	got := f.Received()
	if len(got) != 1 {
		t.Fatalf("fake got %d messages", len(got))
	}
	var p map[string]any
	if err := json.Unmarshal(got[0].Payload, &p); err != nil {
		t.Fatalf("decrypted payload %q: %v", got[0].Payload, err)
	}
	if p["title"] != "T" || p["body"] != "D" || p["ext"] != `{"x":1}` || p["tag"] != "task_3" {
		t.Errorf("payload = %v", p)
	}
	h := got[0].Header
	if ttl, _ := strconv.Atoi(h.Get("TTL")); ttl < 3500 || ttl > 3600 {
		t.Errorf("TTL = %q, want about 3600", h.Get("TTL"))
	}
	if h.Get("Topic") != "task_3" || h.Get("Urgency") != "normal" {
		t.Errorf("Topic %q Urgency %q", h.Get("Topic"), h.Get("Urgency"))
	}
}

func TestWebPushWrongVAPIDRefused(t *testing.T) {
	f, _, tgt := newWebPush(t)
	pub, priv, _ := vendortest.VAPIDKeys() // not the key the subscription was made with
	s, err := pushvendor.NewWebPush(pushvendor.WebPushOptions{PublicKey: pub, PrivateKey: priv, Subscriber: "mailto:a@b.c",
		AllowedHosts: []string{"127.0.0.1"}, Client: pushvendor.NewHTTPClient(f.CertPool())})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Send(context.Background(), tgt, pushvendor.Notification{Title: "x"}); r.OK() || r.Status != 403 || r.Retry {
		t.Fatalf("foreign VAPID key: %+v", r)
	}
}

func TestWebPushClassifies(t *testing.T) {
	f, s, tgt := newWebPush(t)
	n := pushvendor.Notification{Title: "x"}
	cases := []struct {
		ans               vendortest.Answer
		retry, unregister bool
		after             time.Duration
	}{
		{vendortest.Answer{Status: 429, RetryAfter: "3"}, true, false, 3 * time.Second},
		{vendortest.Answer{Status: 502}, true, false, 0},
		{vendortest.Answer{Status: 404}, false, true, 0},
		{vendortest.Answer{Status: 410}, false, true, 0},
		{vendortest.Answer{Status: 413}, false, false, 0},
	}
	for _, c := range cases {
		f.Force(c.ans)
		r := s.Send(context.Background(), tgt, n)
		if r.OK() || r.Retry != c.retry || r.Unregistered != c.unregister || r.RetryAfter != c.after || r.ErrCode != "HTTP "+strconv.Itoa(c.ans.Status) {
			t.Errorf("%+v: got %+v", c.ans, r)
		}
	}
	f.GoneEndpoint(tgt.Endpoint)
	if r := s.Send(context.Background(), tgt, n); !r.Unregistered || r.Status != 410 {
		t.Errorf("gone subscription: %+v", r)
	}
}

func TestCheckSubscription(t *testing.T) {
	good := vendortest.Subscription{P256dh: "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM", Auth: "tBHItJI5svbpez7KI4CCXg"}
	allowed := []string{"push.example.com", ".mozilla.com"}
	for _, c := range []struct {
		endpoint, p256dh, auth string
		ok                     bool
	}{
		{"https://push.example.com/x", good.P256dh, good.Auth, true},
		{"https://updates.mozilla.com/x", good.P256dh, good.Auth, true},
		{"https://mozilla.com.evil.example/x", good.P256dh, good.Auth, false},
		{"https://evilmozilla.com/x", good.P256dh, good.Auth, false},
		{"http://push.example.com/x", good.P256dh, good.Auth, false},
		{"https://127.0.0.1/x", good.P256dh, good.Auth, false},
		{"https://user@push.example.com/x", good.P256dh, good.Auth, false},
		{"https://push.example.com/x", "AAAA", good.Auth, false},
		{"https://push.example.com/x", good.P256dh, "AAAA", false},
		{"https://push.example.com/x", good.P256dh, "!!!", false},
	} {
		err := pushvendor.CheckSubscription(c.endpoint, c.p256dh, c.auth, allowed)
		if (err == nil) != c.ok {
			t.Errorf("%s %s %s: err %v, want ok %v", c.endpoint, c.p256dh, c.auth, err, c.ok)
		}
	}
	// Not configured: only the browsers' push services.
	if pushvendor.CheckSubscription("https://127.0.0.1/x", good.P256dh, good.Auth, nil) == nil {
		t.Error("loopback endpoint allowed by default")
	}
	if pushvendor.CheckSubscription("https://fcm.googleapis.com/fcm/send/abc", good.P256dh, good.Auth, nil) != nil {
		t.Error("Chrome's push service refused by default")
	}
}
