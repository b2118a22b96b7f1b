package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/bitmap"
	"timd/internal/im"
)

// Change positions (im.ChangeLog).
//
// The writer numbers the changes of each group commit per app, continuing
// from the app's committed position, and writes, inside the group's
// transaction, one change_log row per app (the group's Seq range and the
// ordinals it touched) and the app's new position in change_seq. Only after
// COMMIT does it adopt the new positions; a rolled-back group leaves no
// gap because its numbers are simply handed out again.

var _ im.ChangeLog = (*Store)(nil)

// changeSeqs is the writer's change numbering.
type changeSeqs struct {
	pos   map[uint64]uint64 // committed position per app, loaded on first use
	next  map[uint64]uint64 // positions after the running group
	ords  map[uint64]*roaring.Bitmap
	first map[uint64]uint64
	get   *sql.Stmt
	log   *sql.Stmt
	put   *sql.Stmt
}

const (
	changeSeqGet = `SELECT seq FROM change_seq WHERE app = ?`
	changeLogPut = `INSERT INTO change_log (app, last, first, ordinals) VALUES (?, ?, ?, ?)`
	changeSeqPut = `INSERT INTO change_seq (app, seq) VALUES (?, ?)
		ON CONFLICT (app) DO UPDATE SET seq = excluded.seq`
)

func (c *changeSeqs) prepare(conn *sql.Conn) error {
	if c.get != nil {
		return nil
	}
	ctx := context.Background()
	var err error
	if c.get, err = conn.PrepareContext(ctx, changeSeqGet); err != nil {
		return dbErr("prepare", err)
	}
	if c.log, err = conn.PrepareContext(ctx, changeLogPut); err != nil {
		return dbErr("prepare", err)
	}
	if c.put, err = conn.PrepareContext(ctx, changeSeqPut); err != nil {
		return dbErr("prepare", err)
	}
	c.pos = map[uint64]uint64{}
	c.next = map[uint64]uint64{}
	c.first = map[uint64]uint64{}
	c.ords = map[uint64]*roaring.Bitmap{}
	return nil
}

// record numbers the changes of the group's successful jobs (setting
// Change.Seq in place) and writes their change_log rows and positions in
// the open transaction.
func (c *changeSeqs) record(conn *sql.Conn, jobs []*job) error {
	if err := c.prepare(conn); err != nil {
		return err
	}
	clear(c.next)
	clear(c.first)
	for _, j := range jobs {
		for i := range j.changes {
			ch := &j.changes[i]
			n, ok := c.next[ch.App]
			if !ok {
				var err error
				if n, err = c.position(ch.App); err != nil {
					return err
				}
				c.first[ch.App] = n + 1
				if bm := c.ords[ch.App]; bm != nil {
					bm.Clear()
				} else {
					c.ords[ch.App] = roaring.New()
				}
			}
			n++
			ch.Seq = n
			c.next[ch.App] = n
			c.ords[ch.App].Add(ch.Ordinal)
		}
	}
	for app, last := range c.next {
		if err := writeChanges(c.log, c.put, app, c.first[app], last, c.ords[app]); err != nil {
			return err
		}
	}
	return nil
}

// position returns app's committed change position.
func (c *changeSeqs) position(app uint64) (uint64, error) {
	if n, ok := c.pos[app]; ok {
		return n, nil
	}
	var n int64
	err := c.get.QueryRow(int64(app)).Scan(&n)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, dbErr("read change position", err)
	}
	c.pos[app] = uint64(n)
	return uint64(n), nil
}

// committed adopts the running group's positions after its COMMIT.
func (c *changeSeqs) committed() {
	for app, n := range c.next {
		c.pos[app] = n
	}
	clear(c.next)
}

// close releases the statements. A rolled-back group needs no undo: pos
// moves only in committed, so its numbers are handed out again.
func (c *changeSeqs) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{c.get, c.log, c.put} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// writeChanges writes one change_log row and the app's new position.
func writeChanges(log, put *sql.Stmt, app, first, last uint64, ords *roaring.Bitmap) error {
	ords.RunOptimize()
	blob, err := ords.ToBytes()
	if err != nil {
		return fmt.Errorf("sqlite: encode change ordinals: %w", err)
	}
	if _, err := log.Exec(int64(app), int64(last), int64(first), blob); err != nil {
		return dbErr("append change log", err)
	}
	_, err = put.Exec(int64(app), int64(last))
	return dbErr("write change position", err)
}

// StoreID returns the random name the database got when it was created.
func (s *Store) StoreID(ctx context.Context) (string, error) {
	var id string
	err := s.rdb.QueryRowContext(ctx, `SELECT value FROM store_meta WHERE key = 'store_id'`).Scan(&id)
	return id, dbErr("read store id", err)
}

// ChangePosition returns the Seq of the app's last committed change.
func (s *Store) ChangePosition(ctx context.Context, app uint64) (uint64, error) {
	var n int64
	err := s.rdb.QueryRowContext(ctx, changeSeqGet, int64(app)).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint64(n), dbErr("read change position", err)
}

// ChangedSince returns the ordinals changed after position after, read in
// one transaction together with the position they reach.
func (s *Store) ChangedSince(ctx context.Context, app, after uint64) ([]uint32, uint64, error) {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, dbErr("begin", err)
	}
	defer tx.Rollback()
	var pos, trimmed int64
	err = tx.QueryRowContext(ctx, `SELECT seq, trimmed FROM change_seq WHERE app = ?`, int64(app)).Scan(&pos, &trimmed)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, 0, dbErr("read change position", err)
	}
	switch {
	case after > uint64(pos):
		return nil, uint64(pos), fmt.Errorf("app %d: position %d, store at %d: %w", app, after, pos, im.ErrPositionAhead)
	case after < uint64(trimmed):
		return nil, uint64(pos), fmt.Errorf("app %d: position %d, log starts after %d: %w", app, after, trimmed, im.ErrChangesTrimmed)
	case after == uint64(pos):
		return nil, uint64(pos), nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT ordinals FROM change_log WHERE app = ? AND last > ? ORDER BY last`,
		int64(app), int64(after))
	if err != nil {
		return nil, 0, dbErr("read change log", err)
	}
	defer rows.Close()
	all := roaring.New()
	for rows.Next() {
		var blob []byte
		if err := rows.Scan(&blob); err != nil {
			return nil, 0, dbErr("read change log", err)
		}
		bm, err := bitmap.Decode(blob)
		if err != nil {
			return nil, 0, fmt.Errorf("sqlite: change log of app %d: %w", app, err)
		}
		all.Or(bm)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, dbErr("read change log", err)
	}
	return all.ToArray(), uint64(pos), nil
}

// ordinalChunk is how many ordinals one ProfilesByOrdinal query asks for.
const ordinalChunk = 500

// ProfilesByOrdinal calls fn with the current profile of each live account
// among ords, in chunks of one query each.
func (s *Store) ProfilesByOrdinal(ctx context.Context, app uint64, ords []uint32, fn func(im.Profile) error) error {
	args := make([]any, 0, ordinalChunk+1)
	for len(ords) > 0 {
		n := min(len(ords), ordinalChunk)
		args = append(args[:0], int64(app))
		for _, o := range ords[:n] {
			args = append(args, int64(o))
		}
		ords = ords[n:]
		q := `SELECT ` + accountColumns + ` FROM accounts WHERE app = ? AND ordinal IN (?` +
			strings.Repeat(",?", n-1) + `) ORDER BY ordinal`
		if err := s.scanQuery(ctx, q, args, fn); err != nil {
			return err
		}
	}
	return nil
}

// scanQuery runs a query of accountColumns and calls fn with each current
// profile, settling the accounts that raced an overlay eviction after the
// rows are closed.
func (s *Store) scanQuery(ctx context.Context, q string, args []any, fn func(im.Profile) error) error {
	type held struct {
		p       im.Profile
		key     int64
		suspect bool
	}
	g0 := s.ov.gen.Load()
	var got []held
	err := func() error {
		rows, err := s.rdb.QueryContext(ctx, q, args...)
		if err != nil {
			return dbErr("read accounts", err)
		}
		defer rows.Close()
		for rows.Next() {
			p, key, suspect, err := s.scanProfile(rows, true, g0)
			if err != nil {
				return dbErr("read accounts", err)
			}
			got = append(got, held{p, key, suspect})
		}
		return dbErr("read accounts", rows.Err())
	}()
	if err != nil {
		return err
	}
	for _, h := range got {
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
	return nil
}

// TrimChanges deletes the app's change_log rows at or before pos and
// records that the log no longer reaches back past pos.
func (s *Store) TrimChanges(ctx context.Context, app, pos uint64) error {
	return s.w.do(ctx, 1, func(t *wtx) ([]im.Change, error) {
		ctx := context.Background()
		if _, err := t.conn.ExecContext(ctx, `DELETE FROM change_log WHERE app = ? AND last <= ?`, int64(app), int64(pos)); err != nil {
			return nil, dbErr("trim change log", err)
		}
		_, err := t.conn.ExecContext(ctx, `UPDATE change_seq SET trimmed = max(trimmed, ?) WHERE app = ?`, int64(pos), int64(app))
		return nil, dbErr("trim change log", err)
	})
}
