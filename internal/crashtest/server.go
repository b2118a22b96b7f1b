package crashtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// launcher starts `timd serve` on one store with fixed flags.
type launcher struct {
	bin  string
	args []string // after "serve"
}

func newLauncher(bin, store string, app appCreds, extra ...string) *launcher {
	args := []string{"--listen", "127.0.0.1:0", "--store", store, "--limits", "off",
		"--app", fmt.Sprintf("%d:%s:%s", app.id, app.key, app.admin), "--log-level", "info"}
	return &launcher{bin: bin, args: append(args, extra...)}
}

// server is one running `timd serve` child.
type server struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:port
	log    *logTail
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited is closed
}

// start runs the child and waits until /healthz answers 200; it returns
// the time from the process start to that answer.
func (l *launcher) start(ctx context.Context) (*server, time.Duration, error) {
	cmd := exec.Command(l.bin, append([]string{"serve"}, l.args...)...)
	cmd.Env = childEnv()
	lt := &logTail{addr: make(chan string, 1)}
	cmd.Stderr = lt
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("start %s: %w", l.bin, err)
	}
	s := &server{cmd: cmd, log: lt, exited: make(chan struct{})}
	go func() { s.err = cmd.Wait(); close(s.exited) }()
	select {
	case addr := <-lt.addr:
		s.base = "http://" + addr
	case <-s.exited:
		return nil, 0, fmt.Errorf("timd serve exited before listening (%v):\n%s", s.err, lt)
	case <-time.After(2 * time.Minute):
		s.kill()
		return nil, 0, fmt.Errorf("timd serve did not listen within 2 minutes:\n%s", lt)
	case <-ctx.Done():
		s.kill()
		return nil, 0, ctx.Err()
	}
	for {
		resp, err := http.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, time.Since(t0), nil
			}
		}
		if time.Since(t0) > 2*time.Minute || ctx.Err() != nil {
			s.kill()
			return nil, 0, fmt.Errorf("timd serve: /healthz not ready: %v\n%s", err, lt)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// childEnv is this process's environment without TIMD_* variables, so
// that only the flags configure the child.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TIMD_") {
			env = append(env, kv)
		}
	}
	return env
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(time.Minute):
		s.kill()
		return fmt.Errorf("timd serve did not stop within a minute of SIGTERM:\n%s", s.log)
	}
	if s.err != nil {
		return fmt.Errorf("timd serve exited with %v after SIGTERM:\n%s", s.err, s.log)
	}
	return nil
}

// alive reports whether the process is still running.
func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

var listenRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// logTail is the child's stderr: it reports the listen address and keeps
// the last lines for error messages.
type logTail struct {
	addr    chan string
	mu      sync.Mutex
	partial []byte
	lines   []string
}

const tailLines = 30

func (t *logTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(t.partial[:i])
		t.partial = t.partial[i+1:]
		if m := listenRE.FindStringSubmatch(line); m != nil {
			select {
			case t.addr <- m[1]:
			default:
			}
		}
		t.lines = append(t.lines, line)
		if len(t.lines) > tailLines {
			t.lines = t.lines[len(t.lines)-tailLines:]
		}
	}
}

// String returns the last lines, indented.
func (t *logTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return "  (no log output)"
	}
	return "  " + strings.Join(t.lines, "\n  ")
}

// errServerGone is returned when the server exits on its own.
var errServerGone = errors.New("timd serve exited unexpectedly")
