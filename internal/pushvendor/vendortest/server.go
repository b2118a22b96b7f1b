// Package vendortest runs fake push vendors (APNs, FCM, Web Push) that
// speak the real protocol over TLS and HTTP/2 on the loopback interface,
// with keys generated at start: each fake checks the request the way the
// vendor does (paths, headers, JWT signatures, payload encryption),
// records what it accepted, and can be told to answer 429 with
// Retry-After, a 5xx, or that a device is gone. Tests of this package,
// of the queue and of cmd/timd start them beside the code under test; no
// test reaches the internet.
package vendortest

import (
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
)

// server is the TLS HTTP/2 listener and the forced answers every fake
// shares.
type server struct {
	srv    *httptest.Server
	mu     sync.Mutex
	forced []Answer
	gone   map[string]bool

	noRecord atomic.Bool
	accepted atomic.Int64
}

// Record says whether accepted notifications are kept for Received
// (default true); a benchmark turns it off to keep memory flat.
func (s *server) Record(on bool) { s.noRecord.Store(!on) }

// Accepted is how many notifications the fake accepted.
func (s *server) Accepted() int64 { return s.accepted.Load() }

// accept counts one accepted notification and reports whether to keep it.
func (s *server) accept() bool {
	s.accepted.Add(1)
	return !s.noRecord.Load()
}

// Answer is a forced reply: Status with the vendor's Reason (APNs
// reason, FCM error status, or nothing for Web Push) and, when not "",
// a Retry-After header.
type Answer struct {
	Status     int
	Reason     string
	RetryAfter string
}

func (s *server) start(h http.Handler) {
	s.gone = map[string]bool{}
	s.srv = httptest.NewUnstartedServer(h)
	s.srv.EnableHTTP2 = true
	s.srv.StartTLS()
}

// URL is the fake's base URL (https://127.0.0.1:port).
func (s *server) URL() string { return s.srv.URL }

// CertPool trusts the fake's TLS certificate.
func (s *server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.srv.Certificate())
	return p
}

// CertPEM is the fake's TLS certificate in PEM, for a config's ca-file.
func (s *server) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// Client is an HTTP/2 client that trusts the fake.
func (s *server) Client() *http.Client { return s.srv.Client() }

// Close stops the fake.
func (s *server) Close() { s.srv.Close() }

// Force queues answers: each following valid request gets the next one
// instead of success, in order.
func (s *server) Force(a ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forced = append(s.forced, a...)
}

// Gone marks a device token (or Web Push endpoint path) as unregistered.
func (s *server) Gone(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone[token] = true
}

// next pops the next forced answer; ok false when none is queued.
func (s *server) next() (Answer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.forced) == 0 {
		return Answer{}, false
	}
	a := s.forced[0]
	s.forced = s.forced[1:]
	return a, true
}

func (s *server) isGone(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gone[token]
}
