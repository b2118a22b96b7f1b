package cluster

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"timd/internal/testenv"
	"time"
)

// natsURL returns TIMD_TEST_NATS or skips the test.
func natsURL(t *testing.T) string {
	t.Helper()
	return testenv.NATSURL(t)
}

// testPrefix is a subject prefix no other test run shares.
func testPrefix(*testing.T) string { return testenv.Prefix("timdtest-") }

func open(t *testing.T, url, prefix string) *Bus {
	t.Helper()
	b, err := Open(Options{URL: url, Prefix: prefix, Name: t.Name()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// recorder collects messages and gaps.
type recorder struct {
	mu   sync.Mutex
	msgs []Msg
	gaps []string
}

func (r *recorder) msg(m Msg) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

func (r *recorder) gap(s string) {
	r.mu.Lock()
	r.gaps = append(r.gaps, s)
	r.mu.Unlock()
}

func (r *recorder) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs), len(r.gaps)
}

// waitFor polls cond for up to 20 s (a loaded machine is slow).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNotifyCarriesNodeAndSequence(t *testing.T) {
	url, prefix := natsURL(t), testPrefix(t)
	a, b := open(t, url, prefix), open(t, url, prefix)
	var r recorder
	if _, err := b.Subscribe(b.Subject(0, "task"), r.msg, r.gap); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := a.Notify(a.Subject(1400000001, "task"), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three messages", func() bool { n, _ := r.counts(); return n == 3 })
	for i, m := range r.msgs {
		if m.Node != a.Node() || m.Seq != uint64(i+1) || string(m.Data) != fmt.Sprint(i) || m.Self {
			t.Errorf("message %d: %+v", i, m)
		}
		if AppOf(m.Subject) != 1400000001 {
			t.Errorf("AppOf(%q) = %d", m.Subject, AppOf(m.Subject))
		}
	}
	if _, g := r.counts(); g != 0 {
		t.Errorf("gaps without a loss: %v", r.gaps)
	}
}

func TestOwnMessagesAreMarkedSelf(t *testing.T) {
	url, prefix := natsURL(t), testPrefix(t)
	a := open(t, url, prefix)
	var r recorder
	if _, err := a.Subscribe(a.Subject(7, "kick"), r.msg, r.gap); err != nil {
		t.Fatal(err)
	}
	_ = a.Flush(5 * time.Second)
	_ = a.Notify(a.Subject(7, "kick"), []byte("x"))
	waitFor(t, "own message", func() bool { n, _ := r.counts(); return n == 1 })
	if !r.msgs[0].Self {
		t.Errorf("own message not marked Self: %+v", r.msgs[0])
	}
}

// TestSkippedSequenceIsAGap drops a message the way NATS may (the
// publisher's sequence moves on, the message never arrives) and checks
// that the receiver is told which subject to refetch.
func TestSkippedSequenceIsAGap(t *testing.T) {
	url, prefix := natsURL(t), testPrefix(t)
	a, b := open(t, url, prefix), open(t, url, prefix)
	var r recorder
	if _, err := b.Subscribe(b.Subject(0, "task"), r.msg, r.gap); err != nil {
		t.Fatal(err)
	}
	_ = b.Flush(5 * time.Second)
	subj := a.Subject(42, "task")
	_ = a.Notify(subj, []byte("1"))
	a.mu.Lock()
	a.seqs[subj]++ // message 2 is "lost"
	a.mu.Unlock()
	_ = a.Notify(subj, []byte("3"))
	_ = a.Notify(a.Subject(43, "task"), []byte("other app, own sequence"))
	waitFor(t, "three messages", func() bool { n, _ := r.counts(); return n == 3 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.gaps) != 1 || r.gaps[0] != subj {
		t.Fatalf("gaps = %v, want [%s]", r.gaps, subj)
	}
}

func TestGatherCollectsEveryPeer(t *testing.T) {
	url, prefix := natsURL(t), testPrefix(t)
	nodes := []*Bus{open(t, url, prefix), open(t, url, prefix), open(t, url, prefix)}
	for _, n := range nodes {
		if _, err := n.Subscribe(n.Subject(0, "online"), func(m Msg) {
			if !m.Self {
				_ = m.Reply([]byte(n.Node()))
			}
		}, nil); err != nil {
			t.Fatal(err)
		}
		_ = n.Flush(5 * time.Second)
	}
	waitFor(t, "two peers", func() bool { return nodes[0].Peers() == 2 })
	got, err := nodes[0].Gather(nodes[0].Subject(5, "online"), []byte("q"), nodes[0].Peers(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, g := range got {
		seen[string(g)] = true
	}
	if len(got) != 2 || !seen[nodes[1].Node()] || !seen[nodes[2].Node()] {
		t.Fatalf("answers %q, want the two other nodes", got)
	}
}

func TestNilBusIsASingleNode(t *testing.T) {
	b, err := Open(Options{}, nil)
	if err != nil || b != nil {
		t.Fatalf("Open with no URL = %v, %v; want nil, nil", b, err)
	}
	if !b.Healthy() || b.Clustered() || b.Peers() != 0 || b.Node() != "" {
		t.Error("nil bus is not a healthy single node")
	}
	if err := b.Notify(b.Subject(1, "task"), nil); err != nil {
		t.Error(err)
	}
	if s, err := b.Subscribe("x", func(Msg) {}, nil); s != nil || err != nil {
		t.Error("nil bus subscribed")
	}
	if got, _ := b.Gather("x", nil, 3, time.Second); got != nil {
		t.Error("nil bus gathered")
	}
	b.Close()
}

func TestCheckPrefix(t *testing.T) {
	for _, c := range []struct {
		p  string
		ok bool
	}{
		{"timd", true}, {"prod.eu-1", true}, {"a_b", true},
		{"", false}, {"a..b", false}, {"a.*", false}, {"a>", false}, {"a b", false}, {".a", false},
		{strings.Repeat("x", 65), false},
	} {
		if err := CheckPrefix(c.p); (err == nil) != c.ok {
			t.Errorf("CheckPrefix(%q) = %v, want ok=%v", c.p, err, c.ok)
		}
	}
	if _, err := Open(Options{URL: "nats://127.0.0.1:1", Prefix: "a.*"}, nil); err == nil {
		t.Error("Open took a wildcard prefix")
	}
}

func TestRedact(t *testing.T) {
	if got := redact("nats://user:pw@host:4222"); got != "nats://***@host:4222" {
		t.Errorf("redact = %q", got)
	}
	if got := redact("nats://host:4222"); got != "nats://host:4222" {
		t.Errorf("redact = %q", got)
	}
}

// TestOutageIsUnhealthyThenAGap runs a private nats-server, stops it and
// starts it again on the same port: while it is down the bus reports
// unhealthy (kicks must then be read from the store), and when it is back
// every subscription is told it may have missed messages.
func TestOutageIsUnhealthyThenAGap(t *testing.T) {
	natsURL(t)
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/nats-server"); err2 != nil {
			t.Skip("no nats-server binary to run a private server")
		}
		bin = "/usr/sbin/nats-server"
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-l", filepath.Join(dir, "log"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	srv := start()
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	b := open(t, url, "timd")
	var r recorder
	if _, err := b.Subscribe(b.Subject(0, "kick"), r.msg, r.gap); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "connected", b.Healthy)
	_, gaps0 := r.counts()
	_ = srv.Process.Kill()
	_ = srv.Wait()
	waitFor(t, "unhealthy after the server died", func() bool { return !b.Healthy() })
	srv = start()
	waitFor(t, "healthy again", b.Healthy)
	waitFor(t, "a gap after the reconnect", func() bool { _, g := r.counts(); return g > gaps0 })
}
