package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"timd/internal/audience"
	"timd/internal/im"
)

// Index start-up: snapshot at change position N, then replay after N.
//
// LoadIndex reads the snapshot file, checks that it was taken from this
// store (store id) and that no app's position lies beyond the store's, and
// installs each app's copy; then it asks the store's change log which
// ordinals changed after each app's position and re-reads only those
// (Index.Refresh). An app the snapshot lacks, or whose log no longer
// reaches back to its position, or whose replay would touch more accounts
// than a rebuild, is rebuilt from a store scan. A snapshot that cannot be
// read (missing, corrupt, another version, another store) is ignored and
// every app is rebuilt. SaveSnapshot writes the file atomically and then
// trims the change log up to the positions it covers, unless the log is
// shared with other nodes (SharedLog, PostgreSQL): they may be behind this
// snapshot, and the scheduled trim (ChangeTrim) forgets old changes there.

// IndexSource is what LoadIndex and SaveSnapshot work with.
type IndexSource struct {
	Store    im.Store
	Changes  im.ChangeLog
	Index    *audience.Index
	Snapshot string // snapshot file; "" disables snapshots
	// SharedLog says that other nodes follow the change log too: writing
	// a snapshot then never trims it.
	SharedLog bool
	Logger    *slog.Logger
	Progress  *StartProgress // may be nil
}

// LoadReport says how the index was loaded.
type LoadReport struct {
	SnapshotErr error // why the snapshot was not used, nil if it was (or none was configured)
	Loaded      int   // apps taken from the snapshot
	Replayed    int   // accounts re-read after a snapshot position
	Rebuilt     int   // apps rebuilt from a store scan
	Accounts    uint64
}

// replayShare bounds a replay: with more changed accounts than this share
// of the snapshot's, a scan is cheaper than point reads.
const replayShare = 2

// LoadIndex loads src.Index before serving; nothing else may write to the
// store or the index meanwhile.
func LoadIndex(ctx context.Context, src IndexSource) (LoadReport, error) {
	var rep LoadReport
	log := src.logger()
	apps, err := src.Store.Apps(ctx)
	if err != nil {
		return rep, err
	}
	snap, err := src.readSnapshot(ctx)
	if err != nil {
		rep.SnapshotErr = err
		if !errors.Is(err, os.ErrNotExist) {
			log.Warn("audience index snapshot not used; rebuilding from the store", "err", err)
		}
	}
	for _, app := range apps {
		id := app.SDKAppID
		if snap != nil {
			n, why, err := src.loadApp(ctx, snap, id)
			if err != nil {
				return rep, err
			}
			if why == "" {
				rep.Loaded++
				rep.Replayed += n
				rep.Accounts += src.Index.Count(id)
				continue
			}
			log.Info("rebuilding app index", "app", id, "reason", why)
		}
		if err := src.rebuildApp(ctx, id); err != nil {
			return rep, fmt.Errorf("rebuild app %d: %w", id, err)
		}
		rep.Rebuilt++
		rep.Accounts += src.Index.Count(id)
	}
	return rep, nil
}

func (src IndexSource) logger() *slog.Logger {
	if src.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return src.Logger
}

// readSnapshot reads and checks the snapshot file.
func (src IndexSource) readSnapshot(ctx context.Context) (*audience.Snapshot, error) {
	if src.Snapshot == "" {
		return nil, os.ErrNotExist
	}
	f, err := os.Open(src.Snapshot)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	src.Progress.phase("loading snapshot", uint64(fi.Size()))
	b, release, err := mapFile(f, fi.Size())
	if err != nil {
		return nil, err
	}
	snap, err := audience.ParseSnapshot(b)
	release()
	if err != nil {
		return nil, err
	}
	src.Progress.add(uint64(fi.Size()))
	id, err := src.Changes.StoreID(ctx)
	if err != nil {
		return nil, err
	}
	if snap.StoreID != id {
		return nil, fmt.Errorf("%w: taken from store %q, this is %q", audience.ErrSnapshot, snap.StoreID, id)
	}
	return snap, nil
}

// loadApp installs app from snap and replays the changes after its
// position. It returns why it could not (then the app must be rebuilt).
func (src IndexSource) loadApp(ctx context.Context, snap *audience.Snapshot, app uint64) (int, string, error) {
	sp, ok := snap.Position(app)
	if !ok {
		return 0, "not in the snapshot", nil
	}
	ords, upTo, err := src.Changes.ChangedSince(ctx, app, sp)
	switch {
	case errors.Is(err, im.ErrPositionAhead):
		return 0, fmt.Sprintf("snapshot position %d is beyond the store's %d", sp, upTo), nil
	case errors.Is(err, im.ErrChangesTrimmed):
		return 0, fmt.Sprintf("change log trimmed past snapshot position %d", sp), nil
	case err != nil:
		return 0, "", err
	case uint64(len(ords)) > snap.Count(app)/replayShare+1000:
		return 0, fmt.Sprintf("%d accounts changed since the snapshot", len(ords)), nil
	}
	src.Index.Install(snap, app)
	return len(ords), "", src.replay(ctx, app, ords, upTo)
}

// replay re-reads the accounts ords of app and refreshes them in the
// index, which then stands at position upTo.
func (src IndexSource) replay(ctx context.Context, app uint64, ords []uint32, upTo uint64) error {
	src.Progress.phase("replaying changes", uint64(len(ords)))
	const chunk = 8192
	for len(ords) > 0 {
		n := min(len(ords), chunk)
		var profiles []im.Profile
		err := src.Changes.ProfilesByOrdinal(ctx, app, ords[:n], func(p im.Profile) error {
			profiles = append(profiles, p)
			return nil
		})
		if err != nil {
			return err
		}
		pos := uint64(0)
		if n == len(ords) {
			pos = upTo
		}
		src.Index.Refresh(app, ords[:n], profiles, pos)
		src.Progress.add(uint64(n))
		ords = ords[n:]
	}
	src.Index.Refresh(app, nil, nil, upTo)
	return nil
}

// rebuildApp rebuilds app's index from a scan of the store, then replays
// what changed during the scan.
func (src IndexSource) rebuildApp(ctx context.Context, app uint64) error {
	pos, err := src.Changes.ChangePosition(ctx, app)
	if err != nil {
		return err
	}
	src.Progress.phase("rebuilding index", 0)
	src.Index.Reset(app)
	batch := make([]im.Change, 0, rebuildBatch)
	err = src.Store.ScanProfiles(ctx, app, func(p im.Profile) error {
		batch = append(batch, im.Change{App: app, Op: im.ChangeUpsert, ID: p.Account.ID,
			Type: p.Account.Type, Ordinal: p.Account.Ordinal, Owner: p.Account.Owner, NewAttrs: p.Attrs, NewTags: p.Tags})
		if len(batch) == rebuildBatch {
			src.Index.Apply(batch)
			src.Progress.add(uint64(len(batch)))
			batch = batch[:0]
		}
		return nil
	})
	if err != nil {
		return err
	}
	src.Index.Apply(batch)
	src.Progress.add(uint64(len(batch)))
	src.Index.SetPosition(app, pos)
	ords, upTo, err := src.Changes.ChangedSince(ctx, app, pos)
	if err != nil {
		return err
	}
	return src.replay(ctx, app, ords, upTo)
}

// SnapshotReport describes a written snapshot.
type SnapshotReport struct {
	Bytes     int64
	Took      time.Duration
	Positions map[uint64]uint64
}

// SaveSnapshot writes a snapshot of src.Index to src.Snapshot (a temporary
// file, fsynced, renamed over the old one, directory fsynced) and then,
// unless src.SharedLog, trims the store's change log up to the positions
// it covers. When every
// app's position equals unchangedAt, it writes nothing (Bytes 0).
func SaveSnapshot(ctx context.Context, src IndexSource, unchangedAt map[uint64]uint64) (SnapshotReport, error) {
	rep := SnapshotReport{Positions: map[uint64]uint64{}}
	if src.Snapshot == "" {
		return rep, nil
	}
	t0 := time.Now()
	id, err := src.Changes.StoreID(ctx)
	if err != nil {
		return rep, err
	}
	snap := src.Index.Snapshot(id)
	for _, app := range snap.Apps() {
		rep.Positions[app], _ = snap.Position(app)
	}
	if unchangedAt != nil && maps.Equal(rep.Positions, unchangedAt) {
		return rep, nil
	}
	if rep.Bytes, err = writeFileAtomic(src.Snapshot, snap.WriteTo); err != nil {
		return rep, err
	}
	for app, pos := range rep.Positions {
		if src.SharedLog {
			break // other nodes may be behind it: only ChangeTrim trims
		}
		if err := src.Changes.TrimChanges(ctx, app, pos); err != nil {
			return rep, err
		}
	}
	rep.Took = time.Since(t0)
	return rep, nil
}

// writeFileAtomic writes path through write so that a crash leaves either
// the old file or the whole new one.
func writeFileAtomic(path string, write func(io.Writer) (int64, error)) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	n, err := write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return n, err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return n, err
	}
	defer dir.Close()
	return n, dir.Sync()
}

// StartProgress tracks the phases of start-up for /healthz. It is safe
// for concurrent use; a nil *StartProgress ignores reports.
type StartProgress struct {
	mu      sync.Mutex
	started time.Time
	name    string
	done    uint64
	total   uint64
}

// NewStartProgress returns a tracker whose clock starts now.
func NewStartProgress() *StartProgress {
	return &StartProgress{started: time.Now(), name: "starting"}
}

// StartStatus is the start-up state /healthz reports while starting.
type StartStatus struct {
	Status  string  `json:"status"`
	Phase   string  `json:"phase"`
	Done    uint64  `json:"done"`
	Total   uint64  `json:"total,omitempty"`
	Percent float64 `json:"progress"` // of the current phase, 0..1; 0 when its size is unknown
	Elapsed float64 `json:"elapsed_seconds"`
}

// Phase starts a named phase of the given size (0: unknown).
func (p *StartProgress) Phase(name string, total uint64) { p.phase(name, total) }

func (p *StartProgress) phase(name string, total uint64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.name, p.done, p.total = name, 0, total
	p.mu.Unlock()
}

func (p *StartProgress) add(n uint64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.done += n
	p.mu.Unlock()
}

// Status returns the current state.
func (p *StartProgress) Status() StartStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := StartStatus{Status: "starting", Phase: p.name, Done: p.done, Total: p.total,
		Elapsed: time.Since(p.started).Seconds()}
	if p.total > 0 {
		s.Percent = min(1, float64(p.done)/float64(p.total))
	}
	return s
}

// readFile reads f's size bytes in one piece.
func readFile(f *os.File, size int64) ([]byte, func(), error) {
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, nil, err
	}
	return b, func() {}, nil
}
