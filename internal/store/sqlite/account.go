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
// attribute or tag and emits nothing.
func (s *Store) ImportAccounts(ctx context.Context, app uint64, in []im.AccountInput) ([]im.Account, error) {
	out := make([]im.Account, len(in))
	err := s.w.do(ctx, len(in), func(t *wtx) ([]im.Change, error) {
		var changes []im.Change
		for i, ai := range in {
			r, found, err := t.rowByIDType(app, ai.UserID, im.AcctUserID)
			if err != nil {
				return nil, err
			}
			if found {
				if out[i], err = t.updateProfile(r, ai); err != nil {
					return nil, err
				}
				continue
			}
			a := im.Account{ID: ai.UserID, Type: im.AcctUserID, Nick: ai.Nick, FaceURL: ai.FaceURL}
			if out[i], err = t.create(app, a); err != nil {
				return nil, err
			}
			changes = append(changes, created(app, out[i]))
		}
		return changes, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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
	return im.Change{App: app, Op: im.ChangeUpsert, ID: a.ID, Type: a.Type, Ordinal: a.Ordinal}
}

// DeleteAccounts deletes UserIDs with their attributes and tags, releasing
// their tags in the app's tag registry. It reports, per id, whether it
// existed, and emits an im.ChangeDelete for each deleted account. The
// deleted accounts' ordinals are never reused.
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
			if err := t.remove(r); err != nil {
				return nil, err
			}
			if err := t.releaseTags(app, r.st.tags); err != nil {
				return nil, err
			}
			existed[i] = true
			changes = append(changes, im.Change{App: app, Op: im.ChangeDelete, ID: r.ID,
				Type: r.Type, Ordinal: r.Ordinal, OldAttrs: r.st.attrs, OldTags: r.st.tags})
		}
		return changes, nil
	})
	if err != nil {
		return nil, err
	}
	return existed, nil
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
// im.ChangeUpsert) or updates its Owner, Platform and Token, and returns it.
func (s *Store) RegisterDevice(ctx context.Context, app uint64, d im.Device) (im.Account, error) {
	var out im.Account
	err := s.w.do(ctx, 1, func(t *wtx) ([]im.Change, error) {
		r, found, err := t.rowByIDType(app, d.RegistrationID, im.AcctRegistrationID)
		if err != nil {
			return nil, err
		}
		if found {
			out = r.Account
			out.Owner, out.Platform, out.Token = d.Owner, d.Platform, d.Token
			if out == r.Account {
				return nil, nil
			}
			_, err := t.setDevice.Exec(out.Owner, out.Platform, out.Token, r.key)
			return nil, dbErr("update device", err)
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
