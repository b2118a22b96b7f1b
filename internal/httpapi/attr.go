package httpapi

import (
	"encoding/json"

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
	return s.readProfiles(r, legacy, "UserAttrs")
}

// readProfiles decodes a To_Account list, reads the profiles and answers
// list (UserAttrs or UserTags) with every account in the legacy form,
// else the imported ones, answering the others as 70107 items.
func (s *Server) readProfiles(r *request, legacy bool, list string) (any, error) {
	var req accountsReq
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	profiles, err := s.svc.Audience.Profiles(r.ctx, r.app.SDKAppID, req.ToAccount)
	if err != nil {
		return nil, err
	}
	out := profilesAnswer{list: list, profiles: profiles[:0]}
	for _, p := range profiles {
		if !p.Found && !legacy {
			out.errs = append(out.errs, notImported(p.Account))
			continue
		}
		out.profiles = append(out.profiles, p)
	}
	return out, nil
}

// profilesAnswer is the answer of get_attr (list "UserAttrs") and get_tag
// ("UserTags"). It writes its own JSON (appendFields), the bytes
// encoding/json would write for {"UserAttrs":[{"To_Account":…,
// "Attrs":{name:value…}}…],"ErrorList":[…]} with a map per account, without
// building the maps.
type profilesAnswer struct {
	list     string
	profiles []service.Profile
	errs     []itemError
}

func (a profilesAnswer) appendFields(b []byte) []byte {
	b = append(b, '"')
	b = append(b, a.list...)
	b = append(b, `":[`...)
	for i, p := range a.profiles {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"To_Account":`...)
		b = appendJSONString(b, p.Account)
		if a.list == "UserTags" {
			b = append(b, `,"Tags":[`...)
			for j, t := range p.Tags {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, t)
			}
			b = append(b, "]}"...)
			continue
		}
		b = append(b, `,"Attrs":{`...)
		for j, nv := range p.Attrs {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, nv.Name)
			b = append(b, ':')
			b = appendJSONString(b, nv.Value)
		}
		b = append(b, "}}"...)
	}
	b = append(b, ']')
	if len(a.errs) > 0 {
		errs, _ := json.Marshal(a.errs) // plain structs always marshal
		b = append(b, `,"ErrorList":`...)
		b = append(b, errs...)
	}
	return b
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
