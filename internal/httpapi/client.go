package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"timd/internal/deliver"
	"timd/internal/im"
	"timd/internal/service"
)

// The /v1 client API (docs/client-api.md): end users authenticate with
// their own UserSig in the query string (sdkappid, identifier, usersig)
// and reach only their own data. The routes are in clientRoutes; the
// dispatcher authenticates the caller as an imported account first. Every
// answer other than a successful WebSocket upgrade is the Tencent envelope
// with HTTP 200.

// connect upgrades to the live WebSocket (GET /v1/connect). Query: the
// auth parameters, platform (default "Web"; 1..32 of [A-Za-z0-9._-]),
// since (a Seq, default 0) and batch (0 or 1, default 0: batched
// catch-up). Anything wrong is answered as an envelope before the
// upgrade: 60025 for platform, since or batch, 60008 for a request
// that is not a WebSocket handshake.
func (s *Server) connect(r *request) (any, error) {
	platform := r.query["platform"]
	if platform == "" {
		platform = "Web"
	}
	if !service.ValidPlatform(platform) {
		return nil, im.Errorf(im.CodeBadURLParam, "platform must be 1 to %d letters, digits, '.', '_' or '-'", service.MaxPlatformLen)
	}
	if _, err := queryInt(r.query, "since", 0); err != nil {
		return nil, err
	}
	if _, err := deliver.ParseBatch(r.query["batch"]); err != nil {
		return nil, im.Errorf(im.CodeBadURLParam, "%v", err)
	}
	if err := checkHandshake(r.http); err != nil {
		return nil, err
	}
	s.svc.Hub.Accept(r.w, r.http, r.app, r.acct, platform)
	return nil, errAnswered
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
// sent live (deliver.PushFrame: valid, compact JSON). It writes its own
// fields (fieldsAppender): encoding/json would re-validate and re-compact
// every frame of every answer. The bytes are those encoding/json writes
// (TestSyncRespMatchesEncodingJSON).
type syncResp struct {
	Pushes   []json.RawMessage `json:"Pushes"`
	Cursor   int64             `json:"Cursor"`
	Complete bool              `json:"Complete"`
}

func (r syncResp) sizeHint() int {
	n := 64
	for _, p := range r.Pushes {
		n += len(p) + 1
	}
	return n
}

func (r syncResp) appendFields(b []byte) []byte {
	b = append(b, `"Pushes":[`...)
	for i, p := range r.Pushes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, p...)
	}
	b = append(b, `],"Cursor":`...)
	b = strconv.AppendInt(b, r.Cursor, 10)
	b = append(b, `,"Complete":`...)
	return strconv.AppendBool(b, r.Complete)
}

// sync pages the caller's stored pushes (GET /v1/sync). Query: the auth
// parameters, cursor (a Seq, default 0) and limit (default 50, at most
// 200). 60025 for a malformed cursor or limit.
func (s *Server) sync(r *request) (any, error) {
	cursor, err := queryInt(r.query, "cursor", 0)
	if err != nil {
		return nil, err
	}
	limit, err := queryInt(r.query, "limit", service.DefaultSyncLimit)
	if err != nil {
		return nil, err
	}
	if limit < 1 || limit > service.MaxSyncLimit {
		return nil, im.Errorf(im.CodeBadURLParam, "limit must be 1 to %d", service.MaxSyncLimit)
	}
	frames, next, complete, err := s.svc.Inbox.SyncFrames(r.ctx, r.app, r.acct, cursor, int(limit), s.svc.Hub)
	if err != nil {
		return nil, err
	}
	out := syncResp{Pushes: make([]json.RawMessage, len(frames)), Cursor: next, Complete: complete}
	for i, f := range frames {
		out.Pushes[i] = f
	}
	return out, nil
}

// deviceReq is the body of POST /v1/device/register.
type deviceReq struct {
	Platform       string        `json:"Platform"`
	Token          string        `json:"Token"`
	RegistrationID string        `json:"RegistrationID"`
	Vendor         string        `json:"Vendor"`
	Bundle         string        `json:"Bundle"`
	Subscription   *subscription `json:"Subscription"`
}

// subscription is a browser's PushSubscription.toJSON(), verbatim.
type subscription struct {
	Endpoint       string          `json:"endpoint"`
	ExpirationTime json.RawMessage `json:"expirationTime"`
	Keys           struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// deviceResp answers a registration. DeviceCredential is set only for a
// RegistrationID-only device registering with a UserSig.
type deviceResp struct {
	RegistrationID   string `json:"RegistrationID"`
	DeviceCredential string `json:"DeviceCredential,omitempty"`
}

// registerDevice records a device (POST /v1/device/register) and answers
// its RegistrationID. The caller is a user registering its own device, a
// UserSig for an identifier that is no account (a RegistrationID-only
// device of that name, which gets a DeviceCredential), or such a device
// with its credential (refreshing its token). 60008 for a body over 4 KiB
// (read by the dispatcher), 60003 for a body that is empty or not a JSON
// object, 70402 for invalid fields, 70398 past the devices per user.
func (s *Server) registerDevice(r *request) (any, error) {
	var req deviceReq
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	dr := service.DeviceRequest{Platform: req.Platform, Token: req.Token, RegistrationID: req.RegistrationID,
		Vendor: im.Vendor(req.Vendor), Bundle: req.Bundle}
	if sub := req.Subscription; sub != nil {
		dr.Endpoint, dr.P256dh, dr.Auth = sub.Endpoint, sub.Keys.P256dh, sub.Keys.Auth
	}
	switch {
	case r.acct.Type == im.AcctUserID && r.acct.ID != "":
		dr.Owner = r.acct.ID
	case r.device: // a RegistrationID-only device with its credential
		if dr.RegistrationID != "" && dr.RegistrationID != r.identifier {
			return nil, im.Errorf(im.CodeAccountBadParam, "a RegistrationID-only device registers as its identifier %q", r.identifier)
		}
		dr.RegistrationID, dr.KeepCredential = r.identifier, true
	default: // a UserSig for a name that is no account
		if dr.RegistrationID != r.identifier {
			return nil, im.Errorf(im.CodeAccountNotFound,
				"account %s was never imported (a RegistrationID-only device names itself: RegistrationID equal to identifier)", r.identifier)
		}
	}
	reg, err := s.svc.Devices.RegisterDevice(r.ctx, r.app.SDKAppID, dr)
	if err != nil {
		return nil, err
	}
	return deviceResp{RegistrationID: reg.Account.ID, DeviceCredential: reg.Credential}, nil
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
