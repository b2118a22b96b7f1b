// Package postgres is an im.Store backend on PostgreSQL, built on pgx. Several
// timd processes may open one database: every write is one transaction,
// per-app counters are rows locked in that transaction (so task Seqs follow
// commit order and ordinals are never handed out twice), and
// acknowledgements are one row each, so no writer overwrites another's.
//
// Status: the backend implements every im.Store method and passes the
// storetest conformance suite with its two-handle cases (postgres_test.go,
// with TIMD_TEST_POSTGRES set). `--store postgres://…` selects it and
// `timd migrate` runs its migrations (Migrate). The ChangeSink sees only
// this process's writes; each node's service.IndexTail follows the change
// log (im.ChangeLog) for everyone's, which relies on this process's
// changes reaching the sink in commit order, one transaction's before the
// next one commits (sinkMu, held across the transaction). SaveFanout is
// fenced by the lease owner (im.ErrLeaseLost). The push interval, the
// daily quota and the revoke interval are checked in the task's
// transaction (push_limits, im.TaskLimits).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"

	"timd/internal/im"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configure Open.
type Options struct {
	// Schema, when set, is the search_path of every connection: the
	// tables live there. It must already exist.
	Schema string
}

// Store is the PostgreSQL backend.
type Store struct {
	pool *pgxpool.Pool
	// sinkMu orders the change feed: a write that emits changes holds it
	// from before its transaction until its changes were applied.
	sinkMu sync.Mutex
	sink   im.ChangeSink
}

var _ im.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL), runs the
// migrations it has not yet run, and returns the store.
func Open(ctx context.Context, url string, opt Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %v", err)
	}
	if opt.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = opt.Schema
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %v", err)
	}
	s := &Store{pool: pool}
	if _, err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Migrate connects to the database at url, runs the migrations it has not
// yet run, and returns the names of those it ran (none when the schema was
// current). Open does the same; Migrate is `timd migrate`.
func Migrate(ctx context.Context, url string, opt Options) ([]string, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %v", err)
	}
	if opt.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = opt.Schema
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %v", err)
	}
	defer pool.Close()
	return (&Store{pool: pool}).migrate(ctx)
}

// migrate runs each embedded migration not yet recorded in
// schema_migrations in its own transaction. An advisory lock taken in that
// transaction makes nodes starting together run each migration once.
func (s *Store) migrate(ctx context.Context) (applied []string, err error) {
	if _, err := s.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return nil, dbErr("create schema_migrations", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	seen := map[int64]string{}
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		v, err := strconv.ParseInt(strings.SplitN(base, "_", 2)[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("postgres: migration %s: bad version", base)
		}
		// Two files with one number would run only the first (the second
		// finds its version recorded): refuse to start instead.
		if prev, ok := seen[v]; ok {
			return nil, fmt.Errorf("postgres: migrations %s and %s share version %d", prev, base, v)
		}
		seen[v] = base
		body, err := migrations.ReadFile(name)
		if err != nil {
			return nil, err
		}
		ran := false
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7467310001)`); err != nil {
				return err
			}
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, v).Scan(&done); err != nil || done {
				return err
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, v, base)
			ran = err == nil
			return err
		})
		if err != nil {
			return applied, dbErr("migration "+base, err)
		}
		if ran {
			applied = append(applied, base)
		}
	}
	return applied, nil
}

// SetChangeSink installs the receiver of committed account changes.
func (s *Store) SetChangeSink(sink im.ChangeSink) {
	s.sinkMu.Lock()
	s.sink = sink
	s.sinkMu.Unlock()
}

// Close closes the connection pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// write runs fn in one transaction and commits it. A context already done
// fails before anything is written.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// audienceWrite runs fn in one transaction after locking app's counter row,
// and passes the changes fn returns to the sink once committed, in commit
// order.
func (s *Store) audienceWrite(ctx context.Context, app uint64, fn func(tx pgx.Tx) ([]im.Change, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.sinkMu.Lock()
	defer s.sinkMu.Unlock()
	var changes []im.Change
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO app_counters (app) VALUES ($1)
			ON CONFLICT (app) DO UPDATE SET next_ordinal = app_counters.next_ordinal`, int64(app)); err != nil {
			return dbErr("lock app", err)
		}
		var err error
		if changes, err = fn(tx); err != nil {
			return err
		}
		return logChanges(ctx, tx, app, changes)
	})
	if err != nil {
		return err
	}
	if len(changes) > 0 && s.sink != nil {
		s.sink.Apply(changes)
	}
	return nil
}

// dbErr translates a driver error: no rows becomes im.ErrNotFound, a
// uniqueness violation im.ErrExists; im errors and context errors pass.
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return im.ErrNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("postgres %s: %w", op, err)
	case errors.Is(err, im.ErrNotFound), errors.Is(err, im.ErrExists), errors.Is(err, im.ErrTooMany),
		errors.Is(err, im.ErrNotPending):
		return err
	}
	if _, ok := im.AsError(err); ok {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if pe.Code == "23505" {
			return fmt.Errorf("postgres %s: %s: %w", op, pe.Message, im.ErrExists)
		}
		return fmt.Errorf("postgres %s: %s (%s)", op, pe.Message, pe.Code)
	}
	return fmt.Errorf("postgres %s: %v", op, err)
}

type scanner interface{ Scan(dest ...any) error }
