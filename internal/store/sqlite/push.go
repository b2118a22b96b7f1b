package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/bitmap"
	"timd/internal/im"
	"timd/internal/store/rules"
)

// Push tasks (im.PushStore). A task is one row of push_tasks whatever its
// audience size; its writes go through the group-commit writer like every
// other write, so CreateTask returns only once the row is fsynced.

// taskHead are the columns of a task without its audience; taskColumns
// adds it. scanTask reads either.
const (
	taskHead = `app, id, seq, kind, msg_random, body_hash, from_account, condition, msg_body,
		offline, data_id, online_only, expires_at, created_at, total, state, cursor, revoked_at,
		revoke_info, owner, lease_until, hook_cursor, hook_state, online, vendor_until`
	taskColumns  = taskHead + `, audience`
	countColumns = `total, sent, online_count, delivered, clicked, hook_lost`
)

var _ im.PushStore = (*Store)(nil)

// row helpers for the writer's connection; statements run under
// context.Background() (see wtx).
func (t *wtx) queryRow(query string, args ...any) *sql.Row {
	return t.conn.QueryRowContext(context.Background(), query, args...)
}

func (t *wtx) execSQL(query string, args ...any) (sql.Result, error) {
	return t.conn.ExecContext(context.Background(), query, args...)
}

// CreateTask persists t with the app's next Seq unless a task of the same
// app and kind with t.MsgRandom was created at or after dedupSince; then
// it returns that task and false. The interval and the daily quota (lim)
// are checked and recorded in the same job (createLimit). It goes through
// the writer's urgent lane.
func (s *Store) CreateTask(ctx context.Context, t im.PushTask, dedupSince int64, lim im.TaskLimits) (im.PushTask, bool, error) {
	cond, err := encodeCondition(t.Condition)
	if err != nil {
		return im.PushTask{}, false, err
	}
	out, created := t, false
	// Urgent: the push call waits on it, and must not queue behind a bulk
	// load's group (writer.go).
	err = s.w.doUrgent(ctx, 1, func(w *wtx) ([]im.Change, error) {
		prev, err := scanTask(w.queryRow(`SELECT `+taskColumns+` FROM push_tasks
			WHERE app = ? AND kind = ? AND msg_random = ? AND created_at >= ?
			ORDER BY seq DESC LIMIT 1`, int64(t.App), int64(t.Kind), int64(t.MsgRandom), dedupSince), true)
		if err == nil {
			out, created = prev, false
			return nil, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, dbErr("read task", err)
		}
		if err := w.createLimit(t.App, t.Kind, lim); err != nil {
			return nil, err
		}
		var seq int64
		if err := w.queryRow(`SELECT COALESCE(MAX(seq), 0) + 1 FROM push_tasks WHERE app = ?`,
			int64(t.App)).Scan(&seq); err != nil {
			return nil, dbErr("next task seq", err)
		}
		t.Seq = seq
		_, err = w.execSQL(`INSERT INTO push_tasks (app, id, seq, kind, msg_random, body_hash,
			from_account, condition, msg_body, offline, data_id, online_only, expires_at, created_at,
			total, state, cursor, sent, online_count, hook_state, audience, vendor_until)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			int64(t.App), t.ID, seq, int64(t.Kind), int64(t.MsgRandom), t.BodyHash, t.From, cond,
			nullJSON(t.MsgBody), nullJSON(t.Offline), t.DataID, boolInt(t.OnlineOnly), t.ExpiresAt,
			t.CreatedAt, t.Total, int64(t.State), t.Cursor, 0, 0, int64(t.HookState), nonNil(t.Audience), t.VendorUntil)
		if err != nil {
			return nil, dbErr("insert task", err)
		}
		out, created = t, true
		return nil, nil
	})
	if err != nil {
		return im.PushTask{}, false, err
	}
	return out, created, nil
}

// createLimit applies lim to the app's tasks of kind (rules.CreateLimit)
// and records the task about to be created; a zero lim.NowMs does nothing.
func (t *wtx) createLimit(app uint64, kind im.PushKind, lim im.TaskLimits) error {
	if lim.NowMs == 0 {
		return nil
	}
	st, err := t.limitState(app, int64(kind))
	if err != nil {
		return err
	}
	st, err = rules.CreateLimit(st, lim, func(day int64) (int64, error) {
		var n int64
		err := t.queryRow(`SELECT count(*) FROM push_tasks WHERE app = ? AND kind = ? AND created_at >= ?`,
			int64(app), int64(kind), day).Scan(&n)
		return n, dbErr("count tasks", err)
	})
	if err != nil {
		return err
	}
	return t.saveLimitState(app, int64(kind), st)
}

// limitState reads one push_limits row (the zero state when there is none).
func (t *wtx) limitState(app uint64, kind int64) (rules.LimitState, error) {
	var st rules.LimitState
	err := t.queryRow(`SELECT last_ms, day, day_count FROM push_limits WHERE app = ? AND kind = ?`,
		int64(app), kind).Scan(&st.LastMs, &st.Day, &st.Count)
	if errors.Is(err, sql.ErrNoRows) {
		return rules.LimitState{}, nil
	}
	return st, dbErr("read push limits", err)
}

func (t *wtx) saveLimitState(app uint64, kind int64, st rules.LimitState) error {
	_, err := t.execSQL(`INSERT INTO push_limits (app, kind, last_ms, day, day_count) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (app, kind) DO UPDATE SET last_ms = excluded.last_ms, day = excluded.day,
		day_count = excluded.day_count`, int64(app), kind, st.LastMs, st.Day, st.Count)
	return dbErr("write push limits", err)
}

// Task returns one task, or im.ErrNotFound.
func (s *Store) Task(ctx context.Context, app uint64, id string) (im.PushTask, error) {
	t, err := scanTask(s.rdb.QueryRowContext(ctx, `SELECT `+taskColumns+` FROM push_tasks
		WHERE app = ? AND id = ?`, int64(app), id), true)
	return t, dbErr("read task", err)
}

// TaskByRandom returns the app's newest task of kind with msgRandom
// created at or after since, or im.ErrNotFound.
func (s *Store) TaskByRandom(ctx context.Context, app uint64, kind im.PushKind, msgRandom uint32, since int64) (im.PushTask, error) {
	t, err := scanTask(s.rdb.QueryRowContext(ctx, `SELECT `+taskColumns+` FROM push_tasks
		WHERE app = ? AND kind = ? AND msg_random = ? AND created_at >= ?
		ORDER BY seq DESC LIMIT 1`, int64(app), int64(kind), int64(msgRandom), since), true)
	return t, dbErr("read task", err)
}

// UnfinishedTasks returns the Pending and Running tasks of every app in
// acceptance order.
func (s *Store) UnfinishedTasks(ctx context.Context) ([]im.PushTask, error) {
	return s.tasks(ctx, `SELECT `+taskColumns+` FROM push_tasks WHERE state IN (1, 2) ORDER BY key`)
}

// PendingHooks returns tasks whose fan-out ended (Done, or Revoked and
// unleased) and whose webhook events are pending, in acceptance order.
func (s *Store) PendingHooks(ctx context.Context, now int64, limit int) ([]im.PushTask, error) {
	return s.tasks(ctx, `SELECT `+taskColumns+` FROM push_tasks
		WHERE hook_state = 0 AND (state = 3 OR (state = 4 AND (owner = '' OR lease_until <= ?)))
		ORDER BY key LIMIT ?`, now, limit)
}

// taskStmts are the statements of the task-read pool (Store.tdb).
type taskStmts struct {
	stmts    []*sql.Stmt
	heads    *sql.Stmt // StoredHeads
	refs     *sql.Stmt // StoredRefs
	audience *sql.Stmt // TaskAudience
	acks     *sql.Stmt // AckSets
}

// taskReaderCache bounds the page cache of each task-read connection.
const taskReaderCache = 2 << 20

// taskReaders is the size of the task-read pool.
func taskReaders() int { return max(2, runtime.GOMAXPROCS(0)) }

func (t *taskStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&t.heads, storedHeadsQuery},
		{&t.refs, storedRefsQuery},
		{&t.audience, `SELECT audience FROM push_tasks WHERE app = ? AND id = ?`},
		{&t.acks, `SELECT t.key, a.delivered, a.clicked FROM push_tasks t
			LEFT JOIN push_acks a ON a.task = t.key WHERE t.app = ? AND t.id = ?`},
	} {
		st, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			t.close()
			return dbErr("prepare", fmt.Errorf("%w: %s", err, p.sql))
		}
		*p.dst = st
		t.stmts = append(t.stmts, st)
	}
	return nil
}

func (t *taskStmts) close() {
	for _, st := range t.stmts {
		st.Close()
	}
	t.stmts = nil
}

// StoredHeads returns the heads of the app's stored, unrevoked, unexpired
// tasks after afterSeq in Seq order. A task with ExpiresAt 0 never expires.
// It walks the (app, seq) index and reads neither blob.
func (s *Store) StoredHeads(ctx context.Context, app uint64, afterSeq, now int64, limit int) ([]im.TaskHead, error) {
	rows, err := s.t.heads.QueryContext(ctx, int64(app), afterSeq, now, limit)
	if err != nil {
		return nil, dbErr("read task heads", err)
	}
	defer rows.Close()
	var out []im.TaskHead
	for rows.Next() {
		h := im.TaskHead{App: app}
		var body, offline sql.NullString
		if err := rows.Scan(&h.ID, &h.Seq, &h.From, &body, &offline, &h.DataID, &h.CreatedAt, &h.ExpiresAt); err != nil {
			return nil, dbErr("read task heads", err)
		}
		h.MsgBody, h.Offline = rawJSON(body), rawJSON(offline)
		out = append(out, h)
	}
	return out, dbErr("read task heads", rows.Err())
}

// storedTasks selects an app's stored, unrevoked, unexpired tasks after a
// Seq, in Seq order, for StoredHeads and StoredRefs alike.
const storedTasks = `
	FROM push_tasks
	WHERE app = ? AND seq > ? AND online_only = 0 AND state != 4 AND (expires_at = 0 OR expires_at > ?)
	ORDER BY seq LIMIT ?`

// storedHeadsQuery reads the columns of an im.TaskHead but its app.
const storedHeadsQuery = `SELECT id, seq, from_account, msg_body, offline, data_id, created_at, expires_at` + storedTasks

// StoredRefs lists the tasks StoredHeads would return, by ID and Seq.
func (s *Store) StoredRefs(ctx context.Context, app uint64, afterSeq, now int64, limit int) ([]im.TaskRef, error) {
	rows, err := s.t.refs.QueryContext(ctx, int64(app), afterSeq, now, limit)
	if err != nil {
		return nil, dbErr("read task refs", err)
	}
	defer rows.Close()
	out := make([]im.TaskRef, 0, min(limit, 256))
	for rows.Next() {
		var r im.TaskRef
		if err := rows.Scan(&r.ID, &r.Seq); err != nil {
			return nil, dbErr("read task refs", err)
		}
		out = append(out, r)
	}
	return out, dbErr("read task refs", rows.Err())
}

// storedRefsQuery is storedHeadsQuery reading only id and seq.
const storedRefsQuery = `SELECT id, seq` + storedTasks

// TaskAudience returns a task's serialized audience, or im.ErrNotFound.
func (s *Store) TaskAudience(ctx context.Context, app uint64, id string) ([]byte, error) {
	var b []byte
	err := s.t.audience.QueryRowContext(ctx, int64(app), id).Scan(&b)
	if err != nil {
		return nil, dbErr("read task audience", err)
	}
	return nonNil(b), nil
}

func (s *Store) tasks(ctx context.Context, query string, args ...any) ([]im.PushTask, error) {
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbErr("read tasks", err)
	}
	defer rows.Close()
	var out []im.PushTask
	for rows.Next() {
		t, err := scanTask(rows, true)
		if err != nil {
			return nil, dbErr("read tasks", err)
		}
		out = append(out, t)
	}
	return out, dbErr("read tasks", rows.Err())
}

// ClaimTask leases a Pending or Running task to owner until leaseUntil
// (unix ms) if it is unleased, owner's, or its lease ended at or before now.
func (s *Store) ClaimTask(ctx context.Context, app uint64, id, owner string, now, leaseUntil int64) (bool, error) {
	claimed := false
	err := s.w.do(ctx, 1, func(w *wtx) ([]im.Change, error) {
		res, err := w.execSQL(`UPDATE push_tasks SET owner = ?, lease_until = ?
			WHERE app = ? AND id = ? AND state IN (1, 2) AND (owner = '' OR owner = ? OR lease_until <= ?)`,
			owner, leaseUntil, int64(app), id, owner, now)
		if err != nil {
			return nil, dbErr("claim task", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, dbErr("claim task", err)
		}
		if claimed = n == 1; !claimed {
			return nil, w.taskExists(app, id)
		}
		return nil, nil
	})
	return claimed, err
}

// ReleaseLeases ends the lease of every unfinished task. A SQLite store is
// one process's (its directory lock), so the leases it holds at open were
// taken by an earlier process, under an earlier boot id, that is gone:
// releasing them lets this process resume those fan-outs at once instead
// of after the lease expires. Call it after Lock, before the fan-out
// engine starts.
func (s *Store) ReleaseLeases(ctx context.Context) error {
	return s.w.do(ctx, 1, func(w *wtx) ([]im.Change, error) {
		_, err := w.execSQL(`UPDATE push_tasks SET owner = '', lease_until = 0 WHERE state IN (1, 2) AND owner != ''`)
		return nil, dbErr("release leases", err)
	})
}

// taskExists returns im.ErrNotFound unless the task exists.
func (t *wtx) taskExists(app uint64, id string) error {
	var key int64
	err := t.queryRow(`SELECT key FROM push_tasks WHERE app = ? AND id = ?`, int64(app), id).Scan(&key)
	return dbErr("read task", err)
}

// SaveProgress records the fan-out cursor, counts and state; a Revoked
// task stays Revoked.
func (s *Store) SaveProgress(ctx context.Context, app uint64, id string, cursor int64, state im.TaskState, c im.TaskCounts) error {
	_, err := s.SaveFanout(ctx, app, id, "", cursor, state, c, nil)
	return err
}

// SaveFanout is SaveProgress that also adds online to the task's Online
// set, and returns the state after the save; im.ErrLeaseLost when owner
// no longer holds the lease.
func (s *Store) SaveFanout(ctx context.Context, app uint64, id, owner string, cursor int64, state im.TaskState, c im.TaskCounts, online []byte) (im.TaskState, error) {
	var after im.TaskState
	err := s.w.do(ctx, 1, func(w *wtx) ([]im.Change, error) {
		var cur int64
		var holder string
		if err := w.queryRow(`SELECT state, owner FROM push_tasks WHERE app = ? AND id = ?`,
			int64(app), id).Scan(&cur, &holder); err != nil {
			return nil, dbErr("read task", err)
		}
		if err := rules.LeaseHeld(im.TaskState(cur), holder, owner); err != nil {
			return nil, err
		}
		var merged []byte
		if len(online) > 0 {
			var prev []byte
			if err := w.queryRow(`SELECT online FROM push_tasks WHERE app = ? AND id = ?`,
				int64(app), id).Scan(&prev); err != nil {
				return nil, dbErr("read task", err)
			}
			var err error
			if merged, err = rules.UnionBitmaps(prev, online); err != nil {
				return nil, err
			}
		}
		var st int64
		// SET expressions see the old row: state = 4 is "was revoked".
		err := w.queryRow(`UPDATE push_tasks SET cursor = ?, total = ?, sent = ?, online_count = ?,
			owner = CASE WHEN state = 4 OR ? = 3 THEN '' ELSE owner END,
			lease_until = CASE WHEN state = 4 OR ? = 3 THEN 0 ELSE lease_until END,
			state = CASE WHEN state = 4 THEN 4 ELSE ? END, online = COALESCE(?, online)
			WHERE app = ? AND id = ? RETURNING state`,
			cursor, c.Total, c.Sent, c.Online, int64(state), int64(state), int64(state), merged,
			int64(app), id).Scan(&st)
		if err != nil {
			return nil, dbErr("save task progress", err)
		}
		after = im.TaskState(st)
		return nil, nil
	})
	return after, err
}

// RevokeTask marks a task Revoked: 90049 when unknown, 90050 when it
// already is.
func (s *Store) RevokeTask(ctx context.Context, app uint64, id string, at int64, info json.RawMessage, lim im.TaskLimits) error {
	return s.w.do(ctx, 1, func(w *wtx) ([]im.Change, error) {
		if lim.NowMs != 0 {
			st, err := w.limitState(app, rules.RevokeKind)
			if err != nil {
				return nil, err
			}
			if st, err = rules.RevokeLimit(st, lim); err != nil {
				return nil, err
			}
			if err := w.saveLimitState(app, rules.RevokeKind, st); err != nil {
				return nil, err
			}
		}
		var st int64
		err := w.queryRow(`SELECT state FROM push_tasks WHERE app = ? AND id = ?`, int64(app), id).Scan(&st)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, im.Errorf(im.CodeTaskNotFound, "task %s does not exist", id)
		}
		if err != nil {
			return nil, dbErr("read task", err)
		}
		if im.TaskState(st) == im.TaskRevoked {
			return nil, im.Errorf(im.CodeTaskRevoked, "task %s was already revoked", id)
		}
		_, err = w.execSQL(`UPDATE push_tasks SET state = 4, revoked_at = ?, revoke_info = ?
			WHERE app = ? AND id = ?`, at, nullJSON(info), int64(app), id)
		return nil, dbErr("revoke task", err)
	})
}

// RevokedSince returns the IDs of the app's tasks revoked at or after
// since, in revoke order, at most limit. It walks the tasks created since
// since-RevokeWindow on the (app, created_at) index.
func (s *Store) RevokedSince(ctx context.Context, app uint64, since int64, limit int) ([]string, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id FROM push_tasks WHERE app = ? AND created_at >= ? AND state = 4 AND revoked_at >= ?
		ORDER BY revoked_at, seq LIMIT ?`,
		int64(app), since-im.RevokeWindow, since, limit)
	if err != nil {
		return nil, dbErr("read revoked tasks", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, dbErr("read revoked tasks", err)
		}
		out = append(out, id)
	}
	return out, dbErr("read revoked tasks", rows.Err())
}

// CountTasks counts the app's tasks created at or after since.
func (s *Store) CountTasks(ctx context.Context, app uint64, since int64) (int, error) {
	var n int
	err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM push_tasks WHERE app = ? AND created_at >= ?`,
		int64(app), since).Scan(&n)
	return n, dbErr("count tasks", err)
}

// CountKind counts the app's tasks of kind created at or after since.
func (s *Store) CountKind(ctx context.Context, app uint64, kind im.PushKind, since int64) (int, error) {
	var n int
	err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM push_tasks
		WHERE app = ? AND kind = ? AND created_at >= ?`, int64(app), int64(kind), since).Scan(&n)
	return n, dbErr("count tasks", err)
}

// Counts returns a task's statistics.
func (s *Store) Counts(ctx context.Context, app uint64, id string) (im.TaskCounts, error) {
	c, err := scanCounts(s.rdb.QueryRowContext(ctx, `SELECT `+countColumns+` FROM push_tasks
		WHERE app = ? AND id = ?`, int64(app), id))
	return c, dbErr("read task counts", err)
}

func scanCounts(sc scanner) (im.TaskCounts, error) {
	var c im.TaskCounts
	err := sc.Scan(&c.Total, &c.Sent, &c.Online, &c.Delivered, &c.Clicked, &c.Lost)
	return c, err
}

// RecordAcks adds ordinals to a task's delivered and clicked sets and
// counts those not already in them.
func (s *Store) RecordAcks(ctx context.Context, app uint64, id string, delivered, clicked []uint32) error {
	return s.w.do(ctx, len(delivered)+len(clicked), func(w *wtx) ([]im.Change, error) {
		var key int64
		if err := w.queryRow(`SELECT key FROM push_tasks WHERE app = ? AND id = ?`,
			int64(app), id).Scan(&key); err != nil {
			return nil, dbErr("read task", err)
		}
		var d, c []byte
		err := w.queryRow(`SELECT delivered, clicked FROM push_acks WHERE task = ?`, key).Scan(&d, &c)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, dbErr("read acks", err)
		}
		d, nd, err := addOrdinals(d, delivered)
		if err != nil {
			return nil, err
		}
		c, nc, err := addOrdinals(c, clicked)
		if err != nil {
			return nil, err
		}
		if nd == 0 && nc == 0 {
			return nil, nil
		}
		if _, err := w.execSQL(`INSERT INTO push_acks (task, delivered, clicked) VALUES (?, ?, ?)
			ON CONFLICT (task) DO UPDATE SET delivered = excluded.delivered, clicked = excluded.clicked`,
			key, d, c); err != nil {
			return nil, dbErr("write acks", err)
		}
		_, err = w.execSQL(`UPDATE push_tasks SET delivered = delivered + ?, clicked = clicked + ?
			WHERE key = ?`, nd, nc, key)
		return nil, dbErr("count acks", err)
	})
}

// AckSets returns a task's delivered and clicked sets, nil when empty.
func (s *Store) AckSets(ctx context.Context, app uint64, id string) ([]byte, []byte, error) {
	var key int64
	var d, c []byte
	err := s.t.acks.QueryRowContext(ctx, int64(app), id).Scan(&key, &d, &c)
	if err != nil {
		return nil, nil, dbErr("read acks", err)
	}
	return d, c, nil
}

// Reports returns the app's tasks of kinds created in [since, until],
// newest first, without their audiences.
func (s *Store) Reports(ctx context.Context, app uint64, kinds []im.PushKind, since, until int64, limit int) ([]im.TaskReport, error) {
	if len(kinds) == 0 {
		return nil, nil
	}
	args := []any{int64(app)}
	marks := make([]string, len(kinds))
	for i, k := range kinds {
		marks[i] = "?"
		args = append(args, int64(k))
	}
	args = append(args, since, until, limit)
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+reportColumns+` FROM push_tasks t
		LEFT JOIN push_acks a ON a.task = t.key
		WHERE t.app = ? AND t.kind IN (`+strings.Join(marks, ",")+`) AND t.created_at BETWEEN ? AND ?
		ORDER BY t.created_at DESC, t.seq DESC LIMIT ?`, args...)
	if err != nil {
		return nil, dbErr("read reports", err)
	}
	defer rows.Close()
	var out []im.TaskReport
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			return nil, dbErr("read reports", err)
		}
		out = append(out, r)
	}
	return out, dbErr("read reports", rows.Err())
}

// Report returns one task's report, or im.ErrNotFound.
func (s *Store) Report(ctx context.Context, app uint64, id string) (im.TaskReport, error) {
	r, err := scanReport(s.rdb.QueryRowContext(ctx, `SELECT `+reportColumns+` FROM push_tasks t
		LEFT JOIN push_acks a ON a.task = t.key WHERE t.app = ? AND t.id = ?`, int64(app), id))
	return r, dbErr("read report", err)
}

// reportColumns are a task's head, counts and acknowledgement sets.
var reportColumns = prefixed("t.", taskHead) + `, ` + prefixed("t.", countColumns) + `, a.delivered, a.clicked`

func scanReport(sc scanner) (im.TaskReport, error) {
	var r im.TaskReport
	var c im.TaskCounts
	extra := []any{&c.Total, &c.Sent, &c.Online, &c.Delivered, &c.Clicked, &c.Lost, &r.Delivered, &r.Clicked}
	t, err := scanTaskWith(sc, false, extra...)
	r.Task, r.Counts = t, c
	return r, err
}

// SaveHook records webhook progress and adds lost to the task's Lost.
func (s *Store) SaveHook(ctx context.Context, app uint64, id string, cursor int64, state im.HookState, lost int64) error {
	return s.w.do(ctx, 1, func(w *wtx) ([]im.Change, error) {
		res, err := w.execSQL(`UPDATE push_tasks SET hook_cursor = ?, hook_state = ?, hook_lost = hook_lost + ?
			WHERE app = ? AND id = ?`, cursor, int64(state), lost, int64(app), id)
		if err != nil {
			return nil, dbErr("save webhook progress", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil, im.ErrNotFound
		}
		return nil, nil
	})
}

// scanTask reads taskHead (and the audience when withAudience).
func scanTask(sc scanner, withAudience bool) (im.PushTask, error) {
	return scanTaskWith(sc, withAudience)
}

func scanTaskWith(sc scanner, withAudience bool, extra ...any) (im.PushTask, error) {
	var t im.PushTask
	var app, kind, msgRandom, onlineOnly, state, hookState int64
	var cond, body, offline, revokeInfo sql.NullString
	dest := []any{&app, &t.ID, &t.Seq, &kind, &msgRandom, &t.BodyHash, &t.From, &cond, &body,
		&offline, &t.DataID, &onlineOnly, &t.ExpiresAt, &t.CreatedAt, &t.Total, &state, &t.Cursor,
		&t.RevokedAt, &revokeInfo, &t.Owner, &t.LeaseUntil, &t.HookCursor, &hookState, &t.Online, &t.VendorUntil}
	if withAudience {
		dest = append(dest, &t.Audience)
	}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return t, err
	}
	t.App, t.Kind, t.MsgRandom = uint64(app), im.PushKind(kind), uint32(msgRandom)
	t.OnlineOnly, t.State, t.HookState = onlineOnly != 0, im.TaskState(state), im.HookState(hookState)
	t.MsgBody, t.Offline, t.RevokeInfo = rawJSON(body), rawJSON(offline), rawJSON(revokeInfo)
	if cond.Valid && cond.String != "" {
		t.Condition = new(im.Condition)
		if err := json.Unmarshal([]byte(cond.String), t.Condition); err != nil {
			return t, fmt.Errorf("sqlite: task %s condition: %v", t.ID, err)
		}
	}
	return t, nil
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

func encodeCondition(c *im.Condition) (sql.NullString, error) {
	if c == nil {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return sql.NullString{}, fmt.Errorf("sqlite: encode condition: %v", err)
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

func nullJSON(b json.RawMessage) sql.NullString {
	if len(b) == 0 {
		return sql.NullString{}
	}
	return sql.NullString{String: string(b), Valid: true}
}

func rawJSON(s sql.NullString) json.RawMessage {
	if !s.Valid || s.String == "" {
		return nil
	}
	return json.RawMessage(s.String)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// addOrdinals adds ords to the serialized set b and returns the new set
// and how many were new.
func addOrdinals(b []byte, ords []uint32) ([]byte, int64, error) {
	if len(ords) == 0 {
		return b, 0, nil
	}
	bm, err := bitmap.Decode(b)
	if err != nil {
		return nil, 0, err
	}
	// One union rather than an Add per ordinal: adding to a run container
	// recounts its runs each time, which made a flush of a storm's acks
	// quadratic in the runs of the task's delivered set.
	add := roaring.New()
	add.AddMany(ords)
	n := int64(add.GetCardinality() - bm.AndCardinality(add))
	if n == 0 {
		return b, 0, nil
	}
	bm.Or(add)
	bm.RunOptimize()
	out, err := bm.ToBytes()
	return out, n, err
}
