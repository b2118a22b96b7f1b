package postgres

import (
	"context"
	"fmt"

	"timd/internal/im"

	"github.com/jackc/pgx/v5"
)

var _ im.ChangeLog = (*Store)(nil)

// logChanges gives changes the app's next change positions and records
// them in change_log, in the transaction that made them. The caller holds
// the app's counter row lock, so positions follow commit order.
func logChanges(ctx context.Context, tx pgx.Tx, app uint64, changes []im.Change) error {
	if len(changes) == 0 {
		return nil
	}
	var last int64
	if err := tx.QueryRow(ctx, `INSERT INTO change_seq (app, seq) VALUES ($1, $2)
		ON CONFLICT (app) DO UPDATE SET seq = change_seq.seq + excluded.seq RETURNING seq`,
		int64(app), int64(len(changes))).Scan(&last); err != nil {
		return dbErr("next change position", err)
	}
	first := last - int64(len(changes)) + 1
	seqs := make([]int64, len(changes))
	ords := make([]int64, len(changes))
	for i := range changes {
		changes[i].Seq = uint64(first + int64(i))
		seqs[i], ords[i] = first+int64(i), int64(changes[i].Ordinal)
	}
	_, err := tx.Exec(ctx, `INSERT INTO change_log (app, seq, ordinal)
		SELECT $1, unnest($2::bigint[]), unnest($3::bigint[])`, int64(app), seqs, ords)
	return dbErr("write change log", err)
}

// StoreID names the database.
func (s *Store) StoreID(ctx context.Context) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT value FROM store_meta WHERE key = 'store_id'`).Scan(&id)
	return id, dbErr("read store id", err)
}

// ChangePosition returns the Seq of the app's last committed change.
func (s *Store) ChangePosition(ctx context.Context, app uint64) (uint64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT seq FROM change_seq WHERE app = $1`, int64(app)).Scan(&seq)
	if err == pgx.ErrNoRows {
		return 0, nil
	}
	return uint64(seq), dbErr("read change position", err)
}

// ChangedSince returns the ordinals changed after position after and the
// position they reach, read in one snapshot.
func (s *Store) ChangedSince(ctx context.Context, app, after uint64) ([]uint32, uint64, error) {
	var ords []uint32
	var upTo uint64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error {
			var seq, trimmed int64
			err := tx.QueryRow(ctx, `SELECT seq, trimmed FROM change_seq WHERE app = $1`, int64(app)).Scan(&seq, &trimmed)
			if err != nil && err != pgx.ErrNoRows {
				return dbErr("read change position", err)
			}
			if after > uint64(seq) {
				return fmt.Errorf("app %d: position %d > %d: %w", app, after, seq, im.ErrPositionAhead)
			}
			if after < uint64(trimmed) {
				return fmt.Errorf("app %d: position %d < %d: %w", app, after, trimmed, im.ErrChangesTrimmed)
			}
			upTo = uint64(seq)
			rows, err := tx.Query(ctx, `SELECT DISTINCT ordinal FROM change_log WHERE app = $1 AND seq > $2
				ORDER BY ordinal`, int64(app), int64(after))
			if err != nil {
				return dbErr("read change log", err)
			}
			list, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return dbErr("read change log", err)
			}
			ords = make([]uint32, len(list))
			for i, o := range list {
				ords[i] = uint32(o)
			}
			return nil
		})
	if err != nil {
		return nil, 0, err
	}
	return ords, upTo, nil
}

// ProfilesByOrdinal calls fn with the profile of each live account among
// ords, in ordinal order.
func (s *Store) ProfilesByOrdinal(ctx context.Context, app uint64, ords []uint32, fn func(im.Profile) error) error {
	o := make([]int64, len(ords))
	for i, v := range ords {
		o[i] = int64(v)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+acctColumns+` FROM accounts WHERE app = $1 AND ordinal = ANY($2)
		ORDER BY ordinal`, int64(app), o)
	if err != nil {
		return dbErr("read accounts", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return dbErr("read accounts", err)
		}
		if err := fn(im.Profile{Account: r.Account, Attrs: r.attrs, Tags: r.tags}); err != nil {
			return err
		}
	}
	return dbErr("read accounts", rows.Err())
}

// TrimChanges forgets the app's change records at or before pos.
func (s *Store) TrimChanges(ctx context.Context, app, pos uint64) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE change_seq SET trimmed = GREATEST(trimmed, $1) WHERE app = $2`,
			int64(pos), int64(app)); err != nil {
			return dbErr("trim change log", err)
		}
		_, err := tx.Exec(ctx, `DELETE FROM change_log WHERE app = $1 AND seq <= $2`, int64(app), int64(pos))
		return dbErr("trim change log", err)
	})
}
