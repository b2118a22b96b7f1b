package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"timd/internal/im"
)

// readStmts are the statements of the read-only pool; database/sql prepares
// each on a connection the first time it runs there.
type readStmts struct {
	stmts []*sql.Stmt

	scan   *sql.Stmt // every account of an app, by ordinal
	schema *sql.Stmt
	app    *sql.Stmt
	apps   *sql.Stmt
	// Catch-up and /v1/sync run these for every connection and call.
	heads    *sql.Stmt // StoredHeads
	audience *sql.Stmt // TaskAudience
}

const appColumns = `sdkappid, secret_key, admins, callback_url, created_at`

func (r *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&r.scan, `SELECT ` + accountColumns + ` FROM accounts WHERE app = ? ORDER BY ordinal`},
		{&r.schema, schemaQuery},
		{&r.app, `SELECT ` + appColumns + ` FROM apps WHERE sdkappid = ?`},
		{&r.apps, `SELECT ` + appColumns + ` FROM apps ORDER BY sdkappid`},
		{&r.heads, storedHeadsQuery},
		{&r.audience, `SELECT audience FROM push_tasks WHERE app = ? AND id = ?`},
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

// scanProfile reads accountColumns. Attributes and tags come from the
// overlay when it has the account (the row may lag behind it), else from
// the row; withAudience false skips them. g0 is the overlay's eviction
// generation from before the row's read began: if the account may have
// been evicted since, the row may predate a fold whose newer state was
// then evicted, so the profile is reported suspect and must be settled
// (after the read transaction ends).
func (s *Store) scanProfile(sc scanner, withAudience bool, g0 uint64) (p im.Profile, key int64, suspect bool, err error) {
	var ordinal, typ int64
	var attrs, tags sql.NullString
	a := &p.Account
	if err := sc.Scan(&key, &ordinal, &typ, &a.ID, &a.Nick, &a.FaceURL, &a.KickedAt,
		&a.Owner, &a.Platform, &a.Token, &attrs, &tags); err != nil {
		return p, 0, false, err
	}
	a.Ordinal, a.Type = uint32(ordinal), im.AcctType(typ)
	if !withAudience {
		return p, key, false, nil
	}
	st, suspect := s.ov.lookup(key, g0)
	if st != nil {
		p.Attrs, p.Tags = st.attrs, slices.Clone(st.tags)
		return p, key, false, nil
	}
	if p.Attrs, err = decodeAttrs(attrs); err != nil {
		return p, key, false, err
	}
	p.Tags, err = decodeStrings(tags)
	return p, key, suspect, err
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

// lookup resolves ids in one read transaction and calls found for each
// account that exists, in the order of ids.
func (s *Store) lookup(ctx context.Context, app uint64, ids []string, withAudience bool, found func(id string, p im.Profile)) error {
	type hit struct {
		id      string
		p       im.Profile
		key     int64
		suspect bool
	}
	if len(ids) == 0 {
		return nil
	}
	g0 := s.ov.gen.Load()
	best := make(map[string]hit, len(ids))
	err := func() error {
		uniq := make([]any, 0, len(ids)+1)
		uniq = append(uniq, int64(app))
		seen := make(map[string]bool, len(ids))
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				uniq = append(uniq, id)
			}
		}
		// One query for the whole request: per-account QueryRow calls
		// dominated read latency (100 statements per get_attr).
		q := `SELECT ` + accountColumns + ` FROM accounts WHERE app = ? AND id IN (?` +
			strings.Repeat(",?", len(uniq)-2) + `)`
		rows, err := s.rdb.QueryContext(ctx, q, uniq...)
		if err != nil {
			return dbErr("read accounts", err)
		}
		defer rows.Close()
		for rows.Next() {
			p, key, suspect, err := s.scanProfile(rows, withAudience, g0)
			if err != nil {
				return dbErr("read account", err)
			}
			// A RegistrationID (type 1) wins over a UserID of the same id.
			if old, ok := best[p.Account.ID]; !ok || p.Account.Type > old.p.Account.Type {
				best[p.Account.ID] = hit{p.Account.ID, p, key, suspect}
			}
		}
		return dbErr("read accounts", rows.Err())
	}()
	hits := make([]hit, 0, len(ids))
	for _, id := range ids {
		if h, ok := best[id]; ok {
			hits = append(hits, h)
		}
	}
	if err != nil {
		return err
	}
	for _, h := range hits {
		if h.suspect {
			ok, err := s.settle(ctx, h.key, &h.p)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
		}
		found(h.id, h.p)
	}
	return nil
}

// Accounts resolves ids (RegistrationIDs first, then UserIDs) and returns
// the accounts found, keyed by the id asked for. Unknown ids are absent
// from the map; it is not an error.
func (s *Store) Accounts(ctx context.Context, app uint64, ids []string) (map[string]im.Account, error) {
	out := make(map[string]im.Account, len(ids))
	err := s.lookup(ctx, app, ids, false, func(id string, p im.Profile) { out[id] = p.Account })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Profiles returns the accounts, attributes and tags of the accounts found
// among ids (resolved as in Accounts), keyed by the id asked for.
func (s *Store) Profiles(ctx context.Context, app uint64, ids []string) (map[string]im.Profile, error) {
	out := make(map[string]im.Profile, len(ids))
	err := s.lookup(ctx, app, ids, true, func(id string, p im.Profile) { out[id] = p })
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
		p, key, suspect, err := s.scanProfile(rows, true, g0)
		if err != nil {
			return dbErr("scan accounts", err)
		}
		if suspect {
			ok, err := s.settle(ctx, key, &p)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return dbErr("scan accounts", rows.Err())
}

// AttrSchema returns the app's attribute slots; all are undefined (zero)
// if the app never stored any.
func (s *Store) AttrSchema(ctx context.Context, app uint64) (im.AttrSchema, error) {
	rows, err := s.r.schema.QueryContext(ctx, int64(app))
	if err != nil {
		return im.AttrSchema{}, dbErr("read attribute schema", err)
	}
	return scanSchema(rows)
}
