package httpapi

import "timd/internal/im"

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
	id, err := s.svc.Push.Push(r.ctx, r.app.SDKAppID, r.identifier, r.body)
	if err != nil {
		return nil, err
	}
	return taskIDResp{TaskID: id}, nil
}

// imPush serves the legacy all_member_push/im_push.
func (s *Server) imPush(r *request) (any, error) {
	id, err := s.svc.Push.Legacy(r.ctx, r.app.SDKAppID, r.identifier, r.body)
	if err != nil {
		return nil, err
	}
	return taskIDResp{TaskID: id}, nil
}

// batch serves timpush/batch; a failed request still carries "TaskId":"".
func (s *Server) batch(r *request) (any, error) {
	id, errs, err := s.svc.Push.Batch(r.ctx, r.app.SDKAppID, r.identifier, r.body)
	if err != nil {
		return batchResp{}, err
	}
	out := batchResp{TaskID: id}
	for _, e := range errs {
		out.ErrorList = append(out.ErrorList, itemError{ToAccount: e.Account, ErrorCode: e.Code})
	}
	return out, nil
}

// revoke serves timpush/revoke; the answer is the bare envelope.
func (s *Server) revoke(r *request) (any, error) {
	return nil, s.svc.Push.RevokeRequest(r.ctx, r.app.SDKAppID, r.body)
}
