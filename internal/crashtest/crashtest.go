// Package crashtest is `timd crashtest`: it runs `timd serve` as a child
// process, writes to it at full speed, kills it with SIGKILL at random
// moments, restarts it on the same store and checks that every
// acknowledged write survived and that the in-memory audience index
// equals the store; then it kills the server in the middle of a push
// fan-out and checks that every recipient gets the push exactly once.
package crashtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"timd/internal/im"
	"timd/internal/loadgen"
)

// Config says what to run and how hard.
type Config struct {
	Bin      string        // the timd binary to run as `timd serve`
	Store    string        // store directory; "" for a fresh temporary one, removed after a pass
	Accounts int           // account population
	Writers  int           // concurrent writers
	Kills    int           // kill -9 rounds of phase 1
	Round    time.Duration // each round writes for a random time in [Round/10, Round] before the kill
	Live     int           // WebSocket clients of phase 2
	Seed     uint64        // seeds the workload (accounts, ops, kill moments)
	Progress io.Writer     // progress line; nil for none
}

func (c *Config) validate() error {
	switch {
	case c.Bin == "":
		return errors.New("no timd binary")
	case c.Accounts < 100:
		return errors.New("--accounts must be at least 100")
	case c.Writers < 1 || c.Writers > c.Accounts:
		return errors.New("--writers must be between 1 and --accounts")
	case c.Kills < 1:
		return errors.New("--kills must be at least 1")
	case c.Round < 10*time.Millisecond:
		return errors.New("--duration-per-round must be at least 10ms")
	case c.Live < 1 || c.Live > c.Accounts:
		return errors.New("--live must be between 1 and --accounts")
	}
	return nil
}

// appCreds is the app the test creates in the store.
type appCreds struct {
	id         uint64
	key, admin string
}

// runner is one run's state.
type runner struct {
	cfg   Config
	rng   *rand.Rand
	app   appCreds
	store string
	l     *launcher
	srv   *server
	api   *loadgen.Client
	prog  *progress
	rep   *Report
	start time.Time

	ids      []string
	accounts []Account

	mu      sync.Mutex
	randoms map[uint32]bool // MsgRandoms used in this run
	tasks   map[string]bool // TaskIds of phase 1
}

// Run runs both phases and returns the report. Violations are in the
// report; the error is for a run that could not be carried out (the
// binary does not start, a setup call fails).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		prog: &progress{w: cfg.Progress}, randoms: map[uint32]bool{}, tasks: map[string]bool{}, start: time.Now()}
	r.rep = &Report{Seed: cfg.Seed, Accounts: cfg.Accounts, Writers: cfg.Writers, Kills: cfg.Kills,
		Round: cfg.Round, Live: cfg.Live}
	// The app is fresh in every run, whatever the seed, so that a reused
	// store holds nothing of it.
	r.app = appCreds{id: 1_400_000_000 + rand.Uint64N(100_000_000), key: fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64()),
		admin: "administrator"}
	r.store = cfg.Store
	if r.store == "" {
		dir, err := os.MkdirTemp("", "timd-crashtest-")
		if err != nil {
			return nil, err
		}
		r.store = dir
	}
	r.rep.Store = r.store
	r.l = newLauncher(cfg.Bin, r.store, r.app)
	defer func() {
		if r.srv != nil && r.srv.alive() {
			r.srv.kill()
		}
	}()
	err := r.run(ctx)
	r.prog.done()
	r.rep.Elapsed = time.Since(r.start)
	if err != nil {
		r.rep.Incomplete = err.Error()
	}
	if err == nil && len(r.rep.Violations) == 0 && cfg.Store == "" {
		r.rep.StoreRemoved = os.RemoveAll(r.store) == nil
	}
	return r.rep, err
}

func (r *runner) run(ctx context.Context) error {
	if err := r.startServer(ctx); err != nil {
		return err
	}
	if err := r.prepare(ctx); err != nil {
		return err
	}
	if err := r.writePhase(ctx); err != nil {
		return err
	}
	return r.fanoutPhase(ctx)
}

// startServer starts the child and a client for it.
func (r *runner) startServer(ctx context.Context) error {
	srv, took, err := r.l.start(ctx)
	if err != nil {
		return err
	}
	r.srv = srv
	r.api, err = loadgen.NewClient(loadgen.Config{Base: srv.base, SDKAppID: r.app.id, Key: r.app.key,
		Admin: r.app.admin, Concurrency: r.cfg.Writers + 8})
	r.rep.lastRestart = took
	return err
}

// prepare names the attributes and imports the population.
func (r *runner) prepare(ctx context.Context) error {
	names := map[string]string{}
	for i, n := range attrNames {
		names[fmt.Sprint(i)] = n
	}
	if _, err := r.call(ctx, "timpush/set_attr_name", map[string]any{"AttrNames": names}); err != nil {
		return err
	}
	r.ids = make([]string, r.cfg.Accounts)
	r.accounts = make([]Account, r.cfg.Accounts)
	for i := range r.ids {
		r.ids[i] = fmt.Sprintf("ct%07d", i)
		r.accounts[i] = NewAccount(State{})
	}
	return r.batches(ctx, len(r.ids), func(ctx context.Context, lo, hi int) error {
		r.prog.set("importing %d accounts: %d", len(r.ids), hi)
		_, err := r.call(ctx, "im_open_login_svc/multiaccount_import", map[string]any{"Accounts": r.ids[lo:hi]})
		return err
	})
}

// batches calls f on [lo, hi) ranges of 100 of n items, 8 at a time, and
// returns the first error.
func (r *runner) batches(ctx context.Context, n int, f func(ctx context.Context, lo, hi int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for lo := 0; lo < n && ctx.Err() == nil; lo += im.MaxAccountsPerCall {
		hi := min(n, lo+im.MaxAccountsPerCall)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(ctx, lo, hi); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// call posts body (a value to marshal) as the admin and returns the raw
// answer; a transport error or a non-zero ErrorCode is an error.
func (r *runner) call(ctx context.Context, cmd string, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	code, raw, err := r.api.Call(ctx, cmd, b)
	if err != nil {
		if !r.srv.alive() {
			return nil, fmt.Errorf("%s: %w (%v):\n%s", cmd, errServerGone, r.srv.err, r.srv.log)
		}
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if code != 0 {
		return raw, fmt.Errorf("%s: ErrorCode %d: %.300s", cmd, code, raw)
	}
	return raw, nil
}

// maxViolations bounds the violations kept in the report.
const maxViolations = 100

// violation records a broken guarantee.
func (r *runner) violation(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rep.Violations) == maxViolations {
		r.rep.Violations[maxViolations-1] = "(more violations not listed)"
		return
	}
	r.rep.Violations = append(r.rep.Violations, fmt.Sprintf(format, args...))
}

// msgRandom returns a MsgRandom not used before in this run. It is drawn
// outside the seeded source: the dedup window is a week, and a rerun with
// the same seed must not find its pushes already sent.
func (r *runner) msgRandom() uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		n := rand.Uint32()
		if n != 0 && !r.randoms[n] {
			r.randoms[n] = true
			return n
		}
	}
}

// progress is the one status line, rewritten in place.
type progress struct {
	mu   sync.Mutex
	w    io.Writer
	last time.Time
	on   bool
}

// set rewrites the line, at most ten times a second.
func (p *progress) set(format string, args ...any) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.on = true
	fmt.Fprintf(p.w, "\r%-100.100s", fmt.Sprintf(format, args...))
}

// done ends the line.
func (p *progress) done() {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.on {
		fmt.Fprintf(p.w, "\r%-100s\r", "")
	}
	p.on = false
	p.last = time.Time{}
}

// log prints a line above the progress line.
func (p *progress) log(format string, args ...any) {
	if p.w == nil {
		return
	}
	p.done()
	fmt.Fprintf(p.w, format+"\n", args...)
}
