package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"time"

	"timd/internal/im"
)

// Folding account_log into accounts.
//
// A fold cycle starts with the set of dirty accounts (whose latest state is
// in the overlay and account_log but not in accounts) and the newest log
// seq S. Between groups, each step writes the current state of a chunk of
// those accounts to accounts in its own transaction; the step that writes
// the last chunk also deletes the log rows up to S. That is safe: every
// account with an image at or before S was dirty when the cycle started and
// has been written with a state at least that new, and an account changed
// since has its newer image in a row after S. Accounts changed during the
// cycle are dirty again and wait for the next one.

// folder is the writer's fold bookkeeping.
type folder struct {
	dirty    map[int64]struct{} // accounts whose accounts row lags the overlay
	lastSeq  int64              // newest committed account_log seq
	trimmed  int64              // account_log rows up to here are gone
	logBytes int                // account_log bytes appended since the last cycle started
	lastBusy time.Time          // when the writer last committed a group

	cycle []int64 // accounts to write in the running cycle
	upto  int64   // the running cycle deletes log rows up to here; 0: none runs
}

func (f *folder) active() bool { return f.upto > 0 }

// maybeFold starts a cycle when there is log to fold and the log or the
// dirty set has grown enough, or the writer has been idle long enough (or
// force is set).
func (w *writer) maybeFold(force bool) {
	f := &w.fold
	if f.active() || f.lastSeq <= f.trimmed {
		return
	}
	if !force && f.logBytes < w.opt.foldLogBytes && len(f.dirty) < w.opt.foldMaxDirty &&
		time.Since(f.lastBusy) < w.opt.foldIdle {
		return
	}
	f.cycle = f.cycle[:0]
	for key := range f.dirty {
		f.cycle = append(f.cycle, key)
	}
	// In key order: accounts created together sit together in the
	// accounts b-tree, so a chunk of neighbouring keys dirties a few pages
	// (a WAL frame each) where a chunk in map order dirties one page per
	// account, and every later chunk dirties the same pages again.
	slices.Sort(f.cycle)
	f.upto, f.logBytes = f.lastSeq, 0
}

// foldStep writes the next chunk of at most size accounts of the running
// cycle, and trims the log after the last one. It stops early, after at
// least one account, when an urgent job is queued.
func (w *writer) foldStep(size int) {
	f := &w.fold
	n := min(len(f.cycle), size)
	done, err := w.foldTx(f.cycle[:n], n == len(f.cycle))
	if err != nil {
		w.s.logger.Error("sqlite: folding account log failed; will retry", "err", err)
		f.cycle, f.upto, f.lastBusy = f.cycle[:0], 0, time.Now()
		return
	}
	chunk, last := f.cycle[:done], done == len(f.cycle)
	for _, key := range chunk {
		delete(f.dirty, key)
	}
	if len(f.dirty) == 0 {
		f.dirty = map[int64]struct{}{} // a Go map keeps its buckets after deletes
	}
	w.evict(chunk)
	f.cycle = f.cycle[done:]
	if last {
		f.cycle = nil
		f.trimmed, f.upto = f.upto, 0
		if f.trimmed == f.lastSeq {
			// account_log is empty now, and SQLite numbers the next row
			// 1 again (seq is a plain rowid).
			f.trimmed, f.lastSeq = 0, 0
		}
	}
}

// foldTx writes chunk's accounts in one transaction, and trims the log if
// trim is set and it wrote them all. It returns how many of chunk it
// wrote: all, unless an urgent job became queued.
func (w *writer) foldTx(chunk []int64, trim bool) (int, error) {
	t := &w.tx
	if err := t.exec("BEGIN IMMEDIATE"); err != nil {
		return 0, dbErr("begin fold", err)
	}
	done := len(chunk)
	err := func() error {
		for i, key := range chunk {
			if i > 0 && w.urgentWaiting() {
				done = i
				w.yields.Add(1)
				break
			}
			if _, dirty := w.fold.dirty[key]; !dirty {
				continue
			}
			st := t.ov.m[key]
			if st == nil {
				continue
			}
			if _, err := t.setAudience.Exec(encodeAttrs(&st.attrs), encodeStrings(st.tags), key); err != nil {
				return dbErr("fold account", err)
			}
		}
		if trim && done == len(chunk) {
			if _, err := t.logTrim.Exec(w.fold.upto); err != nil {
				return dbErr("trim account log", err)
			}
		}
		return dbErr("commit fold", t.exec("COMMIT"))
	}()
	if err != nil {
		_ = t.exec("ROLLBACK")
	}
	return done, err
}

// evict drops just-folded accounts from the overlay. It runs on the writer
// between groups, so no edit is pending; an account is dropped only if it
// is not dirty again, so its accounts row (committed by the fold step)
// holds its latest state. A reader that then misses the overlay reads that
// row.
func (w *writer) evict(folded []int64) {
	keys := w.evicting[:0]
	for _, key := range folded {
		if _, dirty := w.fold.dirty[key]; !dirty {
			keys = append(keys, key)
		}
	}
	w.evicting = keys
	w.tx.ov.evict(keys)
}

// foldAll folds everything; Close calls it so that a cleanly closed store
// has an empty account_log.
func (w *writer) foldAll() {
	f := &w.fold
	if f.active() {
		f.cycle, f.upto = f.cycle[:0], 0
	}
	w.maybeFold(true)
	for f.active() {
		w.foldStep(w.opt.foldChunk)
	}
}

// replayLog applies the account_log rows left by a crash to accounts and
// deletes them, in one transaction, before the store serves anything.
func replayLog(ctx context.Context, conn *sql.Conn) (int, error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, dbErr("begin log replay", err)
	}
	defer tx.Rollback()
	var logs [][]byte
	rows, err := tx.QueryContext(ctx, `SELECT images FROM account_log ORDER BY seq`)
	if err != nil {
		return 0, dbErr("read account log", err)
	}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return 0, dbErr("read account log", err)
		}
		logs = append(logs, b)
	}
	if err := rows.Close(); err != nil {
		return 0, dbErr("read account log", err)
	}
	if len(logs) == 0 {
		return 0, nil
	}
	upd, err := tx.PrepareContext(ctx, `UPDATE accounts SET attrs = ?, tags = ? WHERE key = ?`)
	if err != nil {
		return 0, dbErr("replay account log", err)
	}
	defer upd.Close()
	for _, b := range logs {
		err := decodeImages(b, func(key int64, attrs im.AttrValues, tags []string) error {
			_, err := upd.ExecContext(ctx, encodeAttrs(&attrs), encodeStrings(tags), key)
			return err
		})
		if err != nil {
			return 0, dbErr("replay account log", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM account_log`); err != nil {
		return 0, dbErr("replay account log", err)
	}
	return len(logs), dbErr("commit log replay", tx.Commit())
}
