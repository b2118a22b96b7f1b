package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"timd/internal/im"
)

// AppDir is the app directory of a store, opened without the rest of the
// store: `timd app` uses it on a store that a running server may hold
// open. It reads and writes only the apps table, each call its own short
// transaction (SQLite's locks order it with the server's writes); it never
// touches accounts, the account log or the fold, which only the server's
// writer may. A running server notices its changes within
// service.AppRefresh.
type AppDir struct {
	db *sql.DB
}

var _ im.AppStore = (*AppDir)(nil)

// OpenAppDir opens the app directory of the store in dir, creating the
// store (directory, file and schema) when there is none, so that apps can
// be added before the first start.
func OpenAppDir(ctx context.Context, dir string) (*AppDir, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: create store directory: %w", err)
	}
	db, err := openDB(filepath.Join(dir, FileName), false, 1, 2<<20, false) // a small page cache: it reads one table
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, dbErr("connect", err)
	}
	err = migrate(ctx, conn, slog.New(slog.DiscardHandler))
	conn.Close()
	if err != nil {
		db.Close()
		return nil, err
	}
	return &AppDir{db: db}, nil
}

// Close closes the database.
func (d *AppDir) Close() error { return dbErr("close", d.db.Close()) }

// PutApp creates the app or replaces every field of an existing one.
func (d *AppDir) PutApp(ctx context.Context, app im.App) error {
	admins, err := encodeJSON(app.Admins)
	if err != nil {
		return err
	}
	_, err = d.db.ExecContext(ctx, appPutSQL, int64(app.SDKAppID), app.SecretKey, admins, app.CallbackURL, app.CreatedAt)
	return dbErr("put app", err)
}

// App returns the app, or im.ErrNotFound.
func (d *AppDir) App(ctx context.Context, sdkappid uint64) (im.App, error) {
	app, err := scanApp(d.db.QueryRowContext(ctx, `SELECT `+appColumns+` FROM apps WHERE sdkappid = ?`, int64(sdkappid)))
	if errors.Is(err, sql.ErrNoRows) {
		return im.App{}, fmt.Errorf("app %d: %w", sdkappid, im.ErrNotFound)
	}
	return app, dbErr("read app", err)
}

// Apps returns every app ordered by SDKAppID.
func (d *AppDir) Apps(ctx context.Context) ([]im.App, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+appColumns+` FROM apps ORDER BY sdkappid`)
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
	return apps, dbErr("read apps", rows.Err())
}

// DeleteApp removes the app record, or returns im.ErrNotFound.
func (d *AppDir) DeleteApp(ctx context.Context, sdkappid uint64) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM apps WHERE sdkappid = ?`, int64(sdkappid))
	if err != nil {
		return dbErr("delete app", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return dbErr("delete app", err)
	} else if n == 0 {
		return fmt.Errorf("app %d: %w", sdkappid, im.ErrNotFound)
	}
	return nil
}
