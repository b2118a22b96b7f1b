package httpapi

import (
	"encoding/json"

	"timd/internal/im"
	"timd/internal/service"
)

// taskIDResp answers the push commands.
type taskIDResp struct {
	TaskID string `json:"TaskId"`
}

// batchResp answers batch: the TaskId and the recipients not accepted.
type batchResp struct {
	TaskID    string      `json:"TaskId"`
	ErrorList []itemError `json:"ErrorList,omitempty"`
}

// errNoPush answers push commands on a server built without them.
var errNoPush = im.Errorf(im.CodePushDisabled, "push is not enabled on this server")

// push serves timpush/push (both the message and the notification form).
func (s *Server) push(r *request) (any, error) {
	req, err := parsePushBody(r.body, im.PushCondition)
	if err != nil {
		return nil, err
	}
	id, err := s.svc.Push.Push(r.ctx, r.app.SDKAppID, r.identifier, req)
	if err != nil {
		return nil, err
	}
	return taskIDResp{TaskID: id}, nil
}

// imPush serves the legacy all_member_push/im_push.
func (s *Server) imPush(r *request) (any, error) {
	req, err := parsePushBody(r.body, im.PushLegacy)
	if err != nil {
		return nil, err
	}
	id, err := s.svc.Push.Legacy(r.ctx, r.app.SDKAppID, r.identifier, req)
	if err != nil {
		return nil, err
	}
	return taskIDResp{TaskID: id}, nil
}

// batch serves timpush/batch; a failed request still carries "TaskId":"".
func (s *Server) batch(r *request) (any, error) {
	req, err := parsePushBody(r.body, im.PushBatch)
	if err != nil {
		return batchResp{}, err
	}
	id, errs, err := s.svc.Push.Batch(r.ctx, r.app.SDKAppID, r.identifier, req)
	if err != nil {
		return batchResp{}, err
	}
	out := batchResp{TaskID: id}
	for _, e := range errs {
		out.ErrorList = append(out.ErrorList, itemError{ToAccount: e.Account, ErrorCode: e.Code})
	}
	return out, nil
}

// revokeReq is the body of timpush/revoke.
type revokeReq struct {
	TaskID          string          `json:"TaskId"`
	OfflinePushInfo json.RawMessage `json:"OfflinePushInfo"`
}

// revoke serves timpush/revoke; the answer is the bare envelope. 90001
// when the body is not an object, TaskId is not a string or is missing,
// or OfflinePushInfo is not an object; the rest are Push.Revoke's.
func (s *Server) revoke(r *request) (any, error) {
	var req revokeReq
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	var offline service.PushRequest
	if len(req.OfflinePushInfo) > 0 {
		if err := parseOffline(map[string]json.RawMessage{"OfflinePushInfo": req.OfflinePushInfo}, &offline); err != nil {
			return nil, err
		}
	}
	return nil, s.svc.Push.Revoke(r.ctx, r.app.SDKAppID, req.TaskID, offline.Offline)
}
