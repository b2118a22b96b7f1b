package crashtest

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"timd/internal/im"
)

// Round is what one round of phase 1 did and found.
type Round struct {
	Name          string        // "1".."N", or "final" for the round without a kill
	KilledAfter   time.Duration // writing time before the kill
	AckedRequests int64
	AckedWrites   int64         // account edits acknowledged
	OpenRequests  int64         // requests without an answer when the server died
	OpenWrites    int64         // account edits in them
	Ambiguous     int           // accounts with more than one legal state
	OpenApplied   int           // of those, accounts where an unanswered edit was applied
	Accounts      int           // accounts read back and checked
	Conditions    int           // audiences checked against the index
	Restart       time.Duration // process start to /healthz 200
}

// writePhase runs the kill rounds, then one round that stops its writers
// instead of the server and checks the index the writes maintained live.
func (r *runner) writePhase(ctx context.Context) error {
	for k := 1; k <= r.cfg.Kills; k++ {
		rd := &Round{Name: strconv.Itoa(k)}
		r.rep.Rounds = append(r.rep.Rounds, rd)
		delay := r.cfg.Round/10 + time.Duration(r.rng.Int64N(int64(r.cfg.Round-r.cfg.Round/10)+1))
		r.writeRound(ctx, rd, k, delay, true)
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.startServer(ctx); err != nil {
			return err
		}
		rd.Restart = r.rep.lastRestart
		if err := r.verify(ctx, rd); err != nil {
			return err
		}
	}
	rd := &Round{Name: "final"}
	r.rep.Rounds = append(r.rep.Rounds, rd)
	r.writeRound(ctx, rd, r.cfg.Kills+1, r.cfg.Round, false)
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.verify(ctx, rd)
}

// writeRound runs the writers for d, then kills the server (kill) or
// stops the writers, and waits for every writer to end.
func (r *runner) writeRound(ctx context.Context, rd *Round, k int, d time.Duration, kill bool) {
	var halt atomic.Bool // writers send nothing more
	var dead atomic.Bool // set just before the kill: failures from then on are expected
	var acked atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := range r.cfg.Writers {
		rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(k)<<16|uint64(w)))
		wg.Go(func() {
			var s Round
			r.writer(ctx, w, rng, &halt, &dead, &acked, &s)
			mu.Lock()
			rd.add(&s)
			mu.Unlock()
		})
	}
	t0 := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	end := time.NewTimer(d)
	defer end.Stop()
	for waiting := true; waiting; {
		r.prog.set("round %s/%d: writing %5.1fs, %d requests acknowledged", rd.Name, r.cfg.Kills, time.Since(t0).Seconds(), acked.Load())
		select {
		case <-tick.C:
		case <-end.C:
			waiting = false
		case <-ctx.Done():
			waiting = false
		}
	}
	rd.KilledAfter = time.Since(t0)
	if kill {
		dead.Store(true)
		halt.Store(true)
		r.srv.kill()
	} else {
		halt.Store(true)
	}
	wg.Wait()
	r.prog.done()
}

func (rd *Round) add(s *Round) {
	rd.AckedRequests += s.AckedRequests
	rd.AckedWrites += s.AckedWrites
	rd.OpenRequests += s.OpenRequests
	rd.OpenWrites += s.OpenWrites
}

// writer issues write requests at full speed over the accounts it owns
// (those whose index is w modulo the writer count: one writer per account,
// so an account's writes are applied in the order they were answered)
// until halted, and records each outcome in the model.
func (r *runner) writer(ctx context.Context, w int, rng *rand.Rand, halt, dead *atomic.Bool, acked *atomic.Int64, s *Round) {
	var owned []int
	for i := w; i < len(r.ids); i += r.cfg.Writers {
		owned = append(owned, i)
	}
	ids := make([]string, 0, im.MaxAccountsPerCall)
	accts := make([]int, 0, im.MaxAccountsPerCall)
	ops := make([]Op, 0, im.MaxAccountsPerCall)
	for ctx.Err() == nil && !halt.Load() {
		kind := OpKind(rng.IntN(int(numOps)))
		n := 1 + rng.IntN(min(im.MaxAccountsPerCall, len(owned)))
		start := rng.IntN(len(owned))
		ids, accts, ops = ids[:0], accts[:0], ops[:0]
		for j := range n {
			a := owned[(start+j)%len(owned)]
			accts = append(accts, a)
			ids = append(ids, r.ids[a])
			ops = append(ops, randomOp(rng, kind))
		}
		cmd, body := writeRequest(kind, ids, ops)
		code, raw, err := r.api.Call(ctx, cmd, body)
		var ans writeAnswer
		if err == nil {
			err = json.Unmarshal(raw, &ans)
		}
		switch {
		case err != nil || code != 0:
			// No answer, or an error answer: applied or not, both legal.
			for j, a := range accts {
				r.accounts[a].Unanswered(ops[j])
			}
			if dead.Load() || ctx.Err() != nil {
				s.OpenRequests++
				s.OpenWrites += int64(n)
				return
			}
			r.violation("error answer while the server was up: %s", errorText(cmd, code, raw, err))
			if !r.srv.alive() {
				r.violation("timd serve exited on its own (%v):\n%s", r.srv.err, r.srv.log)
				return
			}
		default:
			failed := ans.failed()
			for j, a := range accts {
				if c, ok := failed[ids[j]]; ok {
					r.accounts[a].Unanswered(ops[j])
					r.violation("%s: ErrorList entry %d for %s", cmd, c, ids[j])
					continue
				}
				r.accounts[a].Ack(ops[j])
			}
			s.AckedRequests++
			s.AckedWrites += int64(n - len(failed))
			acked.Add(1)
		}
	}
}

func errorText(cmd string, code int, raw []byte, err error) string {
	if err != nil {
		return cmd + ": " + err.Error()
	}
	if len(raw) > 300 {
		raw = raw[:300]
	}
	return cmd + ": ErrorCode " + strconv.Itoa(code) + ": " + string(raw)
}
