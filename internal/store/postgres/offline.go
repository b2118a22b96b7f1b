package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"timd/internal/im"
)

// Vendor delivery: push devices, the durable send queue and send results
// (im.DeviceStore, im.Outbox). Claims lock the rows they take with FOR
// UPDATE SKIP LOCKED, so nodes sharing the database never claim one send
// twice.

var (
	_ im.DeviceStore = (*Store)(nil)
	_ im.Outbox      = (*Store)(nil)
)

const deviceColumns = `reg_id, target, owner, platform, vendor, token, bundle, endpoint, p256dh, auth, cred_hash, updated_at`

// moveTokenSQL and moveEndpointSQL clear a token or a Web Push endpoint
// from every other device of the app that holds it. One statement per
// address, each naming its partial index's condition (token <> ”,
// endpoint <> ”), so that it reads the index (push_devices_token,
// push_devices_endpoint), not every device of the app.
const (
	moveTokenSQL = `UPDATE push_devices SET token = '', endpoint = '', p256dh = '', auth = ''
		WHERE app = $1 AND token <> '' AND token = $2 AND reg_id <> $3`
	moveEndpointSQL = `UPDATE push_devices SET token = '', endpoint = '', p256dh = '', auth = ''
		WHERE app = $1 AND endpoint <> '' AND endpoint = $2 AND reg_id <> $3`
)

// PutPushDevice creates or replaces the device's row, taking its token or
// endpoint from any other device of the app that held it.
func (s *Store) PutPushDevice(ctx context.Context, app uint64, d im.PushDevice) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if d.Token != "" {
			if _, err := tx.Exec(ctx, moveTokenSQL, int64(app), d.Token, d.RegistrationID); err != nil {
				return dbErr("move token", err)
			}
		}
		if d.Endpoint != "" {
			if _, err := tx.Exec(ctx, moveEndpointSQL, int64(app), d.Endpoint, d.RegistrationID); err != nil {
				return dbErr("move endpoint", err)
			}
		}
		return s.putDevice(ctx, tx, app, d)
	})
}

func (s *Store) putDevice(ctx context.Context, tx pgx.Tx, app uint64, d im.PushDevice) error {
	_, err := tx.Exec(ctx, `INSERT INTO push_devices (app, `+deviceColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (app, reg_id) DO UPDATE SET target = excluded.target, owner = excluded.owner,
			platform = excluded.platform, vendor = excluded.vendor, token = excluded.token,
			bundle = excluded.bundle, endpoint = excluded.endpoint, p256dh = excluded.p256dh,
			auth = excluded.auth, cred_hash = excluded.cred_hash, updated_at = excluded.updated_at`,
		int64(app), d.RegistrationID, int64(d.Target), d.Owner, d.Platform, string(d.Vendor), d.Token, d.Bundle,
		d.Endpoint, d.P256dh, d.Auth, d.CredHash, d.UpdatedAt)
	return dbErr("put push device", err)
}

// PushDevice returns one device, or im.ErrNotFound.
func (s *Store) PushDevice(ctx context.Context, app uint64, regID string) (im.PushDevice, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM push_devices
		WHERE app = $1 AND reg_id = $2`, int64(app), regID))
	return d, dbErr("read push device", err)
}

// PushDevicesOf returns the devices whose target is among targets.
func (s *Store) PushDevicesOf(ctx context.Context, app uint64, targets []uint32) ([]im.PushDevice, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM push_devices
		WHERE app = $1 AND target = ANY($2) ORDER BY reg_id`, int64(app), int64s(targets))
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
	tag, err := s.pool.Exec(ctx, `UPDATE push_devices SET token = '', endpoint = '', p256dh = '', auth = ''
		WHERE app = $1 AND reg_id = $2 AND $3 <> '' AND (token = $3 OR endpoint = $3)`, int64(app), regID, token)
	if err != nil {
		return false, dbErr("drop token", err)
	}
	return tag.RowsAffected() > 0, nil
}

func scanDevice(sc pgx.Row) (im.PushDevice, error) {
	var d im.PushDevice
	var target int64
	var vendor string
	err := sc.Scan(&d.RegistrationID, &target, &d.Owner, &d.Platform, &vendor, &d.Token, &d.Bundle,
		&d.Endpoint, &d.P256dh, &d.Auth, &d.CredHash, &d.UpdatedAt)
	d.Target, d.Vendor = uint32(target), im.Vendor(vendor)
	return d, err
}

func int64s(ords []uint32) []int64 {
	out := make([]int64, len(ords))
	for i, o := range ords {
		out[i] = int64(o)
	}
	return out
}

// EnqueueOffline queues one send per reachable device of targets that has
// neither a queued send nor a result for the task.
func (s *Store) EnqueueOffline(ctx context.Context, app uint64, taskID string, targets []uint32, now int64) (int, error) {
	if len(targets) == 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO push_outbox (app, task_id, reg_id, due_at)
		SELECT d.app, $2, d.reg_id, $3 FROM push_devices d
		WHERE d.app = $1 AND d.target = ANY($4)
			AND (d.vendor IN ('apns', 'fcm') AND d.token <> '' OR d.vendor = 'webpush' AND d.endpoint <> '')
			AND NOT EXISTS (SELECT 1 FROM push_sends r WHERE r.app = d.app AND r.task_id = $2 AND r.reg_id = d.reg_id)
		ON CONFLICT (app, task_id, reg_id) DO NOTHING`, int64(app), taskID, now, int64s(targets))
	if err != nil {
		return 0, dbErr("enqueue offline", err)
	}
	return int(tag.RowsAffected()), nil
}

// ClaimOutbox leases due sends; sends of revoked or expired tasks (and of
// tasks that no longer exist) are deleted instead.
func (s *Store) ClaimOutbox(ctx context.Context, owner string, now, leaseUntil int64, limit int) ([]im.OutboxItem, error) {
	var out []im.OutboxItem
	err := s.write(ctx, func(tx pgx.Tx) error {
		out = out[:0]
		if _, err := tx.Exec(ctx, `DELETE FROM push_outbox o WHERE (o.app, o.task_id) IN (
			SELECT q.app, q.task_id FROM (SELECT DISTINCT app, task_id FROM push_outbox
				WHERE due_at <= $1 AND lease_until <= $1 ORDER BY app, task_id LIMIT 64) q
			LEFT JOIN push_tasks k ON k.app = q.app AND k.id = q.task_id
			WHERE k.id IS NULL OR k.state = $2 OR k.vendor_until * 1000 <= $1)`,
			now, int64(im.TaskRevoked)); err != nil {
			return dbErr("drop dead sends", err)
		}
		rows, err := tx.Query(ctx, `UPDATE push_outbox o SET owner = $1, lease_until = $2
			FROM (SELECT app, task_id, reg_id FROM push_outbox WHERE due_at <= $3 AND lease_until <= $3
				ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED) c
			WHERE o.app = c.app AND o.task_id = c.task_id AND o.reg_id = c.reg_id
			RETURNING o.app, o.task_id, o.reg_id, o.attempts, o.due_at`, owner, leaseUntil, now, limit)
		if err != nil {
			return dbErr("claim sends", err)
		}
		defer rows.Close()
		for rows.Next() {
			var it im.OutboxItem
			var app int64
			if err := rows.Scan(&app, &it.TaskID, &it.RegistrationID, &it.Attempts, &it.DueAt); err != nil {
				return dbErr("claim sends", err)
			}
			it.App = uint64(app)
			out = append(out, it)
		}
		return dbErr("claim sends", rows.Err())
	})
	return out, err
}

// FinishOutbox deletes the send and records its result.
func (s *Store) FinishOutbox(ctx context.Context, r im.SendResult) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM push_outbox WHERE app = $1 AND task_id = $2 AND reg_id = $3`,
			int64(r.App), r.TaskID, r.RegistrationID); err != nil {
			return dbErr("finish send", err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO push_sends (app, task_id, reg_id, account, vendor, platform, status, err_code, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (app, task_id, reg_id) DO UPDATE SET account = excluded.account,
			vendor = excluded.vendor, platform = excluded.platform, status = excluded.status, err_code = excluded.err_code, at = excluded.at,
			posted = 0`,
			int64(r.App), r.TaskID, r.RegistrationID, r.Account, string(r.Vendor), r.Platform, r.Status, r.ErrCode, r.At)
		return dbErr("record send", err)
	})
}

// RenewOutbox extends the lease of the items still leased to owner, in
// one statement.
func (s *Store) RenewOutbox(ctx context.Context, owner string, items []im.OutboxItem, leaseUntil int64) (int, error) {
	if len(items) == 0 {
		return 0, nil
	}
	apps, tasks, regs := make([]int64, len(items)), make([]string, len(items)), make([]string, len(items))
	for i, it := range items {
		apps[i], tasks[i], regs[i] = int64(it.App), it.TaskID, it.RegistrationID
	}
	tag, err := s.pool.Exec(ctx, `UPDATE push_outbox o SET lease_until = $1
		FROM unnest($2::bigint[], $3::text[], $4::text[]) AS k(app, task_id, reg_id)
		WHERE o.app = k.app AND o.task_id = k.task_id AND o.reg_id = k.reg_id AND o.owner = $5`,
		leaseUntil, apps, tasks, regs, owner)
	if err != nil {
		return 0, dbErr("renew sends", err)
	}
	return int(tag.RowsAffected()), nil
}

// RetryOutbox releases a send, due again at dueAt.
func (s *Store) RetryOutbox(ctx context.Context, app uint64, taskID, regID string, dueAt int64) error {
	_, err := s.pool.Exec(ctx, `UPDATE push_outbox SET attempts = attempts + 1, due_at = $1, owner = '', lease_until = 0
		WHERE app = $2 AND task_id = $3 AND reg_id = $4`, dueAt, int64(app), taskID, regID)
	return dbErr("retry send", err)
}

// SendResults returns a task's results after afterRegID.
func (s *Store) SendResults(ctx context.Context, app uint64, taskID, afterRegID string, limit int) ([]im.SendResult, error) {
	rows, err := s.pool.Query(ctx, `SELECT reg_id, account, vendor, platform, status, err_code, at FROM push_sends
		WHERE app = $1 AND task_id = $2 AND reg_id > $3 ORDER BY reg_id LIMIT $4`, int64(app), taskID, afterRegID, limit)
	if err != nil {
		return nil, dbErr("read sends", err)
	}
	defer rows.Close()
	return scanSends(rows, app, taskID)
}

// OutboxLen counts a task's queued sends.
func (s *Store) OutboxLen(ctx context.Context, app uint64, taskID string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM push_outbox WHERE app = $1 AND task_id = $2`, int64(app), taskID).Scan(&n)
	return n, dbErr("count sends", err)
}

// SendCounts counts a task's sends by vendor and ErrCode, and its queued
// sends by vendor.
func (s *Store) SendCounts(ctx context.Context, app uint64, taskID string) ([]im.SendCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT vendor, err_code, false, count(*) FROM push_sends
			WHERE app = $1 AND task_id = $2 GROUP BY vendor, err_code
		UNION ALL SELECT COALESCE(d.vendor, ''), '', true, count(*) FROM push_outbox o
			LEFT JOIN push_devices d ON d.app = o.app AND d.reg_id = o.reg_id
			WHERE o.app = $1 AND o.task_id = $2 GROUP BY d.vendor
		ORDER BY 1, 3, 2`, int64(app), taskID)
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

// queuedSendsSQL reads the target's devices, then each one's queued send
// by the outbox key.
const queuedSendsSQL = `SELECT o.reg_id, d.vendor, d.platform, o.attempts, o.due_at, o.lease_until
	FROM push_devices d JOIN push_outbox o ON o.app = d.app AND o.task_id = $3 AND o.reg_id = d.reg_id
	WHERE d.app = $1 AND d.target = $2 ORDER BY o.reg_id`

// QueuedSends returns a task's queued sends to the devices of target.
func (s *Store) QueuedSends(ctx context.Context, app uint64, taskID string, target uint32) ([]im.QueuedSend, error) {
	rows, err := s.pool.Query(ctx, queuedSendsSQL, int64(app), int64(target), taskID)
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

// accountSendsSQL reads one recipient's results of a task (through
// push_sends_account).
const accountSendsSQL = `SELECT reg_id, account, vendor, platform, status, err_code, at FROM push_sends
	WHERE app = $1 AND task_id = $2 AND account = $3 ORDER BY reg_id`

// AccountSends returns a task's results for one recipient.
func (s *Store) AccountSends(ctx context.Context, app uint64, taskID, account string) ([]im.SendResult, error) {
	rows, err := s.pool.Query(ctx, accountSendsSQL, int64(app), taskID, account)
	if err != nil {
		return nil, dbErr("read sends", err)
	}
	defer rows.Close()
	return scanSends(rows, app, taskID)
}

// scanSends reads push_sends rows of one task (reg_id, account, vendor,
// platform, status, err_code, at).
func scanSends(rows pgx.Rows, app uint64, taskID string) ([]im.SendResult, error) {
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
	rows, err := s.pool.Query(ctx, `SELECT app, task_id, reg_id, account, vendor, platform, status, err_code, at
		FROM push_sends WHERE posted = 0 ORDER BY at LIMIT $1`, limit)
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
	return s.write(ctx, func(tx pgx.Tx) error {
		for _, r := range rs {
			if _, err := tx.Exec(ctx, `UPDATE push_sends SET posted = 1 WHERE app = $1 AND task_id = $2 AND reg_id = $3 AND at = $4`,
				int64(r.App), r.TaskID, r.RegistrationID, r.At); err != nil {
				return dbErr("mark sends posted", err)
			}
		}
		return nil
	})
}
