package httpapi

import (
	"encoding/json"
	"strings"
	"time"

	"timd/internal/im"
	"timd/internal/service"
)

// schedIDResp answers add, modify and delete_sched_task.
type schedIDResp struct {
	TaskID int64 `json:"TaskID"`
}

// schedReq is the union of the scheduled-task request bodies (spec
// §7.4). It is open: its Content, a push body, is checked as one.
type schedReq struct {
	Sdkappid  *uint64         `json:"Sdkappid"`
	TaskID    *int64          `json:"TaskID"`
	Type      *string         `json:"Type"`
	SchedAt   *string         `json:"SchedAt"`
	Content   json.RawMessage `json:"Content"`
	Offset    *int            `json:"Offset"`
	Want      *int            `json:"Want"`
	OrderBy   *string         `json:"OrderBy"`
	Asc       *bool           `json:"Asc"`
	BeginTime *string         `json:"BeginTime"`
	EndTime   *string         `json:"EndTime"`
	Keyword   string          `json:"Keyword"`
}

func schedInvalid(format string, args ...any) error {
	return im.Errorf(im.CodeSchedInvalid, format, args...)
}

// decodeSched decodes a scheduled-task body and checks Sdkappid: 90001
// when the body is not a JSON object of the right types, 90104 when
// Sdkappid is missing or not the caller's app.
func decodeSched(r *request) (*schedReq, error) {
	var q schedReq
	if err := decode(r.body, &q); err != nil {
		return nil, err
	}
	if q.Sdkappid == nil || *q.Sdkappid != r.app.SDKAppID {
		return nil, schedInvalid("Sdkappid must equal the sdkappid of the URL")
	}
	return &q, nil
}

// taskID returns the required TaskID (90104 when missing).
func (q *schedReq) taskID() (int64, error) {
	if q.TaskID == nil {
		return 0, schedInvalid("TaskID is required")
	}
	return *q.TaskID, nil
}

// spec checks Type, SchedAt and Content: 90104 for an unknown Type, a
// malformed SchedAt, or a missing one when atRequired; Content is checked
// as the push body of Type (MsgRandom optional), with the push codes.
func (q *schedReq) spec(atRequired bool) (service.SchedSpec, error) {
	var spec service.SchedSpec
	typ, err := parseSchedType(q.Type)
	if err != nil {
		return spec, err
	}
	spec.Type = typ
	if q.SchedAt != nil || atRequired {
		if spec.SchedAt, err = parseSchedTime("SchedAt", q.SchedAt); err != nil {
			return spec, err
		}
	}
	if len(q.Content) > 0 && string(q.Content) != "null" {
		if spec.Content, err = parsePush(q.Content, service.SchedKind(typ), false); err != nil {
			return spec, err
		}
	}
	return spec, nil
}

func parseSchedType(v *string) (im.SchedType, error) {
	if v != nil {
		switch t := im.SchedType(*v); t {
		case im.SchedAll, im.SchedTag, im.SchedUser:
			return t, nil
		}
	}
	return "", schedInvalid("Type must be All, Tag or User")
}

func parseSchedTime(field string, v *string) (int64, error) {
	if v == nil {
		return 0, schedInvalid("%s is required", field)
	}
	t, err := time.ParseInLocation(service.SchedTimeLayout, *v, time.UTC)
	if err != nil {
		return 0, schedInvalid("%s must be YYYY-MM-DD HH:MM:SS (UTC)", field)
	}
	return t.Unix(), nil
}

// addSchedTask serves add_sched_task: Type, SchedAt and Content required.
func (s *Server) addSchedTask(r *request) (any, error) {
	q, err := decodeSched(r)
	if err != nil {
		return nil, err
	}
	spec, err := q.spec(true)
	if err != nil {
		return nil, err
	}
	id, err := s.svc.Sched.Add(r.ctx, r.app.SDKAppID, r.identifier, spec)
	if err != nil {
		return nil, err
	}
	return schedIDResp{TaskID: id}, nil
}

// modifySchedTask serves modify_sched_task: TaskID and Type required,
// SchedAt and Content optional.
func (s *Server) modifySchedTask(r *request) (any, error) {
	q, err := decodeSched(r)
	if err != nil {
		return nil, err
	}
	id, err := q.taskID()
	if err != nil {
		return nil, err
	}
	spec, err := q.spec(false)
	if err != nil {
		return nil, err
	}
	id, err = s.svc.Sched.Modify(r.ctx, r.app.SDKAppID, r.identifier, id, spec)
	if err != nil {
		return nil, err
	}
	return schedIDResp{TaskID: id}, nil
}

// deleteSchedTask answers "TaskID":0 on failure, as documented. Type is
// optional; when given it must be the task's.
func (s *Server) deleteSchedTask(r *request) (any, error) {
	q, err := decodeSched(r)
	if err != nil {
		return schedIDResp{}, err
	}
	id, err := q.taskID()
	if err != nil {
		return schedIDResp{}, err
	}
	var typ im.SchedType
	if q.Type != nil {
		typ = im.SchedType(*q.Type)
		if typ == "" {
			return schedIDResp{}, schedInvalid("Type must be All, Tag or User")
		}
	}
	id, err = s.svc.Sched.Delete(r.ctx, r.app.SDKAppID, id, typ)
	return schedIDResp{TaskID: id}, err
}

func (s *Server) getSchedTask(r *request) (any, error) {
	q, err := decodeSched(r)
	if err != nil {
		return nil, err
	}
	id, err := q.taskID()
	if err != nil {
		return nil, err
	}
	t, err := s.svc.Sched.Get(r.ctx, r.app.SDKAppID, id)
	if err != nil {
		return nil, err
	}
	return struct {
		TaskInfo service.SchedInfo `json:"TaskInfo"`
	}{t}, nil
}

func (s *Server) listSchedTask(r *request) (any, error) {
	q, err := decodeSched(r)
	if err != nil {
		return nil, err
	}
	lq, err := q.listQuery()
	if err != nil {
		return nil, err
	}
	total, tasks, err := s.svc.Sched.List(r.ctx, r.app.SDKAppID, lq)
	if err != nil {
		return nil, err
	}
	return struct {
		Total int                 `json:"Total"`
		Tasks []service.SchedInfo `json:"Tasks"`
	}{total, tasks}, nil
}

// listQuery checks a list_sched_task body: 90104 for a negative Offset,
// Want under 1, an unknown OrderBy, only one of BeginTime and EndTime, or
// BeginTime after EndTime. Want over 100 reads 100; OrderBy (default
// createAt) is matched case-insensitively.
func (q *schedReq) listQuery() (im.SchedQuery, error) {
	lq := im.SchedQuery{Limit: service.MaxSchedList}
	if q.Offset != nil {
		if lq.Offset = *q.Offset; lq.Offset < 0 {
			return lq, schedInvalid("Offset must not be negative")
		}
	}
	if q.Want == nil || *q.Want < 1 {
		return lq, schedInvalid("Want must be greater than 0")
	}
	lq.Limit = min(*q.Want, service.MaxSchedList)
	if q.OrderBy != nil {
		switch strings.ToLower(*q.OrderBy) {
		case "createat":
			lq.OrderBy = im.OrderCreatedAt
		case "schedat":
			lq.OrderBy = im.OrderSchedAt
		default:
			return lq, schedInvalid("OrderBy must be createAt or schedAt")
		}
	}
	lq.Asc = q.Asc != nil && *q.Asc
	if (q.BeginTime == nil) != (q.EndTime == nil) {
		return lq, schedInvalid("BeginTime and EndTime go together")
	}
	if q.BeginTime != nil {
		var err error
		if lq.Begin, err = parseSchedTime("BeginTime", q.BeginTime); err != nil {
			return lq, err
		}
		if lq.End, err = parseSchedTime("EndTime", q.EndTime); err != nil {
			return lq, err
		}
		if lq.Begin > lq.End {
			return lq, schedInvalid("BeginTime is after EndTime")
		}
	}
	lq.Keyword = q.Keyword
	return lq, nil
}
