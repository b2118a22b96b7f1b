package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"timd/internal/im"
	"timd/internal/webhook"
)

// TestSignedCallbacks: with a callback token every POST carries
// Tencent's RequestTime and Sign and the body signature, and the
// receiver's VerifyRequest accepts them.
func TestSignedCallbacks(t *testing.T) {
	e := newEnv(t, 250, true)
	e.ep.token = "callback-token-1"
	e.push("t1", im.PushCondition, nil)
	e.finish("t1")
	d := e.dispatcher(webhook.Options{Tokens: map[uint64]string{app: "callback-token-1"}})
	d.Start(context.Background())
	defer d.Stop()
	e.waitHook("t1", im.HookDone)
	if n, v := e.ep.requests.Load(), e.ep.verified.Load(); n == 0 || v != n {
		t.Fatalf("%d of %d callbacks verified", v, n)
	}
	if got := len(e.ep.got("t1")); got != 250 {
		t.Fatalf("%d of 250 events", got)
	}
}

// TestSign pins Tencent's formula: hex(sha256(token + RequestTime)).
func TestSign(t *testing.T) {
	// The example on Tencent's "Third-party callback overview" page
	// (https://cloud.tencent.com/document/product/269/117703): token
	// xxxxyyyy at RequestTime 1669872112.
	if got := webhook.Sign("xxxxyyyy", 1669872112); got != "17773bc39a671d7b9aa835458704d2a6db81360a5940292b587d6d760d484061" {
		t.Fatalf("Sign of Tencent's example = %q", got)
	}
	// sha256("abc1700000000")
	if got := webhook.Sign("abc", 1700000000); got != "139d720ab3fe33252a099243519e7548ce791f035b647c70bc13e8a12f503cda" {
		t.Fatalf("Sign = %q", got)
	}
	if webhook.Sign("abc", 1700000000) != webhook.Sign("abc", 1700000000) || webhook.Sign("abc", 1700000000) == webhook.Sign("abd", 1700000000) ||
		webhook.Sign("abc", 1700000000) == webhook.Sign("abc", 1700000001) {
		t.Fatal("Sign does not depend on exactly token and time")
	}
}

func signed(token string, body []byte, at time.Time) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "https://app.example.com/cb?SdkAppid=1400000001&CallbackCommand=Push.AllMemberPush&contenttype=json", bytes.NewReader(body))
	webhook.SignRequest(req, token, body, at)
	return req
}

func TestVerifyRequest(t *testing.T) {
	now := time.Now()
	body := []byte(`{"Events":[]}`)
	good := signed("tok", body, now)
	cases := []struct {
		name  string
		query url.Values
		h     http.Header
		body  []byte
		token string
		want  error
	}{
		{"good", good.URL.Query(), good.Header, body, "tok", nil},
		{"wrong token", good.URL.Query(), good.Header, body, "tok2", webhook.ErrBadSign},
		{"body changed", good.URL.Query(), good.Header, []byte(`{"Events":[1]}`), "tok", webhook.ErrBadSign},
		{"unsigned", url.Values{}, http.Header{}, body, "tok", webhook.ErrUnsigned},
		{"stale", signed("tok", body, now.Add(-10*time.Minute)).URL.Query(), signed("tok", body, now.Add(-10*time.Minute)).Header, body, "tok", webhook.ErrStale},
		{"future", signed("tok", body, now.Add(10*time.Minute)).URL.Query(), signed("tok", body, now.Add(10*time.Minute)).Header, body, "tok", webhook.ErrStale},
		{"malformed time", url.Values{"RequestTime": {"soon"}, "Sign": {"x"}}, good.Header, body, "tok", webhook.ErrMalformed},
	}
	for _, c := range cases {
		if err := webhook.VerifyRequest(c.query, c.h, c.body, c.token, now); err != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// A Sign for another time, with the body signature intact, fails.
	q := good.URL.Query()
	q.Set("Sign", webhook.Sign("tok", now.Unix()-1))
	if err := webhook.VerifyRequest(q, good.Header, body, "tok", now); err != webhook.ErrBadSign {
		t.Errorf("Sign of another time: %v", err)
	}
	// No token: nothing is added.
	plain := signed("", body, now)
	if plain.URL.Query().Has("Sign") || plain.Header.Get(webhook.HeaderSignature) != "" {
		t.Error("signed without a token")
	}
}

// ExampleVerifyRequest is a callback receiver that refuses callbacks not
// signed with its token, altered on the way, or replayed later.
func ExampleVerifyRequest() {
	const token = "my-callback-token" // the app's "callback-token"
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body", http.StatusBadRequest)
			return
		}
		if err := webhook.VerifyRequest(r.URL.Query(), r.Header, body, token, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		// ... handle the events in body ...
		fmt.Fprint(w, `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`)
	})

	body := []byte(`{"Events":[{"CallbackCommand":"Push.AllMemberPush","EventType":1}]}`)
	for _, req := range []*http.Request{
		signed(token, body, time.Now()),                 // as timd sends it
		signed("another-token", body, time.Now()),       // someone else
		signed(token, body, time.Now().Add(-time.Hour)), // a replay
	} {
		rec := httptest.NewRecorder()
		receiver.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// 200
	// 401
	// 401
}
