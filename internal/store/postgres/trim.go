package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The scheduled trim of the shared change log.
//
// Every node of a cluster may run TrimChangesOlder; a session advisory
// lock, keyed by the schema, lets one at a time do the work and the others
// return at once. The lock belongs to the connection, so a node that dies
// mid-round frees it with its session. Each batch is one short
// transaction: it deletes the oldest change_log rows of one app up to the
// first row newer than the window (or batch rows), and moves the app's
// change_seq.trimmed to the last position deleted, in the same
// transaction, so ChangedSince never sees a log with a hole: a position
// at or after trimmed is fully covered, one before it is ErrChangesTrimmed
// and the reader rebuilds from a scan. The change_seq row, which writers
// of the app lock for their transaction, is updated last, so a batch
// holds it only from that update to its commit.

// trimLockKey is the first key of the trim's advisory lock; the second is
// a hash of the schema, so that clusters in different schemas of one
// database trim independently.
const trimLockKey = 7467310

// TrimChangesOlder deletes, for every app, the change_log rows written
// more than age ago by the database's clock, oldest first, in
// transactions of at most batch rows. ran is false when another handle
// (another node) holds the trim lock: then nothing was done. deleted
// counts the rows deleted.
func (s *Store) TrimChangesOlder(ctx context.Context, age time.Duration, batch int) (deleted int64, ran bool, err error) {
	if batch <= 0 {
		batch = 5000
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, false, dbErr("trim change log", err)
	}
	defer conn.Release()
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext(coalesce(current_schema(), '')))`,
		trimLockKey).Scan(&ran); err != nil || !ran {
		return 0, false, dbErr("trim change log lock", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, hashtext(coalesce(current_schema(), '')))`,
			trimLockKey); err != nil {
			// Never hand the pool a session that may still hold the lock:
			// close it, and the server releases the lock.
			_ = conn.Conn().Close(uctx)
		}
	}()
	var before time.Time
	if err := conn.QueryRow(ctx, `SELECT now() - $1::bigint * interval '1 microsecond'`,
		age.Microseconds()).Scan(&before); err != nil {
		return 0, true, dbErr("trim change log", err)
	}
	rows, err := conn.Query(ctx, `SELECT app FROM change_seq ORDER BY app`)
	if err != nil {
		return 0, true, dbErr("trim change log", err)
	}
	apps, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, true, dbErr("trim change log", err)
	}
	for _, app := range apps {
		for {
			n, more, err := trimBatch(ctx, conn, app, before, batch)
			deleted += n
			if err != nil {
				return deleted, true, err
			}
			if !more {
				break
			}
		}
	}
	return deleted, true, nil
}

// trimBatch deletes the oldest rows of app's change log written before
// before, at most batch of them, stopping at the first newer row, and
// moves the app's trimmed position to the last one deleted. more says
// whether older rows may remain.
func trimBatch(ctx context.Context, conn *pgxpool.Conn, app int64, before time.Time, batch int) (n int64, more bool, err error) {
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var cut, total, fresh int64
		if err := tx.QueryRow(ctx, `WITH b AS (
				SELECT seq, created FROM change_log WHERE app = $1 ORDER BY seq LIMIT $3)
			SELECT COALESCE(min(seq) FILTER (WHERE created >= $2) - 1, max(seq), 0),
				count(*), count(*) FILTER (WHERE created >= $2) FROM b`,
			app, before, batch).Scan(&cut, &total, &fresh); err != nil {
			return dbErr("trim change log", err)
		}
		more = fresh == 0 && total == int64(batch)
		if cut <= 0 {
			return nil
		}
		tag, err := tx.Exec(ctx, `DELETE FROM change_log WHERE app = $1 AND seq <= $2`, app, cut)
		if err != nil {
			return dbErr("trim change log", err)
		}
		if n = tag.RowsAffected(); n == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE change_seq SET trimmed = GREATEST(trimmed, $1) WHERE app = $2`, cut, app)
		return dbErr("trim change log", err)
	})
	if err != nil {
		return 0, false, err
	}
	return n, more, nil
}
