package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"timd/internal/im"
)

// Scheduled pushes (im.SchedStore).

var _ im.SchedStore = (*Store)(nil)

const schedColumns = `id, app, type, sched_at, created_at, updated_at, content, title, descr, status,
	dispatch_success, dispatch_err, push_task_id`

func scanSched(sc scanner) (im.SchedTask, error) {
	var t im.SchedTask
	var app int64
	var typ, status, content string
	err := sc.Scan(&t.ID, &app, &typ, &t.SchedAt, &t.CreatedAt, &t.UpdatedAt, &content, &t.Title,
		&t.Desc, &status, &t.DispatchSuccess, &t.DispatchErr, &t.PushTaskID)
	t.App, t.Type, t.Status, t.Content = uint64(app), im.SchedType(typ), im.SchedStatus(status), []byte(content)
	return t, err
}

// AddSched stores t with a new ID.
func (s *Store) AddSched(ctx context.Context, t im.SchedTask) (im.SchedTask, error) {
	err := s.w.do(ctx, 1, func(w *wtx) ([]im.Change, error) {
		res, err := w.execSQL(`INSERT INTO sched_tasks (app, type, sched_at, created_at, updated_at,
			content, title, descr, status, dispatch_success, dispatch_err, push_task_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			int64(t.App), string(t.Type), t.SchedAt, t.CreatedAt, t.UpdatedAt, string(t.Content),
			t.Title, t.Desc, string(t.Status), t.DispatchSuccess, t.DispatchErr, t.PushTaskID)
		if err != nil {
			return nil, dbErr("insert scheduled task", err)
		}
		t.ID, err = res.LastInsertId()
		return nil, dbErr("insert scheduled task", err)
	})
	if err != nil {
		return im.SchedTask{}, err
	}
	return t, nil
}

// Sched returns one task, or im.ErrNotFound.
func (s *Store) Sched(ctx context.Context, app uint64, id int64) (im.SchedTask, error) {
	t, err := scanSched(s.rdb.QueryRowContext(ctx, `SELECT `+schedColumns+` FROM sched_tasks
		WHERE app = ? AND id = ?`, int64(app), id))
	return t, dbErr("read scheduled task", err)
}

// UpdateSched replaces the schedule and content of a pending task.
func (s *Store) UpdateSched(ctx context.Context, t im.SchedTask) error {
	return s.w.do(ctx, 1, func(w *wtx) ([]im.Change, error) {
		if err := w.schedPending(t.App, t.ID); err != nil {
			return nil, err
		}
		_, err := w.execSQL(`UPDATE sched_tasks SET sched_at = ?, content = ?, title = ?, descr = ?,
			updated_at = ? WHERE id = ?`, t.SchedAt, string(t.Content), t.Title, t.Desc, t.UpdatedAt, t.ID)
		return nil, dbErr("update scheduled task", err)
	})
}

// DeleteSched deletes a pending task.
func (s *Store) DeleteSched(ctx context.Context, app uint64, id int64) error {
	return s.w.do(ctx, 1, func(w *wtx) ([]im.Change, error) {
		if err := w.schedPending(app, id); err != nil {
			return nil, err
		}
		_, err := w.execSQL(`DELETE FROM sched_tasks WHERE id = ?`, id)
		return nil, dbErr("delete scheduled task", err)
	})
}

// schedPending returns im.ErrNotFound or im.ErrNotPending unless the task
// exists and is pending.
func (t *wtx) schedPending(app uint64, id int64) error {
	var status string
	err := t.queryRow(`SELECT status FROM sched_tasks WHERE app = ? AND id = ?`, int64(app), id).Scan(&status)
	if err != nil {
		return dbErr("read scheduled task", err)
	}
	if im.SchedStatus(status) != im.SchedPending {
		return im.ErrNotPending
	}
	return nil
}

// ListSched returns one page of the app's tasks and the number matching.
func (s *Store) ListSched(ctx context.Context, app uint64, q im.SchedQuery) ([]im.SchedTask, int, error) {
	col := "created_at"
	if q.OrderBy == im.OrderSchedAt {
		col = "sched_at"
	}
	where := []string{"app = ?"}
	args := []any{int64(app)}
	if q.Begin != 0 || q.End != 0 {
		where = append(where, col+" BETWEEN ? AND ?")
		args = append(args, q.Begin, q.End)
	}
	if q.Keyword != "" {
		where = append(where, `(instr(title, ?) > 0 OR instr(descr, ?) > 0)`)
		args = append(args, q.Keyword, q.Keyword)
	}
	cond := strings.Join(where, " AND ")
	var total int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM sched_tasks WHERE `+cond, args...).Scan(&total); err != nil {
		return nil, 0, dbErr("count scheduled tasks", err)
	}
	dir := "DESC"
	if q.Asc {
		dir = "ASC"
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+schedColumns+` FROM sched_tasks WHERE `+cond+
		` ORDER BY `+col+` `+dir+`, id `+dir+` LIMIT ? OFFSET ?`, append(args, q.Limit, q.Offset)...)
	if err != nil {
		return nil, 0, dbErr("list scheduled tasks", err)
	}
	out, err := collectSched(rows)
	return out, total, err
}

// DueSched returns due pending tasks and stale dispatching ones.
func (s *Store) DueSched(ctx context.Context, now, staleBefore int64, limit int) ([]im.SchedTask, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+schedColumns+` FROM sched_tasks
		WHERE (status = 'pending' AND sched_at <= ?) OR (status = 'dispatching' AND updated_at <= ?)
		ORDER BY sched_at, id LIMIT ?`, now, staleBefore, limit)
	if err != nil {
		return nil, dbErr("read due scheduled tasks", err)
	}
	return collectSched(rows)
}

func collectSched(rows *sql.Rows) ([]im.SchedTask, error) {
	defer rows.Close()
	var out []im.SchedTask
	for rows.Next() {
		t, err := scanSched(rows)
		if err != nil {
			return nil, dbErr("read scheduled tasks", err)
		}
		out = append(out, t)
	}
	return out, dbErr("read scheduled tasks", rows.Err())
}

// MoveSched moves a task from status from to t's status and dispatch
// fields; it reports whether the task was in status from.
func (s *Store) MoveSched(ctx context.Context, from im.SchedStatus, t im.SchedTask) (bool, error) {
	moved := false
	err := s.w.do(ctx, 1, func(w *wtx) ([]im.Change, error) {
		res, err := w.execSQL(`UPDATE sched_tasks SET status = ?, dispatch_success = ?, dispatch_err = ?,
			push_task_id = ?, updated_at = ? WHERE app = ? AND id = ? AND status = ?`,
			string(t.Status), t.DispatchSuccess, t.DispatchErr, t.PushTaskID, t.UpdatedAt,
			int64(t.App), t.ID, string(from))
		if err != nil {
			return nil, dbErr("move scheduled task", err)
		}
		n, err := res.RowsAffected()
		moved = n == 1
		if err == nil && !moved {
			var id int64
			err = w.queryRow(`SELECT id FROM sched_tasks WHERE app = ? AND id = ?`, int64(t.App), t.ID).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, im.ErrNotFound
			}
		}
		return nil, dbErr("move scheduled task", err)
	})
	return moved, err
}
