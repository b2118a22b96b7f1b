package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/prometheus/client_golang/prometheus"

	"timd/internal/audience"
	"timd/internal/console"
	"timd/internal/fanout"
	"timd/internal/httpapi"
	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/sqlite"
	"timd/internal/usersig"
)

// Two apps served by one server, to test isolation.
var (
	appA = im.App{SDKAppID: 1400000001, SecretKey: "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e", Admins: []string{"administrator", "ops"}}
	appB = im.App{SDKAppID: 1400000002, SecretKey: "0f0e0d0c0b0a09080706050403020100ffeeddccbbaa99887766554433221100", Admins: []string{"boss"}}
)

// env is a real router over the real SQLite store in a temporary directory.
type env struct {
	t     testing.TB
	srv   *httptest.Server
	store *sqlite.Store
	index *audience.Index
	// The push side: a fake clock drives the push service's limits and
	// CreatedAt; the fan-out engine runs for real, delivering to live.
	clock  *fakeClock
	live   *recordingLive
	engine *fanout.Engine
	sched  *fanout.Scheduler
	h      *httpapi.Server
}

type envOpts struct {
	limits bool
	rates  map[string]float64
	quotas map[string]int64 // push limits of every app (service.PushLimitsFrom)
	// quiet runs the fan-out scan and the scheduler tick every second
	// instead of every 10–20 ms: new tasks are still handled at once
	// (Notify, wake), and tests that run many requests stay fast under
	// -race, where each scan's SQL costs milliseconds.
	quiet bool
	// noPush builds the server without the push services (Push, Sched,
	// Stats), as a deployment without push is.
	noPush bool
	// share is the server's RateShare (nil: a single node).
	share func() float64
	// console serves the web console's files.
	console bool
	// bulkSlots is the server's Options.BulkSlots (0: GOMAXPROCS).
	bulkSlots int
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// recordingLive is a fanout.Live that records what it was asked and
// treats the ordinals in online as connected.
type recordingLive struct {
	mu        sync.Mutex
	online    *roaring.Bitmap
	delivered map[string]*roaring.Bitmap // task → ordinals handed to Deliver
	revoked   map[string]*roaring.Bitmap
}

func newRecordingLive() *recordingLive {
	return &recordingLive{online: roaring.New(), delivered: map[string]*roaring.Bitmap{}, revoked: map[string]*roaring.Bitmap{}}
}

func (l *recordingLive) Deliver(t *im.PushTask, aud *roaring.Bitmap) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.delivered[t.ID] == nil {
		l.delivered[t.ID] = roaring.New()
	}
	l.delivered[t.ID].Or(aud)
	return int(roaring.And(aud, l.online).GetCardinality())
}

func (l *recordingLive) Revoke(app uint64, id string, aud *roaring.Bitmap) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.revoked[id] = aud.Clone()
}

func (l *recordingLive) Connected(uint64) *roaring.Bitmap {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.online.Clone()
}

func (l *recordingLive) wasRevoked(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.revoked[id] != nil
}

// openStore opens the real SQLite store in a temporary directory with the
// audience index as its change sink, and stores apps A and B.
func openStore(t testing.TB, log *slog.Logger) (*sqlite.Store, *audience.Index, *service.Apps) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	idx := audience.New()
	st.SetChangeSink(idx)
	apps := service.NewApps(st, nil) // admins stay non-accounts here: the audiences these tests count are the accounts each imports
	for _, a := range []im.App{appA, appB} {
		if err := apps.Put(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	return st, idx, apps
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, idx, apps := openStore(t, log)
	auth := service.NewAuth(apps, st, nil)
	clock := newClock(time.Now().Truncate(time.Second))
	live := newRecordingLive()
	scan, tick := 20*time.Millisecond, 10*time.Millisecond
	if o.quiet {
		scan, tick = time.Second, time.Second
	}
	engine := fanout.New(st, live, fanout.Options{Scan: scan, SaveEvery: time.Millisecond}, log)
	push := service.NewPush(st, st, idx, engine, service.PushConfig{Limits: o.limits,
		AppLimits: func(uint64) service.PushLimits { return service.PushLimitsFrom(o.quotas) },
		Audience:  audience.DefaultOptions(), RateShare: o.share, Now: clock.Now, Log: log})
	sched := service.NewSched(st, push, clock.Now)
	scheduler := fanout.NewScheduler(st, sched.Fire, fanout.SchedOptions{Tick: tick, Now: clock.Now}, log)
	engine.Start(ctx)
	scheduler.Start(ctx)
	t.Cleanup(func() { scheduler.Stop(); engine.Stop() })
	svc := httpapi.Services{
		Auth:     auth,
		Accounts: service.NewAccounts(st, auth, nil),
		Audience: service.NewAudience(st, nil),
		Push:     push,
		Sched:    sched,
		Stats:    service.NewStats(st, idx, clock.Now),
	}
	svc.Insights = service.NewInsights(st, idx, svc.Stats, live, audience.DefaultOptions(), clock.Now)
	if o.noPush {
		svc.Push, svc.Sched, svc.Stats, svc.Insights = nil, nil, nil, nil
	}
	rate := func(app uint64, key string) (float64, bool) {
		v, ok := o.rates[key]
		return v, ok
	}
	var site *console.Site
	if o.console {
		site = console.New(nil)
	}
	h := httpapi.New(svc, httpapi.Options{Limits: o.limits, BodyLimit: 64 << 10, Rate: rate, RateShare: o.share, Console: site,
		BulkSlots: o.bulkSlots}, log,
		httpapi.NewMetrics(prometheus.NewRegistry()))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, store: st, index: idx, clock: clock, live: live, engine: engine, sched: scheduler, h: h}
}

// sig makes a fresh UserSig for identifier in app.
func sig(t testing.TB, app im.App, identifier string) string {
	t.Helper()
	s, err := usersig.Gen(app.SDKAppID, app.SecretKey, identifier, 86400, time.Now().Unix())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// reply is a decoded envelope with its payload.
type reply map[string]any

func (r reply) code() int { n, _ := r["ErrorCode"].(float64); return int(n) }

// url builds a /v4 URL with the common query parameters.
func (e *env) url(cmd string, app im.App, identifier, usersig string) string {
	q := url.Values{"sdkappid": {fmt.Sprint(app.SDKAppID)}, "identifier": {identifier},
		"usersig": {usersig}, "random": {"12345"}, "contenttype": {"json"}}
	return e.srv.URL + "/v4/" + cmd + "?" + q.Encode()
}

// call posts body to cmd as app A's administrator.
func (e *env) call(cmd string, body string) reply {
	e.t.Helper()
	return e.callAs(appA, "administrator", cmd, body)
}

func (e *env) callAs(app im.App, admin, cmd, body string) reply {
	e.t.Helper()
	return e.do(http.MethodPost, e.url(cmd, app, admin, sig(e.t, app, admin)), body)
}

// do sends a raw request and checks the transport contract: HTTP 200, a
// JSON envelope with ActionStatus consistent with ErrorCode.
func (e *env) do(method, u, body string) reply {
	e.t.Helper()
	return e.doWith(http.DefaultClient, method, u, body)
}

// doFrom is do from the loopback address ip (127.0.0.2, …), so that tests
// can tell callers apart by address.
func (e *env) doFrom(ip, method, u, body string) reply {
	e.t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	defer c.CloseIdleConnections()
	return e.doWith(c, method, u, body)
}

func (e *env) doWith(c *http.Client, method, u, body string) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("%s %s: HTTP %d %s", method, u, resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		e.t.Fatalf("content type %q", ct)
	}
	var r reply
	if err := json.Unmarshal(raw, &r); err != nil {
		e.t.Fatalf("answer is not JSON: %s", raw)
	}
	status, _ := r["ActionStatus"].(string)
	if (r.code() == 0) != (status == "OK") || (status != "OK" && status != "FAIL") {
		e.t.Fatalf("inconsistent envelope: %s", raw)
	}
	if _, ok := r["ErrorInfo"].(string); !ok {
		e.t.Fatalf("ErrorInfo missing: %s", raw)
	}
	return r
}

// wantCode fails unless r carries code.
func wantCode(t testing.TB, r reply, code int) {
	t.Helper()
	if r.code() != code {
		t.Fatalf("ErrorCode = %d (%v), want %d", r.code(), r["ErrorInfo"], code)
	}
}

// jsonOf re-marshals part of a reply for comparison.
func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
