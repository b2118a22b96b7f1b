package httpapi

import (
	"timd/internal/im"
	"timd/internal/service"
)

// statsReq is the body of the statistics and loss commands. It is closed
// (closedKeys): a misspelt TaskID filter would otherwise answer for every
// task.
type statsReq struct {
	StartTime *int64   `json:"StartTime"`
	EndTime   *int64   `json:"EndTime"`
	TaskID    []string `json:"TaskID"`
}

func (statsReq) closedKeys() {}

// window decodes a statistics body: 90001 when it is not a JSON object of
// the right types or StartTime/EndTime is missing.
func (s *Server) window(r *request) (service.Window, []string, error) {
	var req statsReq
	if err := decode(r.body, &req); err != nil {
		return service.Window{}, nil, err
	}
	if req.StartTime == nil || req.EndTime == nil {
		return service.Window{}, nil, im.KindErrorf(im.KindBadParam, "StartTime and EndTime are required")
	}
	return service.Window{Start: *req.StartTime, End: *req.EndTime}, req.TaskID, nil
}

type resultsResp[T any] struct {
	Results []T `json:"Results"`
}

func (s *Server) allMemberPushStatistics(r *request) (any, error) {
	w, ids, err := s.window(r)
	if err != nil {
		return nil, err
	}
	res, err := s.svc.Stats.AllMember(r.ctx, r.app.SDKAppID, w, ids)
	if err != nil {
		return nil, err
	}
	return resultsResp[service.TaskStatistics]{res}, nil
}

// normalPushStatistics answers the counts at the top level.
func (s *Server) normalPushStatistics(r *request) (any, error) {
	w, _, err := s.window(r)
	if err != nil {
		return nil, err
	}
	res, err := s.svc.Stats.Normal(r.ctx, r.app.SDKAppID, w)
	if err != nil {
		return nil, err
	}
	return struct {
		service.Counts
		PlatformStatistics []service.PlatformCounts `json:"PlatformStatistics"`
	}{res.Counts, res.PlatformStatistics}, nil
}

func (s *Server) allMemberPushLoss(r *request) (any, error) {
	w, ids, err := s.window(r)
	if err != nil {
		return nil, err
	}
	res, err := s.svc.Stats.AllMemberLoss(r.ctx, r.app.SDKAppID, w, ids)
	if err != nil {
		return nil, err
	}
	return resultsResp[lossResult]{toLossResults(res)}, nil
}

// lossResult is a Results item of all_member_push_loss: TaskID always
// present (empty for the overall result).
type lossResult struct {
	TaskID string `json:"TaskID"`
	service.Loss
}

func toLossResults(ls []service.Loss) []lossResult {
	out := make([]lossResult, len(ls))
	for i, l := range ls {
		out[i] = lossResult{TaskID: l.TaskID, Loss: l}
		out[i].Loss.TaskID = ""
	}
	return out
}

// normalPushLoss answers the loss lists at the top level.
func (s *Server) normalPushLoss(r *request) (any, error) {
	w, _, err := s.window(r)
	if err != nil {
		return nil, err
	}
	return s.svc.Stats.NormalLoss(r.ctx, r.app.SDKAppID, w)
}

func (s *Server) allMemberPushTrace(r *request) (any, error) {
	var req traceReq
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	in, err := s.svc.Stats.Trace(r.ctx, r.app.SDKAppID, req.TaskID, req.UserID)
	if err != nil {
		return nil, err
	}
	return traceResp{in}, nil
}

func (s *Server) normalPushTrace(r *request) (any, error) {
	var req struct {
		PushID string `json:"PushID"`
	}
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	in, err := s.svc.Stats.NormalTrace(r.ctx, r.app.SDKAppID, req.PushID)
	if err != nil {
		return nil, err
	}
	return traceResp{in}, nil
}

// traceReq is the body of all_member_push_trace; closed like statsReq.
type traceReq struct {
	TaskID string `json:"TaskID"`
	UserID string `json:"UserID"`
}

func (traceReq) closedKeys() {}

type traceResp struct {
	InstanceTrace []service.Instance `json:"InstanceTrace"`
}
