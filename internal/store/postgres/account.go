package postgres

import (
	"context"
	"fmt"

	"timd/internal/im"

	"github.com/jackc/pgx/v5"
)

// acctColumns are the columns of an account row, read by scanRow.
const acctColumns = `ordinal, id, type, nick, face_url, kicked_at, owner, platform, token, attrs, tags`

// row is one account with its audience data.
type row struct {
	im.Account
	attrs im.AttrValues
	tags  []string
}

func scanRow(sc scanner) (row, error) {
	var r row
	var ord int64
	var typ int16
	var attrs []string
	err := sc.Scan(&ord, &r.ID, &typ, &r.Nick, &r.FaceURL, &r.KickedAt, &r.Owner, &r.Platform, &r.Token,
		&attrs, &r.tags)
	r.Ordinal, r.Type = uint32(ord), im.AcctType(typ)
	copy(r.attrs[:], attrs)
	if len(r.tags) == 0 {
		r.tags = nil
	}
	return r, err
}

// encodeAttrs trims trailing empty slots.
func encodeAttrs(a im.AttrValues) []string {
	n := len(a)
	for n > 0 && a[n-1] == "" {
		n--
	}
	return append([]string{}, a[:n]...)
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// rowByIDType reads the account (app, id, typ) under a row lock.
func rowByIDType(ctx context.Context, tx pgx.Tx, app uint64, id string, typ im.AcctType) (row, bool, error) {
	r, err := scanRow(tx.QueryRow(ctx, `SELECT `+acctColumns+` FROM accounts
		WHERE app = $1 AND id = $2 AND type = $3 FOR UPDATE`, int64(app), id, int16(typ)))
	if err == pgx.ErrNoRows {
		return r, false, nil
	}
	if err != nil {
		return r, false, dbErr("read account", err)
	}
	return r, true, nil
}

// resolve finds id as a RegistrationID, then as a UserID.
func resolve(ctx context.Context, tx pgx.Tx, app uint64, id string) (row, bool, error) {
	r, ok, err := rowByIDType(ctx, tx, app, id, im.AcctRegistrationID)
	if err != nil || ok {
		return r, ok, err
	}
	return rowByIDType(ctx, tx, app, id, im.AcctUserID)
}

// create inserts a with the app's next ordinal.
func create(ctx context.Context, tx pgx.Tx, app uint64, a im.Account) (im.Account, error) {
	var ord int64
	if err := tx.QueryRow(ctx, `UPDATE app_counters SET next_ordinal = next_ordinal + 1 WHERE app = $1
		RETURNING next_ordinal - 1`, int64(app)).Scan(&ord); err != nil {
		return a, dbErr("next ordinal", err)
	}
	if ord > 1<<32-1 {
		return a, fmt.Errorf("app %d has used every ordinal: %w", app, im.ErrTooMany)
	}
	a.Ordinal = uint32(ord)
	_, err := tx.Exec(ctx, `INSERT INTO accounts (app, ordinal, id, type, nick, face_url, owner, platform, token)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, int64(app), ord, a.ID, int16(a.Type), a.Nick, a.FaceURL,
		a.Owner, a.Platform, a.Token)
	return a, dbErr("insert account", err)
}

// deleteAccount deletes r and releases its tags.
func deleteAccount(ctx context.Context, tx pgx.Tx, app uint64, r row) (im.Change, error) {
	if _, err := tx.Exec(ctx, `DELETE FROM accounts WHERE app = $1 AND ordinal = $2`, int64(app), int64(r.Ordinal)); err != nil {
		return im.Change{}, dbErr("delete account", err)
	}
	if r.Type == im.AcctRegistrationID { // its vendor side and credential go with it
		if _, err := tx.Exec(ctx, `DELETE FROM push_devices WHERE app = $1 AND reg_id = $2`, int64(app), r.ID); err != nil {
			return im.Change{}, dbErr("delete push device", err)
		}
	}
	for _, t := range r.tags {
		if err := retag(ctx, tx, app, t, r.Type, -1); err != nil {
			return im.Change{}, err
		}
	}
	return im.Change{App: app, Op: im.ChangeDelete, ID: r.ID, Type: r.Type, Ordinal: r.Ordinal,
		Owner: r.Owner, OldAttrs: r.attrs, OldTags: r.tags}, nil
}

func created(app uint64, a im.Account) im.Change {
	return im.Change{App: app, Op: im.ChangeUpsert, ID: a.ID, Type: a.Type, Ordinal: a.Ordinal, Owner: a.Owner}
}

// displaceDevice deletes the RegistrationID id, if any.
func displaceDevice(ctx context.Context, tx pgx.Tx, app uint64, id string, changes []im.Change) ([]im.Change, error) {
	r, ok, err := rowByIDType(ctx, tx, app, id, im.AcctRegistrationID)
	if err != nil || !ok {
		return changes, err
	}
	ch, err := deleteAccount(ctx, tx, app, r)
	if err != nil {
		return changes, err
	}
	return append(changes, ch), nil
}

// ImportAccounts creates missing UserIDs and updates Nick/FaceURL of the
// others; a RegistrationID equal to a new UserID is deleted.
func (s *Store) ImportAccounts(ctx context.Context, app uint64, in []im.AccountInput) ([]im.Account, error) {
	out := make([]im.Account, len(in))
	err := s.audienceWrite(ctx, app, func(tx pgx.Tx) ([]im.Change, error) {
		var changes []im.Change
		for i, ai := range in {
			r, found, err := rowByIDType(ctx, tx, app, ai.UserID, im.AcctUserID)
			if err != nil {
				return nil, err
			}
			if found {
				a := r.Account
				if ai.Nick != "" {
					a.Nick = ai.Nick
				}
				if ai.FaceURL != "" {
					a.FaceURL = ai.FaceURL
				}
				if a != r.Account {
					if _, err := tx.Exec(ctx, `UPDATE accounts SET nick = $1, face_url = $2
						WHERE app = $3 AND ordinal = $4`, a.Nick, a.FaceURL, int64(app), int64(a.Ordinal)); err != nil {
						return nil, dbErr("update profile", err)
					}
				}
				out[i] = a
				continue
			}
			if changes, err = displaceDevice(ctx, tx, app, ai.UserID, changes); err != nil {
				return nil, err
			}
			a, err := create(ctx, tx, app, im.Account{ID: ai.UserID, Type: im.AcctUserID, Nick: ai.Nick, FaceURL: ai.FaceURL})
			if err != nil {
				return nil, err
			}
			out[i] = a
			changes = append(changes, created(app, a))
		}
		return changes, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// devicesOf returns the RegistrationIDs owner owns.
func devicesOf(ctx context.Context, tx pgx.Tx, app uint64, owner string) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM accounts WHERE app = $1 AND owner = $2 AND type = 1 ORDER BY ordinal`,
		int64(app), owner)
	if err != nil {
		return nil, dbErr("read devices", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, dbErr("read devices", err)
}

// DeleteAccounts deletes UserIDs with their devices.
func (s *Store) DeleteAccounts(ctx context.Context, app uint64, ids []string) ([]bool, error) {
	existed := make([]bool, len(ids))
	err := s.audienceWrite(ctx, app, func(tx pgx.Tx) ([]im.Change, error) {
		clear(existed)
		var changes []im.Change
		for i, id := range ids {
			r, found, err := rowByIDType(ctx, tx, app, id, im.AcctUserID)
			if err != nil {
				return nil, err
			}
			if !found {
				continue
			}
			ch, err := deleteAccount(ctx, tx, app, r)
			if err != nil {
				return nil, err
			}
			existed[i] = true
			changes = append(changes, ch)
			devs, err := devicesOf(ctx, tx, app, id)
			if err != nil {
				return nil, err
			}
			for _, d := range devs {
				if changes, err = displaceDevice(ctx, tx, app, d, changes); err != nil {
					return nil, err
				}
			}
		}
		return changes, nil
	})
	if err != nil {
		return nil, err
	}
	return existed, nil
}

// Accounts resolves ids, RegistrationIDs first.
func (s *Store) Accounts(ctx context.Context, app uint64, ids []string) (map[string]im.Account, error) {
	ps, err := s.rows(ctx, app, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]im.Account, len(ps))
	for id, r := range ps {
		out[id] = r.Account
	}
	return out, nil
}

// rows reads the accounts among ids, keyed by the id asked for.
func (s *Store) rows(ctx context.Context, app uint64, ids []string) (map[string]row, error) {
	out := make(map[string]row, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+acctColumns+` FROM accounts WHERE app = $1 AND id = ANY($2)`,
		int64(app), ids)
	if err != nil {
		return nil, dbErr("read accounts", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, dbErr("read accounts", err)
		}
		if prev, ok := out[r.ID]; ok && prev.Type == im.AcctRegistrationID {
			continue
		}
		out[r.ID] = r
	}
	return out, dbErr("read accounts", rows.Err())
}

// Kick raises the UserID's KickedAt to at (never lowers it).
func (s *Store) Kick(ctx context.Context, app uint64, id string, at int64) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE accounts SET kicked_at = GREATEST(kicked_at, $1)
			WHERE app = $2 AND id = $3 AND type = 0`, at, int64(app), id)
		if err != nil {
			return dbErr("kick", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("kick %q: %w", id, im.ErrNotFound)
		}
		return nil
	})
}

// RegisterDevice creates a RegistrationID or updates its Platform and Token.
func (s *Store) RegisterDevice(ctx context.Context, app uint64, d im.Device, lim im.DeviceLimits) (im.Account, error) {
	var out im.Account
	err := s.audienceWrite(ctx, app, func(tx pgx.Tx) ([]im.Change, error) {
		if _, isUser, err := rowByIDType(ctx, tx, app, d.RegistrationID, im.AcctUserID); err != nil {
			return nil, err
		} else if isUser {
			return nil, fmt.Errorf("RegistrationID %q is a UserID: %w", d.RegistrationID, im.ErrExists)
		}
		r, found, err := rowByIDType(ctx, tx, app, d.RegistrationID, im.AcctRegistrationID)
		if err != nil {
			return nil, err
		}
		if found {
			if r.Owner != d.Owner {
				return nil, fmt.Errorf("RegistrationID %q belongs to another user: %w", d.RegistrationID, im.ErrExists)
			}
			out = r.Account
			out.Platform, out.Token = d.Platform, d.Token
			if out == r.Account {
				return nil, nil
			}
			_, err := tx.Exec(ctx, `UPDATE accounts SET platform = $1, token = $2 WHERE app = $3 AND ordinal = $4`,
				out.Platform, out.Token, int64(app), int64(out.Ordinal))
			return nil, dbErr("update device", err)
		}
		if lim.PerOwner > 0 && d.Owner != "" {
			ids, err := devicesOf(ctx, tx, app, d.Owner)
			if err != nil {
				return nil, err
			}
			if len(ids) >= lim.PerOwner {
				return nil, fmt.Errorf("%s already has %d devices: %w", d.Owner, len(ids), im.ErrTooMany)
			}
		}
		out, err = create(ctx, tx, app, im.Account{ID: d.RegistrationID, Type: im.AcctRegistrationID,
			Owner: d.Owner, Platform: d.Platform, Token: d.Token})
		if err != nil {
			return nil, err
		}
		return []im.Change{created(app, out)}, nil
	})
	if err != nil {
		return im.Account{}, err
	}
	return out, nil
}
