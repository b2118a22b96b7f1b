package httpapi

import (
	"timd/internal/im"
	"timd/internal/service"
)

type attrNamesReq struct {
	AttrNames service.SlotNames `json:"AttrNames"`
	AttrTypes service.SlotTypes `json:"AttrTypes"`
}

type attrNamesResp struct {
	AttrNames service.SlotNames `json:"AttrNames"`
	AttrTypes service.SlotTypes `json:"AttrTypes,omitempty"`
}

func (s *Server) setAttrName(r *request) (any, error)   { return s.setAttrNames(r, false) }
func (s *Server) imSetAttrName(r *request) (any, error) { return s.setAttrNames(r, true) }

// setAttrNames serves set_attr_name; the legacy form ignores AttrTypes.
func (s *Server) setAttrNames(r *request, legacy bool) (any, error) {
	var req attrNamesReq
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	if legacy {
		req.AttrTypes = nil
	}
	return nil, s.svc.Audience.SetAttrNames(r.ctx, r.app.SDKAppID, req.AttrNames, req.AttrTypes)
}

func (s *Server) getAttrName(r *request) (any, error)   { return s.getAttrNames(r, false) }
func (s *Server) imGetAttrName(r *request) (any, error) { return s.getAttrNames(r, true) }

func (s *Server) getAttrNames(r *request, legacy bool) (any, error) {
	var req struct{}
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	names, types, err := s.svc.Audience.AttrNames(r.ctx, r.app.SDKAppID)
	if err != nil {
		return nil, err
	}
	if legacy {
		types = nil
	}
	return attrNamesResp{AttrNames: names, AttrTypes: types}, nil
}

type userAttrsItem struct {
	ToAccount *string           `json:"To_Account"`
	Attrs     map[string]string `json:"Attrs"`
}

type userAttrsResp struct {
	UserAttrs []userAttrsOut `json:"UserAttrs"`
	ErrorList []itemError    `json:"ErrorList,omitempty"`
}

type userAttrsOut struct {
	ToAccount string            `json:"To_Account"`
	Attrs     map[string]string `json:"Attrs"`
}

// partial is the answer of a write with per-account results.
type partial struct {
	ErrorList []itemError `json:"ErrorList,omitempty"`
}

func (s *Server) setAttr(r *request) (any, error)   { return s.setAttrs(r, false) }
func (s *Server) imSetAttr(r *request) (any, error) { return s.setAttrs(r, true) }

func (s *Server) setAttrs(r *request, legacy bool) (any, error) {
	var req struct {
		UserAttrs []userAttrsItem `json:"UserAttrs"`
	}
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	items := make([]service.UserAttrs, len(req.UserAttrs))
	for i, it := range req.UserAttrs {
		if it.ToAccount == nil {
			return nil, im.KindErrorf(im.KindBadParam, "UserAttrs[%d] has no To_Account", i)
		}
		items[i] = service.UserAttrs{Account: *it.ToAccount, Attrs: it.Attrs}
	}
	errs, err := s.svc.Audience.SetAttrs(r.ctx, r.app.SDKAppID, items)
	return partialResult(errs, legacy), err
}

func (s *Server) removeAttr(r *request) (any, error)   { return s.removeAttrs(r, false) }
func (s *Server) imRemoveAttr(r *request) (any, error) { return s.removeAttrs(r, true) }

func (s *Server) removeAttrs(r *request, legacy bool) (any, error) {
	var req struct {
		UserAttrs []struct {
			ToAccount *string  `json:"To_Account"`
			Attrs     []string `json:"Attrs"`
		} `json:"UserAttrs"`
	}
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	items := make([]service.UserAttrNames, len(req.UserAttrs))
	for i, it := range req.UserAttrs {
		if it.ToAccount == nil {
			return nil, im.KindErrorf(im.KindBadParam, "UserAttrs[%d] has no To_Account", i)
		}
		items[i] = service.UserAttrNames{Account: *it.ToAccount, Names: it.Attrs}
	}
	errs, err := s.svc.Audience.RemoveAttrs(r.ctx, r.app.SDKAppID, items)
	return partialResult(errs, legacy), err
}

func (s *Server) getAttr(r *request) (any, error)   { return s.getAttrs(r, false) }
func (s *Server) imGetAttr(r *request) (any, error) { return s.getAttrs(r, true) }

// getAttrs serves get_attr; the legacy form answers unknown accounts with
// empty Attrs instead of an ErrorList entry (spec §8).
func (s *Server) getAttrs(r *request, legacy bool) (any, error) {
	out := userAttrsResp{UserAttrs: []userAttrsOut{}}
	errs, err := s.readProfiles(r, legacy, func(p service.Profile) {
		out.UserAttrs = append(out.UserAttrs, userAttrsOut{ToAccount: p.Account, Attrs: p.Attrs})
	})
	if err != nil {
		return nil, err
	}
	out.ErrorList = errs
	return out, nil
}

// readProfiles decodes a To_Account list, reads the profiles and calls
// each for every account to answer: every account in the legacy form,
// else the imported ones, returning the others as 70107 items.
func (s *Server) readProfiles(r *request, legacy bool, each func(service.Profile)) ([]itemError, error) {
	var req accountsReq
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	profiles, err := s.svc.Audience.Profiles(r.ctx, r.app.SDKAppID, req.ToAccount)
	if err != nil {
		return nil, err
	}
	var notFound []itemError
	for _, p := range profiles {
		if !p.Found && !legacy {
			notFound = append(notFound, notImported(p.Account))
			continue
		}
		each(p)
	}
	return notFound, nil
}

type accountsReq struct {
	ToAccount []string `json:"To_Account"`
}

func notImported(id string) itemError {
	return itemError{ToAccount: id, ErrorCode: im.CodeAccountNotFound}
}

// partialResult projects per-account failures: an ErrorList for the
// timpush family, nothing for the legacy family (which has no ErrorList).
func partialResult(errs []service.ItemError, legacy bool) any {
	if legacy || len(errs) == 0 {
		return nil
	}
	out := partial{ErrorList: make([]itemError, len(errs))}
	for i, e := range errs {
		out.ErrorList[i] = itemError{ToAccount: e.Account, ErrorCode: e.Code}
		if e.Code != im.CodeAccountNotFound {
			out.ErrorList[i].ErrorInfo = e.Info
		}
	}
	return out
}
