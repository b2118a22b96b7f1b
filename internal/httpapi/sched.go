package httpapi

import "timd/internal/service"

// schedIDResp answers add, modify and delete_sched_task.
type schedIDResp struct {
	TaskID int64 `json:"TaskID"`
}

func (s *Server) addSchedTask(r *request) (any, error) {
	id, err := s.svc.Sched.Add(r.ctx, r.app.SDKAppID, r.identifier, r.body)
	if err != nil {
		return nil, err
	}
	return schedIDResp{TaskID: id}, nil
}

func (s *Server) modifySchedTask(r *request) (any, error) {
	id, err := s.svc.Sched.Modify(r.ctx, r.app.SDKAppID, r.identifier, r.body)
	if err != nil {
		return nil, err
	}
	return schedIDResp{TaskID: id}, nil
}

// deleteSchedTask answers "TaskID":0 on failure, as documented.
func (s *Server) deleteSchedTask(r *request) (any, error) {
	id, err := s.svc.Sched.Delete(r.ctx, r.app.SDKAppID, r.body)
	return schedIDResp{TaskID: id}, err
}

func (s *Server) getSchedTask(r *request) (any, error) {
	t, err := s.svc.Sched.Get(r.ctx, r.app.SDKAppID, r.body)
	if err != nil {
		return nil, err
	}
	return struct {
		TaskInfo service.SchedInfo `json:"TaskInfo"`
	}{t}, nil
}

func (s *Server) listSchedTask(r *request) (any, error) {
	total, tasks, err := s.svc.Sched.List(r.ctx, r.app.SDKAppID, r.body)
	if err != nil {
		return nil, err
	}
	return struct {
		Total int                 `json:"Total"`
		Tasks []service.SchedInfo `json:"Tasks"`
	}{total, tasks}, nil
}
