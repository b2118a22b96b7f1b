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
		if err := e.load(edits); err != nil {
			return nil, err
		}
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
		return changes, e.flush()
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}

// editor applies a batch of edits in one transaction with few round
// trips: load reads (and row-locks) every named account in one statement,
// the edits then work on those rows and on a cache of the tag registry, and
// flush sends every account update and tag write in one pipelined batch.
// Each edit sees the state the edits before it left, as if each had been
// written at once.
type editor struct {
	ctx    context.Context
	tx     pgx.Tx
	app    uint64
	lim    im.EditLimits
	schema *im.AttrSchema

	rows     map[acctKey]row     // the batch's accounts, as the edits so far left them
	dirty    []acctKey           // rows to write back, in first-edit order
	isDirty  map[acctKey]bool    //
	tags     map[string]*tagInfo // registry rows read so far, as the edits so far left them
	tagCount int                 // the app's distinct tags, once counted
	counted  bool                //
	netTags  int                 // tags created minus tags deleted by this batch so far
	writes   pgx.Batch           // tag writes, queued in order
}

type acctKey struct {
	id  string
	typ im.AcctType
}

type tagInfo struct {
	typ      im.AcctType
	refcount int64
}

// load reads the accounts the edits name, under row locks, in ordinal
// order (so that two batches lock shared rows in the same order).
func (e *editor) load(edits []im.Edit) error {
	ids := make([]string, 0, len(edits))
	for i := range edits {
		ids = append(ids, edits[i].Account)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	rows, err := e.tx.Query(e.ctx, `SELECT `+acctColumns+` FROM accounts
		WHERE app = $1 AND id = ANY($2) ORDER BY ordinal FOR UPDATE`, int64(e.app), ids)
	if err != nil {
		return dbErr("read accounts", err)
	}
	defer rows.Close()
	e.rows = make(map[acctKey]row, len(ids))
	e.isDirty = map[acctKey]bool{}
	e.tags = map[string]*tagInfo{}
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return dbErr("read accounts", err)
		}
		e.rows[acctKey{r.ID, r.Type}] = r
	}
	return dbErr("read accounts", rows.Err())
}

// resolve finds id among the loaded rows as a RegistrationID, then as a
// UserID.
func (e *editor) resolve(id string) (acctKey, row, bool) {
	for _, typ := range []im.AcctType{im.AcctRegistrationID, im.AcctUserID} {
		k := acctKey{id, typ}
		if r, ok := e.rows[k]; ok {
			return k, r, true
		}
	}
	return acctKey{}, row{}, false
}

// flush writes back every edited account and the queued tag writes.
func (e *editor) flush() error {
	for _, k := range e.dirty {
		r := e.rows[k]
		e.writes.Queue(`UPDATE accounts SET attrs = $1, tags = $2 WHERE app = $3 AND ordinal = $4`,
			encodeAttrs(r.attrs), nonNilStrings(r.tags), int64(e.app), int64(r.Ordinal))
	}
	if e.writes.Len() == 0 {
		return nil
	}
	br := e.tx.SendBatch(e.ctx, &e.writes)
	for range e.writes.Len() {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return dbErr("write accounts and tags", err)
		}
	}
	return dbErr("write accounts and tags", br.Close())
}

// apply applies one edit to the loaded rows; load must have read its
// account.
func (e *editor) apply(ed *im.Edit) (ch im.Change, changed bool, editErr *im.Error, err error) {
	key, cur, ok := e.resolve(ed.Account)
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
		e.retag(m.name, cur.Type, m.delta)
	}
	next := cur
	next.attrs, next.tags = attrs, tags
	e.rows[key] = next
	if !e.isDirty[key] {
		e.isDirty[key] = true
		e.dirty = append(e.dirty, key)
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

// tagState is a tag's registry row as the edits so far left it (refcount
// 0 when absent). The first call for a name reads it; every write to the
// name goes through retag after that read, so the cache stays exact.
func (e *editor) tagState(name string) (typ im.AcctType, refcount int64, err error) {
	if t, ok := e.tags[name]; ok {
		return t.typ, t.refcount, nil
	}
	var t int16
	err = e.tx.QueryRow(e.ctx, `SELECT type, refcount FROM tags WHERE app = $1 AND name = $2`, int64(e.app), name).
		Scan(&t, &refcount)
	if err == pgx.ErrNoRows {
		t, refcount, err = 0, 0, nil
	}
	if err != nil {
		return 0, 0, dbErr("read tag", err)
	}
	e.tags[name] = &tagInfo{typ: im.AcctType(t), refcount: refcount}
	return im.AcctType(t), refcount, nil
}

// distinctTags is the app's number of distinct tags as the edits so far
// left it.
func (e *editor) distinctTags() (int, error) {
	if !e.counted {
		var n int
		if err := e.tx.QueryRow(e.ctx, `SELECT count(*) FROM tags WHERE app = $1`, int64(e.app)).Scan(&n); err != nil {
			return 0, dbErr("count tags", err)
		}
		// The queued writes have not reached the table yet.
		e.tagCount, e.counted = n+e.netTags, true
	}
	return e.tagCount, nil
}

// retag queues the write that moves a tag's refcount by delta (creating
// its row bound to typ, or deleting it at 0) and applies it to the cache.
func (e *editor) retag(name string, typ im.AcctType, delta int64) {
	t := e.tags[name] // tagState read it
	before := t.refcount
	t.refcount += delta
	switch {
	case before <= 0 && t.refcount > 0:
		t.typ = typ
		e.netTags++
		e.tagCount++
	case before > 0 && t.refcount <= 0:
		t.refcount = 0
		e.netTags--
		e.tagCount--
	}
	queueRetag(&e.writes, e.app, name, typ, delta)
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
		n, err := e.distinctTags()
		if err != nil {
			return nil, nil, nil, err
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
	var b pgx.Batch
	queueRetag(&b, app, name, typ, delta)
	return dbErr("write tag", tx.SendBatch(ctx, &b).Close())
}

// queueRetag queues retag's statements on b.
func queueRetag(b *pgx.Batch, app uint64, name string, typ im.AcctType, delta int64) {
	if delta > 0 {
		b.Queue(`INSERT INTO tags (app, name, type, refcount) VALUES ($1, $2, $3, $4)
			ON CONFLICT (app, name) DO UPDATE SET refcount = tags.refcount + excluded.refcount`,
			int64(app), name, int16(typ), delta)
		return
	}
	// Delete first: after a decrement the row could no longer tell whether
	// it had reached 0.
	b.Queue(`DELETE FROM tags WHERE app = $1 AND name = $2 AND refcount + $3 <= 0`, int64(app), name, delta)
	b.Queue(`UPDATE tags SET refcount = refcount + $1 WHERE app = $2 AND name = $3`, delta, int64(app), name)
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
