package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"timd/internal/deliver"
	"timd/internal/im"
	"timd/internal/service"
)

// clientBodyLimit bounds a /v1 request body (a device registration).
const clientBodyLimit = 4 << 10

// ClientAPI serves timd's own client-facing API under /v1 (see
// docs/client-api.md): end users authenticate with their own UserSig in
// the query string (sdkappid, identifier, usersig) and reach only their
// own data. Every answer other than a successful WebSocket upgrade is the
// Tencent envelope with HTTP 200.
type ClientAPI struct {
	auth    *service.Auth
	hub     *deliver.Hub
	inbox   *service.Inbox
	devices *service.Devices
	log     *slog.Logger
}

// NewClientAPI returns the /v1 handler: GET /v1/connect, GET /v1/sync and
// POST /v1/device/register.
func NewClientAPI(auth *service.Auth, hub *deliver.Hub, inbox *service.Inbox, devices *service.Devices, log *slog.Logger) http.Handler {
	return &ClientAPI{auth: auth, hub: hub, inbox: inbox, devices: devices, log: log}
}

// clientRoute is one /v1 endpoint.
type clientRoute struct {
	method string
	handle func(*ClientAPI, http.ResponseWriter, *http.Request, clientCaller) (any, error)
}

var clientRoutes = map[string]clientRoute{
	"/v1/connect":         {http.MethodGet, (*ClientAPI).connect},
	"/v1/sync":            {http.MethodGet, (*ClientAPI).sync},
	"/v1/device/register": {http.MethodPost, (*ClientAPI).registerDevice},
}

// clientCaller is an authenticated end user and the request's query.
type clientCaller struct {
	app  im.App
	acct im.Account
	vals map[string]string
}

// errUpgraded is returned by a handler that took the connection over.
var errUpgraded = errors.New("connection upgraded")

// ServeHTTP authenticates the caller, then dispatches.
func (a *ClientAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("panic in client handler", "path", r.URL.Path, "panic", p)
			writeEnvelope(w, im.CodeAccountInternal, "internal error, please retry", nil)
		}
	}()
	rt, ok := clientRoutes[r.URL.Path]
	if !ok {
		a.fail(w, im.Errorf(im.CodeUnknownCommand, "unknown path %q", r.URL.Path))
		return
	}
	if r.Method != rt.method {
		a.fail(w, im.Errorf(im.CodeBadURL, "method %s not allowed, use %s", r.Method, rt.method))
		return
	}
	caller, err := a.authenticate(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	payload, err := rt.handle(a, w, r, caller)
	switch {
	case err == errUpgraded:
	case err != nil:
		a.fail(w, err)
	default:
		writeEnvelope(w, 0, "", payload)
	}
}

// authenticate checks the query's sdkappid (60012 missing, 60025
// malformed), identifier (60025) and usersig (70002 empty), then the
// UserSig and the account (70001, 70003, 70009, 70013, 70014, 70016,
// 70020, 70050, 70052, 70107).
func (a *ClientAPI) authenticate(r *http.Request) (clientCaller, error) {
	vals, err := parseValues(r.URL.RawQuery)
	if err != nil {
		return clientCaller{}, im.Errorf(im.CodeBadURL, "malformed query string")
	}
	sid := vals["sdkappid"]
	if sid == "" {
		return clientCaller{}, im.Errorf(im.CodeNoSDKAppID, "sdkappid is missing")
	}
	id, err := strconv.ParseUint(sid, 10, 32)
	if err != nil || id == 0 {
		return clientCaller{}, im.Errorf(im.CodeBadURLParam, "sdkappid %q is not a valid SDKAppID", sid)
	}
	identifier := vals["identifier"]
	if identifier == "" || len(identifier) > im.MaxUserIDLen {
		return clientCaller{}, im.Errorf(im.CodeBadURLParam, "identifier is missing or longer than 32 bytes")
	}
	if vals["usersig"] == "" {
		return clientCaller{}, im.Errorf(im.CodeSigEmpty, "usersig is empty")
	}
	app, acct, err := a.auth.User(r.Context(), id, identifier, vals["usersig"])
	if err != nil {
		return clientCaller{}, err
	}
	return clientCaller{app: app, acct: acct, vals: vals}, nil
}

// fail writes err's envelope; unexpected errors are logged once.
func (a *ClientAPI) fail(w http.ResponseWriter, err error) {
	code, info, unexpected := codeFor(famAccount, err)
	if unexpected {
		a.log.Error("client request failed", "err", err)
	}
	writeEnvelope(w, code, info, nil)
}

// connect upgrades to the live WebSocket (GET /v1/connect). Query: the
// auth parameters, platform (default "Web"; 1..32 of [A-Za-z0-9._-]) and
// since (a Seq, default 0). Anything wrong is answered as an envelope
// before the upgrade: 60025 for platform or since, 60008 for a request
// that is not a WebSocket handshake.
func (a *ClientAPI) connect(w http.ResponseWriter, r *http.Request, c clientCaller) (any, error) {
	platform := c.vals["platform"]
	if platform == "" {
		platform = "Web"
	}
	if !service.ValidPlatform(platform) {
		return nil, im.Errorf(im.CodeBadURLParam, "platform must be 1 to %d letters, digits, '.', '_' or '-'", service.MaxPlatformLen)
	}
	if _, err := queryInt(c.vals, "since", 0); err != nil {
		return nil, err
	}
	if err := checkHandshake(r); err != nil {
		return nil, err
	}
	a.hub.Accept(w, r, c.app, c.acct, platform)
	return nil, errUpgraded
}

// checkHandshake rejects, with 60008, a request that the WebSocket
// upgrade would refuse with a plain-text error.
func checkHandshake(r *http.Request) error {
	h := r.Header
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h.Get("Sec-WebSocket-Key")))
	if !r.ProtoAtLeast(1, 1) || !headerHas(h, "Connection", "upgrade") || !headerHas(h, "Upgrade", "websocket") ||
		h.Get("Sec-WebSocket-Version") != "13" || len(h.Values("Sec-WebSocket-Key")) != 1 || err != nil || len(key) != 16 {
		return im.Errorf(im.CodeBadHTTP, "expected a WebSocket handshake (HTTP/1.1 GET with Upgrade: websocket, Sec-WebSocket-Version: 13)")
	}
	return nil
}

// headerHas reports whether the comma-separated header contains token,
// case-insensitively.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// syncResp is the /v1/sync payload. Pushes are push frames, exactly as
// sent live.
type syncResp struct {
	Pushes   []json.RawMessage `json:"Pushes"`
	Cursor   int64             `json:"Cursor"`
	Complete bool              `json:"Complete"`
}

// sync pages the caller's stored pushes (GET /v1/sync). Query: the auth
// parameters, cursor (a Seq, default 0) and limit (default 50, at most
// 200). 60025 for a malformed cursor or limit.
func (a *ClientAPI) sync(_ http.ResponseWriter, r *http.Request, c clientCaller) (any, error) {
	cursor, err := queryInt(c.vals, "cursor", 0)
	if err != nil {
		return nil, err
	}
	limit, err := queryInt(c.vals, "limit", service.DefaultSyncLimit)
	if err != nil {
		return nil, err
	}
	if limit < 1 || limit > service.MaxSyncLimit {
		return nil, im.Errorf(im.CodeBadURLParam, "limit must be 1 to %d", service.MaxSyncLimit)
	}
	pushes, next, complete, err := a.inbox.Sync(r.Context(), c.app, c.acct, cursor, int(limit))
	if err != nil {
		return nil, err
	}
	out := syncResp{Pushes: make([]json.RawMessage, len(pushes)), Cursor: next, Complete: complete}
	for i := range pushes {
		out.Pushes[i] = deliver.PushFrame(&pushes[i])
	}
	return out, nil
}

// deviceReq is the body of POST /v1/device/register.
type deviceReq struct {
	Platform       string `json:"Platform"`
	Token          string `json:"Token"`
	RegistrationID string `json:"RegistrationID"`
}

// registerDevice records the caller's device (POST /v1/device/register)
// and answers its RegistrationID. 60008 for a body over 4 KiB, 60003 for
// a body that is not a JSON object, 70402 for invalid fields.
func (a *ClientAPI) registerDevice(_ http.ResponseWriter, r *http.Request, c clientCaller) (any, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, clientBodyLimit+1))
	if err != nil {
		return nil, im.Errorf(im.CodeBadHTTP, "could not read request body")
	}
	if len(body) > clientBodyLimit {
		return nil, im.Errorf(im.CodeBadHTTP, "request body larger than %d bytes", clientBodyLimit)
	}
	var req deviceReq
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	acct, err := a.devices.Register(r.Context(), c.app.SDKAppID, c.acct.ID, req.Platform, req.Token, req.RegistrationID)
	if err != nil {
		return nil, err
	}
	return struct {
		RegistrationID string `json:"RegistrationID"`
	}{acct.ID}, nil
}

// queryInt parses a non-negative integer query parameter (60025 when
// malformed), or returns def when it is absent.
func queryInt(vals map[string]string, name string, def int64) (int64, error) {
	v, ok := vals[name]
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, im.Errorf(im.CodeBadURLParam, "%s must be a non-negative integer", name)
	}
	return n, nil
}
