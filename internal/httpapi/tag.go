package httpapi

import (
	"timd/internal/im"
	"timd/internal/service"
)

type userTagsItem struct {
	ToAccount *string  `json:"To_Account"`
	Tags      []string `json:"Tags"`
}

// decodeUserTags decodes the UserTags list of add_tag and remove_tag:
// UserTags, and each item's To_Account and Tags, are required (90001).
func decodeUserTags(body []byte, replace *int) ([]service.UserTags, error) {
	var req struct {
		Replace  int            `json:"Replace"`
		UserTags []userTagsItem `json:"UserTags"`
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if replace != nil {
		*replace = req.Replace
	}
	if req.UserTags == nil {
		return nil, required("UserTags")
	}
	items := make([]service.UserTags, len(req.UserTags))
	for i, it := range req.UserTags {
		if err := requireItem("UserTags", i, it.ToAccount, it.Tags == nil, "Tags"); err != nil {
			return nil, err
		}
		items[i] = service.UserTags{Account: *it.ToAccount, Tags: it.Tags}
	}
	return items, nil
}

func (s *Server) addTag(r *request) (any, error) {
	var replace int
	items, err := decodeUserTags(r.body, &replace)
	if err != nil {
		return nil, err
	}
	if replace != 0 && replace != 1 {
		return nil, im.KindErrorf(im.KindBadParam, "Replace must be 0 or 1")
	}
	errs, err := s.svc.Audience.AddTags(r.ctx, r.app.SDKAppID, items, replace == 1)
	return partialResult(errs, false), err
}

// imAddTag is the legacy add: no Replace, no ErrorList.
func (s *Server) imAddTag(r *request) (any, error) {
	items, err := decodeUserTags(r.body, nil)
	if err != nil {
		return nil, err
	}
	errs, err := s.svc.Audience.AddTags(r.ctx, r.app.SDKAppID, items, false)
	return partialResult(errs, true), err
}

func (s *Server) removeTag(r *request) (any, error)   { return s.removeTags(r, false) }
func (s *Server) imRemoveTag(r *request) (any, error) { return s.removeTags(r, true) }

func (s *Server) removeTags(r *request, legacy bool) (any, error) {
	items, err := decodeUserTags(r.body, nil)
	if err != nil {
		return nil, err
	}
	errs, err := s.svc.Audience.RemoveTags(r.ctx, r.app.SDKAppID, items)
	return partialResult(errs, legacy), err
}

func (s *Server) clearAllTags(r *request) (any, error)    { return s.clearTags(r, false) }
func (s *Server) imRemoveAllTags(r *request) (any, error) { return s.clearTags(r, true) }

func (s *Server) clearTags(r *request, legacy bool) (any, error) {
	var req accountsReq
	if err := decode(r.body, &req); err != nil {
		return nil, err
	}
	if req.ToAccount == nil {
		return nil, required("To_Account")
	}
	errs, err := s.svc.Audience.ClearTags(r.ctx, r.app.SDKAppID, req.ToAccount)
	return partialResult(errs, legacy), err
}

func (s *Server) getTag(r *request) (any, error)   { return s.getTags(r, false) }
func (s *Server) imGetTag(r *request) (any, error) { return s.getTags(r, true) }

// getTags serves get_tag; legacy answers unknown accounts with no tags.
func (s *Server) getTags(r *request, legacy bool) (any, error) {
	return s.readProfiles(r, legacy, "UserTags", s.svc.Audience.Tags)
}
