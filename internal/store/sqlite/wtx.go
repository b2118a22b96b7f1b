package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"timd/internal/im"
)

// wtx is the writer's view of the open transaction: the read-write
// connection, its prepared statements, and the audience states the
// transaction has read or changed. Only the writer goroutine uses it.
// Statements run under context.Background(): a caller's context decides only
// whether its job starts, never interrupts a transaction shared with others.
type wtx struct {
	conn  *sql.Conn
	stmts []*sql.Stmt

	byIDType    *sql.Stmt // every column of (id, type)
	setAudience *sql.Stmt
	setProfile  *sql.Stmt
	setDevice   *sql.Stmt
	kick        *sql.Stmt
	insert      *sql.Stmt
	// reserveOrdinals reserves the app's next n ordinals and returns the
	// first.
	reserveOrdinals *sql.Stmt
	// insertMany[i] inserts insertUsersRows[i] UserIDs.
	insertMany [len(insertUsersRows)]*sql.Stmt
	// resolveMany reads the audience columns of idChunk ids, byIDMany
	// every column; both read both types.
	resolveMany  *sql.Stmt
	byIDMany     *sql.Stmt
	deleteRow    *sql.Stmt
	tagGet       *sql.Stmt
	tagInsert    *sql.Stmt
	tagSet       *sql.Stmt
	tagDelete    *sql.Stmt
	tagCountStmt *sql.Stmt
	schemaGet    *sql.Stmt
	schemaDelete *sql.Stmt
	schemaInsert *sql.Stmt
	appPut       *sql.Stmt
	appDelete    *sql.Stmt
	ownerDevices *sql.Stmt // RegistrationIDs of one owner
	logInsert    *sql.Stmt
	logTrim      *sql.Stmt

	ov *overlay
	// pending holds the states this transaction read or changed, over ov;
	// a nil state is a deleted account. undo restores pending when the
	// running job fails.
	pending map[int64]pendingState
	undo    []undoState
	// schemas caches attribute schemas by app; schemaPuts are the ones
	// this transaction stored, for the store's schemaCache after COMMIT.
	schemas    map[uint64]*im.AttrSchema
	schemaPuts map[uint64]im.AttrSchema
	// tags holds the tag registry rows the transaction has read or
	// changed (tagreg.go); tagUndo restores them when the running job
	// fails.
	tags    map[tagKey]*tagEntry
	tagUndo []tagUndo
	// idLookups counts the id lookup statements run (resolveIDs,
	// rowsByIDs), and userInserts insertUsers' statements, for tests.
	idLookups, userInserts int
}

type pendingState struct {
	st       *acctState
	modified bool // differs from what accounts and account_log hold
}

type undoState struct {
	key  int64
	prev pendingState
	had  bool
}

// Queries shared by the writer and the readers.
const (
	accountColumns = `key, ordinal, type, id, nick, face_url, kicked_at, owner, platform, token, attrs, tags`
	schemaQuery    = `SELECT slot, name, type FROM attr_schema WHERE app = ?`
)

func (t *wtx) prepare(ctx context.Context, conn *sql.Conn) error {
	t.conn = conn
	for i, n := range insertUsersRows {
		row := `(?, ?, ?, 0, ?, ?)` // app, ordinal, id, type 0, nick, face_url
		st, err := conn.PrepareContext(ctx, `INSERT INTO accounts (app, ordinal, id, type, nick, face_url) VALUES `+
			strings.Repeat(row+",", n-1)+row+` RETURNING key, ordinal`)
		if err != nil {
			t.close()
			return dbErr("prepare", err)
		}
		t.insertMany[i] = st
		t.stmts = append(t.stmts, st)
	}
	t.pending = map[int64]pendingState{}
	t.schemas = map[uint64]*im.AttrSchema{}
	t.schemaPuts = map[uint64]im.AttrSchema{}
	t.tags = map[tagKey]*tagEntry{}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&t.byIDType, `SELECT ` + accountColumns + ` FROM accounts WHERE app = ? AND id = ? AND type = ?`},
		{&t.setAudience, `UPDATE accounts SET attrs = ?, tags = ? WHERE key = ?`},
		{&t.setProfile, `UPDATE accounts SET nick = ?, face_url = ? WHERE key = ?`},
		{&t.setDevice, `UPDATE accounts SET owner = ?, platform = ?, token = ? WHERE key = ?`},
		{&t.kick, `UPDATE accounts SET kicked_at = max(kicked_at, ?) WHERE app = ? AND id = ? AND type = 0`},
		{&t.insert, `INSERT INTO accounts (app, ordinal, id, type, nick, face_url, owner, platform, token)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&t.reserveOrdinals, `INSERT INTO app_seq (app, next_ordinal) VALUES (?1, 1 + ?2)
			ON CONFLICT (app) DO UPDATE SET next_ordinal = next_ordinal + ?2
			RETURNING next_ordinal - ?2`},
		{&t.resolveMany, `SELECT key, id, ordinal, type, attrs, tags FROM accounts
			WHERE app = ? AND id IN (?` + strings.Repeat(",?", idChunk-1) + `)`},
		{&t.byIDMany, `SELECT ` + accountColumns + ` FROM accounts
			WHERE app = ? AND id IN (?` + strings.Repeat(",?", idChunk-1) + `)`},
		{&t.deleteRow, `DELETE FROM accounts WHERE key = ?`},
		{&t.tagGet, `SELECT type, refcount FROM tags WHERE app = ? AND name = ?`},
		{&t.tagInsert, `INSERT INTO tags (app, name, type, refcount) VALUES (?, ?, ?, ?)`},
		{&t.tagSet, `UPDATE tags SET type = ?, refcount = ? WHERE app = ? AND name = ?`},
		{&t.tagDelete, `DELETE FROM tags WHERE app = ? AND name = ?`},
		{&t.tagCountStmt, `SELECT count(*) FROM tags WHERE app = ?`},
		{&t.schemaGet, schemaQuery},
		{&t.schemaDelete, `DELETE FROM attr_schema WHERE app = ?`},
		{&t.schemaInsert, `INSERT INTO attr_schema (app, slot, name, type) VALUES (?, ?, ?, ?)`},
		{&t.appPut, appPutSQL},
		{&t.appDelete, `DELETE FROM apps WHERE sdkappid = ?`},
		{&t.ownerDevices, `SELECT id FROM accounts WHERE app = ? AND type = 1 AND owner = ? ORDER BY key`},
		{&t.logInsert, `INSERT INTO account_log (images) VALUES (?)`},
		{&t.logTrim, `DELETE FROM account_log WHERE seq <= ?`},
	} {
		st, err := conn.PrepareContext(ctx, p.sql)
		if err != nil {
			t.close()
			return dbErr("prepare", fmt.Errorf("%w: %s", err, p.sql))
		}
		*p.dst = st
		t.stmts = append(t.stmts, st)
	}
	return nil
}

func (t *wtx) close() error {
	var errs []error
	for _, st := range t.stmts {
		errs = append(errs, st.Close())
	}
	t.stmts = nil
	return errors.Join(errs...)
}

func (t *wtx) exec(query string) error {
	_, err := t.conn.ExecContext(context.Background(), query)
	return err
}

// state returns the current audience state of key, or nil when neither
// the transaction nor the overlay has it (or it was deleted).
func (t *wtx) state(key int64) (*acctState, bool) {
	if p, ok := t.pending[key]; ok {
		return p.st, true
	}
	st, ok := t.ov.m[key]
	return st, ok
}

// setState records key's new state; modified says it must be logged.
func (t *wtx) setState(key int64, st *acctState, modified bool) {
	prev, had := t.pending[key]
	t.undo = append(t.undo, undoState{key: key, prev: prev, had: had})
	t.pending[key] = pendingState{st: st, modified: modified || prev.modified}
}

// jobFailed forgets what the failed job did to the transaction's caches.
func (t *wtx) jobFailed() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		u := t.undo[i]
		if u.had {
			t.pending[u.key] = u.prev
		} else {
			delete(t.pending, u.key)
		}
	}
	t.undo = t.undo[:0]
	t.undoTags()
	clear(t.schemas)
}

// groupFailed forgets everything the rolled-back transaction did.
func (t *wtx) groupFailed() {
	clear(t.pending)
	t.undo = t.undo[:0]
	clear(t.schemas)
	clear(t.schemaPuts)
	t.endTags()
}

// loadState returns the state of key, taking it from the row's columns
// when the writer does not know it yet.
func (t *wtx) loadState(key int64, ordinal, typ int64, attrs, tags sql.NullString) (*acctState, error) {
	if st, ok := t.state(key); ok && st != nil {
		return st, nil
	}
	st := &acctState{ordinal: uint32(ordinal), typ: im.AcctType(typ)}
	var err error
	if st.attrs, err = decodeAttrs(attrs); err != nil {
		return nil, err
	}
	if st.tags, err = decodeStrings(tags); err != nil {
		return nil, err
	}
	t.setState(key, st, false)
	return st, nil
}

// idChunk is how many ids resolveIDs and rowsByIDs look up per statement:
// a request carries at most 100 accounts.
const idChunk = 100

// resolved is an account found by resolveIDs.
type resolved struct {
	key int64
	st  *acctState
}

// resolveIDs finds accounts by To_Account, RegistrationIDs first, idChunk
// ids per statement, and returns them by id (an id of no account is
// absent). Every statement binds idChunk ids: a shorter last chunk repeats
// its last id. It asks the accounts table every time: the (app, id, type)
// index answers in a few microseconds, and a cache of every id ever
// resolved would grow with the app.
func (t *wtx) resolveIDs(app uint64, ids []string) (map[string]resolved, error) {
	found := make(map[string]resolved, len(ids))
	args := make([]any, 0, idChunk+1)
	for start := 0; start < len(ids); start += idChunk {
		args = chunkArgs(args, app, ids[start:min(len(ids), start+idChunk)])
		if err := t.scanResolved(args, found); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// chunkArgs returns app followed by part, padded to idChunk ids.
func chunkArgs(args []any, app uint64, part []string) []any {
	args = append(args[:0], int64(app))
	for _, id := range part {
		args = append(args, id)
	}
	for len(args) < idChunk+1 {
		args = append(args, part[len(part)-1])
	}
	return args
}

func (t *wtx) scanResolved(args []any, found map[string]resolved) error {
	t.idLookups++
	rows, err := t.resolveMany.Query(args...)
	if err != nil {
		return dbErr("resolve accounts", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, ordinal, typ int64
		var id string
		var attrs, tags sql.NullString
		if err := rows.Scan(&key, &id, &ordinal, &typ, &attrs, &tags); err != nil {
			return dbErr("resolve accounts", err)
		}
		if prev, ok := found[id]; ok && prev.st.typ == im.AcctRegistrationID {
			continue // RegistrationIDs first
		}
		st, err := t.loadState(key, ordinal, typ, attrs, tags)
		if err != nil {
			return err
		}
		found[id] = resolved{key: key, st: st}
	}
	return dbErr("resolve accounts", rows.Err())
}

// rowsByIDs finds the accounts of ids, of both types, idChunk ids per
// statement, and calls fn for each.
func (t *wtx) rowsByIDs(app uint64, ids []string, fn func(r row)) error {
	args := make([]any, 0, idChunk+1)
	for start := 0; start < len(ids); start += idChunk {
		args = chunkArgs(args, app, ids[start:min(len(ids), start+idChunk)])
		if err := t.scanRowsByID(t.byIDMany, args, fn); err != nil {
			return err
		}
	}
	return nil
}

// scanRowsByID runs st, a query of accountColumns, and calls fn with each
// row.
func (t *wtx) scanRowsByID(st *sql.Stmt, args []any, fn func(r row)) error {
	t.idLookups++
	rows, err := st.Query(args...)
	if err != nil {
		return dbErr("read account", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r row
		var ordinal, acctType int64
		var attrs, tags sql.NullString
		a := &r.Account
		if err := rows.Scan(&r.key, &ordinal, &acctType, &a.ID, &a.Nick, &a.FaceURL, &a.KickedAt,
			&a.Owner, &a.Platform, &a.Token, &attrs, &tags); err != nil {
			return dbErr("read account", err)
		}
		a.Ordinal, a.Type = uint32(ordinal), im.AcctType(acctType)
		if r.st, err = t.loadState(r.key, ordinal, acctType, attrs, tags); err != nil {
			return err
		}
		fn(r)
	}
	return dbErr("read account", rows.Err())
}

// row is a whole account row with its current audience state.
type row struct {
	key int64
	im.Account
	st *acctState
}

// rowByIDType finds the account of exactly (id, type).
func (t *wtx) rowByIDType(app uint64, id string, typ im.AcctType) (row, bool, error) {
	var r row
	var ordinal, acctType int64
	var attrs, tags sql.NullString
	a := &r.Account
	err := t.byIDType.QueryRow(int64(app), id, int64(typ)).Scan(&r.key, &ordinal, &acctType, &a.ID,
		&a.Nick, &a.FaceURL, &a.KickedAt, &a.Owner, &a.Platform, &a.Token, &attrs, &tags)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, dbErr("read account", err)
	}
	a.Ordinal, a.Type = uint32(ordinal), im.AcctType(acctType)
	if r.st, err = t.loadState(r.key, ordinal, acctType, attrs, tags); err != nil {
		return r, false, err
	}
	return r, true, nil
}

// reserve reserves the app's next n (> 0) ordinals, in one statement, and
// returns the first. They are never handed out again, even if the caller
// uses fewer (a rolled-back job rolls the reservation back with it).
func (t *wtx) reserve(app uint64, n int) (uint32, error) {
	var first int64
	if err := t.reserveOrdinals.QueryRow(int64(app), int64(n)).Scan(&first); err != nil {
		return 0, dbErr("next ordinal", err)
	}
	if first <= 0 || first+int64(n)-1 > 1<<32-1 {
		return 0, fmt.Errorf("sqlite: app %d has used every ordinal", app)
	}
	return uint32(first), nil
}

// create inserts a new account with the app's next ordinal.
func (t *wtx) create(app uint64, a im.Account) (im.Account, error) {
	ord, err := t.reserve(app, 1)
	if err != nil {
		return a, err
	}
	r, err := t.insertAccount(app, a, ord)
	return r.Account, err
}

// insertAccount inserts a new account with a reserved ordinal.
func (t *wtx) insertAccount(app uint64, a im.Account, ordinal uint32) (row, error) {
	a.Ordinal = ordinal
	res, err := t.insert.Exec(int64(app), int64(ordinal), a.ID, int64(a.Type), a.Nick, a.FaceURL, a.Owner, a.Platform, a.Token)
	if err != nil {
		return row{Account: a}, dbErr("insert account", err)
	}
	key, err := res.LastInsertId()
	if err != nil {
		return row{Account: a}, dbErr("insert account", err)
	}
	st := &acctState{ordinal: a.Ordinal, typ: a.Type}
	t.setState(key, st, false)
	return row{key: key, Account: a, st: st}, nil
}

// insertUsersRows are the row counts of the insertUsers statements,
// largest first.
var insertUsersRows = [...]int{100, 10, 1}

// insertUsers inserts new UserIDs with their reserved ordinals, as many
// per statement as insertUsersRows allows.
func (t *wtx) insertUsers(app uint64, accts []im.Account) error {
	args := make([]any, 0, 5*insertUsersRows[0])
	for len(accts) > 0 {
		i := 0
		for insertUsersRows[i] > len(accts) {
			i++
		}
		n := insertUsersRows[i]
		args = args[:0]
		for _, a := range accts[:n] {
			args = append(args, int64(app), int64(a.Ordinal), a.ID, a.Nick, a.FaceURL)
		}
		if err := t.scanInserted(t.insertMany[i], args); err != nil {
			return err
		}
		accts = accts[n:]
	}
	return nil
}

func (t *wtx) scanInserted(st *sql.Stmt, args []any) error {
	t.userInserts++
	rows, err := st.Query(args...)
	if err != nil {
		return dbErr("insert accounts", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, ordinal int64
		if err := rows.Scan(&key, &ordinal); err != nil {
			return dbErr("insert accounts", err)
		}
		t.setState(key, &acctState{ordinal: uint32(ordinal), typ: im.AcctUserID}, false)
	}
	return dbErr("insert accounts", rows.Err())
}

// remove deletes the account r.
func (t *wtx) remove(r row) error {
	if _, err := t.deleteRow.Exec(r.key); err != nil {
		return dbErr("delete account", err)
	}
	t.setState(r.key, nil, true)
	return nil
}

// releaseTags drops one reference to each of tags.
func (t *wtx) releaseTags(app uint64, tags []string) error {
	for _, name := range tags {
		st, err := t.tag(app, name)
		if err != nil {
			return err
		}
		if err := t.retag(app, name, st.typ, st, -1); err != nil {
			return err
		}
	}
	return nil
}

// schema returns the app's attribute schema.
func (t *wtx) schema(app uint64) (*im.AttrSchema, error) {
	if s, ok := t.schemas[app]; ok {
		return s, nil
	}
	rows, err := t.schemaGet.Query(int64(app))
	if err != nil {
		return nil, dbErr("read attribute schema", err)
	}
	s, err := scanSchema(rows)
	if err != nil {
		return nil, err
	}
	t.schemas[app] = &s
	return &s, nil
}

func scanSchema(rows *sql.Rows) (im.AttrSchema, error) {
	var s im.AttrSchema
	defer rows.Close()
	for rows.Next() {
		var slot, typ int64
		var name string
		if err := rows.Scan(&slot, &name, &typ); err != nil {
			return s, dbErr("read attribute schema", err)
		}
		if slot >= 0 && slot < int64(len(s)) {
			s[slot] = im.AttrSlot{Name: name, Type: im.AcctType(typ)}
		}
	}
	return s, dbErr("read attribute schema", rows.Err())
}
