package postgres

import (
	"context"
	"slices"

	"timd/internal/im"
	"timd/internal/store/rules"

	"github.com/jackc/pgx/v5"
)

// AttrSchema returns the app's attribute slots.
func (s *Store) AttrSchema(ctx context.Context, app uint64) (im.AttrSchema, error) {
	return readSchema(ctx, s.pool, app)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func readSchema(ctx context.Context, q querier, app uint64) (im.AttrSchema, error) {
	var sc im.AttrSchema
	rows, err := q.Query(ctx, `SELECT slot, name, type FROM attr_schema WHERE app = $1`, int64(app))
	if err != nil {
		return sc, dbErr("read attribute schema", err)
	}
	defer rows.Close()
	for rows.Next() {
		var slot, typ int16
		var name string
		if err := rows.Scan(&slot, &name, &typ); err != nil {
			return sc, dbErr("read attribute schema", err)
		}
		if slot >= 0 && int(slot) < len(sc) {
			sc[slot] = im.AttrSlot{Name: name, Type: im.AcctType(typ)}
		}
	}
	return sc, dbErr("read attribute schema", rows.Err())
}

// PutAttrSchema replaces the app's attribute slots.
func (s *Store) PutAttrSchema(ctx context.Context, app uint64, schema im.AttrSchema) error {
	return s.audienceWrite(ctx, app, func(tx pgx.Tx) ([]im.Change, error) {
		if _, err := tx.Exec(ctx, `DELETE FROM attr_schema WHERE app = $1`, int64(app)); err != nil {
			return nil, dbErr("put attribute schema", err)
		}
		for slot, sl := range schema {
			if sl.Name == "" {
				continue
			}
			if _, err := tx.Exec(ctx, `INSERT INTO attr_schema (app, slot, name, type) VALUES ($1, $2, $3, $4)`,
				int64(app), slot, sl.Name, int16(sl.Type)); err != nil {
				return nil, dbErr("put attribute schema", err)
			}
		}
		return nil, nil
	})
}

// ApplyEdits applies each edit atomically against the state the edits
// before it left; see the sqlite backend for the per-edit codes. The batch
// is one transaction.
func (s *Store) ApplyEdits(ctx context.Context, app uint64, edits []im.Edit, lim im.EditLimits) ([]error, error) {
	lim = rules.EditLimits(lim)
	errs := make([]error, len(edits))
	err := s.audienceWrite(ctx, app, func(tx pgx.Tx) ([]im.Change, error) {
		clear(errs)
		schema, err := readSchema(ctx, tx, app)
		if err != nil {
			return nil, err
		}
		e := editor{ctx: ctx, tx: tx, app: app, lim: lim, schema: &schema}
		var changes []im.Change
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

type editor struct {
	ctx    context.Context
	tx     pgx.Tx
	app    uint64
	lim    im.EditLimits
	schema *im.AttrSchema
}

func (e *editor) apply(ed *im.Edit) (ch im.Change, changed bool, editErr *im.Error, err error) {
	cur, ok, err := resolve(e.ctx, e.tx, e.app, ed.Account)
	if err != nil {
		return ch, false, nil, err
	}
	if !ok {
		return ch, false, im.Errorf(im.CodeAccountNotFound, "account %s not found", ed.Account), nil
	}
	attrs, tags := cur.attrs, cur.tags
	var plan []tagMove
	switch ed.Op {
	case im.OpSetAttrs, im.OpRemoveAttrs:
		attrs, editErr = e.editAttrs(&cur, ed)
	case im.OpAddTags, im.OpReplaceTags, im.OpRemoveTags, im.OpClearTags:
		tags, plan, editErr, err = e.editTags(&cur, ed)
	default:
		editErr = im.KindErrorf(im.KindBadParam, "unknown edit operation %d", ed.Op)
	}
	if err != nil || editErr != nil {
		return ch, false, editErr, err
	}
	if attrs == cur.attrs && slices.Equal(tags, cur.tags) {
		return ch, false, nil, nil
	}
	for _, m := range plan {
		if err := retag(e.ctx, e.tx, e.app, m.name, cur.Type, m.delta); err != nil {
			return ch, false, nil, err
		}
	}
	if _, err := e.tx.Exec(e.ctx, `UPDATE accounts SET attrs = $1, tags = $2 WHERE app = $3 AND ordinal = $4`,
		encodeAttrs(attrs), nonNilStrings(tags), int64(e.app), int64(cur.Ordinal)); err != nil {
		return ch, false, nil, dbErr("update account", err)
	}
	ch = im.Change{App: e.app, Op: im.ChangeUpsert, ID: ed.Account, Type: cur.Type, Ordinal: cur.Ordinal,
		Owner: cur.Owner, OldAttrs: cur.attrs, NewAttrs: attrs, OldTags: cur.tags, NewTags: tags}
	return ch, true, nil, nil
}

func (e *editor) editAttrs(cur *row, ed *im.Edit) (im.AttrValues, *im.Error) {
	attrs := cur.attrs
	if ed.Op == im.OpSetAttrs {
		for slot, v := range ed.Attrs {
			if v == "" {
				continue
			}
			if e.schema[slot].Type != cur.Type {
				return attrs, boundErr(ed.Account, "attribute", e.schema[slot].Name, e.schema[slot].Type)
			}
			attrs[slot] = v
		}
		return attrs, nil
	}
	for _, slot := range ed.Slots {
		if slot < 0 || slot >= len(attrs) {
			return attrs, im.Errorf(im.CodeAttrInvalid, "attribute slot %d out of range", slot)
		}
		if e.schema[slot].Type != cur.Type {
			return attrs, boundErr(ed.Account, "attribute", e.schema[slot].Name, e.schema[slot].Type)
		}
		attrs[slot] = ""
	}
	return attrs, nil
}

func boundErr(account, what, name string, typ im.AcctType) *im.Error {
	return im.Errorf(im.CodeAccountTypeBound, "%s %q is bound to account type %d; %s is not of that type",
		what, name, typ, account)
}

type tagMove struct {
	name  string
	delta int64
}

// tagState reads a tag's registry row (refcount 0 when absent).
func (e *editor) tagState(name string) (typ im.AcctType, refcount int64, err error) {
	var t int16
	err = e.tx.QueryRow(e.ctx, `SELECT type, refcount FROM tags WHERE app = $1 AND name = $2`, int64(e.app), name).
		Scan(&t, &refcount)
	if err == pgx.ErrNoRows {
		return 0, 0, nil
	}
	return im.AcctType(t), refcount, dbErr("read tag", err)
}

func (e *editor) editTags(cur *row, ed *im.Edit) ([]string, []tagMove, *im.Error, error) {
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
	added, createdN, dropped := 0, 0, 0
	for _, name := range next {
		if slices.Contains(old, name) {
			continue
		}
		typ, n, err := e.tagState(name)
		if err != nil {
			return nil, nil, nil, err
		}
		if n > 0 && typ != cur.Type {
			return nil, nil, boundErr(ed.Account, "tag", name, typ), nil
		}
		if n == 0 {
			createdN++
		}
		added++
		plan = append(plan, tagMove{name: name, delta: 1})
	}
	for _, name := range old {
		if slices.Contains(next, name) {
			continue
		}
		_, n, err := e.tagState(name)
		if err != nil {
			return nil, nil, nil, err
		}
		if n <= 1 {
			dropped++
		}
		plan = append(plan, tagMove{name: name, delta: -1})
	}
	if added > 0 && len(next) > e.lim.TagsPerUser {
		return nil, nil, im.Errorf(im.CodeTooManyTags, "account %s would have %d tags, more than %d",
			ed.Account, len(next), e.lim.TagsPerUser), nil
	}
	if createdN > 0 {
		var n int
		if err := e.tx.QueryRow(e.ctx, `SELECT count(*) FROM tags WHERE app = $1`, int64(e.app)).Scan(&n); err != nil {
			return nil, nil, nil, dbErr("count tags", err)
		}
		if n-dropped+createdN > e.lim.TagsPerApp {
			return nil, nil, im.Errorf(im.CodeTooManyTags, "the app would have %d distinct tags, more than %d",
				n-dropped+createdN, e.lim.TagsPerApp), nil
		}
	}
	return next, plan, nil, nil
}

func appendNew(dst, tags []string) []string {
	for _, t := range tags {
		if !slices.Contains(dst, t) {
			dst = append(dst, t)
		}
	}
	return dst
}

// retag moves a tag's refcount by delta, creating its row bound to typ or
// deleting it at 0.
func retag(ctx context.Context, tx pgx.Tx, app uint64, name string, typ im.AcctType, delta int64) error {
	if delta > 0 {
		_, err := tx.Exec(ctx, `INSERT INTO tags (app, name, type, refcount) VALUES ($1, $2, $3, $4)
			ON CONFLICT (app, name) DO UPDATE SET refcount = tags.refcount + excluded.refcount`,
			int64(app), name, int16(typ), delta)
		return dbErr("write tag", err)
	}
	// Delete first: after a decrement the row could no longer tell whether
	// it had reached 0.
	if _, err := tx.Exec(ctx, `DELETE FROM tags WHERE app = $1 AND name = $2 AND refcount + $3 <= 0`,
		int64(app), name, delta); err != nil {
		return dbErr("write tag", err)
	}
	_, err := tx.Exec(ctx, `UPDATE tags SET refcount = refcount + $1 WHERE app = $2 AND name = $3`,
		delta, int64(app), name)
	return dbErr("write tag", err)
}

// Profiles returns the audience data of the accounts among ids.
func (s *Store) Profiles(ctx context.Context, app uint64, ids []string) (map[string]im.Profile, error) {
	rs, err := s.rows(ctx, app, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]im.Profile, len(rs))
	for id, r := range rs {
		out[id] = im.Profile{Account: r.Account, Attrs: r.attrs, Tags: r.tags}
	}
	return out, nil
}

// ScanProfiles calls fn for every account of the app in ordinal order.
func (s *Store) ScanProfiles(ctx context.Context, app uint64, fn func(im.Profile) error) error {
	rows, err := s.pool.Query(ctx, `SELECT `+acctColumns+` FROM accounts WHERE app = $1 ORDER BY ordinal`, int64(app))
	if err != nil {
		return dbErr("scan accounts", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return dbErr("scan accounts", err)
		}
		if err := fn(im.Profile{Account: r.Account, Attrs: r.attrs, Tags: r.tags}); err != nil {
			return err
		}
	}
	return dbErr("scan accounts", rows.Err())
}
