package httpapi

import (
	"fmt"

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
	if req.UserAttrs == nil {
		return nil, required("UserAttrs")
	}
	items := make([]service.UserAttrs, len(req.UserAttrs))
	for i, it := range req.UserAttrs {
		if err := requireItem("UserAttrs", i, it.ToAccount, it.Attrs == nil, "Attrs"); err != nil {
			return nil, err
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
	if req.UserAttrs == nil {
		return nil, required("UserAttrs")
	}
	items := make([]service.UserAttrNames, len(req.UserAttrs))
	for i, it := range req.UserAttrs {
		if err := requireItem("UserAttrs", i, it.ToAccount, it.Attrs == nil, "Attrs"); err != nil {
			return nil, err
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
	if req.ToAccount == nil {
		return nil, required("To_Account")
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

// required is the error of a missing or null required field (90001 in
// the push family).
func required(path string) error {
	return im.KindErrorf(im.KindBadParam, "%s is required", path)
}

// requireItem checks an item of a per-account list: its To_Account and
// its field named what are required (missing reports the latter absent).
func requireItem(list string, i int, to *string, missing bool, what string) error {
	if to == nil {
		return required(fmt.Sprintf("%s[%d].To_Account", list, i))
	}
	if missing {
		return required(fmt.Sprintf("%s[%d].%s", list, i, what))
	}
	return nil
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
