package service

import (
	"context"
	"errors"
	"sync"

	"timd/internal/im"
)

// Apps is a read-through cache of the app directory. Apps change only at
// start-up (configuration) in this version, so entries never go stale on a
// single node.
type Apps struct {
	store im.AppStore
	mu    sync.RWMutex
	apps  map[uint64]im.App
}

// NewApps returns an app directory backed by store.
func NewApps(store im.AppStore) *Apps {
	return &Apps{store: store, apps: map[uint64]im.App{}}
}

// Get returns the app, or an error with code 70020 when it does not exist.
func (a *Apps) Get(ctx context.Context, id uint64) (im.App, error) {
	a.mu.RLock()
	app, ok := a.apps[id]
	a.mu.RUnlock()
	if ok {
		return app, nil
	}
	app, err := a.store.App(ctx, id)
	if errors.Is(err, im.ErrNotFound) {
		return im.App{}, im.Errorf(im.CodeAppNotFound, "sdkappid %d does not exist", id)
	}
	if err != nil {
		return im.App{}, err
	}
	a.mu.Lock()
	a.apps[id] = app
	a.mu.Unlock()
	return app, nil
}

// Put stores an app and refreshes the cache.
func (a *Apps) Put(ctx context.Context, app im.App) error {
	if err := app.Validate(); err != nil {
		return err
	}
	if err := a.store.PutApp(ctx, app); err != nil {
		return err
	}
	a.mu.Lock()
	a.apps[app.SDKAppID] = app
	a.mu.Unlock()
	return nil
}

// List returns every stored app.
func (a *Apps) List(ctx context.Context) ([]im.App, error) {
	return a.store.Apps(ctx)
}
