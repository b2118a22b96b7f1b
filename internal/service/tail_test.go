package service_test

import (
	"bytes"
	"context"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"timd/internal/testenv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"timd/internal/audience"
	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/postgres"
)

const tailApp = 1400000011

// node is one timd node of a test cluster: its own handle on the shared
// PostgreSQL database, its own audience index and the tail that keeps it.
type node struct {
	st   *postgres.Store
	idx  *audience.Index
	tail *service.IndexTail
	reg  *prometheus.Registry
}

// pgURL returns TIMD_TEST_POSTGRES or skips.
func pgURL(t testing.TB) string {
	t.Helper()
	return testenv.PostgresURL(t)
}

// freshSchema creates a schema of its own for one test, dropped at the end.
func freshSchema(t testing.TB, url string) string {
	t.Helper()
	return testenv.Schema(t, url, "timd_tail_")
}

// twoNodes opens two nodes on one fresh schema, with tails configured by
// cfg but not started, and the app with four attribute slots.
func twoNodes(t testing.TB, cfg service.TailConfig) (*node, *node) {
	t.Helper()
	url := pgURL(t)
	schema := freshSchema(t, url)
	open := func() *node {
		st, err := postgres.Open(context.Background(), url, postgres.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		n := &node{st: st, idx: audience.New(), reg: prometheus.NewRegistry()}
		c := cfg
		c.Registerer = n.reg
		n.tail = service.NewIndexTail(service.IndexSource{Store: st, Changes: st, Index: n.idx}, c, nil)
		st.SetChangeSink(n.tail)
		return n
	}
	a, b := open(), open()
	ctx := context.Background()
	var s im.AttrSchema
	for i := 0; i < 4; i++ {
		s[i] = im.AttrSlot{Name: fmt.Sprint("a", i)}
	}
	if err := a.st.PutApp(ctx, im.App{SDKAppID: tailApp, SecretKey: "k", Admins: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.st.PutAttrSchema(ctx, tailApp, s); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func (n *node) importUsers(t testing.TB, from, to int) {
	t.Helper()
	var in []im.AccountInput
	for i := from; i < to; i++ {
		in = append(in, im.AccountInput{UserID: fmt.Sprint("u", i)})
	}
	if _, err := n.st.ImportAccounts(context.Background(), tailApp, in); err != nil {
		t.Fatal(err)
	}
}

func (n *node) edit(t testing.TB, edits ...im.Edit) {
	t.Helper()
	if _, err := n.st.ApplyEdits(context.Background(), tailApp, edits, im.EditLimits{}); err != nil {
		t.Fatal(err)
	}
}

// storePos is the app's change position in the store.
func (n *node) storePos(t testing.TB) uint64 {
	t.Helper()
	p, err := n.st.ChangePosition(context.Background(), tailApp)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// snapshotBytes encodes idx's copy of the app (with its position).
func snapshotBytes(t testing.TB, idx *audience.Index) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := idx.Snapshot("s").WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// equalsRebuild fails unless n's index equals an index rebuilt from the
// store at the same position, bitmap for bitmap.
func (n *node) equalsRebuild(t testing.TB) {
	t.Helper()
	fresh := audience.New()
	if _, err := service.LoadIndex(context.Background(), service.IndexSource{Store: n.st, Changes: n.st, Index: fresh}); err != nil {
		t.Fatal(err)
	}
	if got, want := n.idx.Position(tailApp), fresh.Position(tailApp); got != want {
		t.Fatalf("index position %d, rebuild at %d", got, want)
	}
	if !bytes.Equal(snapshotBytes(t, n.idx), snapshotBytes(t, fresh)) {
		t.Fatalf("index at position %d differs from a rebuild from the store (%d accounts vs %d)",
			n.idx.Position(tailApp), n.idx.Count(tailApp), fresh.Count(tailApp))
	}
}

// waitCaughtUp waits (generously) until n's index reaches the store's
// position.
func (n *node) waitCaughtUp(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		want := n.storePos(t)
		if got := n.idx.Position(tailApp); got == want {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("index at position %d, store at %d after 30 s", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func tagged(idx *audience.Index, tag string) uint64 {
	bm, err := idx.Evaluate(tailApp, &im.AttrSchema{}, &im.Condition{TagsAnd: []string{tag}}, audience.Options{TagsNotAll: true})
	if err != nil {
		return 0
	}
	return bm.GetCardinality()
}

// TestTailConvergesUnderConcurrentWriters writes accounts, attributes and
// tags through both nodes at once, with both tails running on a short
// poll: each index ends equal to a rebuild from the store.
func TestTailConvergesUnderConcurrentWriters(t *testing.T) {
	a, b := twoNodes(t, service.TailConfig{Poll: 20 * time.Millisecond})
	const n = 300
	a.importUsers(t, 0, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.tail.Start(ctx)
	b.tail.Start(ctx)
	defer a.tail.Stop()
	defer b.tail.Stop()
	var wg sync.WaitGroup
	for w, nd := range []*node{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := mrand.New(mrand.NewPCG(uint64(w), 11))
			for round := 0; round < 25; round++ {
				switch r.IntN(10) {
				case 0:
					base := n + w*1000 + round*3
					var in []im.AccountInput
					for i := base; i < base+3; i++ {
						in = append(in, im.AccountInput{UserID: fmt.Sprint("u", i)})
					}
					if _, err := nd.st.ImportAccounts(ctx, tailApp, in); err != nil {
						t.Error(err)
						return
					}
				case 1:
					if _, err := nd.st.DeleteAccounts(ctx, tailApp, []string{fmt.Sprint("u", r.IntN(n))}); err != nil {
						t.Error(err)
						return
					}
				default:
					edits := make([]im.Edit, 1+r.IntN(20))
					for i := range edits {
						edits[i] = randomEdit(r, n)
					}
					if _, err := nd.st.ApplyEdits(ctx, tailApp, edits, im.EditLimits{}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	a.waitCaughtUp(t)
	b.waitCaughtUp(t)
	a.equalsRebuild(t)
	b.equalsRebuild(t)
}

// TestTailGapRefetch: node B never hears of A's write (a lost wake-up)
// and then writes itself; its own change is beyond its position, so the
// sink must not apply it, and one catch-up pass re-reads both.
func TestTailGapRefetch(t *testing.T) {
	a, b := twoNodes(t, service.TailConfig{})
	ctx := context.Background()
	a.importUsers(t, 0, 10)
	if err := b.tail.CatchUp(ctx, tailApp); err != nil {
		t.Fatal(err)
	}
	start := b.idx.Position(tailApp)
	a.edit(t, im.Edit{Account: "u1", Op: im.OpAddTags, Tags: []string{"fromA"}})
	b.edit(t, im.Edit{Account: "u2", Op: im.OpAddTags, Tags: []string{"fromB"}})
	if got := b.idx.Position(tailApp); got != start {
		t.Fatalf("B applied its own change across a gap: position %d, was %d", got, start)
	}
	if tagged(b.idx, "fromB") != 0 {
		t.Fatal("B's index has its own change beyond the gap")
	}
	if err := b.tail.CatchUp(ctx, tailApp); err != nil {
		t.Fatal(err)
	}
	if tagged(b.idx, "fromA") != 1 || tagged(b.idx, "fromB") != 1 {
		t.Fatalf("after the catch-up: fromA %d, fromB %d, want 1 and 1", tagged(b.idx, "fromA"), tagged(b.idx, "fromB"))
	}
	b.equalsRebuild(t)
	// A's own change was the next position on A: applied at once; B's
	// change is beyond A's position, left to A's tail.
	if got := a.idx.Position(tailApp); got != start+1 {
		t.Fatalf("A at position %d, want %d (its own change applied at once)", got, start+1)
	}
	if err := a.tail.CatchUp(ctx, tailApp); err != nil {
		t.Fatal(err)
	}
	a.equalsRebuild(t)
}

// recorder keeps every change a store hands to its sink, and passes them on.
type recorder struct {
	mu   sync.Mutex
	got  []im.Change
	next im.ChangeSink
}

func (r *recorder) Apply(c []im.Change) {
	r.mu.Lock()
	r.got = append(r.got, c...)
	r.mu.Unlock()
	r.next.Apply(c)
}

// TestTailIdempotentReapply feeds B's sink A's changes after B's tail
// has read them (and twice): the index does not move.
func TestTailIdempotentReapply(t *testing.T) {
	a, b := twoNodes(t, service.TailConfig{})
	rec := &recorder{next: a.tail}
	a.st.SetChangeSink(rec)
	ctx := context.Background()
	a.importUsers(t, 0, 20)
	a.edit(t, im.Edit{Account: "u3", Op: im.OpSetAttrs, Attrs: im.AttrValues{"x", "y"}},
		im.Edit{Account: "u4", Op: im.OpAddTags, Tags: []string{"t1", "t2"}})
	a.edit(t, im.Edit{Account: "u4", Op: im.OpRemoveTags, Tags: []string{"t1"}})
	if _, err := a.st.DeleteAccounts(ctx, tailApp, []string{"u5"}); err != nil {
		t.Fatal(err)
	}
	if err := b.tail.CatchUp(ctx, tailApp); err != nil {
		t.Fatal(err)
	}
	before := snapshotBytes(t, b.idx)
	b.tail.Apply(rec.got)
	b.tail.Apply(rec.got)
	if !bytes.Equal(before, snapshotBytes(t, b.idx)) {
		t.Fatal("re-applying changes at or below the position changed the index")
	}
	if got := metric(t, b.reg, "timd_index_own_changes_skipped_total"); got != float64(2*len(rec.got)) {
		t.Fatalf("skipped %v changes, want %d", got, 2*len(rec.got))
	}
	// And a second pass over the same positions reads nothing.
	if err := b.tail.CatchUp(ctx, tailApp); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, snapshotBytes(t, b.idx)) {
		t.Fatal("a second catch-up changed the index")
	}
	b.equalsRebuild(t)
}

// metric returns the value of a counter, or the sample count of a
// histogram, registered on reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if h := m.GetHistogram(); h != nil {
			return float64(h.GetSampleCount())
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// TestTailRebuildsWhenTrimmed: A trims the log past B's position; B
// rebuilds the app from a store scan and still equals the store.
func TestTailRebuildsWhenTrimmed(t *testing.T) {
	a, b := twoNodes(t, service.TailConfig{})
	ctx := context.Background()
	a.importUsers(t, 0, 50)
	if err := b.tail.CatchUp(ctx, tailApp); err != nil {
		t.Fatal(err)
	}
	a.edit(t, im.Edit{Account: "u7", Op: im.OpAddTags, Tags: []string{"late"}})
	a.importUsers(t, 50, 60)
	if err := a.st.TrimChanges(ctx, tailApp, a.storePos(t)); err != nil {
		t.Fatal(err)
	}
	if err := b.tail.CatchUp(ctx, tailApp); err != nil {
		t.Fatal(err)
	}
	if got := metric(t, b.reg, "timd_index_tail_rebuilds_total"); got != 1 {
		t.Fatalf("%v rebuilds, want 1", got)
	}
	if tagged(b.idx, "late") != 1 || b.idx.Count(tailApp) != 60 {
		t.Fatalf("after the rebuild: tag late %d, accounts %d", tagged(b.idx, "late"), b.idx.Count(tailApp))
	}
	b.equalsRebuild(t)
}

// TestTailReadYourWrites pushes through B right after a tag write through
// A. B's tail is started with an hour-long poll, so only the push's wait
// (which wakes the tail) can bring the write in: the audience has it.
// Without the wait the same push misses it, which is what the wait is for.
func TestTailReadYourWrites(t *testing.T) {
	a, b := twoNodes(t, service.TailConfig{Poll: time.Hour, SyncWait: 30 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.importUsers(t, 0, 10)
	if err := b.tail.CatchUp(ctx, tailApp); err != nil {
		t.Fatal(err)
	}
	b.tail.Start(ctx)
	defer b.tail.Stop()
	push := func(sync bool, tag string, rnd uint32) int64 {
		cfg := service.PushConfig{}
		if sync {
			cfg.IndexSync = b.tail
		}
		p := service.NewPush(b.st, b.st, b.idx, nil, cfg)
		req := &service.PushRequest{Kind: im.PushCondition, MsgRandom: rnd, From: "x",
			Condition: &im.Condition{TagsAnd: []string{tag}}, Offline: []byte(`{"Title":"t","Desc":"d"}`)}
		task, _, err := p.Send(ctx, tailApp, req, service.SendOptions{Limits: service.PushLimits{}})
		if err != nil {
			t.Fatal(err)
		}
		return task.Total
	}
	a.edit(t, im.Edit{Account: "u1", Op: im.OpAddTags, Tags: []string{"vip"}})
	if got := push(false, "vip", 1); got != 0 {
		t.Fatalf("without the wait the push already saw the write (%d recipients): the test cannot tell", got)
	}
	if got := push(true, "vip", 2); got != 1 {
		t.Fatalf("push through B right after a tag write through A: %d recipients, want 1", got)
	}
	if got := metric(t, b.reg, "timd_index_sync_wait_seconds"); got != 1 {
		t.Fatalf("%v waits observed, want 1", got)
	}
}

// TestTailSyncTimeout: with no tail running the wait ends after SyncWait,
// counts a timeout and lets the push resolve from the index as it is.
func TestTailSyncTimeout(t *testing.T) {
	a, b := twoNodes(t, service.TailConfig{SyncWait: 50 * time.Millisecond})
	ctx := context.Background()
	a.importUsers(t, 0, 3)
	if err := b.tail.Sync(ctx, tailApp); err != nil {
		t.Fatal(err)
	}
	if got := metric(t, b.reg, "timd_index_sync_timeouts_total"); got != 1 {
		t.Fatalf("%v timeouts, want 1", got)
	}
	if b.idx.Position(tailApp) != 0 {
		t.Fatal("the index moved without a tail")
	}
}

// TestTailTraceReadsYourWrites: a batch push through A to an account just
// created through A; B's normal_push_trace names the recipient, because
// the trace waits for B's index as a push does (without the wait B's
// index has no ID for the new ordinal yet).
func TestTailTraceReadsYourWrites(t *testing.T) {
	a, b := twoNodes(t, service.TailConfig{Poll: time.Hour, SyncWait: 30 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.importUsers(t, 0, 3)
	if err := b.tail.CatchUp(ctx, tailApp); err != nil {
		t.Fatal(err)
	}
	b.tail.Start(ctx)
	defer b.tail.Stop()
	a.importUsers(t, 3, 4) // u3, which B has not read
	p := service.NewPush(a.st, a.st, a.idx, nil, service.PushConfig{IndexSync: a.tail})
	task, _, err := p.Send(ctx, tailApp, &service.PushRequest{Kind: im.PushBatch, MsgRandom: 9, From: "x",
		To: []string{"u3"}, Offline: []byte(`{"Title":"t"}`)}, service.SendOptions{})
	if err != nil || task.Total != 1 {
		t.Fatalf("batch to u3 through A: total %d, %v", task.Total, err)
	}
	trace := func(sync bool) string {
		st := service.NewStats(b.st, b.idx, nil)
		if sync {
			st.SetIndexSync(b.tail)
		}
		got, err := st.NormalTrace(ctx, tailApp, task.ID)
		if err != nil || len(got) != 1 {
			t.Fatalf("trace through B: %v, %v", got, err)
		}
		return got[0].ToAccount
	}
	if id := trace(false); id != "" {
		t.Fatalf("without the wait B already knew u3 (%q): the test cannot tell", id)
	}
	if id := trace(true); id != "u3" {
		t.Fatalf("trace through B names %q, want u3", id)
	}
}
