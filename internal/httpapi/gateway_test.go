package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"timd/internal/im"
	"timd/internal/usersig"
)

// TestGatewayErrors drives every transport-level failure of docs/api.md, "Common to every command"
// through the real router and checks its documented code.
func TestGatewayErrors(t *testing.T) {
	e := newEnv(t, envOpts{})
	good := sig(t, appA, "administrator")
	now := time.Now().Unix()
	expired, _ := usersig.Gen(appA.SDKAppID, appA.SecretKey, "administrator", 10, now-100)
	otherKey, _ := usersig.Gen(appA.SDKAppID, appB.SecretKey, "administrator", 86400, now)
	otherID := sig(t, appA, "ops")
	otherApp, _ := usersig.Gen(appB.SDKAppID, appA.SecretKey, "administrator", 86400, now)
	// Identifiers at and over the 32-byte limit, each with a valid sig, so
	// that only the length check can reject the longer one.
	id32, id33 := strings.Repeat("a", im.MaxUserIDLen), strings.Repeat("a", im.MaxUserIDLen+1)
	sig32, sig33 := sig(t, appA, id32), sig(t, appA, id33)
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	base := func(over ...string) string {
		kv := map[string]string{"sdkappid": fmt.Sprint(appA.SDKAppID), "identifier": "administrator",
			"usersig": good, "random": "7", "contenttype": "json"}
		for i := 0; i < len(over); i += 2 {
			if over[i+1] == "-" {
				delete(kv, over[i])
			} else {
				kv[over[i]] = over[i+1]
			}
		}
		var flat []string
		for k, v := range kv {
			flat = append(flat, k, v)
		}
		return q(flat...)
	}
	cases := []struct {
		name   string
		method string
		path   string
		query  string
		body   string
		code   int
	}{
		{"ok", "POST", "im_open_login_svc/account_check", base(), `{"CheckItem":[{"UserID":"a"}]}`, 0},
		{"unknown command", "POST", "im_open_login_svc/nope", base(), `{}`, im.CodeUnknownCommand},
		{"unknown service", "POST", "nope/account_check", base(), `{}`, im.CodeUnknownCommand},
		{"not v4", "POST", "../v3/x/y", base(), `{}`, im.CodeUnknownCommand},
		{"GET", "GET", "im_open_login_svc/account_check", base(), ``, im.CodeBadURL},
		{"PUT", "PUT", "timpush/get_attr_name", base(), `{}`, im.CodeBadURL},
		{"no sdkappid", "POST", "im_open_login_svc/account_check", base("sdkappid", "-"), `{}`, im.CodeNoSDKAppID},
		{"bad sdkappid", "POST", "im_open_login_svc/account_check", base("sdkappid", "14x"), `{}`, im.CodeBadURLParam},
		{"sdkappid too big", "POST", "im_open_login_svc/account_check", base("sdkappid", "99999999999"), `{}`, im.CodeBadURLParam},
		{"sdkappid 0", "POST", "im_open_login_svc/account_check", base("sdkappid", "0"), `{}`, im.CodeBadURLParam},
		{"malformed query", "POST", "im_open_login_svc/account_check", base() + "&x=%zz", `{}`, im.CodeBadURL},
		{"malformed key", "POST", "im_open_login_svc/account_check", "%gg=1&" + base(), `{}`, im.CodeBadURL},
		{"identifier 32 bytes", "POST", "im_open_login_svc/account_check", base("identifier", id32, "usersig", sig32), `{}`, im.CodeAccountNotAdmin},
		{"identifier 33 bytes", "POST", "im_open_login_svc/account_check", base("identifier", id33, "usersig", sig33), `{}`, im.CodeBadURLParam},
		{"identifier 33 bytes push", "POST", "timpush/get_attr_name", base("identifier", id33, "usersig", sig33), `{}`, im.CodeBadURLParam},
		{"no identifier", "POST", "im_open_login_svc/account_check", base("identifier", "-"), `{}`, im.CodeBadURLParam},
		{"no contenttype", "POST", "im_open_login_svc/account_check", base("contenttype", "-"), `{}`, im.CodeBadURLParam},
		{"contenttype xml", "POST", "im_open_login_svc/account_check", base("contenttype", "xml"), `{}`, im.CodeBadURLParam},
		{"no random", "POST", "im_open_login_svc/account_check", base("random", "-"), `{}`, im.CodeBadURLParam},
		{"random too big", "POST", "im_open_login_svc/account_check", base("random", "4294967296"), `{}`, im.CodeBadURLParam},
		{"no usersig", "POST", "im_open_login_svc/account_check", base("usersig", "-"), `{}`, im.CodeSigEmpty},
		{"unknown app", "POST", "im_open_login_svc/account_check", base("sdkappid", "1400999999"), `{}`, im.CodeAppNotFound},
		{"garbage sig", "POST", "im_open_login_svc/account_check", base("usersig", "eJx-not-a-sig"), `{}`, im.CodeSigInvalid},
		{"expired sig", "POST", "im_open_login_svc/account_check", base("usersig", expired), `{}`, im.CodeSigExpired},
		{"wrong key", "POST", "im_open_login_svc/account_check", base("usersig", otherKey), `{}`, im.CodeSigMismatch},
		{"sig for another identifier", "POST", "im_open_login_svc/account_check", base("usersig", otherID), `{}`, im.CodeSigIdentifier},
		{"sig for another app", "POST", "im_open_login_svc/account_check", base("usersig", otherApp), `{}`, im.CodeSigSDKAppID},
		{"empty body account", "POST", "im_open_login_svc/account_check", base(), ``, im.CodeBodyJSON},
		{"blank body push", "POST", "timpush/get_attr_name", base(), "  \n", im.CodePushJSON},
		{"not JSON account", "POST", "im_open_login_svc/account_check", base(), `{"CheckItem":`, im.CodeBodyJSON},
		{"not JSON push", "POST", "timpush/get_tag", base(), `<xml/>`, im.CodePushJSON},
		{"JSON array body", "POST", "timpush/get_tag", base(), `[1,2]`, im.CodePushJSON},
		{"trailing garbage", "POST", "timpush/get_tag", base(), `{"To_Account":["a"]} x`, im.CodePushJSON},
		{"wrong type", "POST", "timpush/add_tag", base(), `{"Replace":"yes","UserTags":[]}`, im.CodePushJSON},
		{"account not string", "POST", "timpush/get_tag", base(), `{"To_Account":[42]}`, im.CodeAccountNotStr},
		{"UserID not string", "POST", "im_open_login_svc/account_import", base(), `{"UserID":7}`, im.CodeAccountNotStr},
		{"oversized body", "POST", "timpush/get_tag", base(), `{"To_Account":["` + strings.Repeat("a", 70<<10) + `"]}`, im.CodeBadHTTP},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.method, e.srv.URL+"/v4/"+c.path+"?"+c.query, c.body)
			wantCode(t, r, c.code)
		})
	}
}

// TestAdminRequired checks the per-service admin code of docs/compatibility.md, "UserSig and admins" and that a
// valid sig of a non-admin account is not enough.
func TestAdminRequired(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, c := range []struct {
		cmd, body string
		code      int
	}{
		{"im_open_login_svc/account_import", `{"UserID":"x"}`, im.CodeAccountNotAdmin},
		{"openim/query_online_status", `{"To_Account":["x"]}`, im.CodeAccountNotAdmin},
		{"timpush/get_attr_name", `{}`, im.CodePushNotAdmin},
		{"all_member_push/im_get_attr_name", `{}`, im.CodePushNotAdmin},
	} {
		r := e.callAs(appA, "alice", c.cmd, c.body)
		wantCode(t, r, c.code)
	}
	// The second admin of app A is an admin too.
	wantCode(t, e.callAs(appA, "ops", "timpush/get_attr_name", `{}`), 0)
}

// TestAppIsolation checks that one app's admin can neither see nor change
// another app.
func TestAppIsolation(t *testing.T) {
	e := newEnv(t, envOpts{})
	wantCode(t, e.callAs(appA, "administrator", "im_open_login_svc/account_import", `{"UserID":"alice"}`), 0)
	// B's admin sees no alice in B.
	r := e.callAs(appB, "boss", "im_open_login_svc/account_check", `{"CheckItem":[{"UserID":"alice"}]}`)
	wantCode(t, r, 0)
	if got := jsonOf(r["ResultItem"]); !strings.Contains(got, `"NotImported"`) {
		t.Fatalf("app B sees app A's account: %s", got)
	}
	// A's admin name is not an admin of B, even with a sig made with B's key.
	wantCode(t, e.callAs(appB, "administrator", "im_open_login_svc/account_check", `{"CheckItem":[{"UserID":"alice"}]}`), im.CodeAccountNotAdmin)
	// A's admin sig presented against B's sdkappid fails verification.
	u := e.url("im_open_login_svc/account_delete", appB, "administrator", sig(t, appA, "administrator"))
	wantCode(t, e.do(http.MethodPost, u, `{"DeleteItem":[{"UserID":"alice"}]}`), im.CodeSigSDKAppID)
	// alice still exists in A.
	r = e.call("im_open_login_svc/account_check", `{"CheckItem":[{"UserID":"alice"}]}`)
	if got := jsonOf(r["ResultItem"]); !strings.Contains(got, `"Imported"`) {
		t.Fatalf("alice lost: %s", got)
	}
}

// TestRateLimits checks the over-limit code and that limits can be turned
// off.
func TestRateLimits(t *testing.T) {
	on := newEnv(t, envOpts{limits: true, rates: map[string]float64{"im_open_login_svc/account_check": 1}})
	body := `{"CheckItem":[{"UserID":"a"}]}`
	wantCode(t, on.call("im_open_login_svc/account_check", body), 0)
	wantCode(t, on.call("im_open_login_svc/account_check", body), im.CodeRESTRate)
	// Another command has its own budget.
	wantCode(t, on.call("timpush/get_attr_name", `{}`), 0)

	off := newEnv(t, envOpts{limits: false, rates: map[string]float64{"im_open_login_svc/account_check": 1}})
	for i := 0; i < 5; i++ {
		wantCode(t, off.call("im_open_login_svc/account_check", body), 0)
	}
}

// TestRateLimitsSplitAcrossNodes: a node of an N-node cluster enforces
// 1/N of each limit (Options.RateShare), so the cluster as a whole never
// allows more than the documented rate; the share follows the node count.
func TestRateLimitsSplitAcrossNodes(t *testing.T) {
	var nodes atomic.Int64
	nodes.Store(3)
	e := newEnv(t, envOpts{limits: true, rates: map[string]float64{"im_open_login_svc/account_check": 30},
		share: func() float64 { return 1 / float64(nodes.Load()) }})
	body := `{"CheckItem":[{"UserID":"a"}]}`
	allowed := func(n int) int {
		ok := 0
		for range n {
			if e.call("im_open_login_svc/account_check", body).code() == 0 {
				ok++
			}
		}
		return ok
	}
	// The burst is one second of the node's share, 10 of 30, and the
	// bucket refills at 10/s while the requests run.
	start := time.Now()
	got := allowed(20)
	if most := 10 + int(time.Since(start).Seconds()*10) + 1; got < 10 || got > most {
		t.Fatalf("node of three allowed %d of 20, want 10 to %d (30/s split three ways)", got, most)
	}
	nodes.Store(1)
	allowed(1)                          // the limiter takes the new share at its next request
	time.Sleep(1100 * time.Millisecond) // and refills at the new rate
	if got := allowed(40); got < 30 {
		t.Fatalf("a single node allowed %d of 40 at once, want at least 30", got)
	}
}

// TestBadSignatureThrottle: 20 failed verifications of one identity from
// one address make that address's further failures answer 70050, but a
// valid sig of that identity always passes, from that address or any
// other: junk sent in the admin's name never locks the admin out (issue 8,
// point 2). Failures are counted per address: another address's bad sigs
// get their own codes.
func TestBadSignatureThrottle(t *testing.T) {
	e := newEnv(t, envOpts{})
	bad, _ := usersig.Gen(appA.SDKAppID, "wrong-key", "administrator", 86400, time.Now().Unix())
	u := e.url("timpush/get_attr_name", appA, "administrator", bad)
	const attacker, admin = "127.0.0.2", "127.0.0.1"
	for i := 0; i < 20; i++ {
		wantCode(t, e.doFrom(attacker, http.MethodPost, u, `{}`), im.CodeSigMismatch)
	}
	for i := 0; i < 5; i++ {
		wantCode(t, e.doFrom(attacker, http.MethodPost, u, `{}`), im.CodeSigThrottled)
	}
	good := e.url("timpush/get_attr_name", appA, "administrator", sig(t, appA, "administrator"))
	wantCode(t, e.doFrom(admin, http.MethodPost, good, `{}`), 0)
	wantCode(t, e.doFrom(attacker, http.MethodPost, good, `{}`), 0)
	// The failing caller is still throttled, and only for its failures.
	wantCode(t, e.doFrom(attacker, http.MethodPost, u, `{}`), im.CodeSigThrottled)
	wantCode(t, e.doFrom(admin, http.MethodPost, u, `{}`), im.CodeSigMismatch)
	wantCode(t, e.doFrom(admin, http.MethodPost, good, `{}`), 0)
	// Other identities are unaffected.
	wantCode(t, e.callAs(appA, "ops", "timpush/get_attr_name", `{}`), 0)
}
