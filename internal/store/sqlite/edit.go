package sqlite

import (
	"context"
	"slices"

	"timd/internal/im"
	"timd/internal/store/rules"
)

// PutAttrSchema replaces the app's attribute slots. Rules about which
// changes are allowed (unique names, immutable types) belong to the caller.
func (s *Store) PutAttrSchema(ctx context.Context, app uint64, schema im.AttrSchema) error {
	return s.w.do(ctx, 1, func(t *wtx) ([]im.Change, error) {
		if _, err := t.schemaDelete.Exec(int64(app)); err != nil {
			return nil, dbErr("put attribute schema", err)
		}
		for slot, sl := range schema {
			if sl.Name == "" {
				continue
			}
			if _, err := t.schemaInsert.Exec(int64(app), slot, sl.Name, int64(sl.Type)); err != nil {
				return nil, dbErr("put attribute schema", err)
			}
		}
		t.schemas[app] = &schema
		t.schemaPuts[app] = schema
		return nil, nil
	})
}

// ApplyEdits applies each edit atomically against the state left by the
// edits before it and returns one error per edit: nil, or an *im.Error:
//
//   - 70107 when no account has the id (RegistrationIDs are tried first);
//   - 90035 when OpSetAttrs or OpRemoveAttrs touches a slot bound to the
//     other account type, or a tag being added is bound to the other type
//     (a tag is bound to the type of the first account that carries it,
//     until no account carries it);
//   - 90032 when an edit that adds tags would leave the account with more
//     than lim.TagsPerUser tags or the app with more than lim.TagsPerApp
//     distinct tags (the spec documents no code for either limit; 90032 is
//     Tencent's "too many tags" code);
//   - 90033 for a slot number outside 0..9.
//
// An edit that fails changes nothing; the others still apply. An edit that
// changes nothing succeeds and emits no change; every other successful edit
// emits one im.ChangeUpsert. The whole batch commits in one transaction,
// usually together with concurrent batches. The second result is a
// whole-request failure (context ended before the batch ran, database
// error); then no edit was applied.
func (s *Store) ApplyEdits(ctx context.Context, app uint64, edits []im.Edit, lim im.EditLimits) ([]error, error) {
	lim = rules.EditLimits(lim)
	errs := make([]error, len(edits))
	err := s.w.do(ctx, len(edits), func(t *wtx) ([]im.Change, error) {
		clear(errs)
		ids := make([]string, len(edits))
		for i := range edits {
			ids[i] = edits[i].Account
		}
		found, err := t.resolveIDs(app, ids)
		if err != nil {
			return nil, err
		}
		e := editor{t: t, app: app, lim: lim, found: found}
		changes := make([]im.Change, 0, len(edits))
		for i := range edits {
			ch, changed, editErr, err := e.apply(&edits[i])
			if err != nil {
				return nil, err
			}
			if editErr != nil {
				errs[i] = editErr
			} else if changed {
				changes = append(changes, ch)
			}
		}
		return changes, nil
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}

// editor applies the edits of one batch.
type editor struct {
	t   *wtx
	app uint64
	lim im.EditLimits
	// found are the batch's accounts, resolved before its first edit: no
	// edit creates or deletes one.
	found map[string]resolved
}

// apply validates ed against the current state and, only if it is valid,
// records the account's new state, so that a per-edit error never leaves a
// partial write. A database error (the last result) fails the whole batch.
func (e *editor) apply(ed *im.Edit) (ch im.Change, changed bool, editErr *im.Error, err error) {
	r, ok := e.found[ed.Account]
	var cur *acctState
	if ok {
		cur, _ = e.t.state(r.key) // as the edits before this one left it
	}
	if cur == nil {
		return ch, false, im.Errorf(im.CodeAccountNotFound, "account %s not found", ed.Account), nil
	}
	key := r.key
	attrs, tags := cur.attrs, cur.tags
	var tagPlan []tagMove
	switch ed.Op {
	case im.OpSetAttrs, im.OpRemoveAttrs:
		attrs, editErr, err = e.editAttrs(cur, ed)
	case im.OpAddTags, im.OpReplaceTags, im.OpRemoveTags, im.OpClearTags:
		tags, tagPlan, editErr, err = e.editTags(cur, ed)
	default:
		editErr = im.KindErrorf(im.KindBadParam, "unknown edit operation %d", ed.Op)
	}
	if err != nil || editErr != nil {
		return ch, false, editErr, err
	}
	if attrs == cur.attrs && slices.Equal(tags, cur.tags) {
		return ch, false, nil, nil
	}
	for _, m := range tagPlan {
		if err := e.t.retag(e.app, m.name, cur.typ, m.before, m.delta); err != nil {
			return ch, false, nil, err
		}
	}
	next := &acctState{ordinal: cur.ordinal, typ: cur.typ, attrs: attrs, tags: tags}
	e.t.setState(key, next, true)
	ch = im.Change{App: e.app, Op: im.ChangeUpsert, ID: ed.Account, Type: cur.typ, Ordinal: cur.ordinal,
		OldAttrs: cur.attrs, NewAttrs: attrs, OldTags: cur.tags, NewTags: tags}
	return ch, true, nil, nil
}

// editAttrs returns the account's attribute values after ed.
func (e *editor) editAttrs(cur *acctState, ed *im.Edit) (im.AttrValues, *im.Error, error) {
	attrs := cur.attrs
	schema, err := e.t.schema(e.app)
	if err != nil {
		return attrs, nil, err
	}
	if ed.Op == im.OpSetAttrs {
		for slot, v := range ed.Attrs {
			if v == "" {
				continue
			}
			if schema[slot].Type != cur.typ {
				return attrs, boundErr(ed.Account, "attribute", schema[slot].Name, schema[slot].Type), nil
			}
			attrs[slot] = v
		}
		return attrs, nil, nil
	}
	for _, slot := range ed.Slots {
		if slot < 0 || slot >= len(attrs) {
			return attrs, im.Errorf(im.CodeAttrInvalid, "attribute slot %d out of range", slot), nil
		}
		if schema[slot].Type != cur.typ {
			return attrs, boundErr(ed.Account, "attribute", schema[slot].Name, schema[slot].Type), nil
		}
		attrs[slot] = ""
	}
	return attrs, nil, nil
}

func boundErr(account, what, name string, typ im.AcctType) *im.Error {
	return im.Errorf(im.CodeAccountTypeBound, "%s %q is bound to account type %d; %s is not of that type",
		what, name, typ, account)
}

// tagMove is one change to the tag registry that an edit makes.
type tagMove struct {
	name   string
	before tagState
	delta  int64
}

// editTags returns the account's tags after ed and the registry changes
// that go with them, after checking type binding and limits.
func (e *editor) editTags(cur *acctState, ed *im.Edit) ([]string, []tagMove, *im.Error, error) {
	old := cur.tags
	var next []string
	switch ed.Op {
	case im.OpAddTags:
		next = appendNew(slices.Clone(old), ed.Tags)
	case im.OpReplaceTags:
		next = appendNew(nil, ed.Tags)
	case im.OpRemoveTags:
		next = slices.DeleteFunc(slices.Clone(old), func(t string) bool { return slices.Contains(ed.Tags, t) })
	case im.OpClearTags:
		next = nil
	}
	var plan []tagMove
	added, created, dropped := 0, 0, 0
	for _, name := range next {
		if slices.Contains(old, name) {
			continue
		}
		st, err := e.t.tag(e.app, name)
		if err != nil {
			return nil, nil, nil, err
		}
		if st.refcount > 0 && st.typ != cur.typ {
			return nil, nil, boundErr(ed.Account, "tag", name, st.typ), nil
		}
		if st.refcount == 0 {
			created++
		}
		added++
		plan = append(plan, tagMove{name: name, before: st, delta: 1})
	}
	for _, name := range old {
		if slices.Contains(next, name) {
			continue
		}
		st, err := e.t.tag(e.app, name)
		if err != nil {
			return nil, nil, nil, err
		}
		if st.refcount <= 1 {
			dropped++
		}
		plan = append(plan, tagMove{name: name, before: st, delta: -1})
	}
	if added > 0 && len(next) > e.lim.TagsPerUser {
		return nil, nil, im.Errorf(im.CodeTooManyTags, "account %s would have %d tags, more than %d",
			ed.Account, len(next), e.lim.TagsPerUser), nil
	}
	if created > 0 {
		n, err := e.t.tagCount(e.app)
		if err != nil {
			return nil, nil, nil, err
		}
		if n-dropped+created > e.lim.TagsPerApp {
			return nil, nil, im.Errorf(im.CodeTooManyTags, "the app would have %d distinct tags, more than %d",
				n-dropped+created, e.lim.TagsPerApp), nil
		}
	}
	return next, plan, nil, nil
}

// appendNew appends the tags not yet in dst, in order.
func appendNew(dst, tags []string) []string {
	for _, t := range tags {
		if !slices.Contains(dst, t) {
			dst = append(dst, t)
		}
	}
	return dst
}
