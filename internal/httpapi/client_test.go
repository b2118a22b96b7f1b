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
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"timd/internal/deliver"
	"timd/internal/deliver/delivertest"
	"timd/internal/httpapi"
	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/usersig"
)

// clientEnv serves /v4 and /v1 from one server over the real SQLite store
// (accounts and tasks) and a real hub, as cli/serve wires them.
type clientEnv struct {
	*env
	hub     *deliver.Hub
	tasks   *delivertest.Faulty // the same SQLite store; Add is a shortcut
	handler http.Handler        // the server under srv, for in-process requests
}

func newClientEnv(t testing.TB) *clientEnv {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, idx, apps := openStore(t, log)
	tasks := &delivertest.Faulty{TaskStore: st}
	audiences := deliver.NewAudienceCache(tasks, 0) // one cache, as serve wires it
	hub := deliver.NewHub(tasks, audiences, deliver.Options{AckInterval: 10 * time.Millisecond}, log)
	hub.Start(ctx)
	auth := service.NewAuth(apps, st, nil)
	reg := prometheus.NewRegistry()
	accounts := service.NewAccounts(st, auth, hub)
	accounts.SetDevices(st)
	h := httpapi.New(httpapi.Services{
		Auth:     auth,
		Accounts: accounts,
		Audience: service.NewAudience(st, nil),
		Hub:      hub,
		Inbox:    service.NewInbox(tasks, audiences),
		Devices:  service.NewDevices(st, nil),
	}, httpapi.Options{BodyLimit: 64 << 10, Prometheus: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})},
		log, httpapi.NewMetrics(reg))
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		hub.Stop()
	})
	e := &clientEnv{env: &env{t: t, srv: srv, store: st, index: idx}, hub: hub, tasks: tasks, handler: h}
	wantCode(t, e.call("im_open_login_svc/multiaccount_import", `{"Accounts":["alice","bob","carol"]}`), 0)
	wantCode(t, e.callAs(appB, "boss", "im_open_login_svc/account_import", `{"UserID":"alice"}`), 0)
	return e
}

// v1 builds a /v1 URL for user with the given sig and extra parameters.
func (e *clientEnv) v1(path string, app im.App, user, sig string, extra url.Values) string {
	q := url.Values{"sdkappid": {fmt.Sprint(app.SDKAppID)}, "identifier": {user}, "usersig": {sig}}
	for k, v := range extra {
		q[k] = v
	}
	return e.srv.URL + path + "?" + q.Encode()
}

// ordinal returns the account's ordinal in app A.
func (e *clientEnv) ordinal(id string) uint32 {
	e.t.Helper()
	o, ok := e.index.Ordinal(appA.SDKAppID, id)
	if !ok {
		e.t.Fatalf("no ordinal for %s", id)
	}
	return o
}

// wsClient is a connected client with a background reader.
type wsClient struct {
	t      testing.TB
	ws     *websocket.Conn
	frames chan map[string]any
	done   chan struct{}
	err    error
}

// connect opens /v1/connect for user of app A and waits until it is served.
func (e *clientEnv) connect(user string, extra url.Values) *wsClient {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, strings.Replace(e.v1("/v1/connect", appA, user, sig(e.t, appA, user), extra), "http", "ws", 1), nil)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		e.t.Fatalf("connect %s: %v %s", user, err, body)
	}
	e.t.Cleanup(func() { _ = ws.CloseNow() })
	c := &wsClient{t: e.t, ws: ws, frames: make(chan map[string]any, 100), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				c.err = err
				return
			}
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			c.frames <- m
		}
	}()
	return c
}

// until returns the frames up to and including the first with TaskId id
// (or Type pong when id is "").
func (c *wsClient) until(id string) []map[string]any {
	c.t.Helper()
	if id == "" {
		return c.untilType("pong")
	}
	return c.untilMatch(id, func(m map[string]any) bool { return m["TaskId"] == id })
}

// untilType returns the frames up to and including the first of Type typ.
func (c *wsClient) untilType(typ string) []map[string]any {
	c.t.Helper()
	return c.untilMatch(typ, func(m map[string]any) bool { return m["Type"] == typ })
}

func (c *wsClient) untilMatch(id string, match func(map[string]any) bool) []map[string]any {
	c.t.Helper()
	var seen []map[string]any
	for {
		select {
		case m := <-c.frames:
			seen = append(seen, m)
			if match(m) {
				return seen
			}
		case <-c.done:
			c.t.Fatalf("connection ended: %v", c.err)
		case <-time.After(5 * time.Second):
			c.t.Fatalf("no frame %q within 5 s (saw %v)", id, seen)
		}
	}
}

// pingPong waits for a pong and returns the frames that came before it.
func (c *wsClient) pingPong() []map[string]any {
	c.t.Helper()
	if err := c.ws.Write(context.Background(), websocket.MessageText, []byte(`{"Type":"ping"}`)); err != nil {
		c.t.Fatal(err)
	}
	f := c.until("")
	return f[:len(f)-1]
}

func (c *wsClient) closeStatus() websocket.StatusCode {
	c.t.Helper()
	select {
	case <-c.done:
		return websocket.CloseStatus(c.err)
	case <-time.After(10 * time.Second):
		c.t.Fatal("still open")
	}
	return 0
}

// getEnvelope GETs u with WebSocket handshake headers and checks the
// answer is an HTTP 200 envelope, not an upgrade.
func getEnvelope(t *testing.T, u string, handshake bool) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if handshake {
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET %s: HTTP %d %q %s", u, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	var r reply
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("not JSON: %s", raw)
	}
	return r
}

func TestConnectAuthFailuresAnswerEnvelopes(t *testing.T) {
	e := newClientEnv(t)
	now := time.Now().Unix()
	gen := func(app uint64, key, id string, expire, at int64) string {
		s, err := usersig.Gen(app, key, id, expire, at)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sig(t, appA, "alice")
	base := e.srv.URL + "/v1/connect?"
	for _, tc := range []struct {
		name string
		url  string
		code int
	}{
		{"no sdkappid", base + "identifier=alice&usersig=" + good, im.CodeNoSDKAppID},
		{"bad sdkappid", base + "sdkappid=x&identifier=alice&usersig=" + good, im.CodeBadURLParam},
		{"no identifier", base + fmt.Sprintf("sdkappid=%d&usersig=%s", appA.SDKAppID, good), im.CodeBadURLParam},
		{"empty usersig", e.v1("/v1/connect", appA, "alice", "", nil), im.CodeSigEmpty},
		{"garbage usersig", e.v1("/v1/connect", appA, "alice", "not-a-sig", nil), im.CodeSigInvalid},
		{"expired", e.v1("/v1/connect", appA, "alice", gen(appA.SDKAppID, appA.SecretKey, "alice", 60, now-3600), nil), im.CodeSigExpired},
		{"wrong key", e.v1("/v1/connect", appA, "alice", gen(appA.SDKAppID, appB.SecretKey, "alice", 3600, now), nil), im.CodeSigMismatch},
		{"sig of another user", e.v1("/v1/connect", appA, "alice", sig(t, appA, "bob"), nil), im.CodeSigIdentifier},
		{"sig of another app", e.v1("/v1/connect", appA, "alice", gen(appB.SDKAppID, appA.SecretKey, "alice", 3600, now), nil), im.CodeSigSDKAppID},
		{"unknown app", strings.Replace(e.v1("/v1/connect", appA, "alice", good, nil), fmt.Sprint(appA.SDKAppID), "1400009999", 1), im.CodeAppNotFound},
		{"never imported", e.v1("/v1/connect", appA, "ghost", sig(t, appA, "ghost"), nil), im.CodeAccountNotFound},
		{"admin that is not an account", e.v1("/v1/connect", appA, "administrator", sig(t, appA, "administrator"), nil), im.CodeAccountNotFound},
		{"bad platform", e.v1("/v1/connect", appA, "alice", good, url.Values{"platform": {"i Phone"}}), im.CodeBadURLParam},
		{"bad since", e.v1("/v1/connect", appA, "alice", good, url.Values{"since": {"-1"}}), im.CodeBadURLParam},
		{"bad batch", e.v1("/v1/connect", appA, "alice", good, url.Values{"batch": {"2"}}), im.CodeBadURLParam},
		{"batch true", e.v1("/v1/connect", appA, "alice", good, url.Values{"batch": {"true"}}), im.CodeBadURLParam},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, getEnvelope(t, tc.url, true), tc.code)
			// A real WebSocket client sees the same envelope, not an upgrade.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, resp, err := websocket.Dial(ctx, strings.Replace(tc.url, "http", "ws", 1), nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("Dial: err %v, resp %v", err, resp)
			}
			var r reply
			if b, _ := io.ReadAll(resp.Body); json.Unmarshal(b, &r) != nil || r.code() != tc.code {
				t.Fatalf("Dial answer %s, want code %d", b, tc.code)
			}
		})
	}
	t.Run("not a WebSocket handshake", func(t *testing.T) {
		wantCode(t, getEnvelope(t, e.v1("/v1/connect", appA, "alice", good, nil), false), im.CodeBadHTTP)
	})
	t.Run("throttled after repeated failures", func(t *testing.T) {
		bad := e.v1("/v1/connect", appA, "carol", gen(appA.SDKAppID, "wrong", "carol", 3600, now), nil)
		for range 20 {
			wantCode(t, getEnvelope(t, bad, true), im.CodeSigMismatch)
		}
		wantCode(t, getEnvelope(t, bad, true), im.CodeSigThrottled)
		// carol's own valid sig still connects.
		e.connect("carol", nil).pingPong()
		wantCode(t, getEnvelope(t, bad, true), im.CodeSigThrottled)
	})
	t.Run("method and path", func(t *testing.T) {
		wantCode(t, e.do(http.MethodPost, e.v1("/v1/connect", appA, "alice", good, nil), ""), im.CodeBadURL)
		wantCode(t, e.do(http.MethodGet, e.v1("/v1/nope", appA, "alice", good, nil), ""), im.CodeUnknownCommand)
	})
}

func TestConnectDeliveryPresenceAndKick(t *testing.T) {
	e := newClientEnv(t)
	alice, bob := e.ordinal("alice"), e.ordinal("bob")
	stored := e.tasks.Add(im.PushTask{App: appA.SDKAppID, ID: "s1", From: "administrator",
		MsgBody:   json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hello"}}]`),
		CreatedAt: time.Now().Unix(), ExpiresAt: time.Now().Add(time.Hour).Unix()}, alice, bob)

	oldSig, err := usersig.Gen(appA.SDKAppID, appA.SecretKey, "alice", 86400, time.Now().Unix()-10)
	if err != nil {
		t.Fatal(err)
	}
	phone := e.connect("alice", url.Values{"platform": {"iPhone"}, "usersig": {oldSig}})
	web := e.connect("alice", nil)
	b := e.connect("bob", nil)
	for _, c := range []*wsClient{phone, web, b} { // catch-up of the stored push, then its end
		if got := c.untilType("caughtup"); len(got) != 2 || got[0]["TaskId"] != "s1" ||
			got[0]["Seq"] != float64(stored.Seq) || got[1]["Seq"] != float64(stored.Seq) {
			t.Fatalf("catch-up frames %v", got)
		}
	}

	live := im.PushTask{App: appA.SDKAppID, ID: "live", From: "administrator", OnlineOnly: true,
		Offline: json.RawMessage(`{"Title":"ping"}`)}
	aud := roaring.BitmapOf(alice)
	if n := e.hub.Deliver(&live, aud); n != 1 {
		t.Fatalf("Deliver reached %d accounts, want 1", n)
	}
	for _, c := range []*wsClient{phone, web} {
		if got := c.pingPong(); len(got) != 1 || got[0]["TaskId"] != "live" {
			t.Fatalf("alice device got %v", got)
		}
	}
	if got := b.pingPong(); len(got) != 0 {
		t.Fatalf("bob got %v", got)
	}

	// The ack of a stored push reaches the task's counts.
	if err := b.ws.Write(context.Background(), websocket.MessageText, []byte(`{"Type":"click","TaskId":"s1"}`)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool {
		n, _ := e.tasks.Counts(context.Background(), appA.SDKAppID, "s1")
		return n.Delivered == 1 && n.Clicked == 1
	})

	r := e.call("openim/query_online_status", `{"To_Account":["alice","bob","carol"],"IsNeedDetail":1}`)
	wantCode(t, r, 0)
	var res []struct {
		To_Account string
		Status     string
		Detail     []struct{ Platform, Status string }
	}
	_ = json.Unmarshal([]byte(jsonOf(r["QueryResult"])), &res)
	if len(res) != 3 || res[0].Status != "Online" || len(res[0].Detail) != 2 || res[1].Status != "Online" || res[2].Status != "Offline" {
		t.Fatalf("QueryResult = %s", jsonOf(r["QueryResult"]))
	}
	platforms := []string{res[0].Detail[0].Platform, res[0].Detail[1].Platform}
	slices.Sort(platforms)
	if !slices.Equal(platforms, []string{"Web", "iPhone"}) {
		t.Fatalf("alice platforms %v", platforms)
	}

	wantCode(t, e.call("im_open_login_svc/kick", `{"UserID":"alice"}`), 0)
	for _, c := range []*wsClient{phone, web} {
		if code := c.closeStatus(); code != deliver.StatusKicked {
			t.Fatalf("kicked connection closed with %v", code)
		}
	}
	b.pingPong() // bob is unaffected
	wantCode(t, getEnvelope(t, e.v1("/v1/connect", appA, "alice", oldSig, nil), true), im.CodeSigKicked)
	r = e.call("openim/query_online_status", `{"To_Account":["alice"]}`)
	if got := jsonOf(r["QueryResult"]); got != `[{"Status":"Offline","To_Account":"alice"}]` {
		t.Fatalf("after kick: %s", got)
	}
}

func TestSyncPagingExpiryRevokeAndIsolation(t *testing.T) {
	e := newClientEnv(t)
	ctx := context.Background()
	alice, bob := e.ordinal("alice"), e.ordinal("bob")
	now := time.Now()
	add := func(id string, expires time.Time, ords ...uint32) im.PushTask {
		return e.tasks.Add(im.PushTask{App: appA.SDKAppID, ID: id, From: "administrator", CreatedAt: now.Unix(),
			ExpiresAt: expires.Unix(), Offline: json.RawMessage(`{"Title":"` + id + `"}`)}, ords...)
	}
	later := now.Add(time.Hour)
	add("a1", later, alice)
	add("b1", later, bob)
	add("ab1", later, alice, bob)
	add("gone", now.Add(-time.Second), alice, bob) // expired
	add("rev", later, alice, bob)
	if err := e.tasks.RevokeTask(ctx, appA.SDKAppID, "rev", now.Unix(), nil, im.TaskLimits{}); err != nil {
		t.Fatal(err)
	}
	online := im.PushTask{App: appA.SDKAppID, ID: "live", From: "administrator", OnlineOnly: true}
	e.tasks.Add(online, alice, bob)
	add("a2", later, alice)
	add("a3", later, alice)
	// The same ordinal in another app must not leak.
	e.tasks.Add(im.PushTask{App: appB.SDKAppID, ID: "other-app", From: "boss", ExpiresAt: later.Unix()}, alice, bob)

	type page struct {
		ids      []string
		cursor   int64
		complete bool
	}
	syncAs := func(user string, cursor, limit string) page {
		t.Helper()
		r := e.do(http.MethodGet, e.v1("/v1/sync", appA, user, sig(t, appA, user), url.Values{"cursor": {cursor}, "limit": {limit}}), "")
		wantCode(t, r, 0)
		var p struct {
			Pushes []struct {
				Type, TaskId, From_Account string
				OfflinePushInfo            map[string]any
			}
			Cursor   int64
			Complete bool
		}
		if err := json.Unmarshal([]byte(jsonOf(r)), &p); err != nil {
			t.Fatal(err)
		}
		out := page{ids: []string{}, cursor: p.Cursor, complete: p.Complete}
		for _, x := range p.Pushes {
			if x.Type != "push" || x.From_Account != "administrator" || x.OfflinePushInfo["Title"] != x.TaskId {
				t.Fatalf("push item %+v", x)
			}
			out.ids = append(out.ids, x.TaskId)
		}
		return out
	}

	// The smallest page holds one push.
	if one := syncAs("alice", "0", "1"); !slices.Equal(one.ids, []string{"a1"}) || one.complete {
		t.Fatalf("limit 1 = %+v", one)
	}
	p1 := syncAs("alice", "0", "2")
	if !slices.Equal(p1.ids, []string{"a1", "ab1"}) || p1.complete {
		t.Fatalf("page 1 = %+v", p1)
	}
	p2 := syncAs("alice", fmt.Sprint(p1.cursor), "2")
	if !slices.Equal(p2.ids, []string{"a2", "a3"}) || !p2.complete {
		t.Fatalf("page 2 = %+v", p2)
	}
	p3 := syncAs("alice", fmt.Sprint(p2.cursor), "2")
	if len(p3.ids) != 0 || !p3.complete || p3.cursor != p2.cursor {
		t.Fatalf("page 3 = %+v", p3)
	}
	if all := syncAs("bob", "", ""); !slices.Equal(all.ids, []string{"b1", "ab1"}) || !all.complete {
		t.Fatalf("bob = %+v", all)
	}
	if none := syncAs("carol", "0", "200"); len(none.ids) != 0 || !none.complete {
		t.Fatalf("carol = %+v", none)
	}
	// Alice of app B sees app B's pushes only.
	r := e.do(http.MethodGet, e.v1("/v1/sync", appB, "alice", sig(t, appB, "alice"), nil), "")
	if got := jsonOf(r["Pushes"]); !strings.Contains(got, `"other-app"`) || strings.Contains(got, `"a1"`) {
		t.Fatalf("app B alice: %s", got)
	}

	good := sig(t, appA, "alice")
	for _, q := range []url.Values{{"limit": {"0"}}, {"limit": {"201"}}, {"limit": {"x"}}, {"cursor": {"-1"}}, {"cursor": {"1.5"}}} {
		wantCode(t, e.do(http.MethodGet, e.v1("/v1/sync", appA, "alice", good, q), ""), im.CodeBadURLParam)
	}
	wantCode(t, e.do(http.MethodGet, e.v1("/v1/sync", appA, "alice", sig(t, appA, "bob"), nil), ""), im.CodeSigIdentifier)
	wantCode(t, e.do(http.MethodPost, e.v1("/v1/sync", appA, "alice", good, nil), "{}"), im.CodeBadURL)
}

func TestSyncDefaultLimit(t *testing.T) {
	e := newClientEnv(t)
	alice := e.ordinal("alice")
	for i := range 55 {
		e.tasks.Add(im.PushTask{App: appA.SDKAppID, ID: fmt.Sprint("t", i), From: "administrator"}, alice)
	}
	r := e.do(http.MethodGet, e.v1("/v1/sync", appA, "alice", sig(t, appA, "alice"), nil), "")
	var p struct {
		Pushes   []json.RawMessage
		Cursor   int64
		Complete bool
	}
	_ = json.Unmarshal([]byte(jsonOf(r)), &p)
	if len(p.Pushes) != 50 || p.Complete || p.Cursor != 50 {
		t.Fatalf("default page: %d pushes, cursor %d, complete %v", len(p.Pushes), p.Cursor, p.Complete)
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)

func TestDeviceRegister(t *testing.T) {
	e := newClientEnv(t)
	ctx := context.Background()
	register := func(user, body string) reply {
		t.Helper()
		return e.do(http.MethodPost, e.v1("/v1/device/register", appA, user, sig(t, appA, user), nil), body)
	}
	r := register("alice", `{"Platform":"ios","Token":"a1b2c3"}`)
	wantCode(t, r, 0)
	regID, _ := r["RegistrationID"].(string)
	if !uuidV4.MatchString(regID) {
		t.Fatalf("RegistrationID %q is not an upper-case UUID v4", regID)
	}
	accts, err := e.store.Accounts(ctx, appA.SDKAppID, []string{regID})
	if err != nil {
		t.Fatal(err)
	}
	if a := accts[regID]; a.Type != im.AcctRegistrationID || a.Owner != "alice" || a.Platform != "ios" || a.Token != "a1b2c3" {
		t.Fatalf("device account %+v", a)
	}
	// The RegistrationID is a type-1 account for tags, attributes and batch.
	if _, ok := e.index.Ordinal(appA.SDKAppID, regID); !ok {
		t.Fatal("RegistrationID not in the audience index")
	}
	wantCode(t, e.call("timpush/add_tag", `{"UserTags":[{"To_Account":"`+regID+`","Tags":["ios-users"]}]}`), 0)
	r = e.call("timpush/get_tag", `{"To_Account":["`+regID+`"]}`)
	if got := jsonOf(r["UserTags"]); !strings.Contains(got, "ios-users") {
		t.Fatalf("get_tag = %s", got)
	}

	// A custom RegistrationID is kept; its owner may update it.
	r = register("alice", `{"Platform":"android","Token":"t1","RegistrationID":"alice-pixel-1"}`)
	wantCode(t, r, 0)
	if r["RegistrationID"] != "alice-pixel-1" {
		t.Fatalf("custom id answered %v", r["RegistrationID"])
	}
	wantCode(t, register("alice", `{"Platform":"android","Token":"t2","RegistrationID":"alice-pixel-1"}`), 0)
	accts, _ = e.store.Accounts(ctx, appA.SDKAppID, []string{"alice-pixel-1"})
	if a := accts["alice-pixel-1"]; a.Token != "t2" {
		t.Fatalf("updated device %+v", a)
	}

	for _, tc := range []struct {
		name, user, body string
		code             int
	}{
		{"another user's device", "bob", `{"Platform":"android","RegistrationID":"alice-pixel-1"}`, im.CodeAccountBadParam},
		{"RegistrationID that is a UserID", "alice", `{"Platform":"ios","RegistrationID":"bob"}`, im.CodeAccountBadParam},
		{"no platform", "alice", `{"Token":"x"}`, im.CodeAccountBadParam},
		{"bad platform", "alice", `{"Platform":"i os"}`, im.CodeAccountBadParam},
		{"long platform", "alice", `{"Platform":"` + strings.Repeat("p", 33) + `"}`, im.CodeAccountBadParam},
		{"long token", "alice", `{"Platform":"ios","Token":"` + strings.Repeat("t", 1025) + `"}`, im.CodeAccountBadParam},
		{"token with spaces", "alice", `{"Platform":"ios","Token":"a b"}`, im.CodeAccountBadParam},
		{"long RegistrationID", "alice", `{"Platform":"ios","RegistrationID":"` + strings.Repeat("r", 65) + `"}`, im.CodeAccountBadParam},
		{"bad RegistrationID", "alice", `{"Platform":"ios","RegistrationID":"a/b"}`, im.CodeAccountBadParam},
		{"not JSON", "alice", `Platform=ios`, im.CodeBodyJSON},
		{"empty body", "alice", ``, im.CodeBodyJSON},
		{"wrong type", "alice", `{"Platform":7}`, im.CodeBodyJSON},
		{"body over 4 KiB", "alice", `{"Platform":"ios","Pad":"` + strings.Repeat("x", 4096) + `"}`, im.CodeBadHTTP},
		{"unknown user", "ghost", `{"Platform":"ios"}`, im.CodeAccountNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, register(tc.user, tc.body), tc.code) })
	}
	wantCode(t, e.do(http.MethodGet, e.v1("/v1/device/register", appA, "alice", sig(t, appA, "alice"), nil), ""), im.CodeBadURL)
	wantCode(t, e.do(http.MethodPost, e.v1("/v1/device/register", appA, "alice", "garbage", nil), `{"Platform":"ios"}`), im.CodeSigInvalid)
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
