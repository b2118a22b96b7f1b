package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"timd/internal/im"
	"timd/internal/service"
)

// attrNamesReq is the body of set_attr_name: slot keys "0".."9" to
// names and to account types.
type attrNamesReq struct {
	AttrNames map[string]string `json:"AttrNames"`
	AttrTypes map[string]int    `json:"AttrTypes"`
}

type attrNamesResp struct {
	AttrNames map[string]string `json:"AttrNames"`
	AttrTypes map[string]int    `json:"AttrTypes,omitempty"`
}

// slots converts the wire maps to slot-indexed ones: 90033 for a key
// that is not "0".."9" or a type that is not 0 or 1.
func (q *attrNamesReq) slots() (map[int]string, map[int]im.AcctType, error) {
	names := make(map[int]string, len(q.AttrNames))
	for key, name := range q.AttrNames {
		slot, err := slotIndex(key)
		if err != nil {
			return nil, nil, err
		}
		names[slot] = name
	}
	types := make(map[int]im.AcctType, len(q.AttrTypes))
	for key, typ := range q.AttrTypes {
		slot, err := slotIndex(key)
		if err != nil {
			return nil, nil, err
		}
		if typ != int(im.AcctUserID) && typ != int(im.AcctRegistrationID) {
			return nil, nil, im.Errorf(im.CodeAttrInvalid, "AttrTypes index:%d must be 0 or 1", slot)
		}
		types[slot] = im.AcctType(typ)
	}
	return names, types, nil
}

// slotIndex parses a slot key "0".."9": 90033 otherwise.
func slotIndex(key string) (int, error) {
	n, err := strconv.Atoi(key)
	if err != nil || n < 0 || n >= im.MaxAttrSlots || strconv.Itoa(n) != key {
		return 0, im.Errorf(im.CodeAttrInvalid, "attribute index %q must be 0 to 9", key)
	}
	return n, nil
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
	names, types, err := req.slots()
	if err != nil {
		return nil, err
	}
	return nil, s.svc.Audience.SetAttrNames(r.ctx, r.app.SDKAppID, names, types)
}

func (s *Server) getAttrName(r *request) (any, error)   { return s.getAttrNames(r, false) }
func (s *Server) imGetAttrName(r *request) (any, error) { return s.getAttrNames(r, true) }

func (s *Server) getAttrNames(r *request, legacy bool) (any, error) {
	var req struct{}
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	schema, err := s.svc.Audience.Schema(r.ctx, r.app.SDKAppID)
	if err != nil {
		return nil, err
	}
	out := attrNamesResp{AttrNames: map[string]string{}}
	if !legacy {
		out.AttrTypes = map[string]int{}
	}
	for i, sl := range schema {
		if sl.Name == "" {
			continue
		}
		out.AttrNames[strconv.Itoa(i)] = sl.Name
		if !legacy {
			out.AttrTypes[strconv.Itoa(i)] = int(sl.Type)
		}
	}
	return out, nil
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
// empty Attrs instead of an ErrorList entry (docs/api.md, "The legacy family").
func (s *Server) getAttrs(r *request, legacy bool) (any, error) {
	return s.readProfiles(r, legacy, "UserAttrs", s.svc.Audience.Attrs)
}

// readProfiles decodes a To_Account list, reads the profiles with read
// (Audience.Attrs or Audience.Tags) and answers list (UserAttrs or
// UserTags) with every account in the legacy form, else the imported
// ones, answering the others as 70107 items.
func (s *Server) readProfiles(r *request, legacy bool, list string,
	read func(ctx context.Context, app uint64, ids []string) ([]service.Profile, error)) (any, error) {
	var req accountsReq
	if err := decodeIDs(r.body, &req); err != nil {
		return nil, err
	}
	if req.ToAccount == nil {
		return nil, required("To_Account")
	}
	profiles, err := read(r.ctx, r.app.SDKAppID, req.ToAccount)
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

func (a profilesAnswer) sizeHint() int { return 64 + 96*len(a.profiles) + 64*len(a.errs) }

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
