package service_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"timd/internal/deliver"
	"timd/internal/deliver/delivertest"
	"timd/internal/im"
	"timd/internal/service"
)

// countingTasks counts StoredHeads reads and runs beforeHeads, when set,
// before each.
type countingTasks struct {
	*delivertest.Faulty
	heads       atomic.Int64
	beforeHeads func()
}

func (c *countingTasks) StoredHeads(ctx context.Context, app uint64, afterSeq, now int64, limit int) ([]im.TaskHead, error) {
	c.heads.Add(1)
	if c.beforeHeads != nil {
		c.beforeHeads()
	}
	return c.Faulty.StoredHeads(ctx, app, afterSeq, now, limit)
}

// mapFrames is a Frames that renders with deliver.PushFrame and keeps
// every frame.
type mapFrames struct {
	m      map[string][]byte
	misses int
}

func (f *mapFrames) Frame(t *im.TaskHead) []byte {
	f.misses++
	fr := deliver.PushFrame(t)
	f.m[t.ID] = fr
	return fr
}

func (f *mapFrames) CachedFrame(_ uint64, id string) ([]byte, bool) {
	fr, ok := f.m[id]
	return fr, ok
}

// TestInboxSyncFramesMatchesSync: SyncFrames pages exactly as Sync does,
// answering each head's frame; once the frames are remembered, it reads
// no head at all (only the StoredRefs listing).
func TestInboxSyncFramesMatchesSync(t *testing.T) {
	ctx := context.Background()
	tasks := &countingTasks{Faulty: delivertest.OpenFaulty(t)}
	inbox := service.NewInbox(tasks, deliver.NewAudienceCache(tasks, 0))
	later := time.Now().Add(time.Hour).Unix()
	var ts []im.PushTask
	var ords [][]uint32
	for i := range 1200 {
		ts = append(ts, im.PushTask{App: app, ID: fmt.Sprint("t", i), ExpiresAt: later, From: "admin",
			MsgBody: []byte(fmt.Sprintf(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"n%d"}}]`, i))})
		if i%3 == 0 {
			ords = append(ords, []uint32{1, 7})
		} else {
			ords = append(ords, []uint32{1, 2})
		}
	}
	addConcurrently(tasks.Faulty, ts, ords)
	a := im.App{SDKAppID: app}
	frames := &mapFrames{m: map[string][]byte{}}
	for pass := range 2 {
		for _, c := range []struct {
			ord   uint32
			limit int
		}{{7, 7}, {7, 200}, {1, 50}, {2, 1}, {99, 200}} {
			acct := im.Account{Ordinal: c.ord}
			cursor := int64(0)
			for calls := 0; ; calls++ {
				if calls > 2000 {
					t.Fatal("paging does not end")
				}
				want, wnext, wcomplete, err := inbox.Sync(ctx, a, acct, cursor, c.limit)
				if err != nil {
					t.Fatal(err)
				}
				before := tasks.heads.Load()
				got, next, complete, err := inbox.SyncFrames(ctx, a, acct, cursor, c.limit, frames)
				if err != nil {
					t.Fatal(err)
				}
				if pass == 1 && tasks.heads.Load() != before {
					t.Fatalf("ordinal %d cursor %d: SyncFrames read heads with every frame remembered", c.ord, cursor)
				}
				if next != wnext || complete != wcomplete || len(got) != len(want) {
					t.Fatalf("ordinal %d cursor %d limit %d: %d frames, next %d, complete %v; Sync: %d, %d, %v",
						c.ord, cursor, c.limit, len(got), next, complete, len(want), wnext, wcomplete)
				}
				for i := range want {
					if string(got[i]) != string(deliver.PushFrame(&want[i])) {
						t.Fatalf("frame %d = %s, want that of %s", i, got[i], want[i].ID)
					}
				}
				cursor = next
				if complete || (len(got) == 0 && c.ord == 99) {
					break
				}
			}
		}
		if pass == 0 && frames.misses != 1200 {
			t.Fatalf("%d frames rendered, want each of the 1200 once", frames.misses)
		}
	}
}

// TestInboxSyncFramesRevokedBeforeHeadRead: a task listed, then revoked
// before its head is read, is left out, as Sync leaves out a task
// revoked before its listing.
func TestInboxSyncFramesRevokedBeforeHeadRead(t *testing.T) {
	ctx := context.Background()
	tasks := &countingTasks{Faulty: delivertest.OpenFaulty(t)}
	later := time.Now().Add(time.Hour).Unix()
	for _, id := range []string{"a", "b", "c"} {
		tasks.Add(im.PushTask{App: app, ID: id, ExpiresAt: later, CreatedAt: time.Now().Unix()}, 1)
	}
	tasks.beforeHeads = func() {
		tasks.beforeHeads = nil
		if err := tasks.RevokeTask(ctx, app, "b", time.Now().Unix(), nil, im.TaskLimits{}); err != nil {
			t.Error(err)
		}
	}
	inbox := service.NewInbox(tasks, deliver.NewAudienceCache(tasks, 0))
	frames := &mapFrames{m: map[string][]byte{}}
	got, _, complete, err := inbox.SyncFrames(ctx, im.App{SDKAppID: app}, im.Account{Ordinal: 1}, 0, 10, frames)
	if err != nil || !complete {
		t.Fatalf("SyncFrames: %v, complete %v", err, complete)
	}
	var ids []string
	for id := range frames.m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(got) != 2 || !slices.Equal(ids, []string{"a", "c"}) {
		t.Fatalf("got %d frames of %v, want a and c", len(got), ids)
	}
}
