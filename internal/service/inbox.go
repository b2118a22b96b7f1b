package service

import (
	"context"
	"errors"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/im"
)

// Sync paging limits (GET /v1/sync).
const (
	DefaultSyncLimit = 50
	MaxSyncLimit     = 200
	// maxSyncScan bounds the stored tasks one Sync call examines, so that
	// an account addressed by few of many pushes still gets a prompt
	// answer (with Complete false and a Cursor to continue from).
	maxSyncScan = 1000
)

// Inbox serves each account its stored pushes. A stored push is one task
// row with its audience captured as a Roaring bitmap; an account's inbox is
// the app's stored, unexpired, unrevoked tasks whose audience contains the
// account's ordinal, in Seq order.
type Inbox struct {
	tasks im.TaskStore
	aud   Audiences
	now   func() time.Time
}

// Audiences reads a stored task's decoded audience: the server passes the
// cache it shares with the live hub (deliver.AudienceCache), so that each
// audience is read and decoded once per process. Get returns
// im.ErrNotFound for a task that is gone; the bitmap must not be modified.
type Audiences interface {
	Get(ctx context.Context, app uint64, id string) (*roaring.Bitmap, error)
}

// NewInbox returns the inbox service reading tasks, and their audiences
// through aud.
func NewInbox(tasks im.TaskStore, aud Audiences) *Inbox {
	return &Inbox{tasks: tasks, aud: aud, now: time.Now}
}

// Sync returns up to limit (1..200; 0 means 50, more is capped at 200) of
// acct's stored pushes with Seq > cursor, the cursor to continue from, and
// whether no stored task of the app follows it. It reads task heads, and
// each task's audience once per process (deliver.AudienceCache). The cursor advances past
// tasks addressed to others too, so paging ends. Errors: 70402 for a
// negative cursor or limit; otherwise only store failures. /v1/sync
// answers with SyncFrames, which the tests check against Sync.
func (s *Inbox) Sync(ctx context.Context, app im.App, acct im.Account, cursor int64, limit int) (
	pushes []im.TaskHead, next int64, complete bool, err error) {
	limit, fetch, err := syncWindow(cursor, limit)
	if err != nil {
		return nil, cursor, false, err
	}
	now := s.now().Unix()
	next = cursor
	for scanned := 0; scanned < maxSyncScan; {
		page, err := s.tasks.StoredHeads(ctx, app.SDKAppID, next, now, fetch)
		if err != nil {
			return nil, cursor, false, err
		}
		for i := range page {
			t := &page[i]
			next = t.Seq
			scanned++
			in, err := s.addressed(ctx, app.SDKAppID, t.ID, acct.Ordinal)
			if err != nil {
				return nil, cursor, false, err
			}
			if !in {
				continue
			}
			pushes = append(pushes, *t)
			if len(pushes) == limit {
				return pushes, next, i == len(page)-1 && len(page) < fetch, nil
			}
		}
		if len(page) < fetch {
			return pushes, next, true, nil
		}
	}
	return pushes, next, false, nil
}

// addressed reports whether task id's audience holds ord; a task listed,
// then gone, is not addressed to anyone.
func (s *Inbox) addressed(ctx context.Context, app uint64, id string, ord uint32) (bool, error) {
	aud, err := s.aud.Get(ctx, app, id)
	if errors.Is(err, im.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return aud.Contains(ord), nil
}

// syncWindow checks a sync's cursor and limit (70402 when negative) and
// returns the limit to answer (0 means DefaultSyncLimit, capped at
// MaxSyncLimit) and how many tasks to read per store page: a small limit
// still reads in useful pages.
func syncWindow(cursor int64, limit int) (int, int, error) {
	if cursor < 0 || limit < 0 {
		return 0, 0, im.Errorf(im.CodeAccountBadParam, "cursor and limit must not be negative")
	}
	if limit == 0 {
		limit = DefaultSyncLimit
	}
	limit = min(limit, MaxSyncLimit)
	return limit, max(limit, DefaultSyncLimit), nil
}

// Frames renders stored pushes as push frames and remembers them
// (deliver.Hub): CachedFrame answers from memory only, Frame renders and
// keeps.
type Frames interface {
	Frame(t *im.TaskHead) []byte
	CachedFrame(app uint64, id string) ([]byte, bool)
}

// SyncFrames is Sync answering the pushes' frames (f.Frame of each head
// Sync would return), and cheaper: it lists the stored tasks by ID and
// Seq (StoredRefs), takes each owed task's frame from f, and reads heads
// only for the tasks f does not remember. Same arguments, cursor,
// completeness and errors as Sync.
func (s *Inbox) SyncFrames(ctx context.Context, app im.App, acct im.Account, cursor int64, limit int, f Frames) (
	frames [][]byte, next int64, complete bool, err error) {
	limit, fetch, err := syncWindow(cursor, limit)
	if err != nil {
		return nil, cursor, false, err
	}
	now := s.now().Unix()
	next = cursor
	frames = make([][]byte, 0, min(limit, DefaultSyncLimit))
	for scanned := 0; scanned < maxSyncScan; {
		page, err := s.tasks.StoredRefs(ctx, app.SDKAppID, next, now, fetch)
		if err != nil {
			return nil, cursor, false, err
		}
		var heads map[string]*im.TaskHead // read on the page's first frame miss
		for i := range page {
			t := &page[i]
			next = t.Seq
			scanned++
			in, err := s.addressed(ctx, app.SDKAppID, t.ID, acct.Ordinal)
			if err != nil {
				return nil, cursor, false, err
			}
			if !in {
				continue
			}
			fr, ok := f.CachedFrame(app.SDKAppID, t.ID)
			if !ok {
				if heads == nil {
					if heads, err = s.headsFrom(ctx, app.SDKAppID, t.Seq-1, now, len(page)-i); err != nil {
						return nil, cursor, false, err
					}
				}
				h := heads[t.ID]
				if h == nil { // past the heads read (tasks committed in between)
					one, err := s.headsFrom(ctx, app.SDKAppID, t.Seq-1, now, 1)
					if err != nil {
						return nil, cursor, false, err
					}
					h = one[t.ID]
				}
				if h == nil { // listed, then revoked or expired
					continue
				}
				fr = f.Frame(h)
			}
			frames = append(frames, fr)
			if len(frames) == limit {
				return frames, next, i == len(page)-1 && len(page) < fetch, nil
			}
		}
		if len(page) < fetch {
			return frames, next, true, nil
		}
	}
	return frames, next, false, nil
}

// headsFrom reads up to n stored heads after Seq after, by ID.
func (s *Inbox) headsFrom(ctx context.Context, app uint64, after, now int64, n int) (map[string]*im.TaskHead, error) {
	hs, err := s.tasks.StoredHeads(ctx, app, after, now, n)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*im.TaskHead, len(hs))
	for i := range hs {
		out[hs[i].ID] = &hs[i]
	}
	return out, nil
}
