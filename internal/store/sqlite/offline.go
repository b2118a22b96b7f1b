package sqlite

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"timd/internal/im"
)

// Vendor delivery: push devices, the durable send queue and send results
// (im.DeviceStore, im.Outbox). Writes go through the group-commit writer,
// so a queued send is fsynced before the fan-out moves its cursor past it.

var (
	_ im.DeviceStore = (*Store)(nil)
	_ im.Outbox      = (*Store)(nil)
)

const deviceColumns = `reg_id, target, owner, platform, vendor, token, bundle, endpoint, p256dh, auth, cred_hash, updated_at`

// moveTokenSQL and moveEndpointSQL clear a token or a Web Push endpoint
// from every other device of the app that holds it. One statement per
// address, each naming its partial index's condition (token <> ”,
// endpoint <> ”), so that it reads the index (push_devices_token,
// push_devices_endpoint), not every device of the app. INDEXED BY: without
// statistics SQLite prefers the primary key's (app) prefix, a scan of the
// app's devices.
const (
	moveTokenSQL = `UPDATE push_devices INDEXED BY push_devices_token SET token = '', endpoint = '', p256dh = '', auth = ''
		WHERE app = ? AND token <> '' AND token = ? AND reg_id <> ?`
	moveEndpointSQL = `UPDATE push_devices INDEXED BY push_devices_endpoint SET token = '', endpoint = '', p256dh = '', auth = ''
		WHERE app = ? AND endpoint <> '' AND endpoint = ? AND reg_id <> ?`
)

// PutPushDevice creates or replaces the device's row, taking its token or
// endpoint from any other device of the app that held it.
func (s *Store) PutPushDevice(ctx context.Context, app uint64, d im.PushDevice) error {
	return s.w.do(ctx, 1, func(t *wtx) ([]im.Change, error) {
		if d.Token != "" {
			if _, err := t.execSQL(moveTokenSQL, int64(app), d.Token, d.RegistrationID); err != nil {
				return nil, dbErr("move token", err)
			}
		}
		if d.Endpoint != "" {
			if _, err := t.execSQL(moveEndpointSQL, int64(app), d.Endpoint, d.RegistrationID); err != nil {
				return nil, dbErr("move endpoint", err)
			}
		}
		_, err := t.execSQL(`INSERT INTO push_devices (app, `+deviceColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (app, reg_id) DO UPDATE SET target = excluded.target, owner = excluded.owner,
				platform = excluded.platform, vendor = excluded.vendor, token = excluded.token,
				bundle = excluded.bundle, endpoint = excluded.endpoint, p256dh = excluded.p256dh,
				auth = excluded.auth, cred_hash = excluded.cred_hash, updated_at = excluded.updated_at`,
			int64(app), d.RegistrationID, int64(d.Target), d.Owner, d.Platform, string(d.Vendor), d.Token, d.Bundle,
			d.Endpoint, d.P256dh, d.Auth, d.CredHash, d.UpdatedAt)
		return nil, dbErr("put push device", err)
	})
}

// PushDevice returns one device, or im.ErrNotFound.
func (s *Store) PushDevice(ctx context.Context, app uint64, regID string) (im.PushDevice, error) {
	d, err := scanDevice(s.rdb.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM push_devices
		WHERE app = ? AND reg_id = ?`, int64(app), regID))
	return d, dbErr("read push device", err)
}

// PushDevicesOf returns the devices whose target is among targets.
func (s *Store) PushDevicesOf(ctx context.Context, app uint64, targets []uint32) ([]im.PushDevice, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+deviceColumns+` FROM push_devices
		WHERE app = ? AND target IN (SELECT value FROM json_each(?)) ORDER BY reg_id`, int64(app), jsonInts(targets))
	if err != nil {
		return nil, dbErr("read push devices", err)
	}
	defer rows.Close()
	var out []im.PushDevice
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, dbErr("read push devices", err)
		}
		out = append(out, d)
	}
	return out, dbErr("read push devices", rows.Err())
}

// DropToken clears the device's vendor address if it is still token.
func (s *Store) DropToken(ctx context.Context, app uint64, regID, token string) (bool, error) {
	var n int64
	err := s.w.do(ctx, 1, func(t *wtx) ([]im.Change, error) {
		res, err := t.execSQL(`UPDATE push_devices SET token = '', endpoint = '', p256dh = '', auth = ''
			WHERE app = ? AND reg_id = ? AND token <> '' AND token = ? OR app = ? AND reg_id = ? AND endpoint <> '' AND endpoint = ?`,
			int64(app), regID, token, int64(app), regID, token)
		if err != nil {
			return nil, dbErr("drop token", err)
		}
		n, err = res.RowsAffected()
		return nil, dbErr("drop token", err)
	})
	return n > 0, err
}

func scanDevice(sc scanner) (im.PushDevice, error) {
	var d im.PushDevice
	var target int64
	var vendor string
	err := sc.Scan(&d.RegistrationID, &target, &d.Owner, &d.Platform, &vendor, &d.Token, &d.Bundle,
		&d.Endpoint, &d.P256dh, &d.Auth, &d.CredHash, &d.UpdatedAt)
	d.Target, d.Vendor = uint32(target), im.Vendor(vendor)
	return d, err
}

// jsonInts renders ordinals as a JSON array for json_each.
func jsonInts(ords []uint32) string {
	var b strings.Builder
	b.Grow(len(ords) * 8)
	b.WriteByte('[')
	for i, o := range ords {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(o), 10))
	}
	b.WriteByte(']')
	return b.String()
}

// EnqueueOffline queues one send per reachable device of targets that has
// neither a queued send nor a result for the task.
func (s *Store) EnqueueOffline(ctx context.Context, app uint64, taskID string, targets []uint32, now int64) (int, error) {
	if len(targets) == 0 {
		return 0, nil
	}
	var n int64
	err := s.w.do(ctx, len(targets), func(t *wtx) ([]im.Change, error) {
		res, err := t.execSQL(`INSERT INTO push_outbox (app, task_id, reg_id, due_at)
			SELECT d.app, ?, d.reg_id, ? FROM push_devices d
			WHERE d.app = ? AND d.target IN (SELECT value FROM json_each(?))
				AND (d.vendor IN ('apns', 'fcm') AND d.token <> '' OR d.vendor = 'webpush' AND d.endpoint <> '')
				AND NOT EXISTS (SELECT 1 FROM push_sends r WHERE r.app = d.app AND r.task_id = ? AND r.reg_id = d.reg_id)
			ON CONFLICT (app, task_id, reg_id) DO NOTHING`,
			taskID, now, int64(app), jsonInts(targets), taskID)
		if err != nil {
			return nil, dbErr("enqueue offline", err)
		}
		n, err = res.RowsAffected()
		return nil, dbErr("enqueue offline", err)
	})
	return int(n), err
}

// ClaimOutbox leases due sends; sends of revoked or expired tasks (and of
// tasks that no longer exist) are deleted instead.
func (s *Store) ClaimOutbox(ctx context.Context, owner string, now, leaseUntil int64, limit int) ([]im.OutboxItem, error) {
	var out []im.OutboxItem
	err := s.w.do(ctx, limit, func(t *wtx) ([]im.Change, error) {
		out = out[:0]
		items, err := t.dueSends(now, limit)
		if err != nil {
			return nil, err
		}
		dead := map[outboxTask]bool{}
		for _, it := range items {
			k := outboxTask{it.App, it.TaskID}
			live, seen := dead[k]
			if !seen {
				var state, expires int64
				err := t.queryRow(`SELECT state, vendor_until FROM push_tasks WHERE app = ? AND id = ?`, int64(it.App), it.TaskID).Scan(&state, &expires)
				if err != nil && err != sql.ErrNoRows {
					return nil, dbErr("claim sends", err)
				}
				live = err == nil && state != int64(im.TaskRevoked) && expires*1000 > now
				dead[k] = live
				if !live {
					if _, err := t.execSQL(`DELETE FROM push_outbox WHERE app = ? AND task_id = ?`, int64(it.App), it.TaskID); err != nil {
						return nil, dbErr("drop dead sends", err)
					}
				}
			}
			if !live {
				continue
			}
			if _, err := t.execSQL(`UPDATE push_outbox SET owner = ?, lease_until = ? WHERE app = ? AND task_id = ? AND reg_id = ?`,
				owner, leaseUntil, int64(it.App), it.TaskID, it.RegistrationID); err != nil {
				return nil, dbErr("claim sends", err)
			}
			out = append(out, it)
		}
		return nil, nil
	})
	return out, err
}

type outboxTask struct {
	app uint64
	id  string
}

// dueSends reads at most limit sends due at now whose lease (if any) has
// ended: a send being sent is never claimed twice, not even by its owner.
func (t *wtx) dueSends(now int64, limit int) ([]im.OutboxItem, error) {
	rows, err := t.conn.QueryContext(context.Background(), `SELECT app, task_id, reg_id, attempts, due_at FROM push_outbox
		WHERE due_at <= ? AND lease_until <= ? ORDER BY due_at LIMIT ?`, now, now, limit)
	if err != nil {
		return nil, dbErr("claim sends", err)
	}
	defer rows.Close()
	var out []im.OutboxItem
	for rows.Next() {
		var it im.OutboxItem
		var app int64
		if err := rows.Scan(&app, &it.TaskID, &it.RegistrationID, &it.Attempts, &it.DueAt); err != nil {
			return nil, dbErr("claim sends", err)
		}
		it.App = uint64(app)
		out = append(out, it)
	}
	return out, dbErr("claim sends", rows.Err())
}

// RenewOutbox extends the lease of the items still leased to owner.
func (s *Store) RenewOutbox(ctx context.Context, owner string, items []im.OutboxItem, leaseUntil int64) (int, error) {
	if len(items) == 0 {
		return 0, nil
	}
	var n int64
	err := s.w.do(ctx, len(items), func(t *wtx) ([]im.Change, error) {
		n = 0
		for _, it := range items {
			res, err := t.execSQL(`UPDATE push_outbox SET lease_until = ? WHERE app = ? AND task_id = ? AND reg_id = ? AND owner = ?`,
				leaseUntil, int64(it.App), it.TaskID, it.RegistrationID, owner)
			if err != nil {
				return nil, dbErr("renew sends", err)
			}
			k, err := res.RowsAffected()
			if err != nil {
				return nil, dbErr("renew sends", err)
			}
			n += k
		}
		return nil, nil
	})
	return int(n), err
}

// FinishOutbox deletes the send and records its result.
func (s *Store) FinishOutbox(ctx context.Context, r im.SendResult) error {
	return s.w.do(ctx, 1, func(t *wtx) ([]im.Change, error) {
		if _, err := t.execSQL(`DELETE FROM push_outbox WHERE app = ? AND task_id = ? AND reg_id = ?`,
			int64(r.App), r.TaskID, r.RegistrationID); err != nil {
			return nil, dbErr("finish send", err)
		}
		_, err := t.execSQL(`INSERT INTO push_sends (app, task_id, reg_id, account, vendor, platform, status, err_code, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (app, task_id, reg_id) DO UPDATE SET account = excluded.account,
			vendor = excluded.vendor, platform = excluded.platform, status = excluded.status, err_code = excluded.err_code, at = excluded.at,
			posted = 0`,
			int64(r.App), r.TaskID, r.RegistrationID, r.Account, string(r.Vendor), r.Platform, r.Status, r.ErrCode, r.At)
		return nil, dbErr("record send", err)
	})
}

// RetryOutbox releases a send, due again at dueAt.
func (s *Store) RetryOutbox(ctx context.Context, app uint64, taskID, regID string, dueAt int64) error {
	return s.w.do(ctx, 1, func(t *wtx) ([]im.Change, error) {
		_, err := t.execSQL(`UPDATE push_outbox SET attempts = attempts + 1, due_at = ?, owner = '', lease_until = 0
			WHERE app = ? AND task_id = ? AND reg_id = ?`, dueAt, int64(app), taskID, regID)
		return nil, dbErr("retry send", err)
	})
}

// SendResults returns a task's results after afterRegID.
func (s *Store) SendResults(ctx context.Context, app uint64, taskID, afterRegID string, limit int) ([]im.SendResult, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT reg_id, account, vendor, platform, status, err_code, at FROM push_sends
		WHERE app = ? AND task_id = ? AND reg_id > ? ORDER BY reg_id LIMIT ?`, int64(app), taskID, afterRegID, limit)
	if err != nil {
		return nil, dbErr("read sends", err)
	}
	defer rows.Close()
	return scanSends(rows, app, taskID)
}

// OutboxLen counts a task's queued sends.
func (s *Store) OutboxLen(ctx context.Context, app uint64, taskID string) (int, error) {
	var n int
	err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM push_outbox WHERE app = ? AND task_id = ?`,
		int64(app), taskID).Scan(&n)
	return n, dbErr("count sends", err)
}

// SendCounts counts a task's sends by vendor and ErrCode, and its queued
// sends by vendor.
func (s *Store) SendCounts(ctx context.Context, app uint64, taskID string) ([]im.SendCount, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT vendor, err_code, 0, count(*) FROM push_sends
			WHERE app = ? AND task_id = ? GROUP BY vendor, err_code
		UNION ALL SELECT COALESCE(d.vendor, ''), '', 1, count(*) FROM push_outbox o
			LEFT JOIN push_devices d ON d.app = o.app AND d.reg_id = o.reg_id
			WHERE o.app = ? AND o.task_id = ? GROUP BY d.vendor
		ORDER BY 1, 3, 2`, int64(app), taskID, int64(app), taskID)
	if err != nil {
		return nil, dbErr("count sends", err)
	}
	defer rows.Close()
	var out []im.SendCount
	for rows.Next() {
		var c im.SendCount
		var vendor string
		if err := rows.Scan(&vendor, &c.ErrCode, &c.Queued, &c.N); err != nil {
			return nil, dbErr("count sends", err)
		}
		c.Vendor = im.Vendor(vendor)
		out = append(out, c)
	}
	return out, dbErr("count sends", rows.Err())
}

// queuedSendsSQL reads the target's devices through push_devices_target,
// then each one's queued send by the outbox key (CROSS JOIN fixes that
// order: the other one reads every queued send of the task).
const queuedSendsSQL = `SELECT o.reg_id, d.vendor, d.platform, o.attempts, o.due_at, o.lease_until
	FROM push_devices d INDEXED BY push_devices_target CROSS JOIN push_outbox o
	WHERE d.app = ? AND d.target = ? AND o.app = d.app AND o.task_id = ? AND o.reg_id = d.reg_id ORDER BY o.reg_id`

// QueuedSends returns a task's queued sends to the devices of target.
func (s *Store) QueuedSends(ctx context.Context, app uint64, taskID string, target uint32) ([]im.QueuedSend, error) {
	rows, err := s.rdb.QueryContext(ctx, queuedSendsSQL, int64(app), int64(target), taskID)
	if err != nil {
		return nil, dbErr("read queued sends", err)
	}
	defer rows.Close()
	var out []im.QueuedSend
	for rows.Next() {
		var q im.QueuedSend
		var vendor string
		if err := rows.Scan(&q.RegistrationID, &vendor, &q.Platform, &q.Attempts, &q.DueAt, &q.LeaseUntil); err != nil {
			return nil, dbErr("read queued sends", err)
		}
		q.Vendor = im.Vendor(vendor)
		out = append(out, q)
	}
	return out, dbErr("read queued sends", rows.Err())
}

// accountSendsSQL reads one recipient's results of a task through
// push_sends_account (INDEXED BY: without statistics SQLite would read
// every result of the task through the primary key).
const accountSendsSQL = `SELECT reg_id, account, vendor, platform, status, err_code, at FROM push_sends INDEXED BY push_sends_account
	WHERE app = ? AND task_id = ? AND account = ? ORDER BY reg_id`

// AccountSends returns a task's results for one recipient.
func (s *Store) AccountSends(ctx context.Context, app uint64, taskID, account string) ([]im.SendResult, error) {
	rows, err := s.rdb.QueryContext(ctx, accountSendsSQL, int64(app), taskID, account)
	if err != nil {
		return nil, dbErr("read sends", err)
	}
	defer rows.Close()
	return scanSends(rows, app, taskID)
}

func scanSends(rows *sql.Rows, app uint64, taskID string) ([]im.SendResult, error) {
	var out []im.SendResult
	for rows.Next() {
		r := im.SendResult{App: app, TaskID: taskID}
		var vendor string
		if err := rows.Scan(&r.RegistrationID, &r.Account, &vendor, &r.Platform, &r.Status, &r.ErrCode, &r.At); err != nil {
			return nil, dbErr("read sends", err)
		}
		r.Vendor = im.Vendor(vendor)
		out = append(out, r)
	}
	return out, dbErr("read sends", rows.Err())
}

// UnpostedSends returns results whose webhook event is not yet posted.
func (s *Store) UnpostedSends(ctx context.Context, limit int) ([]im.SendResult, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT app, task_id, reg_id, account, vendor, platform, status, err_code, at
		FROM push_sends WHERE posted = 0 ORDER BY at LIMIT ?`, limit)
	if err != nil {
		return nil, dbErr("read unposted sends", err)
	}
	defer rows.Close()
	var out []im.SendResult
	for rows.Next() {
		var r im.SendResult
		var app int64
		var vendor string
		if err := rows.Scan(&app, &r.TaskID, &r.RegistrationID, &r.Account, &vendor, &r.Platform, &r.Status, &r.ErrCode, &r.At); err != nil {
			return nil, dbErr("read unposted sends", err)
		}
		r.App, r.Vendor = uint64(app), im.Vendor(vendor)
		out = append(out, r)
	}
	return out, dbErr("read unposted sends", rows.Err())
}

// MarkSendsPosted marks results posted.
func (s *Store) MarkSendsPosted(ctx context.Context, rs []im.SendResult) error {
	if len(rs) == 0 {
		return nil
	}
	return s.w.do(ctx, len(rs), func(t *wtx) ([]im.Change, error) {
		for _, r := range rs {
			if _, err := t.execSQL(`UPDATE push_sends SET posted = 1 WHERE app = ? AND task_id = ? AND reg_id = ? AND at = ?`,
				int64(r.App), r.TaskID, r.RegistrationID, r.At); err != nil {
				return nil, dbErr("mark sends posted", err)
			}
		}
		return nil, nil
	})
}
