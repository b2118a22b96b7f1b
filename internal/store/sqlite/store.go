// Package sqlite is timd's embedded store: an im.Store on one SQLite file,
// dir/timd.db, in WAL mode with synchronous=FULL, so that every write is
// fsynced before it is acknowledged and survives a crash of the process or
// of the machine.
//
// All writes go through one writer goroutine that commits concurrent
// requests together, one fsync per group (group commit, writer.go).
// Attribute and tag edits are made durable as one append-only log row per
// group and folded into the accounts table in the background (state.go,
// fold.go); reads use a separate pool of read-only connections, which WAL
// lets run beside the writer, and see edits as soon as they are
// acknowledged.
//
// To_Account resolution: an id given to Accounts, Profiles or ApplyEdits is
// looked up first among the app's RegistrationIDs (type 1), then among its
// UserIDs (type 0). ImportAccounts, DeleteAccounts and Kick address UserIDs
// only; RegisterDevice addresses RegistrationIDs only. A UserID and a
// RegistrationID never share a string: RegisterDevice refuses the id of a
// UserID, ImportAccounts deletes a RegistrationID it collides with, and
// Open repairs stores written before that rule.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"timd/internal/im"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the name of the database file inside the store's directory.
const FileName = "timd.db"

var _ im.Store = (*Store)(nil)

// Store is the SQLite implementation of im.Store. It is safe for concurrent
// use.
type Store struct {
	logger *slog.Logger
	wdb    *sql.DB // one connection, owned by the writer goroutine
	rdb    *sql.DB // read-only connections
	// sdb and settleStmt re-read accounts that raced an overlay eviction.
	sdb        *sql.DB
	settleStmt *sql.Stmt
	w          *writer
	r          readStmts
	ov         *overlay
	schemas    schemaCache
	sink       atomic.Pointer[sinkBox]

	// tdb serves the reads of stored pushes that catch-up and /v1/sync
	// make (task heads, audiences, ack sets) through t's statements: in a
	// reconnect storm every connect's authentication reads its account
	// from rdb, and catch-up must not queue behind thousands of those.
	tdb *sql.DB
	t   taskStmts

	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool // reads from memory (schemaCache) fail once set
}

type sinkBox struct{ im.ChangeSink }

// options tune a Store; tests and benchmarks change them.
type options struct {
	maxGroupJobs  int // most requests committed together; 1 disables group commit
	maxGroupEdits int // most edits committed together
	// A fold cycle starts when account_log has grown by foldLogBytes, or
	// foldMaxDirty accounts lag behind it, or the writer has been idle for
	// foldIdle. Folding rarely lets many edits of one account cost one
	// row write. While writes are waiting, a fold step runs only when
	// foldMaxDirty accounts are dirty, so the overlay (which holds the
	// dirty accounts) stays near that bound under load, and writes do not
	// wait behind folding below it.
	foldLogBytes int
	foldMaxDirty int
	foldIdle     time.Duration
	// foldChunk is the accounts written per fold transaction (one fsync):
	// a write that arrives during a step waits for it.
	foldChunk int
	// writerCache and readerCache are the SQLite page caches of the
	// writer's connection and of each read connection, in bytes.
	writerCache, readerCache int64
	// noCloseFold leaves account_log unfolded at Close, as a crash would;
	// tests use it to exercise replay.
	noCloseFold bool
	// bulk opens the store for a bulk load (Config.Bulk).
	bulk bool
}

func defaultOptions() options {
	return options{
		maxGroupJobs:  256,
		maxGroupEdits: 20000,
		foldLogBytes:  64 << 20,
		foldMaxDirty:  1 << 16,
		foldIdle:      time.Second,
		foldChunk:     500,
		writerCache:   DefaultWriterCache,
		readerCache:   DefaultReaderCache,
	}
}

// Default page cache sizes (see Config).
const (
	DefaultWriterCache = 32 << 20
	DefaultReaderCache = 8 << 20
)

// Config tunes a Store's memory. A zero field takes its default.
type Config struct {
	// WriterCache is the SQLite page cache, in bytes, of the one
	// read-write connection: the accounts pages the writer and the fold
	// touch. Default DefaultWriterCache.
	WriterCache int64
	// ReaderCache is the page cache of each read-only connection (there
	// are max(4, 2×GOMAXPROCS) of them, and 2 more for settle). Default
	// DefaultReaderCache.
	ReaderCache int64
	// Bulk opens the store for a bulk load by a process that holds it
	// alone (timd import): the writer's commits are not fsynced one by
	// one (synchronous=NORMAL in WAL mode) and the WAL is checkpointed
	// every 64 MiB instead of every 4 MiB. A killed process loses nothing
	// it committed, and the store is never corrupted; a power loss or an
	// operating-system crash may lose the last commits (not their
	// consistency) until Close, which checkpoints the WAL into the
	// database file and fsyncs it.
	Bulk bool
}

// OpenConfig is Open with the memory settings of cfg.
func OpenConfig(ctx context.Context, dir string, logger *slog.Logger, cfg Config) (*Store, error) {
	opt := defaultOptions()
	if cfg.WriterCache > 0 {
		opt.writerCache = cfg.WriterCache
	}
	if cfg.ReaderCache > 0 {
		opt.readerCache = cfg.ReaderCache
	}
	opt.bulk = cfg.Bulk
	return openRepaired(ctx, dir, logger, opt)
}

// Open opens (creating if needed) the store in dir: the directory, the
// database file dir/timd.db, and the schema, by applying the embedded
// migrations not yet recorded in schema_migrations. It then folds what a
// crash left in account_log into accounts before serving anything, and
// deletes devices that share a string with a UserID (repairCollisions).
func Open(ctx context.Context, dir string, logger *slog.Logger) (*Store, error) {
	return openRepaired(ctx, dir, logger, defaultOptions())
}

// openRepaired is open followed by repairCollisions.
func openRepaired(ctx context.Context, dir string, logger *slog.Logger, opt options) (*Store, error) {
	s, err := open(ctx, dir, logger, opt)
	if err != nil {
		return nil, err
	}
	if n, err := s.repairCollisions(ctx); err != nil {
		s.Close()
		return nil, err
	} else if n > 0 {
		s.logger.Warn("deleted devices whose RegistrationID names an imported account", "devices", n)
	}
	return s, nil
}

func open(ctx context.Context, dir string, logger *slog.Logger, opt options) (_ *Store, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: create store directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	s := &Store{logger: logger, ov: &overlay{m: map[int64]*acctState{}}}
	var conn *sql.Conn
	defer func() {
		if err == nil {
			return
		}
		s.r.close()
		s.t.close()
		if s.w != nil {
			s.w.close() // closes conn
		} else if conn != nil {
			conn.Close()
		}
		for _, db := range []*sql.DB{s.tdb, s.sdb, s.rdb, s.wdb} {
			if db != nil {
				db.Close()
			}
		}
	}()
	if s.wdb, err = openDB(path, false, 1, opt.writerCache, opt.bulk); err != nil {
		return nil, err
	}
	if conn, err = s.wdb.Conn(ctx); err != nil {
		return nil, dbErr("connect", err)
	}
	if err := migrate(ctx, conn, logger); err != nil {
		return nil, err
	}
	if n, err := replayLog(ctx, conn); err != nil {
		return nil, err
	} else if n > 0 {
		logger.Info("replayed account log", "rows", n)
	}
	if s.w, err = newWriter(ctx, conn, s, s.ov, opt); err != nil {
		return nil, err
	}
	if s.rdb, err = openDB(path, true, max(4, 2*runtime.GOMAXPROCS(0)), opt.readerCache, false); err != nil {
		return nil, err
	}
	if err := s.r.prepare(ctx, s.rdb); err != nil {
		return nil, err
	}
	// A separate small pool serves settle's single-row re-reads, which run
	// while a scan holds a read connection: never waiting on the read
	// pool, they cannot deadlock it.
	if s.sdb, err = openDB(path, true, 2, opt.readerCache, false); err != nil {
		return nil, err
	}
	if s.settleStmt, err = s.sdb.PrepareContext(ctx, `SELECT attrs, tags FROM accounts WHERE key = ?`); err != nil {
		return nil, dbErr("prepare settle", err)
	}
	// Catch-up shares its reads (one per page, one per task), so a few
	// connections with a small page cache serve a storm.
	if s.tdb, err = openDB(path, true, taskReaders(), min(opt.readerCache, taskReaderCache), false); err != nil {
		return nil, err
	}
	if err := s.t.prepare(ctx, s.tdb); err != nil {
		return nil, err
	}
	go s.w.run()
	return s, nil
}

// openDB opens a pool of at most n connections to the database at path,
// each with a page cache of cache bytes. Every connection waits up to 5 s
// for a lock; read-only pools refuse writes. WAL mode is persistent in the
// file, set by the writer's pool. bulk is Config.Bulk.
func openDB(path string, readOnly bool, n int, cache int64, bulk bool) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "foreign_keys(1)")
	if bulk {
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "wal_autocheckpoint(16384)") // pages: 64 MiB
	} else {
		q.Add("_pragma", "synchronous(FULL)")
	}
	q.Add("_pragma", fmt.Sprintf("cache_size(%d)", -max(cache>>10, 64))) // negative: KiB
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "temp_store(MEMORY)")           // savepoint journals in memory, not a temp file
		q.Add("_pragma", "journal_size_limit(67108864)") // shrink the WAL to 64 MiB after a fold
	}
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, dbErr("open", err)
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// SetChangeSink installs the receiver of committed changes. Call it before
// any write; changes committed while no sink is installed are not kept.
// The tag slices of the changes are shared with the store: the sink must
// not modify them.
func (s *Store) SetChangeSink(sink im.ChangeSink) {
	if sink == nil {
		s.sink.Store(nil)
		return
	}
	s.sink.Store(&sinkBox{sink})
}

func (s *Store) emit(changes []im.Change) {
	if len(changes) == 0 {
		return
	}
	if b := s.sink.Load(); b != nil {
		b.Apply(changes)
	}
}

// Close waits for the writes already submitted to commit, then closes the
// database. Writes submitted after Close fail with ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.w.stop()
		s.r.close()
		var ckpt error
		if s.w.opt.bulk {
			ckpt = s.w.checkpoint()
		}
		s.t.close()
		s.closeErr = errors.Join(ckpt, s.w.close(), s.settleStmt.Close(), s.sdb.Close(), s.tdb.Close(), s.rdb.Close(), s.wdb.Close())
		if s.closeErr != nil {
			s.closeErr = dbErr("close", s.closeErr)
		}
	})
	return s.closeErr
}

// ErrClosed is returned by writes submitted after Close.
var ErrClosed = errors.New("sqlite: store closed")
