package service

import (
	"context"
	"errors"
	"time"

	"timd/internal/im"
)

// Account request limits (docs/api.md, "Accounts").
const (
	MaxImportBatch = 100
	MaxDeleteBatch = 100
	MaxCheckBatch  = 100
	MaxOnlineBatch = 500
)

// Presence is the registry of live client connections; nil means nobody
// is online.
type Presence interface {
	// Online returns, for each id, the platforms it is connected from.
	Online(app uint64, ids []string) map[string][]string
	// Kick closes every live connection of the UserID.
	Kick(app uint64, id string)
}

// Accounts implements the account system (v4/im_open_login_svc and
// v4/openim/query_online_status).
type Accounts struct {
	store    im.AccountStore
	auth     *Auth
	presence Presence
	devices  im.DeviceStore
	now      func() time.Time
}

// SetDevices installs the vendor devices, for PushOnline (nil: none).
func (s *Accounts) SetDevices(d im.DeviceStore) { s.devices = d }

// NewAccounts returns the account service. presence may be nil.
func NewAccounts(store im.AccountStore, auth *Auth, presence Presence) *Accounts {
	return &Accounts{store: store, auth: auth, presence: presence, now: time.Now}
}

// SetPresence installs the live-connection registry.
func (s *Accounts) SetPresence(p Presence) { s.presence = p }

// Import imports one account. Errors: 70402 for a bad UserID.
func (s *Accounts) Import(ctx context.Context, app uint64, in im.AccountInput) error {
	if err := im.ValidUserID(in.UserID); err != nil {
		return im.Errorf(im.CodeAccountBadParam, "%v", err)
	}
	_, err := s.store.ImportAccounts(ctx, app, []im.AccountInput{in})
	return err
}

// ImportMany imports up to 100 accounts and returns the UserIDs that failed
// validation. Errors: 70402 for an empty list or more than 100.
func (s *Accounts) ImportMany(ctx context.Context, app uint64, in []im.AccountInput) ([]string, error) {
	if len(in) == 0 || len(in) > MaxImportBatch {
		return nil, im.Errorf(im.CodeAccountBadParam, "import 1 to %d accounts, got %d", MaxImportBatch, len(in))
	}
	var fail []string
	ok := make([]im.AccountInput, 0, len(in))
	for _, a := range in {
		if im.ValidUserID(a.UserID) != nil {
			fail = append(fail, a.UserID)
			continue
		}
		ok = append(ok, a)
	}
	if len(ok) > 0 {
		if _, err := s.store.ImportAccounts(ctx, app, ok); err != nil {
			return nil, err
		}
	}
	return fail, nil
}

// Delete deletes accounts and reports per UserID whether it existed.
// Errors: 70402 for an empty list or more than 100.
func (s *Accounts) Delete(ctx context.Context, app uint64, ids []string) ([]bool, error) {
	if len(ids) == 0 || len(ids) > MaxDeleteBatch {
		return nil, im.Errorf(im.CodeAccountBadParam, "delete 1 to %d accounts, got %d", MaxDeleteBatch, len(ids))
	}
	existed, err := s.store.DeleteAccounts(ctx, app, ids)
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		s.auth.noteKick(app, id, 0)
		if existed[i] && s.presence != nil {
			s.presence.Kick(app, id)
		}
	}
	return existed, nil
}

// Check reports per UserID whether it is imported. Errors: 70402 for an
// empty list or more than 100.
func (s *Accounts) Check(ctx context.Context, app uint64, ids []string) ([]bool, error) {
	if len(ids) == 0 || len(ids) > MaxCheckBatch {
		return nil, im.Errorf(im.CodeAccountBadParam, "check 1 to %d accounts, got %d", MaxCheckBatch, len(ids))
	}
	found, err := s.userIDs(ctx, app, ids)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(ids))
	for i, id := range ids {
		_, out[i] = found[id]
	}
	return out, nil
}

// Kick invalidates every UserSig of id issued so far. Errors: 70402 for a
// bad UserID, 70107 for an unknown one.
func (s *Accounts) Kick(ctx context.Context, app uint64, id string) error {
	if err := im.ValidUserID(id); err != nil {
		return im.Errorf(im.CodeAccountBadParam, "%v", err)
	}
	at := s.auth.kickTime(app, id, s.now().Unix())
	if err := s.store.Kick(ctx, app, id, at); err != nil {
		if errors.Is(err, im.ErrNotFound) {
			return im.Errorf(im.CodeAccountNotFound, "account %s was never imported", id)
		}
		return err
	}
	s.auth.noteKick(app, id, at)
	if s.presence != nil {
		s.presence.Kick(app, id)
	}
	return nil
}

// OnlineStatus is one account's presence.
type OnlineStatus struct {
	ID        string
	Found     bool
	Platforms []string // of live connections
	// PushPlatforms are the platforms of the account's devices that a
	// vendor can reach (PushOnline without a live connection).
	PushPlatforms []string
}

// Online reports presence for up to 500 accounts. Errors: 70402 for an
// empty list or more than 500.
func (s *Accounts) Online(ctx context.Context, app uint64, ids []string) ([]OnlineStatus, error) {
	if len(ids) == 0 || len(ids) > MaxOnlineBatch {
		return nil, im.Errorf(im.CodeAccountBadParam, "query 1 to %d accounts, got %d", MaxOnlineBatch, len(ids))
	}
	found, err := s.userIDs(ctx, app, ids)
	if err != nil {
		return nil, err
	}
	var live map[string][]string
	if s.presence != nil {
		live = s.presence.Online(app, ids)
	}
	push, err := s.pushPlatforms(ctx, app, found)
	if err != nil {
		return nil, err
	}
	out := make([]OnlineStatus, len(ids))
	for i, id := range ids {
		a, ok := found[id]
		out[i] = OnlineStatus{ID: id, Found: ok, Platforms: live[id]}
		if ok {
			out[i].PushPlatforms = push[a.Ordinal]
		}
	}
	return out, nil
}

// pushPlatforms returns, per account ordinal, the platforms of its
// vendor-reachable devices.
func (s *Accounts) pushPlatforms(ctx context.Context, app uint64, accts map[string]im.Account) (map[uint32][]string, error) {
	if s.devices == nil || len(accts) == 0 {
		return nil, nil
	}
	targets := make([]uint32, 0, len(accts))
	for _, a := range accts {
		targets = append(targets, a.Ordinal)
	}
	devs, err := s.devices.PushDevicesOf(ctx, app, targets)
	if err != nil {
		return nil, err
	}
	out := map[uint32][]string{}
	for _, d := range devs {
		if d.Reachable() {
			out[d.Target] = append(out[d.Target], d.Platform)
		}
	}
	return out, nil
}

// userIDs returns the UserID accounts among ids.
func (s *Accounts) userIDs(ctx context.Context, app uint64, ids []string) (map[string]im.Account, error) {
	accts, err := s.store.Accounts(ctx, app, ids)
	if err != nil {
		return nil, err
	}
	for id, a := range accts {
		if a.Type != im.AcctUserID {
			delete(accts, id)
		}
	}
	return accts, nil
}
