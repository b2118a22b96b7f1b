package main_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"timd/internal/httpapi"
	"timd/internal/usersig"
)

// loggedProc is a timd whose whole stdout and stderr (the log) are kept.
type loggedProc struct {
	*proc
	stderr *syncBuffer
}

// startLogged runs `timd serve` on a free port with the store directory,
// extra environment (KEY=VALUE) and flags, keeps all of its output, and
// waits for /healthz.
func startLogged(t *testing.T, store string, env []string, args ...string) *loggedProc {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"serve", "--listen", "127.0.0.1:0", "--store", store}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, stdout: stdout, store: store}
	t.Cleanup(p.kill)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := listenRE.FindStringSubmatch(stderr.String()); m != nil {
			p.base = "http://" + m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timd did not start listening:\n%s", stderr)
		}
	}
	resp, err := http.Get(p.base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	resp.Body.Close()
	return &loggedProc{proc: p, stderr: stderr}
}

// randomKey is a fresh 64-hex-digit secret key.
func randomKey(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// noKey fails if any key, or either hex half of it, appears in any of the
// named texts.
func noKey(t *testing.T, keys []string, texts map[string]string) {
	t.Helper()
	for _, k := range keys {
		for _, s := range []string{k, k[:len(k)/2], k[len(k)/2:]} {
			for name, text := range texts {
				if i := strings.Index(text, s); i >= 0 {
					t.Errorf("%s shows a secret key (%q) at %d: …%s…", name, s, i, text[max(0, i-200):min(len(text), i+len(s)+50)])
				}
			}
		}
	}
}

// prober sends requests to a timd and keeps every answer and the codes.
type prober struct {
	t       *testing.T
	base    string
	answers strings.Builder
	codes   map[int]int
	n       int
}

func newProber(t *testing.T, base string) *prober {
	return &prober{t: t, base: base, codes: map[int]int{}}
}

// send makes one request and returns its envelope's code (-1 when the
// answer is not an envelope).
func (pr *prober) send(method, path, body string) int {
	pr.t.Helper()
	req, err := http.NewRequest(method, pr.base+path, strings.NewReader(body))
	if err != nil {
		pr.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		pr.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	fmt.Fprintf(&pr.answers, "%s %s → %d %s\n", method, path, resp.StatusCode, raw)
	pr.n++
	var r reply
	if json.Unmarshal(raw, &r) != nil {
		return -1
	}
	pr.codes[r.code()]++
	return r.code()
}

// v4Path is the path of a /v4 command with the common query.
func v4Path(cmd string, app uint64, identifier, sig string) string {
	q := url.Values{"sdkappid": {fmt.Sprint(app)}, "identifier": {identifier}, "random": {"7"}, "contenttype": {"json"}}
	if sig != "-" {
		q.Set("usersig", sig)
	}
	return "/v4/" + cmd + "?" + q.Encode()
}

// v1Path is the path of a /v1 endpoint with the auth query.
func v1Path(path string, app uint64, identifier, sig string) string {
	q := url.Values{"sdkappid": {fmt.Sprint(app)}, "identifier": {identifier}, "usersig": {sig}}
	return path + "?" + q.Encode()
}

// sigAt makes a UserSig issued at time at, with timd's own generator.
func sigAt(t *testing.T, app uint64, key, id string, expire, at int64) string {
	t.Helper()
	s, err := usersig.Gen(app, key, id, expire, at)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestE2ESecretsNeverLeak starts the real binary with one app from --app
// and one from a config file, each with a fresh secret key, drives every
// command through every kind of failure (bad, expired and foreign sigs,
// non-admins, bad JSON, oversized bodies, unknown apps, throttling, /v1
// failures, an oversized WebSocket frame, a malformed HTTP request) at
// debug log level, scrapes /metrics, stops the server, and checks that
// neither key nor either hex half of it appears in any answer, in
// /metrics, or anywhere in the server's output.
func TestE2ESecretsNeverLeak(t *testing.T) {
	const flagApp, fileApp = 1400000100, 1400000101
	flagKey, fileKey := randomKey(t), randomKey(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "timd.json")
	// The file also lifts the flag app's per-command rates (the flag sets
	// its key and admins), so that every request reaches its handler.
	rates := map[string]float64{}
	for _, cmd := range httpapi.Commands() {
		rates[cmd] = 1000
	}
	body := fmt.Sprintf(`{"body_limit":65536,"apps":[{"sdkappid":%d,"rates":%s},{"sdkappid":%d,"secret_key":%q,"admins":["fileadmin"]}]}`,
		flagApp, js(rates), fileApp, fileKey)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startLogged(t, filepath.Join(dir, "store"), []string{"TIMD_LOG_LEVEL=debug"},
		"--config", cfg, "--app", fmt.Sprintf("%d:%s:administrator,ops", flagApp, flagKey))
	if out := p.stdout.String(); strings.Contains(out, "SecretKey") {
		t.Fatalf("a development app banner with --app given:\n%s", out)
	}
	now := time.Now().Unix()
	good := sigAt(t, flagApp, flagKey, "administrator", 86400, now)
	pr := newProber(t, p.base)
	for _, c := range []struct{ cmd, body string }{
		{"im_open_login_svc/multiaccount_import", `{"Accounts":["alice","bob"]}`},
		{"timpush/set_attr_name", `{"AttrNames":{"0":"city"}}`},
		{"timpush/set_attr", `{"UserAttrs":[{"To_Account":"alice","Attrs":{"city":"paris"}}]}`},
		{"timpush/push", `{"MsgRandom":1,"OfflinePushInfo":{"Title":"hello"}}`},
	} {
		if code := pr.send("POST", v4Path(c.cmd, flagApp, "administrator", good), c.body); code != 0 {
			t.Fatalf("%s: %d", c.cmd, code)
		}
	}
	wantCodes := map[int]bool{}
	expect := func(code, want int, what string) {
		t.Helper()
		if code != want {
			t.Errorf("%s: code %d, want %d", what, code, want)
		}
		wantCodes[want] = true
	}
	alice := sigAt(t, flagApp, flagKey, "alice", 86400, now)
	huge := `{"Pad":"` + strings.Repeat("x", 64<<10) + `"}`
	for i, cmd := range httpapi.Commands() {
		probe := fmt.Sprint("probe", i) // a name per command keeps it under the throttle
		notAdmin := 70403
		if strings.HasPrefix(cmd, "timpush/") || strings.HasPrefix(cmd, "all_member_push/") || strings.HasPrefix(cmd, "timd_ext/") {
			notAdmin = 90009
		}
		expect(pr.send("POST", v4Path(cmd, flagApp, probe, sigAt(t, flagApp, fileKey, probe, 86400, now)), `{}`), 70009, cmd+" other app's key")
		expect(pr.send("POST", v4Path(cmd, flagApp, probe, sigAt(t, fileApp, fileKey, probe, 86400, now)), `{}`), 70014, cmd+" other app's sig")
		expect(pr.send("POST", v4Path(cmd, flagApp, probe, sigAt(t, flagApp, flagKey, probe, 10, now-100)), `{}`), 70001, cmd+" expired")
		expect(pr.send("POST", v4Path(cmd, flagApp, probe, "eJyrVkrNTcxXslJKzs8rSc0rUaoFADDVBd0_"), `{}`), 70003, cmd+" garbage sig")
		expect(pr.send("POST", v4Path(cmd, flagApp, probe, "-"), `{}`), 70002, cmd+" no sig")
		expect(pr.send("POST", v4Path(cmd, flagApp, "alice", alice), `{}`), notAdmin, cmd+" non-admin")
		expect(pr.send("POST", v4Path(cmd, 1400999999, "administrator", good), `{}`), 70020, cmd+" unknown app")
		expect(pr.send("POST", v4Path(cmd, flagApp, "administrator", good), huge), 60008, cmd+" oversized body")
		expect(pr.send("GET", v4Path(cmd, flagApp, "administrator", good), ""), 60002, cmd+" GET")
		if code := pr.send("POST", v4Path(cmd, flagApp, "administrator", good), `{"To_Account":`); code != 60003 && code != 90001 {
			t.Errorf("%s bad JSON: code %d", cmd, code)
		}
		pr.send("POST", v4Path(cmd, flagApp, "administrator", good), `{"To_Account":5,"UserID":5,"MsgRandom":"x","Sdkappid":"x","TaskId":5,"TaskID":"x","AttrNames":[]}`)
	}
	for i := range 25 {
		code := pr.send("POST", v4Path("timpush/get_attr_name", flagApp, "ops", sigAt(t, flagApp, fileKey, "ops", 86400, now)), `{}`)
		if i >= 20 {
			expect(code, 70050, "throttled")
		}
	}
	expect(pr.send("POST", v4Path("timpush/push", flagApp, "administrator", good),
		`{"MsgRandom":2,"OfflinePushInfo":{"Title":"x","Ext":"`+strings.Repeat("x", 11<<10)+`"}}`), 90056, "push over 10 KB")
	expect(pr.send("POST", v4Path("timpush/nope", flagApp, "administrator", good), `{}`), 60009, "unknown command")
	// /v1.
	expect(pr.send("GET", v1Path("/v1/sync", flagApp, "alice", sigAt(t, flagApp, fileKey, "alice", 86400, now)), ""), 70009, "sync other key")
	expect(pr.send("GET", v1Path("/v1/sync", flagApp, "alice", sigAt(t, fileApp, fileKey, "alice", 86400, now)), ""), 70014, "sync other app")
	expect(pr.send("GET", v1Path("/v1/sync", flagApp, "ghost", sigAt(t, flagApp, flagKey, "ghost", 86400, now)), ""), 70107, "sync unknown user")
	expect(pr.send("GET", v1Path("/v1/connect", flagApp, "bob", alice), ""), 70013, "connect with alice's sig")
	expect(pr.send("POST", v1Path("/v1/device/register", flagApp, "alice", alice), `{"Platform":"ios","Pad":"`+strings.Repeat("x", 5000)+`"}`), 60008, "register oversized")
	expect(pr.send("POST", v1Path("/v1/device/register", flagApp, "alice", alice), `{"Platform":`), 60003, "register bad JSON")
	expect(pr.send("POST", v1Path("/v1/device/register", flagApp, "alice", alice), `{"Platform":"i os"}`), 70402, "register bad platform")
	pr.send("GET", "/v1/nope", "")
	// An oversized WebSocket frame closes the connection with 1009.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(p.base, "http")+v1Path("/v1/connect", flagApp, "alice", alice), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = ws.Write(ctx, websocket.MessageText, []byte(`{"Type":"ping","Pad":"`+strings.Repeat("x", 17000)+`"}`))
	for err == nil {
		_, _, err = ws.Read(ctx)
	}
	if code := websocket.CloseStatus(err); code != websocket.StatusMessageTooBig {
		t.Errorf("oversized frame: %v, want close 1009", err)
	}
	// A malformed HTTP request.
	if conn, err := net.Dial("tcp", strings.TrimPrefix(p.base, "http://")); err == nil {
		fmt.Fprint(conn, "GARBAGE\r\n\r\n")
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		raw, _ := io.ReadAll(conn)
		pr.answers.Write(raw)
		conn.Close()
	}
	resp, err := http.Get(p.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "timd_") {
		t.Fatalf("/metrics has no timd metrics:\n%.500s", metrics)
	}
	p.stop()

	for c := range wantCodes {
		if pr.codes[c] == 0 {
			t.Errorf("no answer had code %d", c)
		}
	}
	log := p.stderr.String()
	if !strings.Contains(log, "msg=listening") || !strings.Contains(log, "shutting down") {
		t.Fatalf("log incomplete:\n%s", log)
	}
	noKey(t, []string{flagKey, fileKey}, map[string]string{
		"the log (stderr)": log, "stdout": p.stdout.String(), "an answer": pr.answers.String(), "/metrics": string(metrics),
	})
	t.Logf("%d requests (%d failing), %d bytes of log, %d bytes of /metrics, %d bytes of answers: no secret key",
		pr.n, pr.n-pr.codes[0], len(log), len(metrics), pr.answers.Len())
}

var bannerKeyRE = regexp.MustCompile(`SDKAppID:\s+(\d+)\s+SecretKey:\s+([0-9a-f]{64})`)

// TestE2EDevAppKeyOnlyInBanner: the development app's key is printed once,
// in the first start's banner on stdout, and nowhere else: not in the log,
// not in answers to failing requests, not on a second start.
func TestE2EDevAppKeyOnlyInBanner(t *testing.T) {
	store := t.TempDir()
	p := startLogged(t, store, []string{"TIMD_LOG_LEVEL=debug"})
	out := p.stdout.String()
	m := bannerKeyRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no banner:\n%s", out)
	}
	var app uint64
	fmt.Sscan(m[1], &app)
	key := m[2]
	if n := strings.Count(out, key); n != 1 {
		t.Fatalf("the banner shows the key %d times", n)
	}
	now := time.Now().Unix()
	pr := newProber(t, p.base)
	good := sigAt(t, app, key, "administrator", 86400, now)
	pr.send("POST", v4Path("im_open_login_svc/account_import", app, "administrator", good), `{"UserID":"alice"}`)
	pr.send("POST", v4Path("timpush/get_attr_name", app, "administrator", sigAt(t, app, "guess", "administrator", 86400, now)), `{}`)
	pr.send("POST", v4Path("timpush/get_attr_name", app, "administrator", sigAt(t, app, key, "administrator", 10, now-100)), `{}`)
	pr.send("POST", v4Path("timpush/get_attr_name", app, "alice", sigAt(t, app, key, "alice", 86400, now)), `{}`)
	pr.send("POST", v4Path("timpush/set_attr", app, "administrator", good), `{"UserAttrs":`)
	pr.send("GET", v1Path("/v1/sync", app, "ghost", sigAt(t, app, key, "ghost", 86400, now)), "")
	pr.send("GET", v1Path("/v1/sync", app, "alice", sigAt(t, app, "guess", "alice", 86400, now)), "")
	p.stop()
	noKey(t, []string{key}, map[string]string{"the log (stderr)": p.stderr.String(), "an answer": pr.answers.String()})

	p = startLogged(t, store, []string{"TIMD_LOG_LEVEL=debug"})
	p.stop()
	noKey(t, []string{key}, map[string]string{"second start's stdout": p.stdout.String(), "second start's log": p.stderr.String()})
}

// TestE2EStartupErrorsHideKey: a configuration that is refused at start
// is reported without the secret key it holds.
func TestE2EStartupErrorsHideKey(t *testing.T) {
	key := randomKey(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, c := range []struct {
		name string
		env  []string
		args []string
	}{
		{"--app without admins", nil, []string{"--app", "1400000001:" + key}},
		{"--app with a bad id", nil, []string{"--app", "x:" + key + ":admin"}},
		{"--app with id 0", nil, []string{"--app", "0:" + key + ":admin"}},
		{"--app with 11 admins", nil, []string{"--app", "1400000001:" + key + ":a,b,c,d,e,f,g,h,i,j,k"}},
		{"TIMD_APP without admins", []string{"TIMD_APP=1400000001:" + key}, nil},
		{"file app without admins", nil, []string{"--config", write("a.json", `{"apps":[{"sdkappid":1,"secret_key":"`+key+`","admins":[]}]}`)}},
		{"file with a syntax error", nil, []string{"--config", write("b.json", `{"apps":[{"secret_key":"`+key+`",}]}`)}},
		{"file with an unknown field", nil, []string{"--config", write("c.json", `{"apps":[{"secret_key":"`+key+`","key2":"`+key+`"}]}`)}},
		{"file with a duplicate app", nil, []string{"--config", write("d.json", `{"apps":[{"sdkappid":1,"secret_key":"`+key+`","admins":["a"]},{"sdkappid":1,"secret_key":"`+key+`","admins":["a"]}]}`)}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, binPath, append([]string{"serve", "--listen", "127.0.0.1:0", "--store", filepath.Join(dir, "store")}, c.args...)...)
		cmd.Env = append(os.Environ(), c.env...)
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || timedOut {
			t.Fatalf("%s: not refused (%v):\n%s", c.name, err, out)
		}
		noKey(t, []string{key}, map[string]string{c.name: string(out)})
	}
}

// TestE2ESlowAndIdleClients starts the binary with short time-outs from
// its config file and checks that a client that stalls or trickles its
// request header is disconnected after read_header_timeout, one that
// stalls its body gets 60008 after read_timeout, an idle keep-alive
// connection is closed after idle_timeout, and a header over 64 KiB is
// refused. (The WebSocket counterparts — a client that never answers
// pings, one that reads too slowly — are TestHeartbeatTimeoutClosesUnresponsiveConnection
// and TestSlowClientIsCutOffAndDeliverNeverBlocks in internal/deliver.)
func TestE2ESlowAndIdleClients(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "timd.json")
	if err := os.WriteFile(cfg, []byte(`{"read_header_timeout":"500ms","read_timeout":"1s","write_timeout":"5s","idle_timeout":"1s"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startApp(t, filepath.Join(dir, "store"), "--config", cfg)
	addr := strings.TrimPrefix(p.base, "http://")
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedWithin reads until the server closes c and returns how long
	// that took; it fails if c is still open after limit.
	closedWithin := func(c net.Conn, r io.Reader, limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(limit))
		_, err := io.Copy(io.Discard, r)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %v", limit)
		}
		return time.Since(start)
	}

	t.Run("stalled header", func(t *testing.T) {
		c := dial()
		fmt.Fprint(c, "POST /v4/timpush/get_attr_name HTTP/1.1\r\nHost: timd\r\nContent-Le")
		if d := closedWithin(c, c, 5*time.Second); d < 250*time.Millisecond {
			t.Fatalf("closed after %v, before read_header_timeout", d)
		}
	})
	t.Run("trickled header", func(t *testing.T) {
		c := dial()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for _, b := range []byte("GET /healthz HTTP/1.1\r\nHost: timd\r\nX-Slow: " + strings.Repeat("z", 200)) {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
			}
		}()
		closedWithin(c, c, 5*time.Second)
	})
	t.Run("stalled body", func(t *testing.T) {
		c := dial()
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: timd\r\nContent-Length: 100\r\n\r\n{", v4Path("timpush/get_attr_name", e2eApp, e2eAdmin, p.sig))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer to a stalled body: %v", err)
		}
		raw, _ := io.ReadAll(resp.Body)
		var r reply
		if json.Unmarshal(raw, &r) != nil || r.code() != 60008 {
			t.Fatalf("stalled body answered %s", raw)
		}
		closedWithin(c, br, 5*time.Second)
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c := dial()
		fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: timd\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 || resp.Close {
			t.Fatalf("healthz: %v %v", err, resp)
		}
		io.Copy(io.Discard, resp.Body)
		if d := closedWithin(c, br, 5*time.Second); d < 500*time.Millisecond {
			t.Fatalf("idle connection closed after %v, before idle_timeout", d)
		}
	})
	t.Run("header over 64 KiB", func(t *testing.T) {
		req, _ := http.NewRequest("GET", p.base+"/healthz", nil)
		req.Header.Set("X-Pad", strings.Repeat("p", 100<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("HTTP %d", resp.StatusCode)
		}
	})
	// The server is still serving; a prompt client is unaffected.
	p.want("timpush/get_attr_name", `{}`, 0)
}
