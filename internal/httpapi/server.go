// Package httpapi serves Tencent Cloud Chat's REST API: the /v4 routes
// table, request decoding, authentication before dispatch, rate limits,
// metrics, and the one envelope writer.
package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"timd/internal/im"
	"timd/internal/service"
)

// Options configure the REST server.
type Options struct {
	// Limits enables rate limits; false disables them (benchmarks).
	Limits bool
	// BodyLimit is the largest accepted body in bytes.
	BodyLimit int64
	// Rate returns an app's override of a command's rate ("service/command").
	Rate func(app uint64, key string) (float64, bool)
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
}

// Server is the /v4 REST handler.
type Server struct {
	svc     Services
	opt     Options
	log     *slog.Logger
	metrics *Metrics
	table   map[string]*route

	mu       sync.Mutex
	limiters map[limiterKey]*rate.Limiter
}

type limiterKey struct {
	app uint64
	key string
}

// request is what a handler sees: the authenticated app and caller, and
// the raw body.
type request struct {
	ctx        context.Context
	app        im.App
	identifier string
	body       []byte
}

// New returns the REST server.
func New(svc Services, opt Options, log *slog.Logger, metrics *Metrics) *Server {
	if opt.BodyLimit <= 0 {
		opt.BodyLimit = 1 << 20
	}
	s := &Server{svc: svc, opt: opt, log: log, metrics: metrics,
		table: map[string]*route{}, limiters: map[limiterKey]*rate.Limiter{}}
	for i := range routes {
		r := &routes[i]
		s.table[routeKey(r.service, r.command)] = r
	}
	return s
}

// ServeHTTP answers POST /v4/{service}/{command}.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt, code := s.serve(w, r)
	name := "unknown"
	if rt != nil {
		name = routeKey(rt.service, rt.command)
	}
	s.metrics.observe(name, code, time.Since(start))
}

// serve handles one request and returns the route (nil if unknown) and the
// code answered.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) (rt *route, code int) {
	f := famGateway
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in handler", "path", r.URL.Path, "panic", p)
			code = kindCodes[f][im.KindInternal]
			writeEnvelope(w, code, "internal error, please retry", nil)
		}
	}()
	rt = s.lookup(r.URL.Path)
	if rt == nil {
		return nil, s.fail(w, f, im.Errorf(im.CodeUnknownCommand, "unknown service or command %q", r.URL.Path), nil)
	}
	f = rt.family
	if r.Method != http.MethodPost {
		return rt, s.fail(w, f, im.Errorf(im.CodeBadURL, "method %s not allowed, use POST", r.Method), nil)
	}
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return rt, s.fail(w, f, err, nil)
	}
	app, err := s.svc.Auth.Admin(r.Context(), q.sdkappid, q.identifier, q.usersig)
	if err != nil {
		return rt, s.fail(w, f, err, nil)
	}
	if !app.IsAdmin(q.identifier) {
		return rt, s.fail(w, f, im.KindErrorf(im.KindNotAdmin, "request requires app admin"), nil)
	}
	if !s.allow(app.SDKAppID, rt) {
		return rt, s.fail(w, f, im.KindErrorf(im.KindRate, "%s over its rate limit", routeKey(rt.service, rt.command)), nil)
	}
	body, err := s.readBody(r)
	if err != nil {
		return rt, s.fail(w, f, err, nil)
	}
	payload, err := rt.call(s, &request{ctx: r.Context(), app: app, identifier: q.identifier, body: body})
	if err != nil {
		return rt, s.fail(w, f, err, payload)
	}
	writeEnvelope(w, 0, "", payload)
	return rt, 0
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

func (s *Server) lookup(path string) *route {
	rest, ok := strings.CutPrefix(path, "/v4/")
	if !ok {
		return nil
	}
	svc, cmd, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(cmd, "/") {
		return nil
	}
	return s.table[routeKey(svc, cmd)]
}

// query is the validated common query string (spec §1.1).
type query struct {
	sdkappid   uint64
	identifier string
	usersig    string
	random     uint32
}

// parseQuery validates the common parameters: 60012 when sdkappid is
// missing, 60025 when it or another parameter is malformed or missing,
// 70002 when usersig is empty.
func parseQuery(raw string) (query, error) {
	var q query
	vals, err := parseValues(raw)
	if err != nil {
		return q, im.Errorf(im.CodeBadURL, "malformed query string")
	}
	sid := vals["sdkappid"]
	if sid == "" {
		return q, im.Errorf(im.CodeNoSDKAppID, "sdkappid is missing")
	}
	id, err := strconv.ParseUint(sid, 10, 32)
	if err != nil || id == 0 {
		return q, im.Errorf(im.CodeBadURLParam, "sdkappid %q is not a valid SDKAppID", sid)
	}
	q.sdkappid = id
	q.identifier = vals["identifier"]
	if q.identifier == "" || len(q.identifier) > im.MaxUserIDLen {
		return q, im.Errorf(im.CodeBadURLParam, "identifier is missing or longer than 32 bytes")
	}
	if vals["contenttype"] != "json" {
		return q, im.Errorf(im.CodeBadURLParam, "contenttype must be json")
	}
	rnd, err := strconv.ParseUint(vals["random"], 10, 32)
	if err != nil {
		return q, im.Errorf(im.CodeBadURLParam, "random must be an integer from 0 to 4294967295")
	}
	q.random = uint32(rnd)
	q.usersig = vals["usersig"]
	if q.usersig == "" {
		return q, im.Errorf(im.CodeSigEmpty, "usersig is empty")
	}
	return q, nil
}

// parseValues decodes a query string keeping the first value of each key.
// UserSigs use '*', '-' and '_' which need no escaping; a literal '+' is
// kept as '+' only when percent-encoded, as net/url does.
func parseValues(raw string) (map[string]string, error) {
	vals := map[string]string{}
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		k, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		v, err = url.QueryUnescape(v)
		if err != nil {
			return nil, err
		}
		if _, dup := vals[k]; !dup {
			vals[k] = v
		}
	}
	return vals, nil
}

// readBody reads at most BodyLimit bytes: 60008 when larger, the family's
// bad-JSON code when empty.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, s.opt.BodyLimit+1))
	if err != nil {
		return nil, im.Errorf(im.CodeBadHTTP, "could not read request body")
	}
	if int64(len(body)) > s.opt.BodyLimit {
		return nil, im.Errorf(im.CodeBadHTTP, "request body larger than %d bytes", s.opt.BodyLimit)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, im.KindErrorf(im.KindBadJSON, "request body is empty, send {} when there are no fields")
	}
	return body, nil
}

// allow applies the per-app, per-command rate limit.
func (s *Server) allow(app uint64, rt *route) bool {
	if !s.opt.Limits {
		return true
	}
	key := routeKey(rt.service, rt.command)
	perSec := rt.rate
	if s.opt.Rate != nil {
		if v, ok := s.opt.Rate(app, key); ok {
			perSec = v
		}
	}
	if perSec <= 0 {
		return true
	}
	s.mu.Lock()
	l := s.limiters[limiterKey{app, key}]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(perSec), max(1, int(perSec)))
		s.limiters[limiterKey{app, key}] = l
	}
	s.mu.Unlock()
	return l.Allow()
}
