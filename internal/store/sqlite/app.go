package sqlite

import (
	"context"
	"fmt"

	"timd/internal/im"
)

// appPutSQL creates or replaces an app.
const appPutSQL = `INSERT INTO apps (sdkappid, secret_key, admins, callback_url, created_at)
	VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (sdkappid) DO UPDATE SET secret_key = excluded.secret_key,
		admins = excluded.admins, callback_url = excluded.callback_url,
		created_at = excluded.created_at`

// PutApp creates the app or replaces every field of an existing one.
func (s *Store) PutApp(ctx context.Context, app im.App) error {
	admins, err := encodeJSON(app.Admins)
	if err != nil {
		return err
	}
	return s.w.do(ctx, 1, func(t *wtx) ([]im.Change, error) {
		_, err := t.appPut.Exec(int64(app.SDKAppID), app.SecretKey, admins, app.CallbackURL, app.CreatedAt)
		return nil, dbErr("put app", err)
	})
}

// DeleteApp removes the app record, or returns im.ErrNotFound. Its accounts
// and pushes stay in the store.
func (s *Store) DeleteApp(ctx context.Context, sdkappid uint64) error {
	return s.w.do(ctx, 1, func(t *wtx) ([]im.Change, error) {
		res, err := t.appDelete.Exec(int64(sdkappid))
		if err != nil {
			return nil, dbErr("delete app", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, dbErr("delete app", err)
		} else if n == 0 {
			return nil, fmt.Errorf("app %d: %w", sdkappid, im.ErrNotFound)
		}
		return nil, nil
	})
}

// App returns the app with the given SDKAppID, or im.ErrNotFound.
func (s *Store) App(ctx context.Context, sdkappid uint64) (im.App, error) {
	app, err := scanApp(s.r.app.QueryRowContext(ctx, int64(sdkappid)))
	if err != nil {
		return im.App{}, dbErr("read app", err)
	}
	return app, nil
}

// Apps returns every app ordered by SDKAppID.
func (s *Store) Apps(ctx context.Context) ([]im.App, error) {
	rows, err := s.r.apps.QueryContext(ctx)
	if err != nil {
		return nil, dbErr("read apps", err)
	}
	defer rows.Close()
	var apps []im.App
	for rows.Next() {
		app, err := scanApp(rows)
		if err != nil {
			return nil, dbErr("read apps", err)
		}
		apps = append(apps, app)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("read apps", err)
	}
	return apps, nil
}

func scanApp(sc scanner) (im.App, error) {
	var app im.App
	var id int64
	var admins string
	if err := sc.Scan(&id, &app.SecretKey, &admins, &app.CallbackURL, &app.CreatedAt); err != nil {
		return app, err
	}
	app.SDKAppID = uint64(id)
	if err := decodeJSON(admins, &app.Admins); err != nil {
		return app, err
	}
	return app, nil
}
