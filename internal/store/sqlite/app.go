package sqlite

import (
	"context"

	"timd/internal/im"
)

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
