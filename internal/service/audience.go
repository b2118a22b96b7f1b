package service

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"timd/internal/im"
)

// Audience implements attribute names, user attributes and tags (docs/api.md, "Attributes and tags",
// §6 and the legacy family of §8). Both families share one store; the
// handlers project the legacy shapes.
type Audience struct {
	store  im.AudienceStore
	limits func(app uint64) im.EditLimits
}

// NewAudience returns the attribute and tag service. limits may be nil for
// the defaults.
func NewAudience(store im.AudienceStore, limits func(app uint64) im.EditLimits) *Audience {
	if limits == nil {
		limits = func(uint64) im.EditLimits { return im.EditLimits{} }
	}
	return &Audience{store: store, limits: limits}
}

// SetAttrNames merges names (slot → name) and types (slot → account type)
// into the app's slots, 0 to 9. Only listed slots change. Errors: 90033
// for no names, a slot out of range, an empty or over-long name, a
// duplicate name, a type for an unlisted slot, an unknown type, or a
// change of a defined slot's type.
func (a *Audience) SetAttrNames(ctx context.Context, app uint64, names map[int]string, types map[int]im.AcctType) error {
	if len(names) == 0 {
		return im.Errorf(im.CodeAttrInvalid, "AttrNames is empty")
	}
	s, err := a.store.AttrSchema(ctx, app)
	if err != nil {
		return err
	}
	next := s
	for slot, name := range names {
		if slot < 0 || slot >= im.MaxAttrSlots {
			return im.Errorf(im.CodeAttrInvalid, "attribute index %d must be 0 to 9", slot)
		}
		if name == "" || len(name) > im.MaxAttrNameLen {
			return im.Errorf(im.CodeAttrInvalid, "attrName at index:%d must be 1 to %d bytes", slot, im.MaxAttrNameLen)
		}
		next[slot].Name = name
	}
	for slot, typ := range types {
		if _, listed := names[slot]; !listed {
			return im.Errorf(im.CodeAttrInvalid, "AttrTypes index:%d is not in AttrNames", slot)
		}
		if typ != im.AcctUserID && typ != im.AcctRegistrationID {
			return im.Errorf(im.CodeAttrInvalid, "AttrTypes index:%d must be 0 or 1", slot)
		}
		if s[slot].Name != "" && s[slot].Type != typ {
			return im.Errorf(im.CodeAttrInvalid, "attr type at index:%d cannot be changed", slot)
		}
		next[slot].Type = typ
	}
	if err := checkUniqueNames(&next); err != nil {
		return err
	}
	return a.store.PutAttrSchema(ctx, app, next)
}

func checkUniqueNames(s *im.AttrSchema) error {
	for i := range s {
		for j := 0; j < i; j++ {
			if s[i].Name != "" && s[i].Name == s[j].Name {
				return im.Errorf(im.CodeAttrInvalid, "attrName:%s already exists at index:%d", s[i].Name, j)
			}
		}
	}
	return nil
}

// Schema returns the app's attribute slots.
func (a *Audience) Schema(ctx context.Context, app uint64) (im.AttrSchema, error) {
	return a.store.AttrSchema(ctx, app)
}

// UserAttrs is one account's attributes by name.
type UserAttrs struct {
	Account string
	Attrs   map[string]string
}

// ItemError is a per-account failure of a partially successful request.
type ItemError struct {
	Account string
	Code    int
	Info    string
}

// SetAttrs sets attributes of up to 100 accounts. Errors: 90018 for more
// than 100 accounts, 90001 for none or an item without To_Account, 90033
// for an undefined name or a value over 50 bytes. Per item: 70107, 90035.
func (a *Audience) SetAttrs(ctx context.Context, app uint64, items []UserAttrs) ([]ItemError, error) {
	s, err := a.schemaFor(ctx, app, len(items))
	if err != nil {
		return nil, err
	}
	edits := make([]im.Edit, len(items))
	for i, it := range items {
		e := im.Edit{Account: it.Account, Op: im.OpSetAttrs}
		if err := checkAccount(it.Account); err != nil {
			return nil, err
		}
		for name, v := range it.Attrs {
			slot := s.Slot(name)
			if slot < 0 {
				return nil, im.Errorf(im.CodeAttrInvalid, "attribute %q is not defined", name)
			}
			if v == "" || len(v) > im.MaxAttrValueLen {
				return nil, im.Errorf(im.CodeAttrInvalid, "value of attribute %q must be 1 to %d bytes", name, im.MaxAttrValueLen)
			}
			e.Attrs[slot] = v
		}
		edits[i] = e
	}
	return a.apply(ctx, app, edits)
}

// RemoveAttrs removes named attributes of up to 100 accounts. Errors as
// SetAttrs.
func (a *Audience) RemoveAttrs(ctx context.Context, app uint64, items []UserAttrNames) ([]ItemError, error) {
	s, err := a.schemaFor(ctx, app, len(items))
	if err != nil {
		return nil, err
	}
	edits := make([]im.Edit, len(items))
	for i, it := range items {
		if err := checkAccount(it.Account); err != nil {
			return nil, err
		}
		e := im.Edit{Account: it.Account, Op: im.OpRemoveAttrs}
		for _, name := range it.Names {
			slot := s.Slot(name)
			if slot < 0 {
				return nil, im.Errorf(im.CodeAttrInvalid, "attribute %q is not defined", name)
			}
			e.Slots = append(e.Slots, slot)
		}
		edits[i] = e
	}
	return a.apply(ctx, app, edits)
}

// UserAttrNames is one account's list of attribute names.
type UserAttrNames struct {
	Account string
	Names   []string
}

// Profile is one account's attributes (by name) and tags. Attrs and Tags
// are empty (possibly nil) when the account has none.
type Profile struct {
	Account string
	Found   bool
	// Attrs are the account's named, non-empty attributes, ordered by
	// name (the order encoding/json gives a map).
	Attrs []NamedValue
	Tags  []string
}

// NamedValue is one attribute of a Profile.
type NamedValue struct{ Name, Value string }

// Attrs reads the attributes of up to 100 accounts, one Profile per id
// (Tags unset). Errors: 90018, 90001.
func (a *Audience) Attrs(ctx context.Context, app uint64, ids []string) ([]Profile, error) {
	if err := checkIDs(ids); err != nil {
		return nil, err
	}
	s, err := a.store.AttrSchema(ctx, app)
	if err != nil {
		return nil, err
	}
	found, err := a.store.ReadAttrs(ctx, app, ids)
	if err != nil {
		return nil, err
	}
	if len(found) != len(ids) {
		return nil, fmt.Errorf("audience: store read %d accounts for %d ids", len(found), len(ids))
	}
	order := nameOrder(&s)
	n := 0
	for i := range found {
		for _, slot := range order {
			if found[i].Attrs[slot] != "" {
				n++
			}
		}
	}
	attrs := make([]NamedValue, 0, n)
	out := make([]Profile, len(ids))
	for i, id := range ids {
		out[i] = Profile{Account: id, Found: found[i].Found}
		start := len(attrs)
		for _, slot := range order {
			if v := found[i].Attrs[slot]; v != "" {
				attrs = append(attrs, NamedValue{s[slot].Name, v})
			}
		}
		out[i].Attrs = attrs[start:len(attrs):len(attrs)]
	}
	return out, nil
}

// Tags reads the tags of up to 100 accounts, one Profile per id (Attrs
// unset). Errors: 90018, 90001.
func (a *Audience) Tags(ctx context.Context, app uint64, ids []string) ([]Profile, error) {
	if err := checkIDs(ids); err != nil {
		return nil, err
	}
	found, err := a.store.ReadTags(ctx, app, ids)
	if err != nil {
		return nil, err
	}
	if len(found) != len(ids) {
		return nil, fmt.Errorf("audience: store read %d accounts for %d ids", len(found), len(ids))
	}
	out := make([]Profile, len(ids))
	for i, id := range ids {
		out[i] = Profile{Account: id, Found: found[i].Found, Tags: found[i].Tags}
	}
	return out, nil
}

// checkIDs validates the To_Account list of a read.
func checkIDs(ids []string) error {
	if err := checkCount(len(ids)); err != nil {
		return err
	}
	for _, id := range ids {
		if err := checkAccount(id); err != nil {
			return err
		}
	}
	return nil
}

// nameOrder returns the named slots of s ordered by name.
func nameOrder(s *im.AttrSchema) []int {
	order := make([]int, 0, len(s))
	for slot := range s {
		if s[slot].Name != "" {
			order = append(order, slot)
		}
	}
	slices.SortFunc(order, func(x, y int) int { return strings.Compare(s[x].Name, s[y].Name) })
	return order
}

// UserTags is one account's tag list.
type UserTags struct {
	Account string
	Tags    []string
}

// AddTags adds (or with replace, sets) tags of up to 100 accounts.
// Errors: 90018, 90001; 90040 for an empty tag; 90020 for a tag over 50
// bytes; 90032 for more than 10 tags for one account (100 with replace).
// Per item: 70107, 90035, 90032 (the user's 100 or the app's 1,000 limit).
func (a *Audience) AddTags(ctx context.Context, app uint64, items []UserTags, replace bool) ([]ItemError, error) {
	op, max := im.OpAddTags, im.MaxTagsPerAdd
	if replace {
		op, max = im.OpReplaceTags, im.MaxTagsPerReplace
	}
	return a.tagEdits(ctx, app, items, op, max)
}

// RemoveTags removes tags of up to 100 accounts. Errors as AddTags, with
// no per-account count limit beyond 100.
func (a *Audience) RemoveTags(ctx context.Context, app uint64, items []UserTags) ([]ItemError, error) {
	return a.tagEdits(ctx, app, items, im.OpRemoveTags, im.MaxTagsPerUser)
}

// ClearTags removes every tag of up to 100 accounts. Errors: 90018, 90001.
func (a *Audience) ClearTags(ctx context.Context, app uint64, ids []string) ([]ItemError, error) {
	items := make([]UserTags, len(ids))
	for i, id := range ids {
		items[i] = UserTags{Account: id}
	}
	return a.tagEdits(ctx, app, items, im.OpClearTags, 0)
}

func (a *Audience) tagEdits(ctx context.Context, app uint64, items []UserTags, op im.EditOp, max int) ([]ItemError, error) {
	if err := checkCount(len(items)); err != nil {
		return nil, err
	}
	edits := make([]im.Edit, len(items))
	for i, it := range items {
		if err := checkAccount(it.Account); err != nil {
			return nil, err
		}
		if op != im.OpClearTags && len(it.Tags) > max {
			return nil, im.Errorf(im.CodeTooManyTags, "%s: at most %d tags per account in one request", it.Account, max)
		}
		for _, t := range it.Tags {
			if err := checkTag(t); err != nil {
				return nil, err
			}
		}
		edits[i] = im.Edit{Account: it.Account, Op: op, Tags: it.Tags}
	}
	return a.apply(ctx, app, edits)
}

func (a *Audience) apply(ctx context.Context, app uint64, edits []im.Edit) ([]ItemError, error) {
	errs, err := a.store.ApplyEdits(ctx, app, edits, a.limits(app))
	if err != nil {
		return nil, err
	}
	var out []ItemError
	for i, e := range errs {
		if e == nil {
			continue
		}
		ie, ok := im.AsError(e)
		if !ok || ie.Kind != im.KindCode {
			return nil, fmt.Errorf("edit %d: %w", i, e)
		}
		out = append(out, ItemError{Account: edits[i].Account, Code: ie.Code, Info: ie.Info})
	}
	return out, nil
}

// schemaFor checks the request's account count (checkCount) and returns
// the app's attribute slots.
func (a *Audience) schemaFor(ctx context.Context, app uint64, n int) (im.AttrSchema, error) {
	if err := checkCount(n); err != nil {
		return im.AttrSchema{}, err
	}
	return a.store.AttrSchema(ctx, app)
}

// checkCount bounds the accounts of one request: 90001 for none, 90018
// for more than 100.
func checkCount(n int) error {
	if n == 0 {
		return im.KindErrorf(im.KindBadParam, "no accounts in request")
	}
	if n > im.MaxAccountsPerCall {
		return im.KindErrorf(im.KindTooMany, "at most %d accounts per request, got %d", im.MaxAccountsPerCall, n)
	}
	return nil
}

// checkAccount rejects an empty To_Account (90001); long ids are simply
// unknown (70107 per item).
func checkAccount(id string) error {
	if id == "" {
		return im.KindErrorf(im.KindBadParam, "To_Account is empty")
	}
	return nil
}

// checkTag validates one tag: 90040 empty, 90020 over 50 bytes or not UTF-8.
func checkTag(t string) error {
	if t == "" {
		return im.Errorf(im.CodeEmptyTag, "empty tag")
	}
	if len(t) > im.MaxTagLen || !utf8.ValidString(t) {
		return im.Errorf(im.CodeTagTooLong, "tag %.60q longer than %d bytes", t, im.MaxTagLen)
	}
	return nil
}
