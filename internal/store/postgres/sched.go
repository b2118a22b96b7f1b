package postgres

import (
	"context"
	"strconv"
	"strings"

	"timd/internal/im"

	"github.com/jackc/pgx/v5"
)

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

// AddSched stores t with a new ID (from a sequence: never reused).
func (s *Store) AddSched(ctx context.Context, t im.SchedTask) (im.SchedTask, error) {
	err := s.write(ctx, func(tx pgx.Tx) error {
		return dbErr("insert scheduled task", tx.QueryRow(ctx, `INSERT INTO sched_tasks (app, type, sched_at,
			created_at, updated_at, content, title, descr, status, dispatch_success, dispatch_err, push_task_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
			int64(t.App), string(t.Type), t.SchedAt, t.CreatedAt, t.UpdatedAt, string(t.Content),
			t.Title, t.Desc, string(t.Status), t.DispatchSuccess, t.DispatchErr, t.PushTaskID).Scan(&t.ID))
	})
	if err != nil {
		return im.SchedTask{}, err
	}
	return t, nil
}

// Sched returns one task, or im.ErrNotFound.
func (s *Store) Sched(ctx context.Context, app uint64, id int64) (im.SchedTask, error) {
	t, err := scanSched(s.pool.QueryRow(ctx, `SELECT `+schedColumns+` FROM sched_tasks WHERE app = $1 AND id = $2`,
		int64(app), id))
	return t, dbErr("read scheduled task", err)
}

func schedPending(ctx context.Context, tx pgx.Tx, app uint64, id int64) error {
	var status string
	err := tx.QueryRow(ctx, `SELECT status FROM sched_tasks WHERE app = $1 AND id = $2 FOR UPDATE`, int64(app), id).Scan(&status)
	if err != nil {
		return dbErr("read scheduled task", err)
	}
	if im.SchedStatus(status) != im.SchedPending {
		return im.ErrNotPending
	}
	return nil
}

// UpdateSched replaces the editable fields of a pending task.
func (s *Store) UpdateSched(ctx context.Context, t im.SchedTask) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if err := schedPending(ctx, tx, t.App, t.ID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE sched_tasks SET sched_at = $1, content = $2, title = $3, descr = $4,
			updated_at = $5 WHERE id = $6`, t.SchedAt, string(t.Content), t.Title, t.Desc, t.UpdatedAt, t.ID)
		return dbErr("update scheduled task", err)
	})
}

// DeleteSched deletes a pending task.
func (s *Store) DeleteSched(ctx context.Context, app uint64, id int64) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if err := schedPending(ctx, tx, app, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM sched_tasks WHERE id = $1`, id)
		return dbErr("delete scheduled task", err)
	})
}

// ListSched returns one page of the app's tasks and how many match q.
func (s *Store) ListSched(ctx context.Context, app uint64, q im.SchedQuery) ([]im.SchedTask, int, error) {
	col := "created_at"
	if q.OrderBy == im.OrderSchedAt {
		col = "sched_at"
	}
	where := []string{"app = $1"}
	args := []any{int64(app)}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Begin != 0 || q.End != 0 {
		where = append(where, col+" BETWEEN "+arg(q.Begin)+" AND "+arg(q.End))
	}
	if q.Keyword != "" {
		k := arg(q.Keyword)
		where = append(where, `(strpos(title, `+k+`) > 0 OR strpos(descr, `+k+`) > 0)`)
	}
	cond := strings.Join(where, " AND ")
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM sched_tasks WHERE `+cond, args...).Scan(&total); err != nil {
		return nil, 0, dbErr("count scheduled tasks", err)
	}
	dir := "DESC"
	if q.Asc {
		dir = "ASC"
	}
	lim, off := arg(q.Limit), arg(q.Offset)
	rows, err := s.pool.Query(ctx, `SELECT `+schedColumns+` FROM sched_tasks WHERE `+cond+
		` ORDER BY `+col+` `+dir+`, id `+dir+` LIMIT `+lim+` OFFSET `+off, args...)
	if err != nil {
		return nil, 0, dbErr("list scheduled tasks", err)
	}
	out, err := collectSched(rows)
	return out, total, err
}

// DueSched returns due pending tasks and stale dispatching ones.
func (s *Store) DueSched(ctx context.Context, now, staleBefore int64, limit int) ([]im.SchedTask, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+schedColumns+` FROM sched_tasks
		WHERE (status = 'pending' AND sched_at <= $1) OR (status = 'dispatching' AND updated_at <= $2)
		ORDER BY sched_at, id LIMIT $3`, now, staleBefore, limit)
	if err != nil {
		return nil, dbErr("read due scheduled tasks", err)
	}
	return collectSched(rows)
}

func collectSched(rows pgx.Rows) ([]im.SchedTask, error) {
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

// MoveSched moves a task from status from to t's status; the conditional
// UPDATE makes it a compare-and-set across nodes.
func (s *Store) MoveSched(ctx context.Context, from im.SchedStatus, t im.SchedTask) (bool, error) {
	moved := false
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE sched_tasks SET status = $1, dispatch_success = $2, dispatch_err = $3,
			push_task_id = $4, updated_at = $5 WHERE app = $6 AND id = $7 AND status = $8`,
			string(t.Status), t.DispatchSuccess, t.DispatchErr, t.PushTaskID, t.UpdatedAt,
			int64(t.App), t.ID, string(from))
		if err != nil {
			return dbErr("move scheduled task", err)
		}
		if moved = tag.RowsAffected() == 1; !moved {
			var id int64
			return dbErr("move scheduled task", tx.QueryRow(ctx, `SELECT id FROM sched_tasks WHERE app = $1 AND id = $2`,
				int64(t.App), t.ID).Scan(&id))
		}
		return nil
	})
	return moved, err
}
