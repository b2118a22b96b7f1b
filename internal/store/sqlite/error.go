package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"timd/internal/im"

	"modernc.org/sqlite"
)

// SQLite result codes dbErr distinguishes.
const (
	sqliteBusy             = 5
	sqliteConstraintPK     = 1555
	sqliteConstraintUnique = 2067
)

// dbErr translates a driver error at the store's boundary: no rows becomes
// im.ErrNotFound, a uniqueness violation im.ErrExists, context errors stay
// themselves, and anything else an opaque error that names op and keeps the
// driver's message but not its type.
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return im.ErrNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("sqlite %s: %w", op, err)
	case errors.Is(err, ErrClosed), errors.Is(err, im.ErrNotFound), errors.Is(err, im.ErrExists):
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch {
		case se.Code() == sqliteConstraintUnique, se.Code() == sqliteConstraintPK:
			return fmt.Errorf("sqlite %s: %v: %w", op, se.Error(), im.ErrExists)
		case se.Code()&0xff == sqliteBusy:
			return fmt.Errorf("sqlite %s: database busy: %v", op, se.Error())
		}
		return fmt.Errorf("sqlite %s: %v", op, se.Error())
	}
	return fmt.Errorf("sqlite %s: %v", op, err)
}
