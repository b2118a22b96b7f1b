package fanout_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/audience"
	"timd/internal/fanout"
	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/sqlite"
)

// doneWaker signals each finished fan-out.
type doneWaker chan struct{}

func (d doneWaker) Wake() {
	select {
	case d <- struct{}{}:
	default:
	}
}

// benchLive counts what a hub would reach: `online` accounts are connected.
type benchLive struct{ online *roaring.Bitmap }

func (l benchLive) Deliver(_ *im.PushTask, aud *roaring.Bitmap) int {
	return int(aud.AndCardinality(l.online))
}
func (benchLive) Revoke(uint64, string, *roaring.Bitmap) {}
func (l benchLive) Connected(uint64) *roaring.Bitmap     { return l.online }

// benchPush measures a stored push to an app of `accounts` accounts from
// acceptance (the REST service call: MsgRandom check, quota, audience
// evaluation, durable task row) to the end of its fan-out (live pass to
// the first 10,000 accounts, which are connected; progress saved; task
// Done).
func benchPush(b *testing.B, accounts int, cond *im.Condition) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	idx := audience.New()
	batch := make([]im.Change, 0, 4096)
	for i := 1; i <= accounts; i++ {
		c := im.Change{App: app, Op: im.ChangeUpsert, ID: fmt.Sprint("u", i), Ordinal: uint32(i)}
		if i%2 == 0 {
			c.NewTags = []string{"even"}
		}
		if batch = append(batch, c); len(batch) == cap(batch) {
			idx.Apply(batch)
			batch = batch[:0]
		}
	}
	idx.Apply(batch)
	online := roaring.New()
	online.AddRange(1, uint64(min(accounts, 10_000))+1)
	done := make(doneWaker, 1)
	eng := fanout.New(st, benchLive{online}, fanout.Options{}, nil)
	eng.SetHooks(done)
	eng.Start(ctx)
	defer eng.Stop()
	push := service.NewPush(st, st, idx, eng, service.PushConfig{})
	var total int64
	var accept time.Duration
	b.ResetTimer()
	for i := range b.N {
		req := &service.PushRequest{Kind: im.PushCondition, MsgRandom: uint32(i), HasRandom: true, Condition: cond,
			MsgBody: json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hello"}}]`)}
		t0 := time.Now()
		id, err := push.Push(ctx, app, "admin", req)
		if err != nil {
			b.Fatal(err)
		}
		accept += time.Since(t0)
		<-done
		b.StopTimer()
		tk, err := st.Task(ctx, app, id)
		if err != nil || tk.State != im.TaskDone || !tk.Stored() {
			b.Fatalf("task %s: state %d stored %v, %v", id, tk.State, tk.Stored(), err)
		}
		total += tk.Total
		b.StartTimer()
	}
	b.ReportMetric(float64(accept.Microseconds())/1000/float64(b.N), "accept-ms/op")
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "recipients/s")
}

// BenchmarkPushAll1M pushes to every account of a 1M-account app.
func BenchmarkPushAll1M(b *testing.B) { benchPush(b, 1_000_000, nil) }

// BenchmarkPushTag500k pushes to the 500,000 accounts of one tag (a
// sparse audience: bitset containers rather than runs).
func BenchmarkPushTag500k(b *testing.B) {
	benchPush(b, 1_000_000, &im.Condition{TagsAnd: []string{"even"}})
}

// sizes are the audiences of the growth benchmarks.
var sizes = []struct {
	name string
	n    int
}{{"10k", 10_000}, {"100k", 100_000}, {"1M", 1_000_000}}

// BenchmarkPushSizes pushes to everyone of apps of 10k, 100k and 1M
// accounts (10,000 of them connected in each), in one run, to show how
// the cost of a stored push grows with its audience.
func BenchmarkPushSizes(b *testing.B) {
	for _, s := range sizes {
		b.Run(s.name, func(b *testing.B) { benchPush(b, s.n, nil) })
	}
}

// BenchmarkNaiveInboxSizes is the yardstick of BenchmarkPushSizes at the
// same sizes: one inbox row per recipient.
func BenchmarkNaiveInboxSizes(b *testing.B) {
	for _, s := range sizes {
		b.Run(s.name, func(b *testing.B) { naiveInbox(b, s.n) })
	}
}

// BenchmarkNaiveInbox1M is the yardstick of BenchmarkPushAll1M: the naive
// fan-out that stores one inbox row per recipient, 1M rows in one
// transaction, on SQLite with the same durability (WAL, synchronous=FULL).
func BenchmarkNaiveInbox1M(b *testing.B) { naiveInbox(b, 1_000_000) }

// naiveInbox writes one inbox row per recipient of `accounts`, in one
// transaction per push.
func naiveInbox(b *testing.B, accounts int) {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "cache_size(-131072)")
	db, err := sql.Open("sqlite", filepath.Join(b.TempDir(), "naive.db")+"?"+q.Encode())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE inbox (account INTEGER NOT NULL, task INTEGER NOT NULL,
		PRIMARY KEY (account, task)) WITHOUT ROWID`); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		ins, err := tx.Prepare(`INSERT INTO inbox (account, task) VALUES (?, ?)`)
		if err != nil {
			b.Fatal(err)
		}
		for a := 1; a <= accounts; a++ {
			if _, err := ins.Exec(a, i); err != nil {
				b.Fatal(err)
			}
		}
		ins.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(accounts*b.N)/b.Elapsed().Seconds(), "recipients/s")
}
