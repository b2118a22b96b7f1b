package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"
)

// binPath is the timd binary built once for the end-to-end tests.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "timd-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "timd")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build timd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	e2eApp   = 1400000042
	e2eKey   = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	e2eAdmin = "administrator"
)

// proc is a running timd.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string
	stdout *syncBuffer
	sig    string
	store  string
}

var listenRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// start runs the binary on a free port with the given store directory and
// extra flags, and waits for /healthz.
func start(t *testing.T, store string, extra ...string) *proc {
	t.Helper()
	return startEnv(t, store, nil, extra...)
}

// startEnv is start with extra environment variables (test hooks such as
// TIMD_TEST_FANOUT_HOLD).
func startEnv(t *testing.T, store string, env []string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--store", store}, extra...)
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(append(os.Environ(), "TIMD_LOG_LEVEL=info"), env...)
	out := &syncBuffer{}
	cmd.Stdout = out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, stdout: out, store: store}
	t.Cleanup(func() { p.kill() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
			if testing.Verbose() {
				t.Log("timd:", sc.Text())
			}
		}
	}()
	select {
	case a := <-addr:
		p.base = "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatal("timd did not start listening")
	}
	resp, err := http.Get(p.base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	resp.Body.Close()
	sig, err := tencentyun.GenUserSig(e2eApp, e2eKey, e2eAdmin, 86400)
	if err != nil {
		t.Fatal(err)
	}
	p.sig = sig
	return p
}

func startApp(t *testing.T, store string, extra ...string) *proc {
	return start(t, store, append([]string{"--app", fmt.Sprintf("%d:%s:%s", e2eApp, e2eKey, e2eAdmin)}, extra...)...)
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			p.t.Fatalf("timd exited with %v after SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		p.t.Fatal("timd did not stop on SIGTERM")
	}
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine of exec and
// the reading test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type reply map[string]any

func (r reply) code() int { n, _ := r["ErrorCode"].(float64); return int(n) }

// call posts body to /v4/cmd as the admin.
func (p *proc) call(cmd, body string) reply {
	p.t.Helper()
	r, err := p.try(cmd, body)
	if err != nil {
		p.t.Fatal(err)
	}
	return r
}

func (p *proc) try(cmd, body string) (reply, error) {
	q := url.Values{"sdkappid": {fmt.Sprint(e2eApp)}, "identifier": {e2eAdmin}, "usersig": {p.sig},
		"random": {"99"}, "contenttype": {"json"}}
	resp, err := http.Post(p.base+"/v4/"+cmd+"?"+q.Encode(), "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: HTTP %d: %s", cmd, resp.StatusCode, raw)
	}
	var r reply
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%s: not JSON: %s", cmd, raw)
	}
	return r, nil
}

func (p *proc) want(cmd, body string, code int) reply {
	p.t.Helper()
	r := p.call(cmd, body)
	if r.code() != code {
		p.t.Fatalf("%s %s: ErrorCode %d (%v), want %d", cmd, body, r.code(), r["ErrorInfo"], code)
	}
	return r
}

func js(v any) string { b, _ := json.Marshal(v); return string(b) }
