package service_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"timd/internal/audience"
	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/postgres"
)

// gauge returns the value of the gauge or counter name whose labels
// include label=value ("" matches the first series).
func gauge(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			ok := label == ""
			for _, l := range m.GetLabel() {
				ok = ok || l.GetName() == label && l.GetValue() == value
			}
			if !ok {
				continue
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s{%s=%q} not registered", name, label, value)
	return 0
}

// TestChangeTrimLaggingNodeRebuilds: the scheduled trim keeps the changes
// inside its window; once they are older, A's round deletes them and
// counts it, and B, which never read them, rebuilds the app from a scan
// and equals the store.
func TestChangeTrimLaggingNodeRebuilds(t *testing.T) {
	a, b := twoNodes(t, service.TailConfig{})
	ctx := context.Background()
	a.importUsers(t, 0, 40)
	a.edit(t, im.Edit{Account: "u7", Op: im.OpAddTags, Tags: []string{"late"}})
	pos := a.storePos(t)

	keep := service.NewChangeTrim(a.st, service.ChangeTrimConfig{Retention: time.Hour, Registerer: prometheus.NewRegistry()})
	if err := keep.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.st.ChangedSince(ctx, tailApp, 0); err != nil {
		t.Fatalf("changes inside the window were trimmed: %v", err)
	}

	reg := prometheus.NewRegistry()
	trim := service.NewChangeTrim(a.st, service.ChangeTrimConfig{Retention: 0, Batch: 16, Registerer: reg})
	if err := trim.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if got := gauge(t, reg, "timd_change_log_trimmed_total", "", ""); got != float64(pos) {
		t.Fatalf("timd_change_log_trimmed_total %v, want %d", got, pos)
	}
	if got := gauge(t, reg, "timd_change_log_trim_rounds_total", "outcome", "ran"); got != 1 {
		t.Fatalf("%v rounds ran, want 1", got)
	}
	if last := gauge(t, reg, "timd_change_log_trim_last_timestamp_seconds", "", ""); time.Since(time.Unix(int64(last), 0)) > time.Minute {
		t.Fatalf("timd_change_log_trim_last_timestamp_seconds %v is not the round's time", last)
	}
	if _, _, err := b.st.ChangedSince(ctx, tailApp, 0); !errors.Is(err, im.ErrChangesTrimmed) {
		t.Fatalf("ChangedSince(0) after trimming everything: %v, want ErrChangesTrimmed", err)
	}
	if err := b.tail.CatchUp(ctx, tailApp); err != nil {
		t.Fatal(err)
	}
	if got := metric(t, b.reg, "timd_index_tail_rebuilds_total"); got != 1 {
		t.Fatalf("%v rebuilds on the lagging node, want 1", got)
	}
	if tagged(b.idx, "late") != 1 || b.idx.Count(tailApp) != 40 {
		t.Fatalf("lagging node after the rebuild: tag late %d, accounts %d", tagged(b.idx, "late"), b.idx.Count(tailApp))
	}
	b.equalsRebuild(t)
}

// TestSnapshotOnSharedLog: a node's snapshot on PostgreSQL never trims the
// shared log; another node's later writes are replayed on top of it at
// the next load (and only they); once the scheduled trim passed its
// position, or for another schema, the snapshot is not used and the app
// is rebuilt. Each load equals the store.
func TestSnapshotOnSharedLog(t *testing.T) {
	a, b := twoNodes(t, service.TailConfig{})
	ctx := context.Background()
	a.importUsers(t, 0, 40)
	a.edit(t, im.Edit{Account: "u1", Op: im.OpAddTags, Tags: []string{"vip"}})
	if err := a.tail.CatchUp(ctx, tailApp); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "node-a.snap")
	srcA := service.IndexSource{Store: a.st, Changes: a.st, Index: a.idx, Snapshot: path, SharedLog: true}
	saved, err := service.SaveSnapshot(ctx, srcA, nil)
	if err != nil || saved.Bytes == 0 {
		t.Fatalf("SaveSnapshot: %+v, %v", saved, err)
	}
	if _, _, err := b.st.ChangedSince(ctx, tailApp, 0); err != nil {
		t.Fatalf("a snapshot on a shared log trimmed it: %v", err)
	}

	b.importUsers(t, 40, 50)
	b.edit(t, im.Edit{Account: "u2", Op: im.OpAddTags, Tags: []string{"vip"}},
		im.Edit{Account: "u3", Op: im.OpAddTags, Tags: []string{"vip"}}, im.Edit{Account: "u1", Op: im.OpRemoveTags, Tags: []string{"vip"}})

	load := func(st *postgres.Store) (*node, service.LoadReport) {
		t.Helper()
		n := &node{st: st, idx: audience.New()}
		rep, err := service.LoadIndex(ctx, service.IndexSource{Store: st, Changes: st, Index: n.idx, Snapshot: path, SharedLog: true})
		if err != nil {
			t.Fatal(err)
		}
		return n, rep
	}
	n, rep := load(a.st)
	if rep.Loaded != 1 || rep.Rebuilt != 0 || rep.Replayed != 13 || rep.SnapshotErr != nil {
		t.Fatalf("load after another node's writes: %+v; want the snapshot and 13 replayed accounts", rep)
	}
	if tagged(n.idx, "vip") != 2 || n.idx.Count(tailApp) != 50 {
		t.Fatalf("after the replay: vip %d, accounts %d; want 2, 50", tagged(n.idx, "vip"), n.idx.Count(tailApp))
	}
	n.equalsRebuild(t)

	if _, _, err := a.st.TrimChangesOlder(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	n, rep = load(a.st)
	if rep.Loaded != 0 || rep.Rebuilt != 1 {
		t.Fatalf("load after the log was trimmed past the snapshot: %+v; want a rebuild", rep)
	}
	n.equalsRebuild(t)

	other, _ := twoNodes(t, service.TailConfig{}) // another schema: another store id
	if _, rep = load(other.st); !errors.Is(rep.SnapshotErr, audience.ErrSnapshot) || rep.Loaded != 0 || rep.Rebuilt != 1 {
		t.Fatalf("load of another schema's snapshot: %+v; want it refused (ErrSnapshot) and a rebuild", rep)
	}
}
