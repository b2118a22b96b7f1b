// Package httpapi serves Tencent Cloud Chat's REST API and timd's own
// client API: the /v4 and /v1 routes tables, one authentication and one
// dispatcher for both, request decoding, rate limits, metrics, and the one
// envelope writer.
package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"timd/internal/console"
	"timd/internal/deliver"
	"timd/internal/im"
	"timd/internal/service"
)

// Options configure the REST server.
type Options struct {
	// Limits enables rate limits; false disables them (benchmarks).
	Limits bool
	// BodyLimit is the largest accepted /v4 body in bytes.
	BodyLimit int64
	// Rate returns an app's override of a command's rate ("service/command").
	Rate func(app uint64, key string) (float64, bool)
	// RateShare, when set, returns the part of each rate limit this node
	// enforces, in (0, 1]: the nodes of a cluster split every limit
	// evenly (1/N for N live nodes), so that together they never allow
	// more than the limit. nil is a single node (1).
	RateShare func() float64
	// Prometheus, when set, is served at GET /metrics.
	Prometheus http.Handler
	// Console, when set, is the web console served at GET /console/.
	Console *console.Site
	// BulkSlots is how many account, attribute and tag writes (bulkWrites)
	// are handled at once, from decoding their bodies on; the rest wait,
	// their bodies read, without using the CPU. 0 means GOMAXPROCS. So
	// callers loading millions of accounts keep the writer fed, and a
	// push or a read arriving meanwhile queues behind a few handlers, not
	// behind every caller's.
	BulkSlots int
}

// Services are the business services the routes call.
type Services struct {
	Auth     *service.Auth
	Accounts *service.Accounts
	Audience *service.Audience
	// Push, Sched and Stats serve the pushing commands; when nil those
	// answer 90045 (push not enabled).
	Push  *service.Push
	Sched *service.Sched
	Stats *service.Stats
	// Insights serves timd's extensions (/v4/timd_ext/...); when nil
	// they answer 90045 like the push commands.
	Insights *service.Insights
	// Hub, Inbox and Devices serve the /v1 client API; when any is nil,
	// /v1 is not served (60009).
	Hub     *deliver.Hub
	Inbox   *service.Inbox
	Devices *service.Devices
}

// Server is timd's one HTTP handler: the /v4 REST API, the /v1 client API,
// GET /healthz and GET /metrics. Every request goes through one dispatcher
// (authenticate, rate limit, read, handle, one envelope writer, metrics),
// and every answer other than a WebSocket upgrade, the health check and
// the metrics is the Tencent envelope with HTTP 200, including unknown or
// unclean paths (60009) and wrong methods (60002).
type Server struct {
	svc     Services
	opt     Options
	log     *slog.Logger
	metrics *Metrics
	table   map[string]*endpoint

	bulk chan struct{} // one token per handled bulk write (Options.BulkSlots)

	mu       sync.Mutex
	limiters map[limiterKey]*rate.Limiter
}

type limiterKey struct {
	app uint64
	key string
}

// request is what a handler sees: the authenticated app and caller, the
// query and the body. The raw exchange is there for the handlers that
// answer outside the envelope (the WebSocket upgrade, health, metrics).
type request struct {
	ctx        context.Context
	app        im.App
	identifier string
	body       []byte
	acct       im.Account        // the caller's account (/v1); empty for a device registering by UserSig
	device     bool              // the caller authenticated with a device credential (/v1)
	query      map[string]string // the query string, first value of each key
	w          http.ResponseWriter
	http       *http.Request
}

// errAnswered is returned by a handler that wrote its own answer (a
// WebSocket upgrade, the health check, the metrics).
var errAnswered = errors.New("answered by the handler")

// New returns the server.
func New(svc Services, opt Options, log *slog.Logger, metrics *Metrics) *Server {
	if opt.BodyLimit <= 0 {
		opt.BodyLimit = 1 << 20
	}
	if opt.BulkSlots <= 0 {
		opt.BulkSlots = runtime.GOMAXPROCS(0)
	}
	s := &Server{svc: svc, opt: opt, log: log, metrics: metrics, limiters: map[limiterKey]*rate.Limiter{},
		bulk: make(chan struct{}, opt.BulkSlots)}
	s.table = s.endpoints()
	return s
}

// ServeHTTP dispatches one request and records its metrics. The path is
// looked up exactly as sent: no cleaning, no redirects, no case folding.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ep, code := s.dispatch(w, r)
	switch {
	case ep == nil:
		s.metrics.observe("unknown", code, time.Since(start))
	case ep.caller != callerNone:
		s.metrics.observe(ep.name, code, time.Since(start))
	}
}

// dispatch handles one request and returns its endpoint (nil if unknown)
// and the code answered.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) (ep *endpoint, code int) {
	f := famGateway
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in handler", "path", r.URL.Path, "panic", p)
			code = kindCodes[f][im.KindInternal]
			writeEnvelope(w, code, "internal error, please retry", nil)
		}
	}()
	ep = s.table[r.URL.Path]
	if ep == nil {
		return nil, s.fail(w, f, im.Errorf(im.CodeUnknownCommand, "unknown service, command or path %q", r.URL.Path), nil)
	}
	f = ep.family
	if r.Method != ep.method {
		return ep, s.fail(w, f, im.Errorf(im.CodeBadURL, "method %s not allowed, use %s", r.Method, ep.method), nil)
	}
	req, err := s.authenticate(w, r, ep)
	if err != nil {
		return ep, s.fail(w, f, err, nil)
	}
	if !s.allow(req.app.SDKAppID, ep) {
		return ep, s.fail(w, f, im.KindErrorf(im.KindRate, "%s over its rate limit", ep.name), nil)
	}
	if ep.bodyLimit > 0 {
		if req.body, err = readBody(r, ep.bodyLimit); err != nil {
			return ep, s.fail(w, f, err, nil)
		}
	}
	if ep.bulk {
		select {
		case s.bulk <- struct{}{}:
			defer func() { <-s.bulk }()
		case <-r.Context().Done():
			return ep, s.fail(w, f, r.Context().Err(), nil)
		}
	}
	payload, err := ep.handle(s, req)
	switch {
	case err == errAnswered:
		return ep, 0
	case err != nil:
		return ep, s.fail(w, f, err, payload)
	}
	writeEnvelope(w, 0, "", payload)
	return ep, 0
}

// fail writes err's envelope and returns its code. Unexpected errors are
// logged once, with detail, and answered with a generic text.
func (s *Server) fail(w http.ResponseWriter, f family, err error, payload any) int {
	code, info, unexpected := codeFor(f, err)
	switch {
	case unexpected && errors.Is(err, context.Canceled):
		// The client went away mid-request: nothing is wrong here.
		s.log.Debug("request abandoned by the client", "err", err)
	case unexpected:
		s.log.Error("request failed", "err", err)
	}
	writeEnvelope(w, code, info, payload)
	return code
}

// healthz answers GET /healthz with "ok".
func (s *Server) healthz(r *request) (any, error) {
	r.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = r.w.Write([]byte("ok\n"))
	return nil, errAnswered
}

// console serves a file of the web console.
func (s *Server) console(r *request) (any, error) {
	s.opt.Console.ServeHTTP(r.w, r.http)
	return nil, errAnswered
}

// prometheus serves GET /metrics.
func (s *Server) prometheus(r *request) (any, error) {
	s.opt.Prometheus.ServeHTTP(r.w, r.http)
	return nil, errAnswered
}

// readBody reads at most limit bytes: 60008 when larger, the family's
// bad-JSON code when empty.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, im.Errorf(im.CodeBadHTTP, "could not read request body")
	}
	if int64(len(body)) > limit {
		return nil, im.Errorf(im.CodeBadHTTP, "request body larger than %d bytes", limit)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, im.KindErrorf(im.KindBadJSON, "request body is empty, send {} when there are no fields")
	}
	return body, nil
}

// allow applies the per-app, per-command rate limit.
func (s *Server) allow(app uint64, ep *endpoint) bool {
	if !s.opt.Limits || ep.caller == callerNone {
		return true
	}
	perSec := ep.rate
	if s.opt.Rate != nil {
		if v, ok := s.opt.Rate(app, ep.name); ok {
			perSec = v
		}
	}
	if perSec <= 0 {
		return true
	}
	if s.opt.RateShare != nil {
		if share := s.opt.RateShare(); share > 0 && share < 1 {
			perSec *= share
		}
	}
	s.mu.Lock()
	l := s.limiters[limiterKey{app, ep.name}]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(perSec), max(1, int(perSec)))
		s.limiters[limiterKey{app, ep.name}] = l
	} else if l.Limit() != rate.Limit(perSec) { // a node joined or left the cluster
		l.SetLimit(rate.Limit(perSec))
		l.SetBurst(max(1, int(perSec)))
	}
	s.mu.Unlock()
	return l.Allow()
}
