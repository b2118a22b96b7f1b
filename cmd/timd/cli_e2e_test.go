package main_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
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
	"github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"
)

// runBin runs the binary to completion and returns its exit code and
// output.
func runBin(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("timd %v did not exit", args)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), out.String(), errOut.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errOut.String()
}

// TestE2EHelpAndVersion: every command's --help prints its flags to
// stdout and exits 0 on the real binary, and `timd version` names the
// module version and the commit ("unknown" when built with
// -buildvcs=false, as .ci/run does).
func TestE2EHelpAndVersion(t *testing.T) {
	for cmd, flags := range map[string][]string{
		"serve":     {"--listen", "--store", "--app", "--limits", "--log-level", "--config", "--body-limit", "--read-header-timeout", "--read-timeout", "--write-timeout", "--idle-timeout", "--tls-cert", "--tls-key"},
		"usersig":   {"--sdkappid", "--key", "--identifier", "--expire"},
		"bench":     {"--addr", "--ops", "--live", "--push-every"},
		"crashtest": {"--accounts", "--kills", "--seed"},
		"version":   nil,
	} {
		code, out, errOut := runBin(t, nil, cmd, "--help")
		if code != 0 || errOut != "" || !strings.HasPrefix(out, "Usage: timd "+cmd) {
			t.Fatalf("timd %s --help: exit %d, stdout %q, stderr %q", cmd, code, out, errOut)
		}
		for _, f := range flags {
			if !strings.Contains(out, "  "+f+" ") && !strings.Contains(out, "  "+f+"\n") {
				t.Errorf("timd %s --help lacks %s:\n%s", cmd, f, out)
			}
		}
	}
	code, out, errOut := runBin(t, nil, "version")
	m := regexp.MustCompile(`^timd (\S+) commit (\S+).* go1\.\d+`).FindStringSubmatch(out)
	if code != 0 || errOut != "" || m == nil {
		t.Fatalf("timd version: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	t.Logf("version %s, commit %s", m[1], m[2])
}

// TestE2EBannerShowsRealAddress: with --listen :0 the development app's
// banner shows the port the server got, and its curl line works as
// printed.
func TestE2EBannerShowsRealAddress(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:0", ":0"} {
		p := startLogged(t, t.TempDir(), nil, "--listen", listen)
		out := p.stdout.String()
		port := p.base[strings.LastIndexByte(p.base, ':'):]
		want := "http://127.0.0.1" + port
		if !strings.Contains(out, "Listening: "+want+"\n") || strings.Contains(out, ":0/") {
			t.Fatalf("--listen %s: banner does not show %s:\n%s", listen, want, out)
		}
		line := out[strings.Index(out, "curl "):]
		line = line[:strings.IndexByte(line, '\n')]
		if !strings.Contains(line, "'"+want+"/v4/") {
			t.Fatalf("curl line %q does not call %s", line, want)
		}
		raw, err := exec.Command("bash", "-c", line).Output()
		if err != nil || !strings.Contains(string(raw), `"ActionStatus":"OK"`) {
			t.Fatalf("printed curl line: %v %s", err, raw)
		}
		p.stop()
	}
}

// TestE2EStartupChecksBeforeStore: a --listen address that is taken or
// malformed, a refused configuration file and unreadable TLS files stop
// timd before it opens (and so creates) the store.
func TestE2EStartupChecksBeforeStore(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "timd.json")
	if err := os.WriteFile(cfgFile, []byte(`{"log-level":"info","read-timeout":"30s","listne":"0.0.0.0:80"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"taken port", []string{"--listen", taken.Addr().String()}, []string{"listen", taken.Addr().String()}},
		{"malformed listen", []string{"--listen", "8080"}, []string{"-listen", "host:port"}},
		{"unknown file key", []string{"--listen", "127.0.0.1:0", "--config", cfgFile}, []string{"config " + cfgFile, `key "listne"`, "unknown key"}},
		{"missing TLS files", []string{"--listen", "127.0.0.1:0", "--tls-cert", filepath.Join(dir, "none.pem"), "--tls-key", filepath.Join(dir, "none.key")},
			[]string{"--tls-cert", "none.pem", "no such file"}},
		{"TLS cert without key", []string{"--listen", "127.0.0.1:0", "--tls-cert", cfgFile}, []string{"--tls-cert and --tls-key go together"}},
	} {
		store := filepath.Join(dir, "store-"+strings.ReplaceAll(c.name, " ", "-"))
		code, _, errOut := runBin(t, nil, append([]string{"serve", "--store", store}, c.args...)...)
		if code == 0 {
			t.Fatalf("%s: exit 0", c.name)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", c.name, w, errOut)
			}
		}
		if _, err := os.Stat(store); !os.IsNotExist(err) {
			t.Errorf("%s: the store was opened (%v)", c.name, err)
		}
	}
}

// TestE2EConfigFileUsesFlagNames starts the binary from a file whose keys
// are the flag names (and one in the older `_` spelling) and checks that
// each took effect.
func TestE2EConfigFileUsesFlagNames(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "timd.json")
	body := fmt.Sprintf(`{"log-level":"debug","body-limit":2048,"read_timeout":"20s","limits":"on",
		"apps":[{"sdkappid":%d,"secret-key":%q,"admins":[%q],"rates":{"im_open_login_svc/account_check":1}}]}`, e2eApp, e2eKey, e2eAdmin)
	if err := os.WriteFile(cfgFile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startLogged(t, filepath.Join(dir, "store"), nil, "--config", cfgFile)
	p.sig = mustSig(t, e2eAdmin)
	p.want("im_open_login_svc/account_check", `{"CheckItem":[{"UserID":"a"}]}`, 0)
	p.want("im_open_login_svc/account_check", `{"CheckItem":[{"UserID":"a"}]}`, 60007)
	p.want("im_open_login_svc/account_import", `{"UserID":"`+strings.Repeat("x", 10)+`","Nick":"`+strings.Repeat("n", 2100)+`"}`, 60008)
	log := p.stderr.String()
	for _, w := range []string{"log-level=debug", "body-limit=2048", "read-timeout=20s"} {
		if !strings.Contains(log, w) {
			t.Errorf("log lacks %q", w)
		}
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// to dir and returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "timd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestE2ETLS serves HTTPS with a self-signed certificate: /v4 and /healthz
// answer over TLS, a WebSocket client on wss:///v1/connect receives a
// push, plain HTTP is not served, and a client that does not trust the
// certificate is refused.
func TestE2ETLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	cmd := exec.Command(binPath, "serve", "--listen", "127.0.0.1:0", "--store", filepath.Join(dir, "store"), "--limits", "off",
		"--app", fmt.Sprintf("%d:%s:%s", e2eApp, e2eKey, e2eAdmin), "--tls-cert", certFile, "--tls-key", keyFile)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, stdout: &syncBuffer{}}
	t.Cleanup(p.kill)
	var addr string
	for deadline := time.Now().Add(60 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if m := regexp.MustCompile(`msg=listening addr=(\S+) tls=true`).FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("timd did not start listening:\n%s", stderr)
		}
	}
	base := "https://" + addr
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp, err := client.Get(base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("https healthz: %v %v", err, resp)
	}
	sig, err := tencentyun.GenUserSig(e2eApp, e2eKey, e2eAdmin, 86400)
	if err != nil {
		t.Fatal(err)
	}
	call := func(cmd, body string) map[string]any {
		t.Helper()
		q := url.Values{"sdkappid": {fmt.Sprint(e2eApp)}, "identifier": {e2eAdmin}, "usersig": {sig}, "random": {"1"}, "contenttype": {"json"}}
		resp, err := client.Post(base+"/v4/"+cmd+"?"+q.Encode(), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s over https: %v", cmd, err)
		}
		defer resp.Body.Close()
		var r map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r["ErrorCode"] != float64(0) {
			t.Fatalf("%s over https: %v %v", cmd, err, r)
		}
		return r
	}
	call("im_open_login_svc/account_import", `{"UserID":"alice"}`)

	// A WebSocket client over wss receives a push to everyone.
	asig, _ := tencentyun.GenUserSig(e2eApp, e2eKey, "alice", 86400)
	q := url.Values{"sdkappid": {fmt.Sprint(e2eApp)}, "identifier": {"alice"}, "usersig": {asig}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "wss://"+addr+"/v1/connect?"+q.Encode(), &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatalf("wss connect: %v", err)
	}
	defer ws.CloseNow()
	waitFor(t, "presence", func() bool {
		return strings.Contains(js(call("openim/query_online_status", `{"To_Account":["alice"]}`)["QueryResult"]), `"Online"`)
	})
	task := call("timpush/push", `{"MsgRandom":7,"OfflinePushInfo":{"Title":"over tls"}}`)["TaskId"]
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("wss read: %v", err)
		}
		var f map[string]any
		if json.Unmarshal(b, &f) == nil && f["Type"] == "push" && f["TaskId"] == task {
			break
		}
	}

	// Plain HTTP is not served, and a client must trust the certificate.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("plain HTTP served: %s", raw)
		}
	}
	if _, err := http.Get(base + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an untrusting client connected: %v", err)
	}
	p.stop()
}

func mustSig(t *testing.T, id string) string {
	t.Helper()
	sig, err := tencentyun.GenUserSig(e2eApp, e2eKey, id, 86400)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestGoModNamesOldestGo: go.mod's go line is the newest go line among
// the dependencies, the oldest Go that can build timd without fetching
// a toolchain (timd itself needs nothing newer; the build in TestMain
// proves the line is not too old).
func TestGoModNamesOldestGo(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{if .Main}}main {{end}}{{.GoVersion}}", "all").Output()
	if err != nil {
		t.Fatalf("go list -m all: %v", err)
	}
	var main, newest string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if v, ok := strings.CutPrefix(line, "main "); ok {
			main = v
		} else if line != "" && goVersionLess(newest, line) {
			newest = line
		}
	}
	if main == "" || newest == "" {
		t.Fatalf("go list printed %q", out)
	}
	if main != newest {
		t.Fatalf("go.mod says go %s; the newest dependency needs go %s: use that", main, newest)
	}
}

// goVersionLess compares go lines such as 1.25, 1.25.0 and 1.26.0
// (1.25 is read as 1.25.0).
func goVersionLess(a, b string) bool {
	parse := func(v string) [3]int {
		var n [3]int
		for i, p := range strings.SplitN(v, ".", 3) {
			fmt.Sscan(p, &n[i])
		}
		return n
	}
	pa, pb := parse(a), parse(b)
	for i := range pa {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return false
}
