package sqlite

import (
	"context"

	"timd/internal/im"
)

var _ im.LeaseStore = (*Store)(nil)

// TakeLease implements im.LeaseStore through the writer.
func (s *Store) TakeLease(ctx context.Context, name, owner string, now, until int64) (bool, error) {
	held := false
	err := s.w.do(ctx, 1, func(w *wtx) ([]im.Change, error) {
		res, err := w.execSQL(`INSERT INTO leases (name, owner, lease_until) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
			WHERE leases.owner = excluded.owner OR leases.lease_until <= ?`, name, owner, until, now)
		if err != nil {
			return nil, dbErr("take lease", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, dbErr("take lease", err)
		}
		held = n == 1
		return nil, nil
	})
	return held, err
}
