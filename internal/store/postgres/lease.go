package postgres

import (
	"context"

	"timd/internal/im"

	"github.com/jackc/pgx/v5"
)

var _ im.LeaseStore = (*Store)(nil)

// TakeLease implements im.LeaseStore with one upsert: the row is taken
// over only when it is owner's or expired, under the row lock, so of
// concurrent callers on any nodes at most one holds the name.
func (s *Store) TakeLease(ctx context.Context, name, owner string, now, until int64) (bool, error) {
	var holder string
	err := s.pool.QueryRow(ctx, `INSERT INTO leases (name, owner, lease_until) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
		WHERE leases.owner = excluded.owner OR leases.lease_until <= $4
		RETURNING owner`, name, owner, until, now).Scan(&holder)
	if err == pgx.ErrNoRows {
		return false, nil // held by another owner: the WHERE kept the row
	}
	if err != nil {
		return false, dbErr("take lease", err)
	}
	return holder == owner, nil
}
