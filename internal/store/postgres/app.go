package postgres

import (
	"context"
	"fmt"

	"timd/internal/im"

	"github.com/jackc/pgx/v5"
)

// PutApp creates the app or replaces every field of an existing one.
func (s *Store) PutApp(ctx context.Context, app im.App) error {
	admins := app.Admins
	if admins == nil {
		admins = []string{}
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO apps (sdkappid, secret_key, admins, callback_url, created_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sdkappid) DO UPDATE SET secret_key = excluded.secret_key,
			admins = excluded.admins, callback_url = excluded.callback_url, created_at = excluded.created_at`,
			int64(app.SDKAppID), app.SecretKey, admins, app.CallbackURL, app.CreatedAt)
		return dbErr("put app", err)
	})
}

// DeleteApp removes the app record, or returns im.ErrNotFound. Its accounts
// and pushes stay.
func (s *Store) DeleteApp(ctx context.Context, sdkappid uint64) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM apps WHERE sdkappid = $1`, int64(sdkappid))
		if err != nil {
			return dbErr("delete app", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("app %d: %w", sdkappid, im.ErrNotFound)
		}
		return nil
	})
}

const appColumns = `sdkappid, secret_key, admins, callback_url, created_at`

// App returns one app, or im.ErrNotFound.
func (s *Store) App(ctx context.Context, sdkappid uint64) (im.App, error) {
	a, err := scanApp(s.pool.QueryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE sdkappid = $1`, int64(sdkappid)))
	return a, dbErr("read app", err)
}

// Apps returns every app ordered by SDKAppID.
func (s *Store) Apps(ctx context.Context) ([]im.App, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+appColumns+` FROM apps ORDER BY sdkappid`)
	if err != nil {
		return nil, dbErr("read apps", err)
	}
	defer rows.Close()
	var out []im.App
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return nil, dbErr("read apps", err)
		}
		out = append(out, a)
	}
	return out, dbErr("read apps", rows.Err())
}

func scanApp(sc scanner) (im.App, error) {
	var a im.App
	var id int64
	err := sc.Scan(&id, &a.SecretKey, &a.Admins, &a.CallbackURL, &a.CreatedAt)
	a.SDKAppID = uint64(id)
	return a, err
}
