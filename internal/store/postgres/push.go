package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"timd/internal/im"
	"timd/internal/store/rules"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/jackc/pgx/v5"
)

const (
	taskHead = `app, id, seq, kind, msg_random, body_hash, from_account, condition, msg_body,
		offline, data_id, online_only, expires_at, created_at, total, state, cursor, revoked_at,
		revoke_info, owner, lease_until, hook_cursor, hook_state, online, vendor_until`
	taskColumns  = taskHead + `, audience`
	countColumns = `total, sent, online_count, delivered, clicked, hook_lost`
	headColumns  = `id, seq, from_account, msg_body, offline, data_id, created_at, expires_at`
)

// CreateTask persists t with the app's next Seq unless a task of the same
// kind and MsgRandom was created at or after dedupSince. The app's task
// counter row is locked first, so the dedup check and the Seq are decided
// under one lock held to commit: two nodes never create the same MsgRandom
// twice, and Seqs follow commit order. The interval and the daily quota
// (lim) are checked and recorded under the same lock (createLimit), so
// two nodes never both pass one interval or go over the quota together.
func (s *Store) CreateTask(ctx context.Context, t im.PushTask, dedupSince int64, lim im.TaskLimits) (im.PushTask, bool, error) {
	cond, err := encodeCondition(t.Condition)
	if err != nil {
		return im.PushTask{}, false, err
	}
	out, created := t, false
	err = s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO task_counters (app) VALUES ($1)
			ON CONFLICT (app) DO UPDATE SET last_seq = task_counters.last_seq`, int64(t.App)); err != nil {
			return dbErr("lock task counter", err)
		}
		prev, err := scanTask(tx.QueryRow(ctx, `SELECT `+taskColumns+` FROM push_tasks
			WHERE app = $1 AND kind = $2 AND msg_random = $3 AND created_at >= $4
			ORDER BY seq DESC LIMIT 1`, int64(t.App), int16(t.Kind), int64(t.MsgRandom), dedupSince), true)
		if err == nil {
			out, created = prev, false
			return nil
		}
		if err != pgx.ErrNoRows {
			return dbErr("read task", err)
		}
		if err := createLimit(ctx, tx, t.App, t.Kind, lim); err != nil {
			return err
		}
		var seq int64
		if err := tx.QueryRow(ctx, `UPDATE task_counters SET last_seq = last_seq + 1 WHERE app = $1 RETURNING last_seq`,
			int64(t.App)).Scan(&seq); err != nil {
			return dbErr("next task seq", err)
		}
		t.Seq = seq
		_, err = tx.Exec(ctx, `INSERT INTO push_tasks (app, id, seq, kind, msg_random, body_hash,
			from_account, condition, msg_body, offline, data_id, online_only, expires_at, created_at,
			total, state, cursor, hook_state, audience, vendor_until)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
			int64(t.App), t.ID, seq, int16(t.Kind), int64(t.MsgRandom), t.BodyHash, t.From, cond,
			nullJSON(t.MsgBody), nullJSON(t.Offline), t.DataID, t.OnlineOnly, t.ExpiresAt,
			t.CreatedAt, t.Total, int16(t.State), t.Cursor, int16(t.HookState), nonNil(t.Audience), t.VendorUntil)
		if err != nil {
			return dbErr("insert task", err)
		}
		out, created = t, true
		return nil
	})
	if err != nil {
		return im.PushTask{}, false, err
	}
	return out, created, nil
}

// createLimit applies lim to the app's tasks of kind (rules.CreateLimit)
// and records the task about to be created; a zero lim.NowMs does nothing.
// The caller holds the app's task_counters lock.
func createLimit(ctx context.Context, tx pgx.Tx, app uint64, kind im.PushKind, lim im.TaskLimits) error {
	if lim.NowMs == 0 {
		return nil
	}
	st, err := lockLimitState(ctx, tx, app, int64(kind))
	if err != nil {
		return err
	}
	st, err = rules.CreateLimit(st, lim, func(day int64) (int64, error) {
		var n int64
		err := tx.QueryRow(ctx, `SELECT count(*) FROM push_tasks WHERE app = $1 AND kind = $2 AND created_at >= $3`,
			int64(app), int16(kind), day).Scan(&n)
		return n, dbErr("count tasks", err)
	})
	if err != nil {
		return err
	}
	return saveLimitState(ctx, tx, app, int64(kind), st)
}

// lockLimitState locks one push_limits row, creating it (zero) if needed,
// and returns it; the lock is held to commit.
func lockLimitState(ctx context.Context, tx pgx.Tx, app uint64, kind int64) (rules.LimitState, error) {
	var st rules.LimitState
	err := tx.QueryRow(ctx, `INSERT INTO push_limits (app, kind) VALUES ($1, $2)
		ON CONFLICT (app, kind) DO UPDATE SET last_ms = push_limits.last_ms
		RETURNING last_ms, day, day_count`, int64(app), int16(kind)).Scan(&st.LastMs, &st.Day, &st.Count)
	return st, dbErr("lock push limits", err)
}

func saveLimitState(ctx context.Context, tx pgx.Tx, app uint64, kind int64, st rules.LimitState) error {
	_, err := tx.Exec(ctx, `UPDATE push_limits SET last_ms = $3, day = $4, day_count = $5 WHERE app = $1 AND kind = $2`,
		int64(app), int16(kind), st.LastMs, st.Day, st.Count)
	return dbErr("write push limits", err)
}

// Task returns one task, or im.ErrNotFound.
func (s *Store) Task(ctx context.Context, app uint64, id string) (im.PushTask, error) {
	t, err := scanTask(s.pool.QueryRow(ctx, `SELECT `+taskColumns+` FROM push_tasks WHERE app = $1 AND id = $2`,
		int64(app), id), true)
	return t, dbErr("read task", err)
}

// TaskByRandom returns the app's newest task of kind with msgRandom
// created at or after since, or im.ErrNotFound.
func (s *Store) TaskByRandom(ctx context.Context, app uint64, kind im.PushKind, msgRandom uint32, since int64) (im.PushTask, error) {
	t, err := scanTask(s.pool.QueryRow(ctx, `SELECT `+taskColumns+` FROM push_tasks
		WHERE app = $1 AND kind = $2 AND msg_random = $3 AND created_at >= $4
		ORDER BY seq DESC LIMIT 1`, int64(app), int16(kind), int64(msgRandom), since), true)
	return t, dbErr("read task", err)
}

// UnfinishedTasks returns Pending and Running tasks of every app in
// acceptance order (per app by Seq).
func (s *Store) UnfinishedTasks(ctx context.Context) ([]im.PushTask, error) {
	return s.tasks(ctx, `SELECT `+taskColumns+` FROM push_tasks WHERE state IN (1, 2) ORDER BY created_at, app, seq`)
}

// PendingHooks returns tasks whose fan-out ended and whose webhook events
// are pending.
func (s *Store) PendingHooks(ctx context.Context, now int64, limit int) ([]im.PushTask, error) {
	return s.tasks(ctx, `SELECT `+taskColumns+` FROM push_tasks
		WHERE hook_state = 0 AND (state = 3 OR (state = 4 AND (owner = '' OR lease_until <= $1)))
		ORDER BY created_at, app, seq LIMIT $2`, now, limit)
}

func (s *Store) tasks(ctx context.Context, query string, args ...any) ([]im.PushTask, error) {
	rows, err := s.pool.Query(ctx, query, args...)
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

// storedTasks selects an app's stored, unrevoked, unexpired tasks after a
// Seq, in Seq order, for StoredHeads and StoredRefs alike.
const storedTasks = `
	FROM push_tasks
	WHERE app = $1 AND seq > $2 AND NOT online_only AND state != 4 AND (expires_at = 0 OR expires_at > $3)
	ORDER BY seq LIMIT $4`

// StoredHeads returns the heads of the app's stored, unrevoked, unexpired
// tasks after afterSeq in Seq order.
func (s *Store) StoredHeads(ctx context.Context, app uint64, afterSeq, now int64, limit int) ([]im.TaskHead, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+headColumns+storedTasks, int64(app), afterSeq, now, limit)
	if err != nil {
		return nil, dbErr("read task heads", err)
	}
	defer rows.Close()
	var out []im.TaskHead
	for rows.Next() {
		h := im.TaskHead{App: app}
		var body, offline *string
		if err := rows.Scan(&h.ID, &h.Seq, &h.From, &body, &offline, &h.DataID, &h.CreatedAt, &h.ExpiresAt); err != nil {
			return nil, dbErr("read task heads", err)
		}
		h.MsgBody, h.Offline = rawJSON(body), rawJSON(offline)
		out = append(out, h)
	}
	return out, dbErr("read task heads", rows.Err())
}

// StoredRefs lists the tasks StoredHeads would return, by ID and Seq.
func (s *Store) StoredRefs(ctx context.Context, app uint64, afterSeq, now int64, limit int) ([]im.TaskRef, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, seq`+storedTasks, int64(app), afterSeq, now, limit)
	if err != nil {
		return nil, dbErr("read task refs", err)
	}
	defer rows.Close()
	var out []im.TaskRef
	for rows.Next() {
		var r im.TaskRef
		if err := rows.Scan(&r.ID, &r.Seq); err != nil {
			return nil, dbErr("read task refs", err)
		}
		out = append(out, r)
	}
	return out, dbErr("read task refs", rows.Err())
}

// TaskAudience returns a task's serialized audience, or im.ErrNotFound.
func (s *Store) TaskAudience(ctx context.Context, app uint64, id string) ([]byte, error) {
	var b []byte
	err := s.pool.QueryRow(ctx, `SELECT audience FROM push_tasks WHERE app = $1 AND id = $2`, int64(app), id).Scan(&b)
	if err != nil {
		return nil, dbErr("read task audience", err)
	}
	return nonNil(b), nil
}

// ClaimTask leases a Pending or Running task to owner until leaseUntil if
// it is unleased, owner's, or its lease ended at or before now. The
// conditional UPDATE is atomic across nodes.
func (s *Store) ClaimTask(ctx context.Context, app uint64, id, owner string, now, leaseUntil int64) (bool, error) {
	claimed := false
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE push_tasks SET owner = $1, lease_until = $2
			WHERE app = $3 AND id = $4 AND state IN (1, 2) AND (owner = '' OR owner = $1 OR lease_until <= $5)`,
			owner, leaseUntil, int64(app), id, now)
		if err != nil {
			return dbErr("claim task", err)
		}
		if claimed = tag.RowsAffected() == 1; !claimed {
			return taskExists(ctx, tx, app, id)
		}
		return nil
	})
	return claimed, err
}

func taskExists(ctx context.Context, tx pgx.Tx, app uint64, id string) error {
	var one int
	return dbErr("read task", tx.QueryRow(ctx, `SELECT 1 FROM push_tasks WHERE app = $1 AND id = $2`, int64(app), id).Scan(&one))
}

// SaveProgress records the fan-out cursor, counts and state.
func (s *Store) SaveProgress(ctx context.Context, app uint64, id string, cursor int64, state im.TaskState, c im.TaskCounts) error {
	_, err := s.SaveFanout(ctx, app, id, "", cursor, state, c, nil)
	return err
}

// SaveFanout is SaveProgress that also adds online to the task's Online
// set. The row is locked before its Online set is read, so concurrent
// saves merge rather than overwrite, and the owner is checked under that
// lock (im.ErrLeaseLost), so a save never lands after a takeover.
func (s *Store) SaveFanout(ctx context.Context, app uint64, id, owner string, cursor int64, state im.TaskState, c im.TaskCounts, online []byte) (im.TaskState, error) {
	var after im.TaskState
	err := s.write(ctx, func(tx pgx.Tx) error {
		var prev []byte
		var cur int16
		var holder string
		if err := tx.QueryRow(ctx, `SELECT online, state, owner FROM push_tasks WHERE app = $1 AND id = $2 FOR UPDATE`,
			int64(app), id).Scan(&prev, &cur, &holder); err != nil {
			return dbErr("read task", err)
		}
		if err := rules.LeaseHeld(im.TaskState(cur), holder, owner); err != nil {
			return err
		}
		var merged []byte
		if len(online) > 0 {
			var err error
			if merged, err = rules.UnionBitmaps(prev, online); err != nil {
				return err
			}
		}
		var st int16
		err := tx.QueryRow(ctx, `UPDATE push_tasks SET cursor = $1, total = $2, sent = $3, online_count = $4,
			owner = CASE WHEN state = 4 OR $5 = 3 THEN '' ELSE owner END,
			lease_until = CASE WHEN state = 4 OR $5 = 3 THEN 0 ELSE lease_until END,
			state = CASE WHEN state = 4 THEN 4 ELSE $5 END, online = COALESCE($6, online)
			WHERE app = $7 AND id = $8 RETURNING state`,
			cursor, c.Total, c.Sent, c.Online, int16(state), merged, int64(app), id).Scan(&st)
		if err != nil {
			return dbErr("save task progress", err)
		}
		after = im.TaskState(st)
		return nil
	})
	return after, err
}

// RevokeTask marks a task Revoked: 90049 when unknown, 90050 when it
// already is. The revoke interval (lim) is checked first under the lock
// of the app's revoke row, which it holds to commit, so that revokes
// through two nodes see each other.
func (s *Store) RevokeTask(ctx context.Context, app uint64, id string, at int64, info json.RawMessage, lim im.TaskLimits) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if lim.NowMs != 0 {
			st, err := lockLimitState(ctx, tx, app, rules.RevokeKind)
			if err != nil {
				return err
			}
			if st, err = rules.RevokeLimit(st, lim); err != nil {
				return err
			}
			if err := saveLimitState(ctx, tx, app, rules.RevokeKind, st); err != nil {
				return err
			}
		}
		var st int16
		err := tx.QueryRow(ctx, `SELECT state FROM push_tasks WHERE app = $1 AND id = $2 FOR UPDATE`, int64(app), id).Scan(&st)
		if err == pgx.ErrNoRows {
			return im.Errorf(im.CodeTaskNotFound, "task %s does not exist", id)
		}
		if err != nil {
			return dbErr("read task", err)
		}
		if im.TaskState(st) == im.TaskRevoked {
			return im.Errorf(im.CodeTaskRevoked, "task %s was already revoked", id)
		}
		_, err = tx.Exec(ctx, `UPDATE push_tasks SET state = 4, revoked_at = $1, revoke_info = $2
			WHERE app = $3 AND id = $4`, at, nullJSON(info), int64(app), id)
		return dbErr("revoke task", err)
	})
}

// RevokedSince returns the IDs of the app's tasks revoked at or after
// since, in revoke order, at most limit. It walks the tasks created since
// since-RevokeWindow on the (app, created_at) index.
func (s *Store) RevokedSince(ctx context.Context, app uint64, since int64, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM push_tasks WHERE app = $1 AND created_at >= $2 AND state = 4 AND revoked_at >= $3
		ORDER BY revoked_at, seq LIMIT $4`,
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
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM push_tasks WHERE app = $1 AND created_at >= $2`,
		int64(app), since).Scan(&n)
	return n, dbErr("count tasks", err)
}

// CountKind counts the app's tasks of kind created at or after since.
func (s *Store) CountKind(ctx context.Context, app uint64, kind im.PushKind, since int64) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM push_tasks WHERE app = $1 AND kind = $2 AND created_at >= $3`,
		int64(app), int16(kind), since).Scan(&n)
	return n, dbErr("count tasks", err)
}

// Counts returns a task's statistics.
func (s *Store) Counts(ctx context.Context, app uint64, id string) (im.TaskCounts, error) {
	var c im.TaskCounts
	err := s.pool.QueryRow(ctx, `SELECT `+countColumns+` FROM push_tasks WHERE app = $1 AND id = $2`, int64(app), id).
		Scan(&c.Total, &c.Sent, &c.Online, &c.Delivered, &c.Clicked, &c.Lost)
	return c, dbErr("read task counts", err)
}

// RecordAcks inserts one row per new (set, ordinal) and adds the number
// of rows actually inserted to the task's counts, in one transaction: an
// ordinal acknowledged twice, on any node, is counted once.
func (s *Store) RecordAcks(ctx context.Context, app uint64, id string, delivered, clicked []uint32) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if err := taskExists(ctx, tx, app, id); err != nil {
			return err
		}
		var n [2]int64
		for i, ords := range [2][]uint32{delivered, clicked} {
			if len(ords) == 0 {
				continue
			}
			o := make([]int64, len(ords))
			for j, v := range ords {
				o[j] = int64(v)
			}
			tag, err := tx.Exec(ctx, `INSERT INTO push_acks (app, task, clicked, ordinal)
				SELECT $1, $2, $3, unnest($4::bigint[]) ON CONFLICT DO NOTHING`, int64(app), id, i == 1, o)
			if err != nil {
				return dbErr("write acks", err)
			}
			n[i] = tag.RowsAffected()
		}
		if n[0] == 0 && n[1] == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, `UPDATE push_tasks SET delivered = delivered + $1, clicked = clicked + $2
			WHERE app = $3 AND id = $4`, n[0], n[1], int64(app), id)
		return dbErr("count acks", err)
	})
}

// AckSets returns a task's delivered and clicked sets, nil when empty.
func (s *Store) AckSets(ctx context.Context, app uint64, id string) ([]byte, []byte, error) {
	var one int
	if err := s.pool.QueryRow(ctx, `SELECT 1 FROM push_tasks WHERE app = $1 AND id = $2`, int64(app), id).Scan(&one); err != nil {
		return nil, nil, dbErr("read task", err)
	}
	return s.ackSets(ctx, s.pool, app, id)
}

func (s *Store) ackSets(ctx context.Context, q querier, app uint64, id string) ([]byte, []byte, error) {
	rows, err := q.Query(ctx, `SELECT clicked, ordinal FROM push_acks WHERE app = $1 AND task = $2`, int64(app), id)
	if err != nil {
		return nil, nil, dbErr("read acks", err)
	}
	defer rows.Close()
	var sets [2]*roaring.Bitmap
	for rows.Next() {
		var c bool
		var o int64
		if err := rows.Scan(&c, &o); err != nil {
			return nil, nil, dbErr("read acks", err)
		}
		i := 0
		if c {
			i = 1
		}
		if sets[i] == nil {
			sets[i] = roaring.New()
		}
		sets[i].Add(uint32(o))
	}
	if err := rows.Err(); err != nil {
		return nil, nil, dbErr("read acks", err)
	}
	var out [2][]byte
	for i, bm := range sets {
		if bm == nil {
			continue
		}
		bm.RunOptimize()
		b, err := bm.ToBytes()
		if err != nil {
			return nil, nil, err
		}
		out[i] = b
	}
	return out[0], out[1], nil
}

var reportColumns = prefixed("t.", taskHead) + `, ` + prefixed("t.", countColumns)

// Reports returns the app's tasks of kinds created in [since, until],
// newest first, at most limit.
func (s *Store) Reports(ctx context.Context, app uint64, kinds []im.PushKind, since, until int64, limit int) ([]im.TaskReport, error) {
	if len(kinds) == 0 {
		return nil, nil
	}
	ks := make([]int16, len(kinds))
	for i, k := range kinds {
		ks[i] = int16(k)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+reportColumns+` FROM push_tasks t
		WHERE t.app = $1 AND t.kind = ANY($2) AND t.created_at BETWEEN $3 AND $4
		ORDER BY t.created_at DESC, t.seq DESC LIMIT $5`, int64(app), ks, since, until, limit)
	if err != nil {
		return nil, dbErr("read reports", err)
	}
	var out []im.TaskReport
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			rows.Close()
			return nil, dbErr("read reports", err)
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, dbErr("read reports", err)
	}
	for i := range out {
		if out[i].Delivered, out[i].Clicked, err = s.ackSets(ctx, s.pool, app, out[i].Task.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Report returns one task's report, or im.ErrNotFound.
func (s *Store) Report(ctx context.Context, app uint64, id string) (im.TaskReport, error) {
	r, err := scanReport(s.pool.QueryRow(ctx, `SELECT `+reportColumns+` FROM push_tasks t
		WHERE t.app = $1 AND t.id = $2`, int64(app), id))
	if err != nil {
		return r, dbErr("read report", err)
	}
	r.Delivered, r.Clicked, err = s.ackSets(ctx, s.pool, app, id)
	return r, err
}

func scanReport(sc scanner) (im.TaskReport, error) {
	var r im.TaskReport
	var c im.TaskCounts
	t, err := scanTaskWith(sc, false, &c.Total, &c.Sent, &c.Online, &c.Delivered, &c.Clicked, &c.Lost)
	r.Task, r.Counts = t, c
	return r, err
}

// SaveHook records webhook progress.
func (s *Store) SaveHook(ctx context.Context, app uint64, id string, cursor int64, state im.HookState, lost int64) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE push_tasks SET hook_cursor = $1, hook_state = $2, hook_lost = hook_lost + $3
			WHERE app = $4 AND id = $5`, cursor, int16(state), lost, int64(app), id)
		if err != nil {
			return dbErr("save webhook progress", err)
		}
		if tag.RowsAffected() == 0 {
			return im.ErrNotFound
		}
		return nil
	})
}

func scanTask(sc scanner, withAudience bool) (im.PushTask, error) {
	return scanTaskWith(sc, withAudience)
}

func scanTaskWith(sc scanner, withAudience bool, extra ...any) (im.PushTask, error) {
	var t im.PushTask
	var app, msgRandom int64
	var kind, state, hookState int16
	var cond, body, offline, revokeInfo *string
	dest := []any{&app, &t.ID, &t.Seq, &kind, &msgRandom, &t.BodyHash, &t.From, &cond, &body,
		&offline, &t.DataID, &t.OnlineOnly, &t.ExpiresAt, &t.CreatedAt, &t.Total, &state, &t.Cursor,
		&t.RevokedAt, &revokeInfo, &t.Owner, &t.LeaseUntil, &t.HookCursor, &hookState, &t.Online, &t.VendorUntil}
	if withAudience {
		dest = append(dest, &t.Audience)
	}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return t, err
	}
	t.App, t.Kind, t.MsgRandom = uint64(app), im.PushKind(kind), uint32(msgRandom)
	t.State, t.HookState = im.TaskState(state), im.HookState(hookState)
	t.MsgBody, t.Offline, t.RevokeInfo = rawJSON(body), rawJSON(offline), rawJSON(revokeInfo)
	if cond != nil && *cond != "" {
		t.Condition = new(im.Condition)
		if err := json.Unmarshal([]byte(*cond), t.Condition); err != nil {
			return t, fmt.Errorf("postgres: task %s condition: %v", t.ID, err)
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

func encodeCondition(c *im.Condition) (*string, error) {
	if c == nil {
		return nil, nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("postgres: encode condition: %v", err)
	}
	s := string(b)
	return &s, nil
}

func nullJSON(b json.RawMessage) *string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	return &s
}

func rawJSON(s *string) json.RawMessage {
	if s == nil || *s == "" {
		return nil
	}
	return json.RawMessage(*s)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
