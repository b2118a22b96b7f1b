package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"timd/internal/im"
)

// readStmts are the statements of the read-only pool; database/sql prepares
// each on a connection the first time it runs there. Every statement is of
// fixed text, so it is prepared once per connection, never per request.
type readStmts struct {
	stmts []*sql.Stmt

	scan     *sql.Stmt // every account of an app, by ordinal
	profiles *sql.Stmt // the audience data of a JSON array of ids
	accounts *sql.Stmt // the accounts of a JSON array of ids
	attrsOf  *sql.Stmt // ReadAttrs (see narrowQuery), ids in hex
	tagsOf   *sql.Stmt // ReadTags, ids in hex
	// attrsOfPlain and tagsOfPlain take the ids as they are.
	attrsOfPlain *sql.Stmt
	tagsOfPlain  *sql.Stmt
	schema       *sql.Stmt
	app          *sql.Stmt
	apps         *sql.Stmt
}

const (
	appColumns = `sdkappid, secret_key, admins, callback_url, created_at`
	// acctColumns are an account without its audience data; scanAccount
	// reads them.
	acctColumns = `key, ordinal, type, id, nick, face_url, kicked_at, owner, platform, token`
	// byIDs selects the accounts whose id is in the JSON array bound to the
	// second parameter, through the (app, id, type) index.
	byIDs = ` FROM accounts WHERE app = ? AND id IN (SELECT value FROM json_each(?))`
)

func (r *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&r.scan, `SELECT ` + accountColumns + ` FROM accounts WHERE app = ? ORDER BY ordinal`},
		{&r.profiles, `SELECT ` + accountColumns + byIDs},
		{&r.accounts, `SELECT ` + acctColumns + byIDs},
		{&r.attrsOf, attrsOfQuery},
		{&r.tagsOf, tagsOfQuery},
		{&r.attrsOfPlain, attrsOfPlainQuery},
		{&r.tagsOfPlain, tagsOfPlainQuery},
		{&r.schema, schemaQuery},
		{&r.app, `SELECT ` + appColumns + ` FROM apps WHERE sdkappid = ?`},
		{&r.apps, `SELECT ` + appColumns + ` FROM apps ORDER BY sdkappid`},
	} {
		st, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			r.close()
			return dbErr("prepare", fmt.Errorf("%w: %s", err, p.sql))
		}
		*p.dst = st
		r.stmts = append(r.stmts, st)
	}
	return nil
}

func (r *readStmts) close() {
	for _, st := range r.stmts {
		st.Close()
	}
	r.stmts = nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// hit is one account a read found.
type hit struct {
	p       im.Profile
	key     int64
	suspect bool // must be settled: see scanProfile
}

// scanFullProfile reads accountColumns: the whole account, and its
// attributes and tags (see audience).
func (s *Store) scanFullProfile(sc scanner, g0 uint64) (h hit, err error) {
	var ordinal, typ int64
	var attrs, tags sql.NullString
	a := &h.p.Account
	if err := sc.Scan(&h.key, &ordinal, &typ, &a.ID, &a.Nick, &a.FaceURL, &a.KickedAt,
		&a.Owner, &a.Platform, &a.Token, &attrs, &tags); err != nil {
		return h, err
	}
	a.Ordinal, a.Type = uint32(ordinal), im.AcctType(typ)
	return h, s.audience(&h, attrs, tags, g0)
}

// audience sets h's attributes and tags from the overlay when it has the
// account (the row may lag behind it), else from the row's columns. g0 is
// the overlay's eviction generation from before the row's read began: if
// the account may have been evicted since, the row may predate a fold
// whose newer state was then evicted, so the hit is suspect and must be
// settled (after the read transaction ends).
func (s *Store) audience(h *hit, attrs, tags sql.NullString, g0 uint64) (err error) {
	st, suspect := s.ov.lookup(h.key, g0)
	if st != nil {
		h.p.Attrs, h.p.Tags = st.attrs, slices.Clone(st.tags)
		return nil
	}
	if h.p.Attrs, err = decodeAttrs(attrs); err != nil {
		return err
	}
	h.p.Tags, err = decodeStrings(tags)
	h.suspect = suspect
	return err
}

// scanAccount reads acctColumns.
func scanAccount(sc scanner) (h hit, err error) {
	var ordinal, typ int64
	a := &h.p.Account
	err = sc.Scan(&h.key, &ordinal, &typ, &a.ID, &a.Nick, &a.FaceURL, &a.KickedAt, &a.Owner, &a.Platform, &a.Token)
	a.Ordinal, a.Type = uint32(ordinal), im.AcctType(typ)
	return h, err
}

// maxSettle bounds the re-reads of one account racing evictions.
const maxSettle = 1000

// settle re-reads a suspect account's attributes and tags outside any
// read transaction: from the overlay if it has the account again, else
// from its row, retrying while evictions race the read. An eviction only
// follows the commit of the fold that made the row current, so a row read
// with no eviction between the overlay miss and the end of the read is
// current. It reports false when the account no longer exists. It reads
// through its own small pool, so it may run while a scan holds a read
// connection.
func (s *Store) settle(ctx context.Context, key int64, p *im.Profile) (bool, error) {
	for range maxSettle {
		g := s.ov.gen.Load()
		if st := s.ov.get(key); st != nil {
			p.Attrs, p.Tags = st.attrs, slices.Clone(st.tags)
			return true, nil
		}
		var attrs, tags sql.NullString
		err := s.settleStmt.QueryRowContext(ctx, key).Scan(&attrs, &tags)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, dbErr("read account", err)
		}
		if s.ov.gen.Load() != g {
			continue
		}
		if p.Attrs, err = decodeAttrs(attrs); err != nil {
			return false, err
		}
		p.Tags, err = decodeStrings(tags)
		return true, err
	}
	return false, fmt.Errorf("sqlite: account %d kept being evicted while read", key)
}

// lookup resolves ids with q (profiles or accounts), in one read
// transaction, and calls found for each account that exists, in the order
// of ids. scan reads q's columns.
func (s *Store) lookup(ctx context.Context, q *sql.Stmt, app uint64, ids []string,
	scan func(scanner, uint64) (hit, error), found func(id string, p im.Profile)) error {
	if len(ids) == 0 {
		return nil
	}
	g0 := s.ov.gen.Load()
	best := make(map[string]hit, len(ids))
	err := func() error {
		rows, err := s.queryIDs(ctx, q, app, ids)
		if err != nil {
			return dbErr("read accounts", err)
		}
		defer rows.Close()
		for rows.Next() {
			h, err := scan(rows, g0)
			if err != nil {
				return dbErr("read account", err)
			}
			// A RegistrationID (type 1) wins over a UserID of the same id.
			if old, ok := best[h.p.Account.ID]; !ok || h.p.Account.Type > old.p.Account.Type {
				best[h.p.Account.ID] = h
			}
		}
		return dbErr("read accounts", rows.Err())
	}()
	if err != nil {
		return err
	}
	for _, id := range ids {
		h, ok := best[id]
		if !ok {
			continue
		}
		if h.suspect {
			if ok, err := s.settle(ctx, h.key, &h.p); err != nil {
				return err
			} else if !ok {
				continue
			}
		}
		found(id, h.p)
	}
	return nil
}

// queryIDs runs q for the ids, bound as one JSON array: one statement of
// fixed text whatever the number of ids. An id with a control character
// (which SQLite's JSON functions may not give back byte for byte) makes
// it fall back to a statement with one parameter per id.
func (s *Store) queryIDs(ctx context.Context, q *sql.Stmt, app uint64, ids []string) (*sql.Rows, error) {
	n := 2
	for _, id := range ids {
		n += len(id) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, id := range ids {
		if strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 }) {
			return s.queryIDsSlow(ctx, q, app, ids)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, id)
	}
	b = append(b, ']')
	return q.QueryContext(ctx, int64(app), string(b))
}

func (s *Store) queryIDsSlow(ctx context.Context, q *sql.Stmt, app uint64, ids []string) (*sql.Rows, error) {
	cols := accountColumns
	if q == s.r.accounts {
		cols = acctColumns
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, int64(app))
	for _, id := range ids {
		args = append(args, id)
	}
	return s.rdb.QueryContext(ctx, `SELECT `+cols+` FROM accounts WHERE app = ? AND id IN (?`+
		strings.Repeat(",?", len(ids)-1)+`)`, args...)
}

// Accounts resolves ids (RegistrationIDs first, then UserIDs) and returns
// the accounts found, keyed by the id asked for. Unknown ids are absent
// from the map; it is not an error.
func (s *Store) Accounts(ctx context.Context, app uint64, ids []string) (map[string]im.Account, error) {
	out := make(map[string]im.Account, len(ids))
	scan := func(sc scanner, _ uint64) (hit, error) { return scanAccount(sc) }
	err := s.lookup(ctx, s.r.accounts, app, ids, scan, func(id string, p im.Profile) { out[id] = p.Account })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Profiles returns the accounts, attributes and tags of the accounts found
// among ids (resolved as in Accounts), keyed by the id asked for.
func (s *Store) Profiles(ctx context.Context, app uint64, ids []string) (map[string]im.Profile, error) {
	out := make(map[string]im.Profile, len(ids))
	err := s.lookup(ctx, s.r.profiles, app, ids, s.scanFullProfile, func(id string, p im.Profile) { out[id] = p })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ScanProfiles calls fn for every account of the app in ordinal order,
// streaming rows rather than loading them all. It stops at and returns the
// first error of fn. The accounts are those of the moment the scan starts;
// each one's attributes and tags are at least as new as that moment (a
// change committed during the scan may or may not be seen), so a consumer
// that installs its ChangeSink first and applies the changes it receives
// after the scan ends up current.
func (s *Store) ScanProfiles(ctx context.Context, app uint64, fn func(im.Profile) error) error {
	g0 := s.ov.gen.Load()
	rows, err := s.r.scan.QueryContext(ctx, int64(app))
	if err != nil {
		return dbErr("scan accounts", err)
	}
	defer rows.Close()
	for rows.Next() {
		h, err := s.scanFullProfile(rows, g0)
		if err != nil {
			return dbErr("scan accounts", err)
		}
		if h.suspect {
			ok, err := s.settle(ctx, h.key, &h.p)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
		}
		if err := fn(h.p); err != nil {
			return err
		}
	}
	return dbErr("scan accounts", rows.Err())
}

// AttrSchema returns the app's attribute slots; all are undefined (zero)
// if the app never stored any. Every attribute request asks, so the
// schemas are held in memory (schemaCache), one per app.
func (s *Store) AttrSchema(ctx context.Context, app uint64) (im.AttrSchema, error) {
	if s.closed.Load() {
		return im.AttrSchema{}, ErrClosed
	}
	if sc, ok := s.schemas.get(app); ok {
		return sc, nil
	}
	g := s.schemas.generation()
	rows, err := s.r.schema.QueryContext(ctx, int64(app))
	if err != nil {
		return im.AttrSchema{}, dbErr("read attribute schema", err)
	}
	sc, err := scanSchema(rows)
	if err == nil {
		s.schemas.fill(app, sc, g)
	}
	return sc, err
}

// schemaCache holds the attribute schemas of the apps read so far (apps
// are few and configured, so it is bounded by them). Invalidation: the
// writer replaces an app's entry after it commits a new schema for it,
// before the write is acknowledged; a read from the database that raced
// such a put is returned but not kept.
type schemaCache struct {
	mu  sync.Mutex
	m   map[uint64]im.AttrSchema
	gen uint64 // counts puts
}

func (c *schemaCache) get(app uint64) (im.AttrSchema, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sc, ok := c.m[app]
	return sc, ok
}

func (c *schemaCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// fill keeps sc, read from the database, unless a put happened since gen.
func (c *schemaCache) fill(app uint64, sc im.AttrSchema, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		if c.m == nil {
			c.m = map[uint64]im.AttrSchema{}
		}
		c.m[app] = sc
	}
}

// put records a committed schema.
func (c *schemaCache) put(app uint64, sc im.AttrSchema) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if c.m == nil {
		c.m = map[uint64]im.AttrSchema{}
	}
	c.m[app] = sc
}
