package sqlite

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/im"
)

// TestCatchUpReadsDoNotQueueBehindAccountReads: with every connection of
// the account-read pool busy (as in a reconnect storm, where each connect's
// authentication reads its account), the reads catch-up makes — task
// heads, a task's audience, its ack sets — are still answered at once,
// from their own pool; an account read waits.
func TestCatchUpReadsDoNotQueueBehindAccountReads(t *testing.T) {
	ctx := context.Background()
	s := openOpt(t, defaultOptions())
	aud, _ := roaring.BitmapOf(1, 2).ToBytes()
	task, _, err := s.CreateTask(ctx, im.PushTask{App: 1, ID: "t1", MsgRandom: 1, From: "ops", State: im.TaskDone,
		CreatedAt: time.Now().Unix(), Audience: aud, Total: 2}, 0, im.TaskLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAcks(ctx, 1, task.ID, []uint32{1}, nil); err != nil {
		t.Fatal(err)
	}
	// Hold every account-read connection.
	var held []*sql.Conn
	for range s.rdb.Stats().MaxOpenConnections {
		c, err := s.rdb.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	heads, err := s.StoredHeads(short, 1, 0, time.Now().Unix(), 10)
	if err != nil || len(heads) != 1 || heads[0].ID != task.ID {
		t.Fatalf("StoredHeads with the account pool busy = %v, %v", heads, err)
	}
	if b, err := s.TaskAudience(short, 1, task.ID); err != nil || len(b) == 0 {
		t.Fatalf("TaskAudience with the account pool busy = %d bytes, %v", len(b), err)
	}
	if d, _, err := s.AckSets(short, 1, task.ID); err != nil || len(d) == 0 {
		t.Fatalf("AckSets with the account pool busy = %d bytes, %v", len(d), err)
	}
	// The account pool really is busy: an account read waits for it.
	busy, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	if _, err := s.Accounts(busy, 1, []string{"u1"}); err == nil {
		t.Fatal("an account read was answered with every account-read connection held: the test holds nothing")
	}
}
