package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"timd/internal/im"
)

// AppRefresh is how long the app directory trusts a cached app before it
// reads it again: an app removed or a key rotated by `timd app` in another
// process stops being accepted within this time.
const AppRefresh = 2 * time.Second

// Apps is a read-through cache of the app directory. An entry is re-read
// from the store once it is older than AppRefresh, so that changes made
// while the server runs (by `timd app` on the same store) take effect
// within that bound; an app gone from the store is gone from the cache.
type Apps struct {
	store    im.AppStore
	accounts im.AccountStore
	now      func() time.Time

	mu   sync.RWMutex
	apps map[uint64]cachedApp
	only map[uint64]bool // when not nil, the only apps Get answers
}

type cachedApp struct {
	app    im.App
	loaded time.Time
}

// NewApps returns an app directory backed by store. When accounts is not
// nil, Put imports each app's admins as accounts (docs/compatibility.md, "UserSig and admins": an admin is an
// ordinary account with admin rights).
func NewApps(store im.AppStore, accounts im.AccountStore) *Apps {
	return &Apps{store: store, accounts: accounts, now: time.Now, apps: map[uint64]cachedApp{}}
}

// Only makes Get refuse, as unknown (70020), every app but ids, whatever
// the store holds (serve --configured-apps-only).
func (a *Apps) Only(ids []uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.only = map[uint64]bool{}
	for _, id := range ids {
		a.only[id] = true
	}
}

// Get returns the app, or an error with code 70020 when it does not exist
// (or Only excludes it).
// The first time it reads an app, and whenever the app's admins change, it
// imports the admins as accounts (with an account store).
func (a *Apps) Get(ctx context.Context, id uint64) (im.App, error) {
	now := a.now()
	a.mu.RLock()
	c, ok := a.apps[id]
	excluded := a.only != nil && !a.only[id]
	a.mu.RUnlock()
	if excluded {
		return im.App{}, im.Errorf(im.CodeAppNotFound, "sdkappid %d does not exist", id)
	}
	if ok && now.Sub(c.loaded) < AppRefresh && !now.Before(c.loaded) {
		return c.app, nil
	}
	app, err := a.store.App(ctx, id)
	if errors.Is(err, im.ErrNotFound) {
		a.mu.Lock()
		delete(a.apps, id)
		a.mu.Unlock()
		return im.App{}, im.Errorf(im.CodeAppNotFound, "sdkappid %d does not exist", id)
	}
	if err != nil {
		return im.App{}, err
	}
	if !ok || !slices.Equal(c.app.Admins, app.Admins) {
		// First sight of the app in this process, or its admins changed
		// (by `timd app add` on the running store): make them accounts.
		if err := a.importAdmins(ctx, app); err != nil {
			return im.App{}, err
		}
	}
	a.mu.Lock()
	if len(a.apps) >= maxCachedApps {
		clear(a.apps)
	}
	a.apps[id] = cachedApp{app: app, loaded: now}
	a.mu.Unlock()
	return app, nil
}

// maxCachedApps bounds the cache; only stored apps are cached, so it is
// reached only by a store of that many apps.
const maxCachedApps = 10_000

// Put validates and stores an app, refreshes the cache, and imports the
// app's admins as accounts (when the directory has an account store).
func (a *Apps) Put(ctx context.Context, app im.App) error {
	if err := app.Validate(); err != nil {
		return err
	}
	if err := a.store.PutApp(ctx, app); err != nil {
		return err
	}
	if err := a.importAdmins(ctx, app); err != nil {
		return err
	}
	a.mu.Lock()
	a.apps[app.SDKAppID] = cachedApp{app: app, loaded: a.now()}
	a.mu.Unlock()
	return nil
}

// importAdmins makes each admin of app an imported account; an admin that
// is an account already keeps its profile.
func (a *Apps) importAdmins(ctx context.Context, app im.App) error {
	if a.accounts == nil {
		return nil
	}
	in := make([]im.AccountInput, len(app.Admins))
	for i, adm := range app.Admins {
		in[i] = im.AccountInput{UserID: adm}
	}
	if _, err := a.accounts.ImportAccounts(ctx, app.SDKAppID, in); err != nil {
		return fmt.Errorf("import the admins of app %d: %w", app.SDKAppID, err)
	}
	return nil
}

// Delete removes the app from the store and the cache; its accounts and
// pushes stay. It returns an error wrapping im.ErrNotFound for an unknown
// app.
func (a *Apps) Delete(ctx context.Context, id uint64) error {
	if err := a.store.DeleteApp(ctx, id); err != nil {
		return err
	}
	a.mu.Lock()
	delete(a.apps, id)
	a.mu.Unlock()
	return nil
}

// List returns every stored app.
func (a *Apps) List(ctx context.Context) ([]im.App, error) {
	return a.store.Apps(ctx)
}
