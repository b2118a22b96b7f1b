package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"timd/internal/im"
	"timd/internal/store/rules"
)

// Bulk loading (timd import).
//
// BulkLoad is one writer job, so it commits like any other write (group
// commit, change positions, change feed) and is safe beside a running
// server's other writes. What makes it fast is that it bypasses the
// per-account paths: it resolves a batch's UserIDs with one query per 500,
// takes a block of ordinals with one statement, inserts new accounts 100
// rows per statement with their attributes and tags already in the row,
// and keeps the tag registry for the batch in memory, writing each tag's
// new count once. New accounts never enter the write-behind overlay or
// account_log; existing accounts the overlay does not hold are updated in
// place; only accounts the overlay holds go through it, so that readers
// never see a stale state.

var _ im.BulkLoader = (*Store)(nil)

const (
	bulkResolveChunk = 500
	bulkInsertRows   = 500
	bulkInsertSome   = 20
	bulkInsertCols   = `app, ordinal, id, type, nick, face_url, attrs, tags`
)

// bulkStmts are the bulk statements of the writer connection.
type bulkStmts struct {
	insertMany *sql.Stmt // bulkInsertRows rows
	insertSome *sql.Stmt // bulkInsertSome rows
	insertOne  *sql.Stmt
	resolve    *sql.Stmt // bulkResolveChunk ids
	update     *sql.Stmt
	reserve    *sql.Stmt
	tagsOfApp  *sql.Stmt
	tagInsert  *sql.Stmt
}

func (b *bulkStmts) prepare(conn *sql.Conn) error {
	if b.insertOne != nil {
		return nil
	}
	row := `(?, ?, ?, 0, ?, ?, ?, ?)` // app, ordinal, id, type 0, nick, face_url, attrs, tags
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&b.insertMany, `INSERT INTO accounts (` + bulkInsertCols + `) VALUES ` + strings.Repeat(row+",", bulkInsertRows-1) + row},
		{&b.insertSome, `INSERT INTO accounts (` + bulkInsertCols + `) VALUES ` + strings.Repeat(row+",", bulkInsertSome-1) + row},
		{&b.insertOne, `INSERT INTO accounts (` + bulkInsertCols + `) VALUES ` + row},
		{&b.resolve, `SELECT key, id, ordinal, nick, face_url, attrs, tags FROM accounts WHERE app = ? AND type = 0 AND id IN (?` +
			strings.Repeat(",?", bulkResolveChunk-1) + `)`},
		{&b.update, `UPDATE accounts SET nick = ?, face_url = ?, attrs = ?, tags = ? WHERE key = ?`},
		{&b.reserve, `INSERT INTO app_seq (app, next_ordinal) VALUES (?, 1 + ?)
			ON CONFLICT (app) DO UPDATE SET next_ordinal = next_ordinal + excluded.next_ordinal - 1
			RETURNING next_ordinal`},
		{&b.tagsOfApp, `SELECT name, type, refcount FROM tags WHERE app = ?`},
		{&b.tagInsert, `INSERT INTO tags (app, name, type, refcount) VALUES (?, ?, ?, ?)`},
	} {
		st, err := conn.PrepareContext(context.Background(), p.sql)
		if err != nil {
			b.close()
			return dbErr("prepare", fmt.Errorf("%w: %s", err, p.sql))
		}
		*p.dst = st
	}
	return nil
}

func (b *bulkStmts) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{b.insertMany, b.insertSome, b.insertOne, b.resolve, b.update, b.reserve, b.tagsOfApp, b.tagInsert} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	*b = bulkStmts{}
	return errors.Join(errs...)
}

// bulkRow is an existing account of a batch.
type bulkRow struct {
	key     int64
	ordinal uint32
	nick    string
	faceURL string
	st      *acctState
	inOv    bool // the writer's overlay or transaction holds its state
}

// BulkLoad implements im.BulkLoader. Within a batch, later lines for the
// same UserID see the earlier ones.
func (s *Store) BulkLoad(ctx context.Context, app uint64, in []im.BulkAccount, lim im.EditLimits) ([]error, error) {
	lim = rules.EditLimits(lim)
	errs := make([]error, len(in))
	err := s.w.do(ctx, len(in), func(t *wtx) ([]im.Change, error) {
		clear(errs)
		b := &s.w.bulk
		if err := b.prepare(t.conn); err != nil {
			return nil, err
		}
		l := bulkLoad{t: t, b: b, app: app, lim: lim, errs: errs}
		return l.run(in)
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}

// bulkLoad is one BulkLoad job.
type bulkLoad struct {
	t    *wtx
	b    *bulkStmts
	app  uint64
	lim  im.EditLimits
	errs []error

	schema *im.AttrSchema
	rows   map[string]*bulkRow
	tags   map[string]tagState // the app's registry as the batch leaves it
	tagsN  int                 // distinct tags with refcount > 0
	before map[string]tagState // registry rows as they were, for those changed
	fresh  []freshAccount
	next   uint32 // the next reserved ordinal
}

// freshAccount is an account the batch creates.
type freshAccount struct {
	id  string
	row *bulkRow
}

func (l *bulkLoad) run(in []im.BulkAccount) ([]im.Change, error) {
	var err error
	if l.schema, err = l.t.schema(l.app); err != nil {
		return nil, err
	}
	if err := l.loadTags(); err != nil {
		return nil, err
	}
	if l.rows, err = l.resolve(in); err != nil {
		return nil, err
	}
	if l.next, err = l.reserve(in); err != nil {
		return nil, err
	}
	changes := make([]im.Change, 0, len(in))
	for i := range in {
		ch, changed, editErr, err := l.apply(&in[i])
		if err != nil {
			return nil, err
		}
		if editErr != nil {
			l.errs[i] = editErr
		} else if changed {
			changes = append(changes, ch)
		}
	}
	if err := l.insertFresh(); err != nil {
		return nil, err
	}
	return changes, l.writeTags()
}

// loadTags reads the app's tag registry (at most TagsPerApp rows).
func (l *bulkLoad) loadTags() error {
	rows, err := l.b.tagsOfApp.Query(int64(l.app))
	if err != nil {
		return dbErr("read tags", err)
	}
	defer rows.Close()
	l.tags, l.before = map[string]tagState{}, map[string]tagState{}
	for rows.Next() {
		var name string
		var typ, n int64
		if err := rows.Scan(&name, &typ, &n); err != nil {
			return dbErr("read tags", err)
		}
		l.tags[name] = tagState{typ: im.AcctType(typ), refcount: n}
	}
	l.tagsN = len(l.tags)
	return dbErr("read tags", rows.Err())
}

// resolve finds the batch's existing UserIDs, 500 per query of one
// prepared statement (a shorter last chunk repeats its last id).
func (l *bulkLoad) resolve(in []im.BulkAccount) (map[string]*bulkRow, error) {
	found := make(map[string]*bulkRow, len(in))
	ids := make([]any, 0, bulkResolveChunk+1)
	for start := 0; start < len(in); start += bulkResolveChunk {
		part := in[start:min(len(in), start+bulkResolveChunk)]
		ids = append(ids[:0], int64(l.app))
		for i := range part {
			ids = append(ids, part[i].UserID)
		}
		for len(ids) < bulkResolveChunk+1 {
			ids = append(ids, part[len(part)-1].UserID)
		}
		if err := l.scanRows(ids, found); err != nil {
			return nil, err
		}
	}
	return found, nil
}

func (l *bulkLoad) scanRows(args []any, found map[string]*bulkRow) error {
	rows, err := l.b.resolve.Query(args...)
	if err != nil {
		return dbErr("resolve accounts", err)
	}
	defer rows.Close()
	for rows.Next() {
		r := &bulkRow{}
		var id string
		var ordinal int64
		var attrs, tags sql.NullString
		if err := rows.Scan(&r.key, &id, &ordinal, &r.nick, &r.faceURL, &attrs, &tags); err != nil {
			return dbErr("resolve accounts", err)
		}
		r.ordinal = uint32(ordinal)
		if st, ok := l.t.state(r.key); ok && st != nil {
			r.st, r.inOv = st, true
		} else {
			r.st = &acctState{ordinal: r.ordinal, typ: im.AcctUserID}
			if r.st.attrs, err = decodeAttrs(attrs); err != nil {
				return err
			}
			if r.st.tags, err = decodeStrings(tags); err != nil {
				return err
			}
		}
		found[id] = r
	}
	return dbErr("resolve accounts", rows.Err())
}

// reserve takes n ordinals for the batch's new accounts and returns the
// first.
func (l *bulkLoad) reserve(in []im.BulkAccount) (uint32, error) {
	seen := map[string]bool{}
	n := 0
	for i := range in {
		if id := in[i].UserID; l.rows[id] == nil && !seen[id] {
			seen[id] = true
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	var next int64
	if err := l.b.reserve.QueryRow(int64(l.app), int64(n)).Scan(&next); err != nil {
		return 0, dbErr("reserve ordinals", err)
	}
	first := next - int64(n)
	if first <= 0 || next-1 > 1<<32-1 {
		return 0, fmt.Errorf("sqlite: app %d has used every ordinal", l.app)
	}
	return uint32(first), nil
}

// apply validates one account against the state the batch has left and
// records it. It returns the change, whether there is one, a per-account
// error, or a database error.
func (l *bulkLoad) apply(a *im.BulkAccount) (ch im.Change, changed bool, editErr *im.Error, err error) {
	r := l.rows[a.UserID]
	cur := &acctState{typ: im.AcctUserID}
	if r != nil {
		cur = r.st
	}
	attrs := cur.attrs
	for slot, v := range a.Attrs {
		if v == "" {
			continue
		}
		if l.schema[slot].Type != im.AcctUserID {
			return ch, false, boundErr(a.UserID, "attribute", l.schema[slot].Name, l.schema[slot].Type), nil
		}
		attrs[slot] = v
	}
	tags := cur.tags
	var added []string
	created := 0
	for _, name := range a.Tags {
		if slices.Contains(tags, name) || slices.Contains(added, name) {
			continue
		}
		st := l.tags[name]
		if st.refcount > 0 && st.typ != im.AcctUserID {
			return ch, false, boundErr(a.UserID, "tag", name, st.typ), nil
		}
		if st.refcount == 0 {
			created++
		}
		added = append(added, name)
	}
	if len(added) > 0 {
		if len(tags)+len(added) > l.lim.TagsPerUser {
			return ch, false, im.Errorf(im.CodeTooManyTags, "account %s would have %d tags, more than %d",
				a.UserID, len(tags)+len(added), l.lim.TagsPerUser), nil
		}
		if l.tagsN+created > l.lim.TagsPerApp {
			return ch, false, im.Errorf(im.CodeTooManyTags, "the app would have %d distinct tags, more than %d",
				l.tagsN+created, l.lim.TagsPerApp), nil
		}
		tags = append(slices.Clone(tags), added...)
		l.countTags(added)
	}
	if r == nil {
		return l.create(a, attrs, tags), true, nil, nil
	}
	return l.update(r, a, attrs, tags)
}

// countTags adds one carrier to each of added in the batch's registry.
func (l *bulkLoad) countTags(added []string) {
	for _, name := range added {
		st := l.tags[name]
		if _, ok := l.before[name]; !ok {
			l.before[name] = st
		}
		if st.refcount == 0 {
			st.typ = im.AcctUserID
			l.tagsN++
		}
		st.refcount++
		l.tags[name] = st
	}
}

// create records a new account, inserted by insertFresh.
func (l *bulkLoad) create(a *im.BulkAccount, attrs im.AttrValues, tags []string) im.Change {
	st := &acctState{ordinal: l.next, typ: im.AcctUserID, attrs: attrs, tags: tags}
	l.next++
	r := &bulkRow{ordinal: st.ordinal, nick: a.Nick, faceURL: a.FaceURL, st: st}
	l.rows[a.UserID] = r
	l.fresh = append(l.fresh, freshAccount{id: a.UserID, row: r})
	return im.Change{App: l.app, Op: im.ChangeUpsert, ID: a.UserID, Type: im.AcctUserID, Ordinal: st.ordinal,
		NewAttrs: attrs, NewTags: tags}
}

// update changes an account that exists (in the store, or created earlier
// in the batch).
func (l *bulkLoad) update(r *bulkRow, a *im.BulkAccount, attrs im.AttrValues, tags []string) (im.Change, bool, *im.Error, error) {
	nick, face := r.nick, r.faceURL
	if a.Nick != "" {
		nick = a.Nick
	}
	if a.FaceURL != "" {
		face = a.FaceURL
	}
	old := r.st
	audience := attrs != old.attrs || len(tags) != len(old.tags)
	profile := nick != r.nick || face != r.faceURL
	r.nick, r.faceURL = nick, face
	if audience {
		r.st = &acctState{ordinal: old.ordinal, typ: old.typ, attrs: attrs, tags: tags}
	}
	switch {
	case r.key == 0: // created by this batch: insertFresh writes its final state
	case r.inOv:
		if profile {
			if _, err := l.t.setProfile.Exec(nick, face, r.key); err != nil {
				return im.Change{}, false, nil, dbErr("update profile", err)
			}
		}
		if audience {
			l.t.setState(r.key, r.st, true)
		}
	case profile || audience:
		if _, err := l.b.update.Exec(nick, face, encodeAttrs(&r.st.attrs), encodeStrings(r.st.tags), r.key); err != nil {
			return im.Change{}, false, nil, dbErr("update account", err)
		}
	}
	if !audience {
		return im.Change{}, false, nil, nil
	}
	return im.Change{App: l.app, Op: im.ChangeUpsert, ID: a.UserID, Type: old.typ, Ordinal: old.ordinal,
		OldAttrs: old.attrs, NewAttrs: attrs, OldTags: old.tags, NewTags: tags}, true, nil, nil
}

// insertFresh inserts the batch's new accounts, 500 rows per statement
// (then 20, then 1).
func (l *bulkLoad) insertFresh() error {
	args := make([]any, 0, 7*bulkInsertRows)
	for len(l.fresh) > 0 {
		n := bulkInsertRows
		st := l.b.insertMany
		switch {
		case len(l.fresh) >= bulkInsertRows:
		case len(l.fresh) >= bulkInsertSome:
			n, st = bulkInsertSome, l.b.insertSome
		default:
			n, st = 1, l.b.insertOne
		}
		args = args[:0]
		for _, f := range l.fresh[:n] {
			r := f.row
			args = append(args, int64(l.app), int64(r.ordinal), f.id, r.nick, r.faceURL,
				encodeAttrs(&r.st.attrs), encodeStrings(r.st.tags))
		}
		if _, err := st.Exec(args...); err != nil {
			return dbErr("insert accounts", err)
		}
		l.fresh = l.fresh[n:]
	}
	return nil
}

// writeTags writes the registry rows the batch changed.
func (l *bulkLoad) writeTags() error {
	for name, old := range l.before {
		cur := l.tags[name]
		var err error
		if old.refcount == 0 {
			_, err = l.b.tagInsert.Exec(int64(l.app), name, int64(cur.typ), cur.refcount)
		} else {
			_, err = l.t.tagSet.Exec(int64(cur.typ), cur.refcount, int64(l.app), name)
		}
		if err != nil {
			return dbErr("update tag", err)
		}
	}
	return nil
}
