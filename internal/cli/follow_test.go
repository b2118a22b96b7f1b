package cli

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"timd/internal/audience"
	"timd/internal/config"
	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/sqlite"
)

// TestFollowerSQLiteUnchanged: on a store of its own (SQLite, no NATS)
// the single-node path is what it was: the index itself is the store's
// change sink (a write is in the index before it is acknowledged),
// pushes never wait, nothing polls, and no index-tail metric exists.
func TestFollowerSQLiteUnchanged(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	idx := audience.New()
	reg := prometheus.NewRegistry()
	f := newFollower(service.IndexSource{Store: st, Changes: st, Index: idx}, false, nil, config.Default(), reg)
	if sink, ok := f.sink().(*audience.Index); !ok || sink != idx {
		t.Fatalf("sink of a single-node store is %T, want the index itself", f.sink())
	}
	if f.syncer() != nil {
		t.Fatal("a single-node push would wait for the store")
	}
	if err := f.start(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.stop()
	st.SetChangeSink(f.sink())
	const app = 1400000001
	if err := st.PutApp(ctx, im.App{SDKAppID: app, SecretKey: "k", Admins: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ImportAccounts(ctx, app, []im.AccountInput{{UserID: "u1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ApplyEdits(ctx, app, []im.Edit{{Account: "u1", Op: im.OpAddTags, Tags: []string{"vip"}}}, im.EditLimits{}); err != nil {
		t.Fatal(err)
	}
	bm, err := idx.Evaluate(app, &im.AttrSchema{}, &im.Condition{TagsAnd: []string{"vip"}}, audience.Options{})
	if err != nil || bm.GetCardinality() != 1 {
		t.Fatalf("the acknowledged tag write is not in the index: %v, %v", bm, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "timd_index_") {
			t.Fatalf("single node registers %s", mf.GetName())
		}
	}
}

// TestFollowerSharedStore: on a shared store the tail is the sink and the
// push's wait, unless --index-sync-wait is 0.
func TestFollowerSharedStore(t *testing.T) {
	idx := audience.New()
	cfg := config.Default()
	f := newFollower(service.IndexSource{Index: idx}, true, nil, cfg, prometheus.NewRegistry())
	if _, ok := f.sink().(*service.IndexTail); !ok || f.syncer() == nil {
		t.Fatalf("shared store: sink %T, syncer %v", f.sink(), f.syncer())
	}
	cfg.IndexSyncWait = 0
	if f := newFollower(service.IndexSource{Index: idx}, true, nil, cfg, prometheus.NewRegistry()); f.syncer() != nil {
		t.Fatal("--index-sync-wait 0 still waits")
	}
}
