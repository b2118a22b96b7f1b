package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"timd/internal/deliver"
	"timd/internal/im"
	"timd/internal/usersig"
)

// syncIDs syncs every stored push of user (app A) with sig and returns
// the TaskIds, or fails unless the answer has code want (then nil).
func (e *clientEnv) syncIDs(u string, want int) []string {
	e.t.Helper()
	r := e.do(http.MethodGet, u, "")
	wantCode(e.t, r, want)
	if want != 0 {
		return nil
	}
	var p struct{ Pushes []struct{ TaskId string } }
	if err := json.Unmarshal([]byte(jsonOf(r)), &p); err != nil {
		e.t.Fatal(err)
	}
	ids := []string{}
	for _, x := range p.Pushes {
		ids = append(ids, x.TaskId)
	}
	return ids
}

// TestClientReachesOnlyItsUser: on /v1 a user's sig reaches that user's
// data only — not another user's inbox, not another app's, not another
// user's device — whatever the query says.
func TestClientReachesOnlyItsUser(t *testing.T) {
	e := newClientEnv(t)
	alice, bob := e.ordinal("alice"), e.ordinal("bob")
	later := time.Now().Add(time.Hour).Unix()
	add := func(app uint64, id string, ords ...uint32) {
		e.tasks.Add(im.PushTask{App: app, ID: id, From: "administrator", ExpiresAt: later}, ords...)
	}
	add(appA.SDKAppID, "for-alice", alice)
	add(appA.SDKAppID, "for-bob", bob)
	add(appA.SDKAppID, "for-both", alice, bob)
	add(appB.SDKAppID, "app-b", alice, bob) // the same ordinals in app B
	aliceSig, bobSig := sig(t, appA, "alice"), sig(t, appA, "bob")

	if got := e.syncIDs(e.v1("/v1/sync", appA, "alice", aliceSig, nil), 0); !slices.Equal(got, []string{"for-alice", "for-both"}) {
		t.Fatalf("alice synced %v", got)
	}
	if got := e.syncIDs(e.v1("/v1/sync", appA, "bob", bobSig, nil), 0); !slices.Equal(got, []string{"for-bob", "for-both"}) {
		t.Fatalf("bob synced %v", got)
	}
	// Bob's sig presented as alice, on every route.
	for _, path := range []string{"/v1/sync", "/v1/connect", "/v1/device/register"} {
		u := e.v1(path, appA, "alice", bobSig, nil)
		var r reply
		switch path {
		case "/v1/connect":
			r = getEnvelope(t, u, true)
		case "/v1/device/register":
			r = e.do(http.MethodPost, u, `{"Platform":"ios"}`)
		default:
			r = e.do(http.MethodGet, u, "")
		}
		wantCode(t, r, im.CodeSigIdentifier)
		// Alice of app A's sig for alice of app B (who exists).
		u = e.v1(path, appB, "alice", aliceSig, nil)
		if path == "/v1/connect" {
			r = getEnvelope(t, u, true)
		} else if path == "/v1/device/register" {
			r = e.do(http.MethodPost, u, `{"Platform":"ios"}`)
		} else {
			r = e.do(http.MethodGet, u, "")
		}
		wantCode(t, r, im.CodeSigSDKAppID)
	}
	// A repeated identifier does not switch the user: the first wins.
	base := fmt.Sprintf("%s/v1/sync?sdkappid=%d&usersig=%s", e.srv.URL, appA.SDKAppID, url.QueryEscape(bobSig))
	if got := e.syncIDs(base+"&identifier=bob&identifier=alice", 0); !slices.Equal(got, []string{"for-bob", "for-both"}) {
		t.Fatalf("bob with a second identifier synced %v", got)
	}
	e.syncIDs(base+"&identifier=alice&identifier=bob", im.CodeSigIdentifier)
	// Alice of app B sees app B's push only.
	if got := e.syncIDs(e.v1("/v1/sync", appB, "alice", sig(t, appB, "alice"), nil), 0); !slices.Equal(got, []string{"app-b"}) {
		t.Fatalf("app B's alice synced %v", got)
	}

	// Devices: bob cannot take over alice's RegistrationID, nor name a
	// UserID, nor set an owner through the body.
	register := func(user, s, body string) reply {
		return e.do(http.MethodPost, e.v1("/v1/device/register", appA, user, s, nil), body)
	}
	wantCode(t, register("alice", aliceSig, `{"Platform":"ios","Token":"alice-token","RegistrationID":"alice-phone"}`), 0)
	wantCode(t, register("bob", bobSig, `{"Platform":"ios","Token":"bob-token","RegistrationID":"alice-phone"}`), im.CodeAccountBadParam)
	wantCode(t, register("bob", bobSig, `{"Platform":"ios","RegistrationID":"alice"}`), im.CodeAccountBadParam)
	r := register("bob", bobSig, `{"Platform":"ios","Token":"t","Owner":"alice","UserID":"alice","Identifier":"alice"}`)
	wantCode(t, r, 0)
	ctx := context.Background()
	regID, _ := r["RegistrationID"].(string)
	accts, err := e.store.Accounts(ctx, appA.SDKAppID, []string{"alice-phone", regID})
	if err != nil {
		t.Fatal(err)
	}
	if a := accts["alice-phone"]; a.Owner != "alice" || a.Token != "alice-token" {
		t.Fatalf("alice's device after bob's attempts: %+v", a)
	}
	if a := accts[regID]; a.Owner != "bob" {
		t.Fatalf("bob's device owned by %q", a.Owner)
	}
	// A RegistrationID is not a user: it cannot sign in to /v1.
	wantCode(t, e.do(http.MethodGet, e.v1("/v1/sync", appA, "alice-phone", sig(t, appA, "alice-phone"), nil), ""), im.CodeAccountNotFound)
}

// TestClientKickedAndDeletedUsers: after a kick, the user's earlier sigs
// open nothing on /v1 and live connections are closed; a sig made after
// the kick works. A deleted account cannot connect at all.
func TestClientKickedAndDeletedUsers(t *testing.T) {
	e := newClientEnv(t)
	old, err := usersig.Gen(appA.SDKAppID, appA.SecretKey, "alice", 86400, time.Now().Unix()-5)
	if err != nil {
		t.Fatal(err)
	}
	live := e.connect("alice", url.Values{"usersig": {old}})
	live.pingPong()
	wantCode(t, e.call("im_open_login_svc/kick", `{"UserID":"alice"}`), 0)
	if code := live.closeStatus(); code != deliver.StatusKicked {
		t.Fatalf("live connection closed with %v", code)
	}
	wantCode(t, getEnvelope(t, e.v1("/v1/connect", appA, "alice", old, nil), true), im.CodeSigKicked)
	wantCode(t, e.do(http.MethodGet, e.v1("/v1/sync", appA, "alice", old, nil), ""), im.CodeSigKicked)
	wantCode(t, e.do(http.MethodPost, e.v1("/v1/device/register", appA, "alice", old, nil), `{"Platform":"ios"}`), im.CodeSigKicked)
	fresh, err := usersig.Gen(appA.SDKAppID, appA.SecretKey, "alice", 86400, time.Now().Unix()+1)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.do(http.MethodGet, e.v1("/v1/sync", appA, "alice", fresh, nil), ""), 0)
	// Bob is unaffected by alice's kick.
	wantCode(t, e.do(http.MethodGet, e.v1("/v1/sync", appA, "bob", sig(t, appA, "bob"), nil), ""), 0)

	bobSig := sig(t, appA, "bob")
	wantCode(t, e.call("im_open_login_svc/account_delete", `{"DeleteItem":[{"UserID":"bob"}]}`), 0)
	wantCode(t, getEnvelope(t, e.v1("/v1/connect", appA, "bob", bobSig, nil), true), im.CodeAccountNotFound)
	wantCode(t, e.do(http.MethodGet, e.v1("/v1/sync", appA, "bob", bobSig, nil), ""), im.CodeAccountNotFound)
	wantCode(t, e.do(http.MethodPost, e.v1("/v1/device/register", appA, "bob", bobSig, nil), `{"Platform":"ios"}`), im.CodeAccountNotFound)
}

// TestThrottleSharedByV4AndV1: /v4 and /v1 share one authenticator, so
// 20 failed verifications of an identity from one address on either make
// that address's further failures answer 70050 on both. Valid sigs of the
// identity still pass everywhere; other identities, and the same name in
// another app, are untouched.
func TestThrottleSharedByV4AndV1(t *testing.T) {
	e := newClientEnv(t)
	now := time.Now().Unix()
	wrong := func(app im.App, id string) string {
		s, _ := usersig.Gen(app.SDKAppID, "not-the-key", id, 86400, now)
		return s
	}
	syncURL := func(app im.App, id, s string) string { return e.v1("/v1/sync", app, id, s, nil) }
	v4URL := func(app im.App, id, s string) string { return e.url("im_open_login_svc/account_check", app, id, s) }
	const check = `{"CheckItem":[{"UserID":"a"}]}`

	// 20 bad sigs for alice on /v4 throttle her bad sigs on /v1; her good
	// sig is served.
	for range 20 {
		wantCode(t, e.do(http.MethodPost, e.url("timpush/get_attr_name", appA, "alice", wrong(appA, "alice")), `{}`), im.CodeSigMismatch)
	}
	wantCode(t, e.do(http.MethodGet, syncURL(appA, "alice", wrong(appA, "alice")), ""), im.CodeSigThrottled)
	wantCode(t, getEnvelope(t, e.v1("/v1/connect", appA, "alice", wrong(appA, "alice"), nil), true), im.CodeSigThrottled)
	wantCode(t, e.do(http.MethodGet, syncURL(appA, "alice", sig(t, appA, "alice")), ""), 0)
	wantCode(t, e.do(http.MethodGet, syncURL(appA, "bob", sig(t, appA, "bob")), ""), 0)
	wantCode(t, e.do(http.MethodGet, syncURL(appB, "alice", wrong(appB, "alice")), ""), im.CodeSigMismatch)

	// 20 bad sigs for carol on /v1 throttle her bad sigs on /v4 (70050
	// comes before the admin check's 70403); her good sig reaches the
	// admin check.
	for range 20 {
		wantCode(t, e.do(http.MethodGet, syncURL(appA, "carol", wrong(appA, "carol")), ""), im.CodeSigMismatch)
	}
	wantCode(t, e.do(http.MethodPost, v4URL(appA, "carol", wrong(appA, "carol")), check), im.CodeSigThrottled)
	wantCode(t, e.callAs(appA, "carol", "im_open_login_svc/account_check", check), im.CodeAccountNotAdmin)

	// The admin's name on /v1: 20 failures from one address throttle that
	// address's bad admin sigs on /v4, never the admin's good sig, from
	// that address or another.
	for range 20 {
		wantCode(t, getEnvelope(t, e.v1("/v1/connect", appA, "administrator", wrong(appA, "administrator"), nil), true), im.CodeSigMismatch)
	}
	wantCode(t, e.do(http.MethodPost, v4URL(appA, "administrator", wrong(appA, "administrator")), check), im.CodeSigThrottled)
	wantCode(t, e.doFrom("127.0.0.2", http.MethodPost, v4URL(appA, "administrator", wrong(appA, "administrator")), check), im.CodeSigMismatch)
	wantCode(t, e.call("im_open_login_svc/account_check", check), 0)
	wantCode(t, e.doFrom("127.0.0.2", http.MethodPost, v4URL(appA, "administrator", sig(t, appA, "administrator")), check), 0)
	wantCode(t, e.callAs(appB, "boss", "im_open_login_svc/account_check", check), 0)
}
