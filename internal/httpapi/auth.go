package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"timd/internal/im"
	"timd/internal/service"
)

// authenticate is the one authentication of both tables, run before
// dispatch. It checks the query (see parseQuery), then the caller: for an
// admin endpoint the UserSig and the admin right (the family's not-admin
// code), for a user endpoint the UserSig and the account (70107). UserSig
// failures are 70001, 70003, 70009, 70013, 70014, 70016, 70020, 70050 and
// 70052 (see service.Auth).
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, ep *endpoint) (*request, error) {
	req := &request{ctx: r.Context(), w: w, http: r}
	if ep.caller == callerNone {
		return req, nil
	}
	q, err := parseQuery(r.URL.RawQuery, ep.caller == callerAdmin)
	if err != nil {
		return nil, err
	}
	req.identifier, req.query = q.identifier, q.vals
	if q.usersig == "" && ep.caller != callerAdmin {
		req.app, req.acct, err = s.svc.Auth.Device(req.ctx, q.sdkappid, q.identifier, q.devicetoken)
		req.device = true
		return req, err
	}
	cred := service.Credential{SDKAppID: q.sdkappid, Identifier: q.identifier, Sig: q.usersig,
		From: service.CallerAddr(r.RemoteAddr)}
	switch ep.caller {
	case callerAdmin:
		if req.app, err = s.svc.Auth.Admin(req.ctx, cred); err != nil {
			return nil, err
		}
		if !req.app.IsAdmin(q.identifier) {
			return nil, im.KindErrorf(im.KindNotAdmin, "request requires app admin")
		}
	case callerSigned:
		req.app, req.acct, err = s.svc.Auth.User(req.ctx, cred)
		if im.CodeOf(err) == im.CodeAccountNotFound {
			// Not an account: the sig vouches for a RegistrationID-only
			// device of this name (req.acct stays empty).
			req.app, err = s.svc.Auth.Signed(req.ctx, cred)
		}
		if err != nil {
			return nil, err
		}
	default:
		if req.app, req.acct, err = s.svc.Auth.User(req.ctx, cred); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// query is the validated common query string.
type query struct {
	sdkappid   uint64
	identifier string
	usersig    string
	// devicetoken is a device credential (/v1 only), used when usersig is
	// empty.
	devicetoken string
	random      uint32
	vals        map[string]string
}

// parseQuery validates the common parameters, in this order: 60002 for a
// malformed query string, 60012 when sdkappid is missing, 60025 when it or
// identifier is malformed or missing, then, for the REST API (rest set,
// docs/api.md, "Common to every command"), 60025 when contenttype is not json or random is not a
// uint32, and last 70002 when usersig is empty (and, for the client API,
// devicetoken too).
func parseQuery(raw string, rest bool) (query, error) {
	var q query
	vals, err := parseValues(raw)
	if err != nil {
		return q, im.Errorf(im.CodeBadURL, "malformed query string")
	}
	q.vals = vals
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
	if rest {
		if vals["contenttype"] != "json" {
			return q, im.Errorf(im.CodeBadURLParam, "contenttype must be json")
		}
		rnd, err := strconv.ParseUint(vals["random"], 10, 32)
		if err != nil {
			return q, im.Errorf(im.CodeBadURLParam, "random must be an integer from 0 to 4294967295")
		}
		q.random = uint32(rnd)
	}
	q.usersig = vals["usersig"]
	if q.usersig == "" && !rest {
		q.devicetoken = vals["devicetoken"]
	}
	if q.usersig == "" && q.devicetoken == "" {
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
