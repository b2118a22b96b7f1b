package postgres

import (
	"context"

	"timd/internal/im"
	"timd/internal/store/rules"

	"github.com/jackc/pgx/v5"
)

var _ im.BulkLoader = (*Store)(nil)

// BulkLoad implements im.BulkLoader (timd import) with the per-request
// paths: each account is a savepoint in the batch's one transaction in
// which it is created or updated as ImportAccounts does, then edited as
// set_attr and add_tag would; an account whose edit fails is rolled back to
// its savepoint and the others apply. Unlike the SQLite backend it has no
// separate fast path: it is for loading a PostgreSQL store beside running
// nodes, which see each batch through the change log like any other write.
func (s *Store) BulkLoad(ctx context.Context, app uint64, in []im.BulkAccount, lim im.EditLimits) ([]error, error) {
	lim = rules.EditLimits(lim)
	errs := make([]error, len(in))
	err := s.audienceWrite(ctx, app, func(tx pgx.Tx) ([]im.Change, error) {
		clear(errs)
		schema, err := readSchema(ctx, tx, app)
		if err != nil {
			return nil, err
		}
		var changes []im.Change
		for i := range in {
			sp, err := tx.Begin(ctx)
			if err != nil {
				return nil, dbErr("savepoint", err)
			}
			e := editor{ctx: ctx, tx: sp, app: app, lim: lim, schema: &schema}
			chs, editErr, err := e.bulkOne(&in[i])
			if err != nil {
				return nil, err
			}
			if editErr != nil {
				errs[i] = editErr
				err = sp.Rollback(ctx)
			} else {
				changes = append(changes, chs...)
				err = sp.Commit(ctx)
			}
			if err != nil {
				return nil, dbErr("savepoint", err)
			}
		}
		return changes, nil
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}

// bulkOne applies one account of a bulk load in e's transaction.
func (e *editor) bulkOne(a *im.BulkAccount) ([]im.Change, *im.Error, error) {
	var changes []im.Change
	r, found, err := rowByIDType(e.ctx, e.tx, e.app, a.UserID, im.AcctUserID)
	if err != nil {
		return nil, nil, err
	}
	if found {
		acct := r.Account
		if a.Nick != "" {
			acct.Nick = a.Nick
		}
		if a.FaceURL != "" {
			acct.FaceURL = a.FaceURL
		}
		if acct != r.Account {
			if _, err := e.tx.Exec(e.ctx, `UPDATE accounts SET nick = $1, face_url = $2 WHERE app = $3 AND ordinal = $4`,
				acct.Nick, acct.FaceURL, int64(e.app), int64(acct.Ordinal)); err != nil {
				return nil, nil, dbErr("update profile", err)
			}
		}
	} else {
		if changes, err = displaceDevice(e.ctx, e.tx, e.app, a.UserID, changes); err != nil {
			return nil, nil, err
		}
		acct, err := create(e.ctx, e.tx, e.app, im.Account{ID: a.UserID, Type: im.AcctUserID, Nick: a.Nick, FaceURL: a.FaceURL})
		if err != nil {
			return nil, nil, err
		}
		changes = append(changes, created(e.app, acct))
	}
	var edits []im.Edit
	if a.Attrs != (im.AttrValues{}) {
		edits = append(edits, im.Edit{Account: a.UserID, Op: im.OpSetAttrs, Attrs: a.Attrs})
	}
	if len(a.Tags) > 0 {
		edits = append(edits, im.Edit{Account: a.UserID, Op: im.OpAddTags, Tags: a.Tags})
	}
	if len(edits) == 0 {
		return changes, nil, nil
	}
	if err := e.load(edits); err != nil {
		return nil, nil, err
	}
	for i := range edits {
		ch, changed, editErr, err := e.apply(&edits[i])
		if err != nil || editErr != nil {
			return nil, editErr, err
		}
		if changed {
			changes = append(changes, ch)
		}
	}
	return changes, nil, e.flush()
}
