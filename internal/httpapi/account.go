package httpapi

import (
	"fmt"

	"timd/internal/im"
)

// accountImportReq is one account to import. Identifier is the earlier
// name of UserID (Tencent's older account_import page; older SDKs still
// send it): either may name the account, and both must agree.
type accountImportReq struct {
	UserID     *string `json:"UserID"`
	Identifier *string `json:"Identifier"`
	Nick       string  `json:"Nick"`
	FaceURL    string  `json:"FaceUrl"`
}

// userIDOf returns the account an object names by UserID or by its alias
// Identifier: 70402 when it names none, or two different ones. where
// prefixes the error text.
func userIDOf(where string, userID, identifier *string) (string, error) {
	switch {
	case userID == nil && identifier == nil:
		return "", im.Errorf(im.CodeAccountBadParam, "%sUserID is required", where)
	case userID == nil:
		return *identifier, nil
	case identifier != nil && *identifier != *userID:
		return "", im.Errorf(im.CodeAccountBadParam, "%sUserID and its older name Identifier differ; send one", where)
	}
	return *userID, nil
}

func (s *Server) accountImport(r *request) (any, error) {
	var req accountImportReq
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	id, err := userIDOf("", req.UserID, req.Identifier)
	if err != nil {
		return nil, err
	}
	in := im.AccountInput{UserID: id, Nick: req.Nick, FaceURL: req.FaceURL}
	return nil, s.svc.Accounts.Import(r.ctx, r.app.SDKAppID, in)
}

type multiImportReq struct {
	Accounts    []string           `json:"Accounts"`
	AccountList []accountImportReq `json:"AccountList"`
}

type multiImportResp struct {
	FailAccounts []string `json:"FailAccounts"`
}

// multiAccountImport accepts both request shapes of docs/api.md, "Accounts".
func (s *Server) multiAccountImport(r *request) (any, error) {
	var req multiImportReq
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	if req.Accounts != nil && req.AccountList != nil {
		return nil, im.Errorf(im.CodeAccountBadParam, "send Accounts or AccountList, not both")
	}
	in := make([]im.AccountInput, 0, len(req.Accounts)+len(req.AccountList))
	for _, id := range req.Accounts {
		in = append(in, im.AccountInput{UserID: id})
	}
	for i, a := range req.AccountList {
		id, err := userIDOf(fmt.Sprintf("AccountList item %d: ", i), a.UserID, a.Identifier)
		if err != nil {
			return nil, err
		}
		in = append(in, im.AccountInput{UserID: id, Nick: a.Nick, FaceURL: a.FaceURL})
	}
	fail, err := s.svc.Accounts.ImportMany(r.ctx, r.app.SDKAppID, in)
	if err != nil {
		return nil, err
	}
	if fail == nil {
		fail = []string{}
	}
	return multiImportResp{FailAccounts: fail}, nil
}

type userItem struct {
	UserID *string `json:"UserID"`
}

// userIDs extracts the UserIDs of DeleteItem/CheckItem lists: 70402 when
// an item has none.
func userIDs(items []userItem) ([]string, error) {
	ids := make([]string, len(items))
	for i, it := range items {
		if it.UserID == nil {
			return nil, im.Errorf(im.CodeAccountBadParam, "item %d has no UserID", i)
		}
		ids[i] = *it.UserID
	}
	return ids, nil
}

type resultItem struct {
	ResultCode    int    `json:"ResultCode"`
	ResultInfo    string `json:"ResultInfo"`
	UserID        string `json:"UserID"`
	AccountStatus string `json:"AccountStatus,omitempty"`
}

type resultResp struct {
	ResultItem []resultItem `json:"ResultItem"`
}

func (s *Server) accountDelete(r *request) (any, error) {
	var req struct {
		DeleteItem []userItem `json:"DeleteItem"`
	}
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	ids, err := userIDs(req.DeleteItem)
	if err != nil {
		return nil, err
	}
	existed, err := s.svc.Accounts.Delete(r.ctx, r.app.SDKAppID, ids)
	if err != nil {
		return nil, err
	}
	out := resultResp{ResultItem: make([]resultItem, len(ids))}
	for i, id := range ids {
		out.ResultItem[i] = resultItem{UserID: id}
		if !existed[i] {
			out.ResultItem[i].ResultCode = im.CodeAccountNotFound
			out.ResultItem[i].ResultInfo = "Err_TLS_PT_Open_Login_Account_Not_Exist"
		}
	}
	return out, nil
}

func (s *Server) accountCheck(r *request) (any, error) {
	var req struct {
		CheckItem []userItem `json:"CheckItem"`
	}
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	ids, err := userIDs(req.CheckItem)
	if err != nil {
		return nil, err
	}
	imported, err := s.svc.Accounts.Check(r.ctx, r.app.SDKAppID, ids)
	if err != nil {
		return nil, err
	}
	out := resultResp{ResultItem: make([]resultItem, len(ids))}
	for i, id := range ids {
		status := "NotImported"
		if imported[i] {
			status = "Imported"
		}
		out.ResultItem[i] = resultItem{UserID: id, AccountStatus: status}
	}
	return out, nil
}

// kick accepts Identifier as the older name of UserID, as account_import
// does.
func (s *Server) kick(r *request) (any, error) {
	var req struct {
		UserID     *string `json:"UserID"`
		Identifier *string `json:"Identifier"`
	}
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	id, err := userIDOf("", req.UserID, req.Identifier)
	if err != nil {
		return nil, err
	}
	return nil, s.svc.Accounts.Kick(r.ctx, r.app.SDKAppID, id)
}

type onlineReq struct {
	ToAccount    []string `json:"To_Account"`
	IsNeedDetail int      `json:"IsNeedDetail"`
}

type onlineDetail struct {
	Platform string `json:"Platform"`
	Status   string `json:"Status"`
}

type onlineResult struct {
	ToAccount string         `json:"To_Account"`
	Status    string         `json:"Status"`
	Detail    []onlineDetail `json:"Detail,omitempty"`
}

type onlineResp struct {
	QueryResult []onlineResult `json:"QueryResult"`
	ErrorList   []itemError    `json:"ErrorList,omitempty"`
}

// itemError is one failed item of a partially successful request.
type itemError struct {
	ToAccount string `json:"To_Account"`
	ErrorCode int    `json:"ErrorCode"`
	ErrorInfo string `json:"ErrorInfo,omitempty"`
}

func (s *Server) queryOnlineStatus(r *request) (any, error) {
	var req onlineReq
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	st, err := s.svc.Accounts.Online(r.ctx, r.app.SDKAppID, req.ToAccount)
	if err != nil {
		return nil, err
	}
	out := onlineResp{QueryResult: []onlineResult{}}
	for _, a := range st {
		if !a.Found {
			out.ErrorList = append(out.ErrorList, itemError{ToAccount: a.ID, ErrorCode: im.CodeAccountNotFound})
			continue
		}
		res := onlineResult{ToAccount: a.ID, Status: "Offline"}
		switch {
		case len(a.Platforms) > 0:
			res.Status = "Online"
		case len(a.PushPlatforms) > 0:
			res.Status = "PushOnline" // reachable through a vendor
		}
		if req.IsNeedDetail == 1 {
			for _, p := range a.Platforms {
				res.Detail = append(res.Detail, onlineDetail{Platform: p, Status: "Online"})
			}
			for _, p := range a.PushPlatforms {
				res.Detail = append(res.Detail, onlineDetail{Platform: p, Status: "PushOnline"})
			}
		}
		out.QueryResult = append(out.QueryResult, res)
	}
	return out, nil
}
