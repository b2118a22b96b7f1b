// Package cluster connects timd nodes that share one store through NATS.
// The store stays the source of truth; NATS carries only wake-ups and
// live events (a task's chunk is ready, a revoke, a kick) between nodes,
// and presence questions. Nothing is lost for good when NATS drops a
// message: every message carries its publisher's sequence number per
// subject, a receiver that sees a hole in it (or that lost its NATS
// connection) is told so through its gap callback, and then reads what
// it may have missed from the store.
//
// Subjects are per app: PREFIX.app.SDKAPPID.KIND (Subject), so that a
// receiver can subscribe to one app or, with "*", to all. PREFIX keeps
// several clusters (or test runs) on one NATS server apart.
//
// An empty NATS URL means a single node: Open returns nil, and every
// method of a nil *Bus is a no-op that reports a healthy, empty cluster,
// so callers need no second code path.
package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Header names carried by every message the Bus publishes.
const (
	hdrNode = "Timd-Node" // publisher's boot id
	hdrSeq  = "Timd-Seq"  // publisher's sequence number on this subject, from 1
)

// DefaultPrefix is the subject prefix when none is configured.
const DefaultPrefix = "timd"

// Options configure Open.
type Options struct {
	// URL is the NATS server, nats://host:port (a comma-separated list for
	// a NATS cluster). Empty: single node, Open returns nil.
	URL string
	// Prefix is the first subject token [DefaultPrefix]. Nodes of one
	// timd cluster must share it; clusters on one NATS server must not.
	Prefix string
	// Name names the connection in the NATS server's monitoring.
	Name string
}

// Bus is one node's NATS connection. A nil *Bus is a single node: it
// publishes nowhere and receives nothing.
type Bus struct {
	nc     *nats.Conn
	node   string
	prefix string
	log    *slog.Logger

	mu   sync.Mutex
	seqs map[string]uint64 // next sequence per subject published
	subs map[*Subscription]struct{}

	down    atomic.Bool // disconnected from NATS (messages may be lost)
	closing atomic.Bool

	peers         map[string]time.Time // other nodes, by when last heard
	stop, stopped chan struct{}        // the heartbeat loop's
}

// Msg is one message received: its subject, the publisher's node id and
// sequence on that subject, and its payload. Self is set when this node
// published it (a node receives its own messages; most handlers skip them).
type Msg struct {
	Subject string
	Node    string
	Seq     uint64
	Data    []byte
	Self    bool

	reply string
	nc    *nats.Conn
}

// Open connects to NATS, retrying in the background if the server is not
// up yet, and returns nil for an empty URL. The node id is a fresh random
// boot id, so a restarted node is a new publisher.
func Open(opt Options, log *slog.Logger) (*Bus, error) {
	if opt.URL == "" {
		return nil, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.Prefix == "" {
		opt.Prefix = DefaultPrefix
	}
	if err := CheckPrefix(opt.Prefix); err != nil {
		return nil, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	b := &Bus{node: hex.EncodeToString(id[:]), prefix: opt.Prefix, log: log,
		seqs: map[string]uint64{}, subs: map[*Subscription]struct{}{}, peers: map[string]time.Time{}}
	b.down.Store(true)
	name := opt.Name
	if name == "" {
		name = "timd"
	}
	nc, err := nats.Connect(opt.URL,
		nats.Name(name+" "+b.node),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.PingInterval(2*time.Second),
		nats.MaxPingsOutstanding(2),
		// The first connection has no past to have lost (Healthy was
		// false until then); a reconnection may have.
		nats.ConnectHandler(func(*nats.Conn) { b.up(false) }),
		nats.ReconnectHandler(func(*nats.Conn) { b.up(true) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.down.Store(true)
			if b.closing.Load() {
				return
			}
			log.Warn("NATS disconnected: live events may be lost, reading from the store instead", "err", err)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			log.Warn("NATS error", "err", err)
			if errors.Is(err, nats.ErrSlowConsumer) {
				b.gapAll() // dropped messages: the sequence shows which subject, but be safe
			}
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("nats %s: %w", redact(opt.URL), err)
	}
	b.nc = nc
	if nc.IsConnected() {
		b.down.Store(false)
	}
	if err := b.startHeartbeat(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats %s: %w", redact(opt.URL), err)
	}
	return b, nil
}

// up marks the connection up and, after a reconnection, tells every
// subscriber it may have missed messages while it was down.
func (b *Bus) up(again bool) {
	if b.down.Swap(false) {
		b.log.Info("NATS connected")
	}
	if again {
		b.gapAll()
	}
}

func (b *Bus) gapAll() {
	b.mu.Lock()
	subs := make([]*Subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.reset()
	}
}

// redact drops a password from a NATS URL for logs and errors.
func redact(u string) string {
	if at := strings.LastIndex(u, "@"); at >= 0 {
		if i := strings.Index(u, "://"); i >= 0 && i < at {
			return u[:i+3] + "***" + u[at:]
		}
	}
	return u
}

// CheckPrefix reports whether p can be a subject prefix: one or more
// tokens of letters, digits, '_' and '-', separated by dots.
func CheckPrefix(p string) error {
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "" || len(tok) > 64 {
			return fmt.Errorf("nats prefix %q: want dot-separated tokens of 1 to 64 letters, digits, _ or -", p)
		}
		for _, r := range tok {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
				return fmt.Errorf("nats prefix %q: want dot-separated tokens of 1 to 64 letters, digits, _ or -", p)
			}
		}
	}
	return nil
}

// Node returns this node's boot id ("" for a single node).
func (b *Bus) Node() string {
	if b == nil {
		return ""
	}
	return b.node
}

// Clustered reports whether b connects to other nodes at all.
func (b *Bus) Clustered() bool { return b != nil }

// Healthy reports whether live events are flowing: true for a single
// node, false while the NATS connection is down. Callers that guard a
// security boundary with events (kicks) must not trust their caches while
// it is false.
func (b *Bus) Healthy() bool { return b == nil || !b.down.Load() }

// Subject returns the subject of kind for app: PREFIX.app.SDKAPPID.KIND.
// app 0 gives PREFIX.app.*.KIND, every app's (to subscribe to).
func (b *Bus) Subject(app uint64, kind string) string {
	a := "*"
	if app != 0 {
		a = strconv.FormatUint(app, 10)
	}
	p := DefaultPrefix
	if b != nil {
		p = b.prefix
	}
	return p + ".app." + a + "." + kind
}

// AppOf returns the SDKAppID in a subject made by Subject, or 0.
func AppOf(subject string) uint64 {
	parts := strings.Split(subject, ".")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "app" {
			n, err := strconv.ParseUint(parts[i+1], 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return 0
}

// Notify publishes payload on subject with this node's next sequence
// number for it. It does not wait for the server: NATS is at most once,
// and receivers detect a loss by the sequence. A nil Bus drops it.
func (b *Bus) Notify(subject string, payload []byte) error {
	if b == nil {
		return nil
	}
	m := nats.NewMsg(subject)
	m.Data = payload
	b.mu.Lock()
	b.seqs[subject]++
	seq := b.seqs[subject]
	m.Header.Set(hdrNode, b.node)
	m.Header.Set(hdrSeq, strconv.FormatUint(seq, 10))
	err := b.nc.PublishMsg(m) // under mu: messages leave in sequence order
	b.mu.Unlock()
	return err
}

// Flush waits until the server has every message published so far, or
// timeout passes.
func (b *Bus) Flush(timeout time.Duration) error {
	if b == nil {
		return nil
	}
	return b.nc.FlushTimeout(timeout)
}

// Close drains the subscriptions and closes the connection.
func (b *Bus) Close() {
	if b == nil {
		return
	}
	b.closing.Store(true)
	close(b.stop)
	<-b.stopped
	_ = b.nc.Drain()
	deadline := time.Now().Add(2 * time.Second)
	for !b.nc.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b.nc.Close()
}

// Heartbeats: every node announces itself on PREFIX.nodes every
// heartbeatEvery; a node not heard for peerTimeout is gone. Peers counts
// the others, so that a scatter-gather knows how many answers to wait for.
const (
	heartbeatEvery = time.Second
	peerTimeout    = 3 * time.Second
)

func (b *Bus) startHeartbeat() error {
	subj := b.prefix + ".nodes"
	_, err := b.nc.Subscribe(subj, func(m *nats.Msg) {
		node := string(m.Data)
		if node == b.node || len(node) > 64 {
			return
		}
		b.mu.Lock()
		if len(b.peers) < 10_000 {
			b.peers[node] = time.Now()
		}
		b.mu.Unlock()
	})
	if err != nil {
		return err
	}
	b.stop = make(chan struct{})
	b.stopped = make(chan struct{})
	go func() {
		defer close(b.stopped)
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			_ = b.nc.Publish(subj, []byte(b.node))
			select {
			case <-t.C:
			case <-b.stop:
				return
			}
		}
	}()
	return nil
}

// Peers returns how many other nodes were heard from in the last few
// seconds (0 for a single node).
func (b *Bus) Peers() int {
	if b == nil {
		return 0
	}
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for node, at := range b.peers {
		if now.Sub(at) > peerTimeout {
			delete(b.peers, node)
			continue
		}
		n++
	}
	return n
}
