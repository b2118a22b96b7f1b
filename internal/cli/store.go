package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"timd/internal/config"
	"timd/internal/im"
	"timd/internal/store/postgres"
	"timd/internal/store/sqlite"
)

// backend is what the subcommands use of an opened store: the complete
// store, its change log and its named leases.
type backend interface {
	im.Store
	im.ChangeLog
	im.LeaseStore
}

// openedStore is the store a subcommand works on, SQLite or PostgreSQL.
type openedStore struct {
	backend
	// snapshot is the audience index snapshot file; "" keeps none (on
	// PostgreSQL without --snapshot).
	snapshot string
	// shared says that other nodes share the store and follow its change
	// log (PostgreSQL): a snapshot never trims it, the scheduled trim does.
	shared  bool
	release func() // the SQLite directory lock; a no-op on PostgreSQL
}

// close closes the store, then releases its lock.
func (s openedStore) close() {
	s.backend.Close()
	s.release()
}

// openStore opens the store that cfg.Store names: a postgres:// URL opens
// the PostgreSQL backend (running its migrations), anything else is a
// SQLite directory, locked against `timd import` for as long as the store
// is open.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (openedStore, error) {
	if config.IsPostgres(cfg.Store) {
		if cfg.Snapshot != "" {
			if err := os.MkdirAll(filepath.Dir(cfg.Snapshot), 0o755); err != nil {
				return openedStore{}, fmt.Errorf("--snapshot: %w", err)
			}
		}
		st, err := postgres.Open(ctx, cfg.Store, postgres.Options{})
		if err != nil {
			return openedStore{}, fmt.Errorf("open store %s: %w", config.StoreName(cfg.Store), err)
		}
		return openedStore{backend: st, snapshot: cfg.Snapshot, shared: true, release: func() {}}, nil
	}
	unlock, err := sqlite.Lock(cfg.Store) // refuses a store that `timd import` is loading
	if err != nil {
		return openedStore{}, fmt.Errorf("open store: %w", err)
	}
	st, err := sqlite.OpenConfig(ctx, cfg.Store, log,
		sqlite.Config{WriterCache: int64(cfg.StoreCache), ReaderCache: int64(cfg.StoreReadCache)})
	if err != nil {
		unlock()
		return openedStore{}, fmt.Errorf("open store: %w", err)
	}
	// The directory is this process's: leases left in it are a previous
	// process's (another boot id), so its fan-outs resume at once.
	if err := st.ReleaseLeases(ctx); err != nil {
		st.Close()
		unlock()
		return openedStore{}, fmt.Errorf("open store: %w", err)
	}
	return openedStore{backend: st, snapshot: filepath.Join(cfg.Store, SnapshotFile), release: unlock}, nil
}

// The backends' contracts.
var (
	_ backend = (*sqlite.Store)(nil)
	_ backend = (*postgres.Store)(nil)
)
