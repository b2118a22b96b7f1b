package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"timd/internal/im"
)

// Group commit.
//
// Every write method wraps its work in a job and hands it to the one writer
// goroutine, which owns the only read-write connection. The writer takes the
// first queued job, then every job already queued behind it (up to
// maxGroupJobs jobs and about maxGroupEdits edits), and runs them all in one
// transaction:
//
//	BEGIN IMMEDIATE
//	  SAVEPOINT job; job 1 ...; RELEASE job   (ROLLBACK TO job on its error)
//	  SAVEPOINT job; job 2 ...; RELEASE job
//	  ...
//	  INSERT INTO account_log                 (after-images of changed accounts)
//	COMMIT                                    (one WAL fsync for the group)
//
// then publishes the new audience states to the overlay, passes the changes
// of the committed jobs to the ChangeSink in job order, and only then
// replies to each caller.
//
// Urgent jobs (doUrgent: small writes a caller waits on with a user in
// front of it, such as storing a push task) have a lane of their own. They
// are grouped only with other urgent jobs, go before any queued job, and
// do not wait for a bulk group to finish: between its jobs, a running
// group checks the lane and, when an urgent job waits, commits the jobs it
// has run and hands the rest back (they go first once the urgent group has
// committed, in their order); a fold step yields the same way. So an
// urgent job waits for at most one job and one COMMIT. Every reply still
// follows its job's COMMIT, and the ChangeSink still sees changes in
// commit order. A job that fails is rolled back to its savepoint
// alone; if anything else fails, the whole group is rolled back and every
// job of it fails, and no change is emitted. Because one goroutine does all
// of this, writes are serialized and the sink is never called concurrently
// and sees changes in commit order. Between groups the same goroutine folds
// account_log into accounts (fold.go).

// job is one write request.
type job struct {
	ctx  context.Context
	size int // edits or accounts it touches, to bound a group
	fn   func(t *wtx) ([]im.Change, error)

	changes []im.Change
	err     error
	done    chan struct{}
}

// writer runs jobs on the read-write connection.
type writer struct {
	s    *Store
	conn *sql.Conn
	opt  options
	tx   wtx
	fold folder
	seqs changeSeqs // change positions (changes.go)
	bulk bulkStmts  // bulk loading (bulk.go)
	buf  []byte     // account_log images being encoded
	// evicting is the scratch list of keys a fold step drops.
	evicting []int64

	// Counters for benchmarks.
	commits    atomic.Int64 // transactions committed
	jobsRun    atomic.Int64 // jobs committed
	runNanos   atomic.Int64 // time spent running jobs
	commitNano atomic.Int64 // time spent in COMMIT
	yields     atomic.Int64 // groups and fold steps cut short for an urgent job

	mu     sync.RWMutex // guards closed against sends on jobs and urgent
	closed bool
	jobs   chan *job
	urgent chan *job // never closed: run drains it once jobs is closed
	exited chan struct{}
	// carry are jobs a group handed back to make way for urgent ones;
	// they go first in the next group.
	carry []*job
}

func newWriter(ctx context.Context, conn *sql.Conn, s *Store, ov *overlay, opt options) (*writer, error) {
	w := &writer{
		s:      s,
		conn:   conn,
		opt:    opt,
		jobs:   make(chan *job, 1024),
		urgent: make(chan *job, 256),
		exited: make(chan struct{}),
	}
	w.tx.ov = ov
	if err := w.tx.prepare(ctx, conn); err != nil {
		return nil, err
	}
	w.fold.dirty = map[int64]struct{}{}
	return w, nil
}

// do submits fn and waits until it has committed (or failed). Once queued,
// a job is not abandoned: if ctx ends before the writer reaches it, the job
// is skipped and fails with ctx's error; if it has started, it completes.
func (w *writer) do(ctx context.Context, size int, fn func(t *wtx) ([]im.Change, error)) error {
	return w.submit(ctx, w.jobs, size, fn)
}

// doUrgent is do in the urgent lane: for small jobs (a few rows) whose
// latency a user sees.
func (w *writer) doUrgent(ctx context.Context, size int, fn func(t *wtx) ([]im.Change, error)) error {
	return w.submit(ctx, w.urgent, size, fn)
}

func (w *writer) submit(ctx context.Context, lane chan *job, size int, fn func(t *wtx) ([]im.Change, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &job{ctx: ctx, size: size, fn: fn, done: make(chan struct{})}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrClosed
	}
	select {
	case lane <- j:
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	w.mu.RUnlock()
	<-j.done
	return j.err
}

// urgentWaiting reports whether an urgent job is queued.
func (w *writer) urgentWaiting() bool { return len(w.urgent) > 0 }

// run is the writer goroutine. It returns once stop has closed the queue,
// every queued job has run and account_log has been folded.
func (w *writer) run() {
	defer close(w.exited)
	tick := time.NewTicker(w.opt.foldIdle / 2)
	defer tick.Stop()
	var group []*job
	for {
		group = group[:0]
		var first *job
		var ok, urgent bool
		switch {
		case w.urgentWaiting():
			first, ok, urgent = <-w.urgent, true, true
		case len(w.carry) > 0:
			ok = true
		case w.fold.active():
			select {
			case first = <-w.urgent:
				ok, urgent = true, true
			case first, ok = <-w.jobs:
			default:
				w.foldStep(w.opt.foldChunk) // idle: fold
				continue
			}
		default:
			select {
			case first = <-w.urgent:
				ok, urgent = true, true
			case first, ok = <-w.jobs:
			case <-tick.C:
				w.maybeFold(false)
				continue
			}
		}
		if !ok {
			w.drainUrgent()
			if !w.opt.noCloseFold {
				w.foldAll()
			}
			return
		}
		lane := w.jobs
		if urgent {
			lane = w.urgent
		} else {
			// Jobs handed back go first, in their order.
			group = append(group, w.carry...)
			clear(w.carry)
			w.carry = w.carry[:0]
		}
		if first != nil {
			group = append(group, first)
		}
		edits := 0
		for _, j := range group {
			edits += j.size
		}
	fill:
		for len(group) < w.opt.maxGroupJobs && edits < w.opt.maxGroupEdits && (urgent || !w.urgentWaiting()) {
			select {
			case j, ok := <-lane:
				if !ok {
					break fill
				}
				group = append(group, j)
				edits += j.size
			default:
				break fill
			}
		}
		n := w.runGroup(group, !urgent)
		w.carry = append(w.carry, group[n:]...)
		clear(group)
		w.maybeFold(false)
		// Busy: writes waiting go first, unless the dirty set has reached
		// its bound or the log has grown by another foldLogBytes since the
		// cycle began; then a step as large as the group keeps pace.
		f := &w.fold
		switch {
		case !f.active():
		case len(f.dirty) >= w.opt.foldMaxDirty || f.logBytes >= w.opt.foldLogBytes:
			w.foldStep(max(w.opt.foldChunk, edits))
		case len(w.jobs) == 0 && len(w.carry) == 0 && !w.urgentWaiting():
			w.foldStep(w.opt.foldChunk)
		}
	}
}

// drainUrgent runs the urgent jobs queued before stop closed the queue,
// and any handed-back ones.
func (w *writer) drainUrgent() {
	for {
		group := w.carry
		w.carry = nil
	fill:
		for len(group) < w.opt.maxGroupJobs {
			select {
			case j := <-w.urgent:
				group = append(group, j)
			default:
				break fill
			}
		}
		if len(group) == 0 {
			return
		}
		n := w.runGroup(group, false)
		w.carry = group[n:]
	}
}

// runGroup runs jobs in one transaction, publishes, emits and replies.
// When an urgent job is queued, it stops after the job it is running (at
// least one runs) and commits those: it returns how many of jobs it has
// finished; the rest have not started.
func (w *writer) runGroup(all []*job, yield bool) int {
	jobs := all
	defer func() {
		for _, j := range jobs {
			close(j.done)
		}
	}()
	if err := w.tx.exec("BEGIN IMMEDIATE"); err != nil {
		w.fail(jobs, dbErr("begin", err))
		return len(jobs)
	}
	t0 := time.Now()
	for i, j := range all {
		if yield && i > 0 && w.urgentWaiting() {
			jobs = all[:i]
			w.yields.Add(1)
			break
		}
		if err := w.runJob(j); err != nil {
			w.fail(jobs, err) // every job of the group, begun or not
			return len(jobs)
		}
	}
	if err := w.tx.flushTags(); err != nil {
		w.fail(jobs, err)
		return len(jobs)
	}
	if err := w.seqs.record(w.conn, jobs); err != nil {
		w.fail(jobs, err)
		return len(jobs)
	}
	seq, err := w.appendLog()
	if err != nil {
		w.fail(jobs, err)
		return len(jobs)
	}
	t1 := time.Now()
	if err := w.tx.exec("COMMIT"); err != nil {
		w.fail(jobs, dbErr("commit", err))
		return len(jobs)
	}
	w.runNanos.Add(int64(t1.Sub(t0)))
	w.commitNano.Add(int64(time.Since(t1)))
	w.commits.Add(1)
	w.jobsRun.Add(int64(len(jobs)))
	w.seqs.committed()
	w.publish(seq)
	for _, j := range jobs {
		w.s.emit(j.changes)
	}
	return len(jobs)
}

// runJob runs one job inside a savepoint. A job error is stored in j.err
// and rolled back to the savepoint; the returned error means the
// transaction could not be kept.
func (w *writer) runJob(j *job) error {
	if err := j.ctx.Err(); err != nil {
		j.err = err
		return nil
	}
	if err := w.tx.exec("SAVEPOINT job"); err != nil {
		return dbErr("savepoint", err)
	}
	w.tx.undo = w.tx.undo[:0]
	w.tx.tagUndo = w.tx.tagUndo[:0]
	changes, err := j.fn(&w.tx)
	if err != nil {
		j.err = err
		w.tx.jobFailed()
		if rbErr := w.tx.exec("ROLLBACK TO job"); rbErr != nil {
			return dbErr("rollback to savepoint", errors.Join(err, rbErr))
		}
	} else {
		j.changes = changes
	}
	if err := w.tx.exec("RELEASE job"); err != nil {
		return dbErr("release savepoint", err)
	}
	return nil
}

// appendLog writes the after-images of the accounts the group changed as
// one account_log row and returns its seq (0 if nothing changed).
func (w *writer) appendLog() (int64, error) {
	b := w.buf[:0]
	for key, p := range w.tx.pending {
		if p.modified && p.st != nil {
			b = appendImage(b, image{key: key, attrs: &p.st.attrs, tags: p.st.tags})
		}
	}
	w.buf = b
	if len(b) == 0 {
		return 0, nil
	}
	res, err := w.tx.logInsert.Exec(b)
	if err != nil {
		return 0, dbErr("append account log", err)
	}
	seq, err := res.LastInsertId()
	return seq, dbErr("append account log", err)
}

// publish makes the committed group's changed states visible to readers
// and marks them for folding. States the group only read stay out of the
// overlay: their accounts row is current.
func (w *writer) publish(seq int64) {
	ov := w.tx.ov
	ov.mu.Lock()
	for key, p := range w.tx.pending {
		switch {
		case p.st == nil:
			delete(ov.m, key)
		case p.modified:
			ov.m[key] = p.st
		}
	}
	ov.mu.Unlock()
	for app, sc := range w.tx.schemaPuts {
		w.s.schemas.put(app, sc)
	}
	clear(w.tx.schemaPuts)
	for key, p := range w.tx.pending {
		switch {
		case p.st == nil:
			delete(w.fold.dirty, key)
		case p.modified:
			w.fold.dirty[key] = struct{}{}
		}
	}
	if seq > 0 {
		w.fold.lastSeq = seq
		w.fold.logBytes += len(w.buf)
	}
	w.fold.lastBusy = time.Now()
	clear(w.tx.pending)
	w.tx.undo = w.tx.undo[:0]
	w.tx.endTags()
}

// fail rolls the group back and fails every job of it.
func (w *writer) fail(jobs []*job, err error) {
	_ = w.tx.exec("ROLLBACK")
	w.tx.groupFailed()
	for _, j := range jobs {
		j.err = err
		j.changes = nil
	}
	w.s.logger.Error("sqlite: write transaction failed", "err", err, "requests", len(jobs))
}

// stop refuses new jobs and waits for the queued ones to finish.
func (w *writer) stop() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.jobs)
	}
	w.mu.Unlock()
	<-w.exited
}

// checkpoint copies the whole WAL into the database file and fsyncs it,
// then empties the WAL: what a bulk-mode store (Config.Bulk) does at
// Close to make its commits durable.
func (w *writer) checkpoint() error {
	var busy, logPages, done int64
	err := w.conn.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logPages, &done)
	if err == nil && busy != 0 {
		err = errors.New("a reader held the database")
	}
	return dbErr("checkpoint", err)
}

// close releases the writer's statements and connection; call it after
// stop, or instead of it when run was never started.
func (w *writer) close() error {
	return errors.Join(w.tx.close(), w.seqs.close(), w.bulk.close(), w.conn.Close())
}
