package sqlite

import (
	"database/sql"
	"errors"

	"timd/internal/im"
)

// The tag registry within a group commit.
//
// Every account that gains or loses a tag moves the tag's refcount. Written
// through, a batch of 100 accounts each given the same two tags costs 200
// UPDATEs of the same two rows. Instead the writer keeps the rows a group
// has read or changed in memory (wtx.tags), applies the moves there, and
// writes each changed row once, just before COMMIT (flushTags). A job
// that fails takes its moves back (undoTags); the map is dropped after
// every group, committed or not (endTags), so it never holds more than
// one group's tags.

type tagKey struct {
	app  uint64
	name string
}

// tagState is a tag's registry row; refcount 0 means the tag is unused.
type tagState struct {
	typ      im.AcctType
	refcount int64
}

// tagEntry is a registry row as committed (orig) and as the group has
// left it so far (cur).
type tagEntry struct {
	cur, orig tagState
}

type tagUndo struct {
	key  tagKey
	prev tagState
}

// tag returns the registry row of name.
func (t *wtx) tag(app uint64, name string) (tagState, error) {
	e, err := t.tagEntry(app, name)
	if err != nil {
		return tagState{}, err
	}
	return e.cur, nil
}

func (t *wtx) tagEntry(app uint64, name string) (*tagEntry, error) {
	k := tagKey{app, name}
	if e, ok := t.tags[k]; ok {
		return e, nil
	}
	var typ, refcount int64
	err := t.tagGet.QueryRow(int64(app), name).Scan(&typ, &refcount)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, dbErr("read tag", err)
	}
	st := tagState{typ: im.AcctType(typ), refcount: refcount}
	e := &tagEntry{cur: st, orig: st}
	t.tags[k] = e
	return e, nil
}

// retag moves the registry by delta accounts for name, binding it to typ
// as its count leaves zero and releasing it as the count reaches zero.
// before is what tag returned for name within the same edit.
func (t *wtx) retag(app uint64, name string, typ im.AcctType, before tagState, delta int64) error {
	e, err := t.tagEntry(app, name)
	if err != nil {
		return err
	}
	t.tagUndo = append(t.tagUndo, tagUndo{key: tagKey{app, name}, prev: e.cur})
	switch after := before.refcount + delta; {
	case after <= 0:
		e.cur = tagState{}
	case before.refcount == 0:
		e.cur = tagState{typ: typ, refcount: after}
	default:
		e.cur = tagState{typ: before.typ, refcount: after}
	}
	return nil
}

// tagCount returns the number of distinct tags of the app, the group's
// moves included.
func (t *wtx) tagCount(app uint64) (int, error) {
	var n int
	if err := t.tagCountStmt.QueryRow(int64(app)).Scan(&n); err != nil {
		return 0, dbErr("count tags", err)
	}
	for k, e := range t.tags {
		if k.app != app {
			continue
		}
		if e.cur.refcount > 0 && e.orig.refcount == 0 {
			n++
		} else if e.cur.refcount == 0 && e.orig.refcount > 0 {
			n--
		}
	}
	return n, nil
}

// undoTags takes back the moves of the failed job.
func (t *wtx) undoTags() {
	for i := len(t.tagUndo) - 1; i >= 0; i-- {
		u := t.tagUndo[i]
		t.tags[u.key].cur = u.prev
	}
	t.tagUndo = t.tagUndo[:0]
}

// flushTags writes the changed registry rows; the writer calls it after
// the group's jobs, before COMMIT.
func (t *wtx) flushTags() error {
	for k, e := range t.tags {
		if e.cur == e.orig {
			continue
		}
		var err error
		switch {
		case e.orig.refcount == 0:
			_, err = t.tagInsert.Exec(int64(k.app), k.name, int64(e.cur.typ), e.cur.refcount)
		case e.cur.refcount == 0:
			_, err = t.tagDelete.Exec(int64(k.app), k.name)
		default:
			_, err = t.tagSet.Exec(int64(e.cur.typ), e.cur.refcount, int64(k.app), k.name)
		}
		if err != nil {
			return dbErr("update tag", err)
		}
	}
	return nil
}

// endTags forgets the group's registry rows.
func (t *wtx) endTags() {
	clear(t.tags)
	t.tagUndo = t.tagUndo[:0]
}
