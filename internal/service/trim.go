package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The scheduled trim of a change log shared by several nodes.
//
// On SQLite the change log is one process's, and writing an index
// snapshot trims it up to the snapshot's positions (SaveSnapshot). On
// PostgreSQL other nodes may be behind this one, so a snapshot never
// trims: instead every node runs a ChangeTrim, which every Every forgets
// the changes older than Retention. The store lets one node at a time do
// it, in short batches (postgres.Store.TrimChangesOlder). A node whose
// index or snapshot is older than the trim rebuilds the app from a store
// scan (IndexTail.CatchUp, LoadIndex), so the window only decides how
// long a node may be stopped or behind and still catch up by replay.

// OldChangeTrimmer is a change log that forgets the changes older than an
// age; ran is false when another node is trimming it.
type OldChangeTrimmer interface {
	TrimChangesOlder(ctx context.Context, age time.Duration, batch int) (deleted int64, ran bool, err error)
}

// ChangeTrimConfig configures a ChangeTrim.
type ChangeTrimConfig struct {
	// Retention is how long changes are kept; 0 trims every change
	// committed before the round (the server runs no ChangeTrim with
	// --change-retention 0).
	Retention time.Duration
	Every     time.Duration // run a round this often (default TrimEvery(Retention))
	Batch     int           // rows per transaction (default 5000)
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// TrimEvery is the default round interval for a retention: a quarter of
// it, from 1 s to 5 min.
func TrimEvery(retention time.Duration) time.Duration {
	return min(max(retention/4, time.Second), 5*time.Minute)
}

// ChangeTrim runs the scheduled trim of a shared change log.
type ChangeTrim struct {
	log  OldChangeTrimmer
	cfg  ChangeTrimConfig
	m    trimMetrics
	stop chan struct{}
	done chan struct{}
}

// NewChangeTrim returns a trim of log; Start it, and Stop it before the
// store closes.
func NewChangeTrim(log OldChangeTrimmer, cfg ChangeTrimConfig) *ChangeTrim {
	if cfg.Every <= 0 {
		cfg.Every = TrimEvery(cfg.Retention)
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 5000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &ChangeTrim{log: log, cfg: cfg, m: newTrimMetrics(cfg.Registerer),
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Start runs a round every cfg.Every until Stop; the first comes after
// one interval, not during start-up.
func (c *ChangeTrim) Start(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		<-c.stop
		cancel()
	}()
	go func() {
		defer close(c.done)
		t := time.NewTicker(c.cfg.Every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := c.Round(ctx); err != nil && ctx.Err() == nil {
					c.cfg.Logger.Warn("trimming the change log failed; retrying at the next round", "err", err)
				}
			}
		}
	}()
}

// Stop ends the trim and waits for a round in progress (which its
// context cancels between statements).
func (c *ChangeTrim) Stop() {
	close(c.stop)
	<-c.done
}

// Round trims once and counts what it did.
func (c *ChangeTrim) Round(ctx context.Context) error {
	t0 := time.Now()
	n, ran, err := c.log.TrimChangesOlder(ctx, c.cfg.Retention, c.cfg.Batch)
	c.m.trimmed.Add(float64(n))
	switch {
	case err != nil:
		c.m.rounds.WithLabelValues("failed").Inc()
		return err
	case !ran:
		c.m.rounds.WithLabelValues("locked").Inc()
		return nil
	}
	c.m.rounds.WithLabelValues("ran").Inc()
	c.m.last.SetToCurrentTime()
	if n > 0 {
		c.cfg.Logger.Info("change log trimmed", "rows", n, "retention", c.cfg.Retention,
			"took", time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

type trimMetrics struct {
	trimmed prometheus.Counter
	rounds  *prometheus.CounterVec
	last    prometheus.Gauge
}

func newTrimMetrics(reg prometheus.Registerer) trimMetrics {
	m := trimMetrics{
		trimmed: prometheus.NewCounter(prometheus.CounterOpts{Name: "timd_change_log_trimmed_total",
			Help: "Change log rows older than --change-retention deleted by this node's scheduled trim."}),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "timd_change_log_trim_rounds_total",
			Help: "Rounds of the scheduled change log trim on this node: ran, locked (another node was trimming) or failed."},
			[]string{"outcome"}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "timd_change_log_trim_last_timestamp_seconds",
			Help: "Unix time of this node's last completed change log trim round (0: none yet)."}),
	}
	for _, o := range []string{"ran", "locked", "failed"} {
		m.rounds.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(m.trimmed, m.rounds, m.last)
	}
	return m
}
