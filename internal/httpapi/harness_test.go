package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"timd/internal/audience"
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
	t     *testing.T
	srv   *httptest.Server
	store *sqlite.Store
	index *audience.Index
}

type envOpts struct {
	limits bool
	rates  map[string]float64
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlite.Open(ctx, t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	idx := audience.New()
	st.SetChangeSink(idx)
	apps := service.NewApps(st)
	for _, a := range []im.App{appA, appB} {
		if err := apps.Put(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	auth := service.NewAuth(apps, st, nil)
	svc := httpapi.Services{
		Auth:     auth,
		Accounts: service.NewAccounts(st, auth, nil),
		Audience: service.NewAudience(st, nil),
	}
	rate := func(app uint64, key string) (float64, bool) {
		v, ok := o.rates[key]
		return v, ok
	}
	h := httpapi.New(svc, httpapi.Options{Limits: o.limits, BodyLimit: 64 << 10, Rate: rate}, log,
		httpapi.NewMetrics(prometheus.NewRegistry()))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, store: st, index: idx}
}

// sig makes a fresh UserSig for identifier in app.
func sig(t *testing.T, app im.App, identifier string) string {
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
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
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
func wantCode(t *testing.T, r reply, code int) {
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
