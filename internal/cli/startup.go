package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"timd/internal/audience"
	"timd/internal/httpapi"
	"timd/internal/service"
)

// SnapshotFile is the name of the audience index snapshot in the store's
// directory.
const SnapshotFile = "index.snap"

// snapshotEvery is how often a running server writes an index snapshot
// when accounts have changed since the last one; it also writes one at a
// clean shutdown. A crash loses at most this much replay-free start-up.
const snapshotEvery = 5 * time.Minute

// startGate is the handler of a server that listens before it is ready:
// until ready is called, /healthz answers 503 with the start-up progress
// as JSON and every other request the envelope "server is starting";
// afterwards every request goes to the real handler.
type startGate struct {
	h        atomic.Pointer[http.Handler]
	progress *service.StartProgress
}

func newStartGate(p *service.StartProgress) *startGate {
	return &startGate{progress: p}
}

func (g *startGate) ready(h http.Handler) { g.h.Store(&h) }

func (g *startGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := g.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/healthz" {
		b, _ := json.Marshal(g.progress.Status())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(append(b, '\n'))
		return
	}
	httpapi.Starting(w, r)
}

// indexSource is the snapshot and replay wiring of a store.
func indexSource(store openedStore, index *audience.Index, p *service.StartProgress, log *slog.Logger) service.IndexSource {
	return service.IndexSource{Store: store.backend, Changes: store.backend, Index: index,
		Snapshot: store.snapshot, SharedLog: store.shared, Logger: log, Progress: p}
}

// startChangeTrim runs the scheduled trim of a shared change log
// (PostgreSQL) with --change-retention, and returns its stop; on SQLite,
// or with a retention of 0, it runs nothing.
func startChangeTrim(ctx context.Context, store openedStore, retention time.Duration, reg prometheus.Registerer,
	log *slog.Logger) (stop func()) {
	t, ok := store.backend.(service.OldChangeTrimmer)
	if !store.shared || !ok || retention <= 0 {
		return func() {}
	}
	trim := service.NewChangeTrim(t, service.ChangeTrimConfig{Retention: retention, Registerer: reg, Logger: log})
	trim.Start(ctx)
	return trim.Stop
}

// loadIndex loads the audience index before serving and logs how.
func loadIndex(ctx context.Context, src service.IndexSource, log *slog.Logger) error {
	start := time.Now()
	rep, err := service.LoadIndex(ctx, src)
	if err != nil {
		return err
	}
	log.Info("audience index ready", "accounts", rep.Accounts, "from_snapshot", rep.Loaded,
		"replayed", rep.Replayed, "rebuilt", rep.Rebuilt, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// snapshotter writes index snapshots every snapshotEvery while accounts
// change, and once more at stop.
type snapshotter struct {
	src  service.IndexSource
	log  *slog.Logger
	last map[uint64]uint64
	stop chan struct{}
	done chan struct{}
}

func startSnapshotter(src service.IndexSource, log *slog.Logger) *snapshotter {
	s := &snapshotter{src: src, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *snapshotter) run() {
	defer close(s.done)
	t := time.NewTicker(snapshotEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.save("shutdown")
			return
		case <-t.C:
			s.save("periodic")
		}
	}
}

// save writes a snapshot unless no app's position moved since the last.
func (s *snapshotter) save(why string) {
	rep, err := service.SaveSnapshot(context.Background(), s.src, s.last)
	if err != nil {
		s.log.Error("writing audience index snapshot failed", "err", err)
		return
	}
	if rep.Bytes > 0 {
		s.log.Info("audience index snapshot written", "why", why, "bytes", rep.Bytes, "took", rep.Took.Round(time.Millisecond))
	}
	s.last = rep.Positions
}

// close writes the final snapshot; call it after the last store write.
func (s *snapshotter) close() {
	close(s.stop)
	<-s.done
}
