package sqlite

import (
	"context"
	"fmt"

	"timd/internal/im"
)

// ImportAccounts creates the UserIDs that do not exist, each with the app's
// next ordinal, and updates Nick and FaceURL of those that do where the
// input's are non-empty. It returns the accounts in input order. Creating
// an account emits an im.ChangeUpsert; updating a profile changes no
// attribute or tag and emits nothing. A RegistrationID with the id of a
// new UserID is deleted first (an im.ChangeDelete): the import wins, so a
// device registered under a name before the admin imports that name can
// never stand in for the account.
func (s *Store) ImportAccounts(ctx context.Context, app uint64, in []im.AccountInput) ([]im.Account, error) {
	out := make([]im.Account, len(in))
	err := s.w.do(ctx, len(in), func(t *wtx) ([]im.Change, error) {
		// Resolve the distinct ids, both types, idChunk per statement,
		// then reserve the new accounts' ordinals in one statement, in
		// input order, and apply the inputs in order.
		type entry struct {
			user, device row
			fresh        int // 1 + the index in news of the account the batch creates
		}
		byID := make(map[string]*entry, len(in))
		ids := make([]string, 0, len(in))
		for _, ai := range in {
			if _, ok := byID[ai.UserID]; !ok {
				byID[ai.UserID] = &entry{}
				ids = append(ids, ai.UserID)
			}
		}
		err := t.rowsByIDs(app, ids, func(r row) {
			if e := byID[r.ID]; r.Type == im.AcctRegistrationID {
				e.device = r
			} else {
				e.user = r
			}
		})
		if err != nil {
			return nil, err
		}
		fresh := 0
		for _, e := range byID {
			if e.user.key == 0 { // keys start at 1: no UserID of this id
				fresh++
			}
		}
		var next uint32
		if fresh > 0 {
			var err error
			if next, err = t.reserve(app, fresh); err != nil {
				return nil, err
			}
		}
		var changes []im.Change
		var news []im.Account
		for i, ai := range in {
			e := byID[ai.UserID]
			if e.fresh > 0 { // a repeat of an id the batch creates
				a := &news[e.fresh-1]
				if ai.Nick != "" {
					a.Nick = ai.Nick
				}
				if ai.FaceURL != "" {
					a.FaceURL = ai.FaceURL
				}
				out[i] = *a
				continue
			}
			if e.user.key != 0 {
				a, err := t.updateProfile(e.user, ai)
				if err != nil {
					return nil, err
				}
				out[i], e.user.Account = a, a
				continue
			}
			if e.device.key != 0 {
				ch, err := t.deleteAccount(app, e.device)
				if err != nil {
					return nil, err
				}
				changes = append(changes, ch)
			}
			a := im.Account{ID: ai.UserID, Type: im.AcctUserID, Nick: ai.Nick, FaceURL: ai.FaceURL, Ordinal: next}
			next++
			news = append(news, a)
			e.fresh, out[i] = len(news), a
			changes = append(changes, created(app, a))
		}
		// The new accounts, as the batch leaves them, many per statement.
		return changes, t.insertUsers(app, news)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// displaceDevice deletes the RegistrationID id, if there is one, and
// appends its im.ChangeDelete to changes.
func (t *wtx) displaceDevice(app uint64, id string, changes []im.Change) ([]im.Change, error) {
	r, found, err := t.rowByIDType(app, id, im.AcctRegistrationID)
	if err != nil || !found {
		return changes, err
	}
	ch, err := t.deleteAccount(app, r)
	if err != nil {
		return changes, err
	}
	return append(changes, ch), nil
}

// deleteAccount deletes r with its attributes and tags, releasing the tags
// in the app's registry, and returns its im.ChangeDelete.
func (t *wtx) deleteAccount(app uint64, r row) (im.Change, error) {
	if err := t.remove(r); err != nil {
		return im.Change{}, err
	}
	if r.Type == im.AcctRegistrationID { // its vendor side and credential go with it
		if _, err := t.execSQL(`DELETE FROM push_devices WHERE app = ? AND reg_id = ?`, int64(app), r.ID); err != nil {
			return im.Change{}, dbErr("delete push device", err)
		}
	}
	if err := t.releaseTags(app, r.st.tags); err != nil {
		return im.Change{}, err
	}
	return im.Change{App: app, Op: im.ChangeDelete, ID: r.ID, Type: r.Type, Ordinal: r.Ordinal,
		OldAttrs: r.st.attrs, OldTags: r.st.tags}, nil
}

func (t *wtx) updateProfile(r row, in im.AccountInput) (im.Account, error) {
	a := r.Account
	if in.Nick != "" {
		a.Nick = in.Nick
	}
	if in.FaceURL != "" {
		a.FaceURL = in.FaceURL
	}
	if a == r.Account {
		return a, nil
	}
	_, err := t.setProfile.Exec(a.Nick, a.FaceURL, r.key)
	return a, dbErr("update profile", err)
}

// created is the change that introduces a new account.
func created(app uint64, a im.Account) im.Change {
	return im.Change{App: app, Op: im.ChangeUpsert, ID: a.ID, Type: a.Type, Ordinal: a.Ordinal, Owner: a.Owner}
}

// DeleteAccounts deletes UserIDs with their attributes and tags, and the
// RegistrationIDs they own, releasing their tags in the app's tag
// registry. It reports, per id, whether the UserID existed, and emits an
// im.ChangeDelete for each deleted account. The deleted accounts'
// ordinals are never reused.
func (s *Store) DeleteAccounts(ctx context.Context, app uint64, ids []string) ([]bool, error) {
	existed := make([]bool, len(ids))
	err := s.w.do(ctx, len(ids), func(t *wtx) ([]im.Change, error) {
		var changes []im.Change
		for i, id := range ids {
			r, found, err := t.rowByIDType(app, id, im.AcctUserID)
			if err != nil {
				return nil, err
			}
			if !found {
				continue
			}
			ch, err := t.deleteAccount(app, r)
			if err != nil {
				return nil, err
			}
			existed[i] = true
			changes = append(changes, ch)
			if changes, err = t.deleteDevicesOf(app, id, changes); err != nil {
				return nil, err
			}
		}
		return changes, nil
	})
	if err != nil {
		return nil, err
	}
	return existed, nil
}

// deleteDevicesOf deletes the RegistrationIDs owner owns and appends their
// changes.
func (t *wtx) deleteDevicesOf(app uint64, owner string, changes []im.Change) ([]im.Change, error) {
	ids, err := t.devicesOf(app, owner)
	if err != nil {
		return changes, err
	}
	for _, id := range ids {
		if changes, err = t.displaceDevice(app, id, changes); err != nil {
			return changes, err
		}
	}
	return changes, nil
}

// devicesOf returns the RegistrationIDs owner owns, oldest first.
func (t *wtx) devicesOf(app uint64, owner string) ([]string, error) {
	rows, err := t.ownerDevices.Query(int64(app), owner)
	if err != nil {
		return nil, dbErr("read devices", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, dbErr("read devices", err)
		}
		ids = append(ids, id)
	}
	return ids, dbErr("read devices", rows.Err())
}

// Kick records that the UserID's UserSigs issued at or before at are
// invalid; KickedAt never moves backwards. It returns im.ErrNotFound for an
// unknown UserID.
func (s *Store) Kick(ctx context.Context, app uint64, id string, at int64) error {
	return s.w.do(ctx, 1, func(t *wtx) ([]im.Change, error) {
		res, err := t.kick.Exec(at, int64(app), id)
		if err != nil {
			return nil, dbErr("kick", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, dbErr("kick", err)
		} else if n == 0 {
			return nil, fmt.Errorf("kick %q: %w", id, im.ErrNotFound)
		}
		return nil, nil
	})
}

// RegisterDevice creates the RegistrationID account (emitting an
// im.ChangeUpsert that names its owner) or updates its Platform and Token,
// and returns it. It refuses, with an error wrapping im.ErrExists, a
// RegistrationID that is a UserID or a device of another owner, and, with
// one wrapping im.ErrTooMany, a new device of an owner who already has
// lim.PerOwner. Check and write share one transaction, so concurrent
// registrations cannot exceed the limit.
func (s *Store) RegisterDevice(ctx context.Context, app uint64, d im.Device, lim im.DeviceLimits) (im.Account, error) {
	var out im.Account
	err := s.w.do(ctx, 1, func(t *wtx) ([]im.Change, error) {
		if _, isUser, err := t.rowByIDType(app, d.RegistrationID, im.AcctUserID); err != nil {
			return nil, err
		} else if isUser {
			return nil, fmt.Errorf("RegistrationID %q is a UserID: %w", d.RegistrationID, im.ErrExists)
		}
		r, found, err := t.rowByIDType(app, d.RegistrationID, im.AcctRegistrationID)
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
			_, err := t.setDevice.Exec(out.Owner, out.Platform, out.Token, r.key)
			return nil, dbErr("update device", err)
		}
		if lim.PerOwner > 0 && d.Owner != "" {
			ids, err := t.devicesOf(app, d.Owner)
			if err != nil {
				return nil, err
			}
			if len(ids) >= lim.PerOwner {
				return nil, fmt.Errorf("%s already has %d devices: %w", d.Owner, len(ids), im.ErrTooMany)
			}
		}
		out, err = t.create(app, im.Account{ID: d.RegistrationID, Type: im.AcctRegistrationID,
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

// repairCollisions deletes every RegistrationID that shares its string
// with a UserID of its app, as an import does now. Stores written before
// imports displaced devices may hold such pairs, and there the device
// stood in for the account. It returns how many devices it deleted.
func (s *Store) repairCollisions(ctx context.Context) (int, error) {
	// The partial index holds only the devices: without it this was a scan
	// of every account at every start (20 s at 10M under load).
	rows, err := s.rdb.QueryContext(ctx, `SELECT d.app, d.id FROM accounts d INDEXED BY accounts_device_owner
		WHERE d.type = 1 AND EXISTS (SELECT 1 FROM accounts u WHERE u.app = d.app AND u.id = d.id AND u.type = 0)`)
	if err != nil {
		return 0, dbErr("find colliding devices", err)
	}
	type dev struct {
		app uint64
		id  string
	}
	var devs []dev
	for rows.Next() {
		var d dev
		var app int64
		if err := rows.Scan(&app, &d.id); err != nil {
			rows.Close()
			return 0, dbErr("find colliding devices", err)
		}
		d.app = uint64(app)
		devs = append(devs, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(devs) == 0 {
		return 0, dbErr("find colliding devices", err)
	}
	err = s.w.do(ctx, len(devs), func(t *wtx) ([]im.Change, error) {
		var changes []im.Change
		for _, d := range devs {
			var err error
			if changes, err = t.displaceDevice(d.app, d.id, changes); err != nil {
				return nil, err
			}
		}
		return changes, nil
	})
	if err != nil {
		return 0, err
	}
	return len(devs), nil
}
