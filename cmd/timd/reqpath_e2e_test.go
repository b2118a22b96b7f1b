package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"timd/internal/usersig"
)

// rawExchange sends one HTTP/1.1 request whose request target is exactly
// target (no client-side cleaning or escaping), from the loopback address
// from, and returns the answer and its body.
func rawExchange(t *testing.T, base, from, method, target, body string) (*http.Response, []byte) {
	t.Helper()
	host := strings.TrimPrefix(base, "http://")
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := d.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		method, target, host, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return resp, raw
}

// envelopeCode checks that an answer is the Tencent envelope (HTTP 200,
// JSON, ActionStatus consistent with ErrorCode, a string ErrorInfo, no
// redirect) and returns its code.
func envelopeCode(t *testing.T, what string, resp *http.Response, raw []byte) int {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d (Location %q) %q", what, resp.StatusCode, resp.Header.Get("Location"), raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: Content-Type %q, body %q", what, ct, raw)
	}
	var env struct {
		ActionStatus *string
		ErrorInfo    *string
		ErrorCode    *int
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.ActionStatus == nil || env.ErrorInfo == nil || env.ErrorCode == nil {
		t.Fatalf("%s: not an envelope: %q", what, raw)
	}
	if (*env.ErrorCode == 0) != (*env.ActionStatus == "OK") || (*env.ErrorCode != 0 && (*env.ActionStatus != "FAIL" || *env.ErrorInfo == "")) {
		t.Fatalf("%s: inconsistent envelope: %q", what, raw)
	}
	return *env.ErrorCode
}

// TestE2EEveryAnswerIsTheEnvelope: under /v4 and /v1, and for every path
// or method timd does not serve, the answer is the JSON envelope with
// HTTP 200: 60009 for an unknown, unclean or differently cased path (never
// a redirect or a plain-text 404), 60002 for a wrong method (never a
// plain-text 405). Issue 8, point 11.
func TestE2EEveryAnswerIsTheEnvelope(t *testing.T) {
	p := startApp(t, t.TempDir())
	p.want("im_open_login_svc/account_import", `{"UserID":"alice"}`, 0)
	adminQ := url.Values{"sdkappid": {fmt.Sprint(e2eApp)}, "identifier": {e2eAdmin}, "usersig": {p.sig},
		"random": {"1"}, "contenttype": {"json"}}.Encode()
	aliceSig, err := usersig.Gen(e2eApp, e2eKey, "alice", 86400, time.Now().Unix())
	if err != nil {
		t.Fatal(err)
	}
	userQ := url.Values{"sdkappid": {fmt.Sprint(e2eApp)}, "identifier": {"alice"}, "usersig": {aliceSig}}.Encode()
	const unknown, method = 60009, 60002
	for _, c := range []struct {
		method, target string
		code           int
	}{
		{"POST", "/v4/timpush/get_attr_name?" + adminQ, 0},
		{"GET", "/v1/sync?" + userQ, 0},

		{"POST", "//v4/timpush/get_attr_name?" + adminQ, unknown},
		{"POST", "/v4//timpush/get_attr_name?" + adminQ, unknown},
		{"POST", "/v4/timpush//get_attr_name?" + adminQ, unknown},
		{"POST", "/v4/timpush/./get_attr_name?" + adminQ, unknown},
		{"POST", "/v4/timpush/../timpush/get_attr_name?" + adminQ, unknown},
		{"POST", "/v4/./timpush/get_attr_name?" + adminQ, unknown},
		{"POST", "/v4/timpush/get_attr_name/?" + adminQ, unknown},
		{"POST", "/v4/timpush/get_attr_name%2F?" + adminQ, unknown},
		{"POST", "/V4/timpush/get_attr_name?" + adminQ, unknown},
		{"POST", "/v4/TIMPUSH/get_attr_name?" + adminQ, unknown},
		{"POST", "/v4/timpush/GET_ATTR_NAME?" + adminQ, unknown},
		{"POST", "/v4?" + adminQ, unknown},
		{"POST", "/v4/?" + adminQ, unknown},
		{"POST", "/v4/timpush?" + adminQ, unknown},
		{"POST", "/v4/timpush/?" + adminQ, unknown},
		{"POST", "/v4/timpush/nope?" + adminQ, unknown},
		{"POST", "/v4/timpush/get_attr_name/extra?" + adminQ, unknown},
		{"GET", "/v1", unknown},
		{"GET", "/v1/", unknown},
		{"GET", "/V1/sync?" + userQ, unknown},
		{"GET", "/v1/sync/?" + userQ, unknown},
		{"GET", "/v1//sync?" + userQ, unknown},
		{"GET", "/v1/device/../sync?" + userQ, unknown},
		{"GET", "/v1/../v4/timpush/get_attr_name?" + adminQ, unknown},
		{"GET", "/", unknown},
		{"GET", "/favicon.ico", unknown},
		{"GET", "/healthz/", unknown},
		{"GET", "//healthz", unknown},
		{"GET", "/HEALTHZ", unknown},

		{"GET", "/v4/timpush/get_attr_name?" + adminQ, method},
		{"PUT", "/v4/timpush/get_attr_name?" + adminQ, method},
		{"DELETE", "/v4/im_open_login_svc/account_delete?" + adminQ, method},
		{"OPTIONS", "/v4/timpush/push?" + adminQ, method},
		{"POST", "/v1/sync?" + userQ, method},
		{"POST", "/v1/connect?" + userQ, method},
		{"GET", "/v1/device/register?" + userQ, method},
		{"POST", "/healthz", method},
		{"DELETE", "/healthz", method},
		{"POST", "/metrics", method},
	} {
		what := c.method + " " + c.target
		resp, raw := rawExchange(t, p.base, "127.0.0.1", c.method, c.target, `{}`)
		if got := envelopeCode(t, what, resp, raw); got != c.code {
			t.Errorf("%s: ErrorCode %d, want %d (%s)", what, got, c.code, raw)
		}
	}
	// The two operator endpoints keep their own formats.
	resp, raw := rawExchange(t, p.base, "127.0.0.1", "GET", "/healthz", "")
	if resp.StatusCode != 200 || string(raw) != "ok\n" {
		t.Fatalf("GET /healthz: HTTP %d %q", resp.StatusCode, raw)
	}
	resp, raw = rawExchange(t, p.base, "127.0.0.1", "GET", "/metrics", "")
	if resp.StatusCode != 200 || !strings.Contains(string(raw), "timd_rest_requests_total") {
		t.Fatalf("GET /metrics: HTTP %d %.200q", resp.StatusCode, raw)
	}
}

// TestE2EAdminNotLockedOut: twenty and more bad sigs in the admin's name
// from one address never lock the admin out: the admin's valid sig passes
// from any address, including the attacker's, while the attacker's bad
// sigs keep answering 70050. Issue 8, point 2.
func TestE2EAdminNotLockedOut(t *testing.T) {
	p := startApp(t, t.TempDir(), "--limits", "off")
	q := func(sig string) string {
		return "/v4/im_open_login_svc/account_check?" + url.Values{"sdkappid": {fmt.Sprint(e2eApp)},
			"identifier": {e2eAdmin}, "usersig": {sig}, "random": {"1"}, "contenttype": {"json"}}.Encode()
	}
	const body = `{"CheckItem":[{"UserID":"a"}]}`
	call := func(from, sig string) int {
		resp, raw := rawExchange(t, p.base, from, "POST", q(sig), body)
		return envelopeCode(t, from+" "+sig[:min(len(sig), 10)], resp, raw)
	}
	const attacker, admin = "127.0.0.2", "127.0.0.1"
	bad := []string{"x"}
	for i := range 5 {
		s, _ := usersig.Gen(e2eApp, fmt.Sprint("guess", i), e2eAdmin, 86400, time.Now().Unix())
		bad = append(bad, s)
	}
	for i := range 20 {
		if code := call(attacker, bad[i%len(bad)]); code == 0 || code == 70050 {
			t.Fatalf("bad sig %d answered %d", i, code)
		}
	}
	for i := range 5 {
		if code := call(attacker, bad[i%len(bad)]); code != 70050 {
			t.Fatalf("throttled bad sig answered %d, want 70050", code)
		}
	}
	if code := call(admin, p.sig); code != 0 {
		t.Fatalf("admin's valid sig from its own address: %d", code)
	}
	if code := call(attacker, p.sig); code != 0 {
		t.Fatalf("admin's valid sig from the attacker's address: %d", code)
	}
	if code := call(attacker, bad[1]); code != 70050 {
		t.Fatalf("attacker after a valid sig: %d, want 70050", code)
	}
	if code := call(admin, bad[1]); code != 70009 {
		t.Fatalf("a bad sig from another address: %d, want its own code 70009", code)
	}
}

// TestE2EFutureDatedUserSig: a sig dated more than five minutes ahead is
// refused with 70003, on /v4 and on /v1, before and after a kick; one
// dated within the skew works until a kick and is refused (70052) after
// it, like every sig accepted before the kick. Issue 8, point 4.
func TestE2EFutureDatedUserSig(t *testing.T) {
	p := startApp(t, t.TempDir(), "--limits", "off")
	p.want("im_open_login_svc/account_import", `{"UserID":"alice"}`, 0)
	now := time.Now().Unix()
	gen := func(id string, at int64) string {
		s, err := usersig.Gen(e2eApp, e2eKey, id, 86400, at)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	v4 := func(sig string) int {
		target := "/v4/timpush/get_attr_name?" + url.Values{"sdkappid": {fmt.Sprint(e2eApp)},
			"identifier": {e2eAdmin}, "usersig": {sig}, "random": {"1"}, "contenttype": {"json"}}.Encode()
		resp, raw := rawExchange(t, p.base, "127.0.0.1", "POST", target, `{}`)
		return envelopeCode(t, "v4", resp, raw)
	}
	sync := func(sig string) int {
		target := "/v1/sync?" + url.Values{"sdkappid": {fmt.Sprint(e2eApp)}, "identifier": {"alice"}, "usersig": {sig}}.Encode()
		resp, raw := rawExchange(t, p.base, "127.0.0.1", "GET", target, "")
		return envelopeCode(t, "v1", resp, raw)
	}
	want := func(what string, got, code int) {
		t.Helper()
		if got != code {
			t.Fatalf("%s: ErrorCode %d, want %d", what, got, code)
		}
	}
	yearAhead, tenMinutes := gen("alice", now+365*86400), gen("alice", now+600)
	want("admin sig a year ahead", v4(gen(e2eAdmin, now+365*86400)), 70003)
	want("admin sig ten minutes ahead", v4(gen(e2eAdmin, now+600)), 70003)
	want("admin sig two minutes ahead", v4(gen(e2eAdmin, now+120)), 0)
	want("user sig a year ahead", sync(yearAhead), 70003)
	want("user sig ten minutes ahead", sync(tenMinutes), 70003)

	before, ahead := gen("alice", now-10), gen("alice", now+120)
	want("user sig issued before the kick", sync(before), 0)
	want("user sig two minutes ahead", sync(ahead), 0)
	p.want("im_open_login_svc/kick", `{"UserID":"alice"}`, 0)
	want("sig issued before the kick, after it", sync(before), 70052)
	want("sig dated ahead and used before the kick, after it", sync(ahead), 70052)
	want("sig a year ahead, after the kick", sync(yearAhead), 70003)
	want("a newer sig after the kick", sync(gen("alice", now+121)), 0)
}

// TestE2EUserSigSkewSetting: --usersig-skew widens or narrows the window.
func TestE2EUserSigSkewSetting(t *testing.T) {
	now := time.Now().Unix()
	for _, c := range []struct {
		skew  string
		ahead int64
		code  int
	}{
		{"1h", 1800, 0},
		{"1h", 3700, 70003},
		{"0s", 60, 70003},
	} {
		p := startApp(t, t.TempDir(), "--usersig-skew", c.skew)
		s, err := usersig.Gen(e2eApp, e2eKey, e2eAdmin, 86400, now+c.ahead)
		if err != nil {
			t.Fatal(err)
		}
		p.sig = s
		if r := p.call("timpush/get_attr_name", `{}`); r.code() != c.code {
			t.Errorf("--usersig-skew %s, sig %ds ahead: ErrorCode %d, want %d", c.skew, c.ahead, r.code(), c.code)
		}
		p.stop()
	}
}
