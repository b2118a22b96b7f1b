package pushvendor_test

import (
	"context"
	"testing"
	"time"

	"timd/internal/pushvendor"
	"timd/internal/pushvendor/vendortest"
)

func newFCM(t testing.TB) (*vendortest.FCM, pushvendor.Sender) {
	t.Helper()
	f, err := vendortest.NewFCM("timd-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	sa, err := pushvendor.ParseServiceAccount(f.ServiceAccountJSON())
	if err != nil {
		t.Fatal(err)
	}
	s, err := pushvendor.NewFCM(pushvendor.FCMOptions{Account: sa, Endpoint: f.URL(), Client: pushvendor.NewHTTPClient(f.CertPool())})
	if err != nil {
		t.Fatal(err)
	}
	return f, s
}

func TestFCMSend(t *testing.T) {
	f, s := newFCM(t)
	n := pushvendor.Notification{TaskID: "task_2", Title: "T", Desc: "D", Ext: `{"a":"b"}`, Expires: time.Now().Add(time.Hour),
		Android: pushvendor.AndroidInfo{Sound: "ding", GoogleChannelID: "news"}, Data: map[string]string{"k": "v", "google.x": "dropped"}}
	for i := 0; i < 3; i++ {
		if r := s.Send(context.Background(), pushvendor.Target{Kind: pushvendor.FCM, Token: "fcm-token-1"}, n); !r.OK() {
			t.Fatalf("send %d: %+v", i, r)
		}
	}
	got := f.Received()
	if len(got) != 3 || got[0].Token != "fcm-token-1" {
		t.Fatalf("fake got %+v", got)
	}
	m := got[0].Message
	notif := m["notification"].(map[string]any)
	data := m["data"].(map[string]any)
	android := m["android"].(map[string]any)
	an := android["notification"].(map[string]any)
	if notif["title"] != "T" || notif["body"] != "D" || data["ext"] != `{"a":"b"}` || data["k"] != "v" || data["google.x"] != nil ||
		android["collapse_key"] != "task_2" || android["priority"] != "HIGH" || an["sound"] != "ding" || an["channel_id"] != "news" || an["tag"] != "task_2" {
		t.Errorf("message = %v", m)
	}
	if ttl, _ := android["ttl"].(string); ttl != "3599s" && ttl != "3600s" && ttl != "3598s" {
		t.Errorf("ttl = %q, want about 3600s", ttl)
	}
	if n := f.TokensIssued(); n != 1 {
		t.Errorf("%d access tokens for 3 sends, want 1 (cached)", n)
	}
}

func TestFCMRefreshesToken(t *testing.T) {
	f, s := newFCM(t)
	tgt := pushvendor.Target{Kind: pushvendor.FCM, Token: "tok"}
	if r := s.Send(context.Background(), tgt, pushvendor.Notification{Title: "x"}); !r.OK() {
		t.Fatal(r)
	}
	// A refused access token (401) is dropped; the retry gets a new one.
	f.RevokeTokens()
	r := s.Send(context.Background(), tgt, pushvendor.Notification{Title: "x"})
	if r.OK() || r.Status != 401 || !r.Retry {
		t.Fatalf("after revoke: %+v", r)
	}
	if r := s.Send(context.Background(), tgt, pushvendor.Notification{Title: "x"}); !r.OK() {
		t.Fatalf("after refresh: %+v", r)
	}
	if n := f.TokensIssued(); n != 2 {
		t.Fatalf("%d tokens issued, want 2", n)
	}
}

func TestFCMClassifies(t *testing.T) {
	f, s := newFCM(t)
	tgt := pushvendor.Target{Kind: pushvendor.FCM, Token: "tok"}
	n := pushvendor.Notification{Title: "x"}
	cases := []struct {
		ans               vendortest.Answer
		retry, unregister bool
		code              string
		after             time.Duration
	}{
		{vendortest.Answer{Status: 429, Reason: "QUOTA_EXCEEDED", RetryAfter: "7"}, true, false, "QUOTA_EXCEEDED", 7 * time.Second},
		{vendortest.Answer{Status: 503, Reason: "UNAVAILABLE"}, true, false, "UNAVAILABLE", 0},
		{vendortest.Answer{Status: 500, Reason: "INTERNAL"}, true, false, "INTERNAL", 0},
		{vendortest.Answer{Status: 404, Reason: "UNREGISTERED"}, false, true, "UNREGISTERED", 0},
		{vendortest.Answer{Status: 400, Reason: "INVALID_ARGUMENT"}, false, false, "INVALID_ARGUMENT", 0},
		{vendortest.Answer{Status: 403, Reason: "SENDER_ID_MISMATCH"}, false, false, "SENDER_ID_MISMATCH", 0},
	}
	for _, c := range cases {
		f.Force(c.ans)
		r := s.Send(context.Background(), tgt, n)
		if r.OK() || r.Retry != c.retry || r.Unregistered != c.unregister || r.ErrCode != c.code || r.RetryAfter != c.after {
			t.Errorf("%+v: got %+v", c.ans, r)
		}
	}
	f.Gone("tok")
	if r := s.Send(context.Background(), tgt, n); !r.Unregistered {
		t.Errorf("gone token: %+v", r)
	}
}

func TestFCMBadAssertionRefused(t *testing.T) {
	f, _ := newFCM(t)
	other, err := vendortest.NewFCM("timd-test")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	sa, _ := pushvendor.ParseServiceAccount(other.ServiceAccountJSON())
	// Other's key, but f's token endpoint: the assertion's signature,
	// kid and iss do not check out.
	s, _ := pushvendor.NewFCM(pushvendor.FCMOptions{Account: sa, Endpoint: f.URL(), TokenURL: f.URL() + "/token",
		Client: pushvendor.NewHTTPClient(f.CertPool())})
	r := s.Send(context.Background(), pushvendor.Target{Kind: pushvendor.FCM, Token: "tok"}, pushvendor.Notification{Title: "x"})
	if r.OK() || r.Retry || r.ErrCode != "oauth2 invalid_grant" {
		t.Fatalf("foreign key: %+v", r)
	}
	if len(f.Received()) != 0 || f.TokensIssued() != 0 {
		t.Fatal("fake accepted a foreign assertion")
	}
}

func TestParseServiceAccount(t *testing.T) {
	for name, in := range map[string]string{
		"not json":   `nope`,
		"wrong type": `{"type":"user","project_id":"p","client_email":"e","private_key":"k"}`,
		"no key":     `{"type":"service_account","project_id":"p","client_email":"e"}`,
		"bad pem":    `{"type":"service_account","project_id":"p","client_email":"e","private_key":"-----BEGIN X-----"}`,
	} {
		if _, err := pushvendor.ParseServiceAccount([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestFCMRetryAfterThroughFake: the fake answers 429 with Retry-After 1
// and then 503; SendWithRetry waits at least the second before trying
// again and delivers on the third attempt.
func TestFCMRetryAfterThroughFake(t *testing.T) {
	f, s := newFCM(t)
	f.Force(vendortest.Answer{Status: 429, Reason: "QUOTA_EXCEEDED", RetryAfter: "1"}, vendortest.Answer{Status: 503, Reason: "UNAVAILABLE"})
	start := time.Now()
	r := pushvendor.SendWithRetry(context.Background(), s, pushvendor.NewPacer(100), pushvendor.Backoff{Base: time.Millisecond, Attempts: 3},
		pushvendor.Target{Kind: pushvendor.FCM, Token: "tok"}, pushvendor.Notification{Title: "x"})
	if !r.OK() {
		t.Fatalf("after retries: %+v", r)
	}
	if el := time.Since(start); el < time.Second {
		t.Fatalf("delivered after %v, before the Retry-After of 1s", el)
	}
	if len(f.Received()) != 1 {
		t.Fatalf("fake accepted %d", len(f.Received()))
	}
}
