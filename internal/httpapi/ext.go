package httpapi

import (
	"encoding/json"
	"strconv"

	"timd/internal/audience"
	"timd/internal/im"
	"timd/internal/service"
)

// This file serves timd's own extensions under /v4/timd_ext/ (the
// console's questions; docs/compatibility.md, "timd extensions"). They
// go through the same routes table, authentication (an app admin's
// UserSig), rate limits and envelope as Tencent's commands, with the push
// family's error codes. Every body is closed: an unknown key is 90001.

// extService is the service name of the extensions: outside Tencent's
// command namespace, so that a future Tencent command can never collide.
const extService = "timd_ext"

// audienceCountKeys are the keys of an audience_count body.
var audienceCountKeys = []string{"Condition"}

// audienceCount answers how many recipients a push with the Condition
// would reach now, from the index: Count, and ElapsedMicros, the index's
// time. The Condition is parsed exactly as a push's (closed, no empty
// clause list); absent or null counts everyone.
func (s *Server) audienceCount(r *request) (any, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &fields); err != nil || fields == nil {
		return nil, im.KindErrorf(im.KindBadJSON, "request body is not a JSON object")
	}
	if err := closedObject("body", fields, audienceCountKeys); err != nil {
		return nil, err
	}
	req := &service.PushRequest{Kind: im.PushCondition}
	if err := parseCondition(fields, req); err != nil {
		return nil, err
	}
	n, took, err := s.svc.Insights.AudienceCount(r.ctx, r.app.SDKAppID, req.Condition)
	if err != nil {
		return nil, err
	}
	return struct {
		Count         uint64 `json:"Count"`
		ElapsedMicros int64  `json:"ElapsedMicros"`
	}{n, took.Microseconds()}, nil
}

// emptyReq is a body with no fields; closed, so that a caller who expects
// a filter to apply learns that none does.
type emptyReq struct{}

func (emptyReq) closedKeys() {}

// appSummary answers the app's counters (service.Summary).
func (s *Server) appSummary(r *request) (any, error) {
	if err := decode(r.body, &emptyReq{}); err != nil {
		return nil, err
	}
	return s.svc.Insights.Summary(r.ctx, r.app.SDKAppID)
}

// limitReq is a body with an optional Limit and Cursor.
type limitReq struct {
	Limit  *int64 `json:"Limit"`
	Cursor string `json:"Cursor"`
}

func (limitReq) closedKeys() {}

// limit returns req's Limit or def; 90001 outside 1..max (checked here,
// before an int conversion could wrap).
func (req limitReq) limit(def, max int) (int, error) {
	if req.Limit == nil {
		return def, nil
	}
	if *req.Limit < 1 || *req.Limit > int64(max) {
		return 0, im.KindErrorf(im.KindBadParam, "Limit must be from 1 to %d", max)
	}
	return int(*req.Limit), nil
}

type tagCount struct {
	Tag   string `json:"Tag"`
	Count uint64 `json:"Count"`
}

// tagHistogram answers the Limit most carried tags (default 20, at most
// 100), most carried first, and the number of distinct tags. A Cursor is
// refused: the histogram has no pages.
func (s *Server) tagHistogram(r *request) (any, error) {
	var req limitReq
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	if req.Cursor != "" {
		return nil, im.KindErrorf(im.KindBadJSON, "Cursor is not a field of tag_histogram; expected Limit")
	}
	n, err := req.limit(service.DefaultTopTags, service.MaxTopTags)
	if err != nil {
		return nil, err
	}
	top, distinct, err := s.svc.Insights.TagHistogram(r.app.SDKAppID, n)
	if err != nil {
		return nil, err
	}
	out := struct {
		Tags     []tagCount `json:"Tags"`
		Distinct int        `json:"Distinct"`
	}{Tags: make([]tagCount, len(top)), Distinct: distinct}
	for i, t := range top {
		out.Tags[i] = tagCount(t)
	}
	return out, nil
}

// accountItem is one account of a listing.
type accountItem struct {
	Account string `json:"Account"`
	Type    int    `json:"Type"`            // 0 UserID, 1 RegistrationID
	Owner   string `json:"Owner,omitempty"` // a RegistrationID's owner
}

func accountItems(es []audience.Entry) []accountItem {
	out := make([]accountItem, len(es))
	for i, e := range es {
		out[i] = accountItem{Account: e.ID, Type: int(e.Type), Owner: e.Owner}
	}
	return out
}

// accountList answers a page of accounts in creation order: Limit
// (default 100, at most 1000) from Cursor (absent or "": the first page),
// and NextCursor ("" on the last page). A cursor is opaque to callers;
// one that timd did not make is 90001.
func (s *Server) accountList(r *request) (any, error) {
	var req limitReq
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	n, err := req.limit(service.DefaultPageLimit, service.MaxAccountPage)
	if err != nil {
		return nil, err
	}
	var from uint64
	if req.Cursor != "" {
		if from, err = strconv.ParseUint(req.Cursor, 10, 32); err != nil || from == 0 {
			return nil, im.KindErrorf(im.KindBadParam, "Cursor is not one that account_list returned")
		}
	}
	page, next, err := s.svc.Insights.Accounts(r.app.SDKAppID, uint32(from), n)
	if err != nil {
		return nil, err
	}
	out := struct {
		Accounts   []accountItem `json:"Accounts"`
		NextCursor string        `json:"NextCursor"`
	}{Accounts: accountItems(page)}
	if next != 0 {
		out.NextCursor = strconv.FormatUint(uint64(next), 10)
	}
	return out, nil
}

// devicesReq is the body of account_devices.
type devicesReq struct {
	UserID *string `json:"UserID"`
}

func (devicesReq) closedKeys() {}

// accountDevices answers the RegistrationIDs (at most 100) a UserID owns;
// none for an unknown UserID.
func (s *Server) accountDevices(r *request) (any, error) {
	var req devicesReq
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	if req.UserID == nil || *req.UserID == "" {
		return nil, required("UserID")
	}
	return struct {
		Devices []accountItem `json:"Devices"`
	}{accountItems(s.svc.Insights.Devices(r.app.SDKAppID, *req.UserID))}, nil
}

// pushHistory answers the Limit newest tasks (default 50, at most 200) of
// the last 7 days with their funnel counts, newest first.
func (s *Server) pushHistory(r *request) (any, error) {
	var req limitReq
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	if req.Cursor != "" {
		return nil, im.KindErrorf(im.KindBadJSON, "Cursor is not a field of push_history; expected Limit")
	}
	n, err := req.limit(50, service.MaxHistory)
	if err != nil {
		return nil, err
	}
	tasks, err := s.svc.Insights.History(r.ctx, r.app.SDKAppID, n)
	if err != nil {
		return nil, err
	}
	return struct {
		Tasks []service.PushSummary `json:"Tasks"`
	}{tasks}, nil
}

// live answers the console's live counters (service.Live).
func (s *Server) live(r *request) (any, error) {
	if err := decode(r.body, &emptyReq{}); err != nil {
		return nil, err
	}
	return s.svc.Insights.Live(r.ctx, r.app.SDKAppID)
}
