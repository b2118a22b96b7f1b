package cluster

import (
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Handler receives the messages of a subscription, one at a time, in the
// order each publisher sent them.
type Handler func(Msg)

// Subscription is one Subscribe. Close ends it.
type Subscription struct {
	b   *Bus
	sub *nats.Subscription
	gap func(subject string)

	mu   sync.Mutex
	last map[pubKey]uint64 // last sequence seen per publisher and subject
}

type pubKey struct{ node, subject string }

// maxPublishers bounds the sequences a subscription tracks. Past it they
// are forgotten and a gap is reported for each subject (nothing is known
// to be missed, but nothing is known not to be).
const maxPublishers = 100_000

// Subscribe calls h with every message on subject (which may hold NATS
// wildcards, see Subject) and gap with a subject whose messages may have
// been missed: a publisher's sequence skipped a number, the subscription
// fell behind (slow consumer), or the NATS connection was down (then
// subject is the subscribed pattern). gap must make up for the loss from
// the store. The first message from a publisher sets its baseline: what
// it sent before this node subscribed is for the node's start-up reads.
//
// On a nil Bus, Subscribe returns a nil Subscription and receives nothing.
func (b *Bus) Subscribe(subject string, h Handler, gap func(subject string)) (*Subscription, error) {
	if b == nil {
		return nil, nil
	}
	if gap == nil {
		gap = func(string) {}
	}
	s := &Subscription{b: b, gap: gap, last: map[pubKey]uint64{}}
	sub, err := b.nc.Subscribe(subject, func(m *nats.Msg) { s.receive(m, h) })
	if err != nil {
		return nil, err
	}
	// Generous pending limits: a burst of fan-out chunks must not drop.
	_ = sub.SetPendingLimits(1<<16, 256<<20)
	s.sub = sub
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s, nil
}

func (s *Subscription) receive(m *nats.Msg, h Handler) {
	msg := Msg{Subject: m.Subject, Data: m.Data, reply: m.Reply, nc: s.b.nc}
	if m.Header != nil {
		msg.Node = m.Header.Get(hdrNode)
		msg.Seq, _ = strconv.ParseUint(m.Header.Get(hdrSeq), 10, 64)
	}
	msg.Self = msg.Node == s.b.node
	if msg.Node != "" && msg.Seq > 0 && !msg.Self {
		k := pubKey{msg.Node, msg.Subject}
		s.mu.Lock()
		if len(s.last) >= maxPublishers {
			subjects := map[string]bool{}
			for k := range s.last {
				subjects[k.subject] = true
			}
			clear(s.last)
			s.mu.Unlock()
			for subj := range subjects {
				s.gap(subj)
			}
			s.mu.Lock()
		}
		prev, seen := s.last[k]
		if !seen || msg.Seq > prev {
			s.last[k] = msg.Seq
		}
		s.mu.Unlock()
		if seen && msg.Seq > prev+1 {
			s.gap(msg.Subject)
		}
		if seen && msg.Seq <= prev {
			return // a repeat (NATS does not repeat, but be safe)
		}
	}
	h(msg)
}

// reset forgets the sequences (a reconnect: the next message of each
// publisher is a new baseline) and reports a gap on the whole pattern.
func (s *Subscription) reset() {
	s.mu.Lock()
	clear(s.last)
	s.mu.Unlock()
	if s.sub != nil {
		s.gap(s.sub.Subject)
	}
}

// Close ends the subscription.
func (s *Subscription) Close() {
	if s == nil {
		return
	}
	s.b.mu.Lock()
	delete(s.b.subs, s)
	s.b.mu.Unlock()
	_ = s.sub.Unsubscribe()
}

// Reply answers a request made with Gather. Replies carry no sequence.
func (m Msg) Reply(payload []byte) error {
	if m.reply == "" || m.nc == nil {
		return nil
	}
	return m.nc.Publish(m.reply, payload)
}

// Gather publishes payload as a request on subject and collects the
// replies until want of them came or timeout passed: a scatter-gather
// across nodes. Responders use Subscribe and Msg.Reply. A node that does
// not answer in time is left out, so callers size timeout to what a
// missing answer costs. On a nil Bus it returns nothing.
func (b *Bus) Gather(subject string, payload []byte, want int, timeout time.Duration) ([][]byte, error) {
	if b == nil || want <= 0 {
		return nil, nil
	}
	inbox := b.nc.NewInbox()
	ch := make(chan []byte, want)
	sub, err := b.nc.Subscribe(inbox, func(r *nats.Msg) {
		select {
		case ch <- r.Data:
		default: // more answers than asked for
		}
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	m := nats.NewMsg(subject)
	m.Reply = inbox
	m.Data = payload
	m.Header.Set(hdrNode, b.node)
	if err := b.nc.PublishMsg(m); err != nil {
		return nil, err
	}
	var out [][]byte
	t := time.NewTimer(timeout)
	defer t.Stop()
	for len(out) < want {
		select {
		case r := <-ch:
			out = append(out, r)
		case <-t.C:
			return out, nil
		}
	}
	return out, nil
}
