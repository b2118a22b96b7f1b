package crashtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Fanout is what phase 2 did and found.
type Fanout struct {
	Population   int
	Rate         int // fanout_per_second
	Live, Acking int // live clients, and those that acknowledge pushes
	TaskID       string
	MsgRandom    uint32
	KilledAt     int64 // SentCount last seen before the kill
	Restart      time.Duration
	Finished     time.Duration // restart to SentCount == TotalCount
	Total, Sent  int64         // after the restart
	Received     int           // live clients that received the push
	Again        int           // clients that received it on their new connection
	Frames       int           // push frames of the task, all clients, both connections
	Repeated     int           // clients that received it more than once
	Inboxes      int           // inboxes read
	SameTask     bool          // the MsgRandom repeated after the restart answered the TaskId
}

// fanoutPhase connects live clients, pushes a stored message to everyone
// with the fan-out paced to a few seconds, kills the server in the middle
// of it, restarts, reconnects and checks the push reached everyone once.
func (r *runner) fanoutPhase(ctx context.Context) error {
	// Everyone is the test's accounts and the admin (an account, docs/compatibility.md, "UserSig and admins").
	f := &Fanout{Population: len(r.ids) + 1, Live: r.cfg.Live, Rate: max(100, len(r.ids)/4)}
	r.rep.Fanout = f
	if err := r.waitPhase1(ctx); err != nil {
		return err
	}
	cfgFile, err := r.paceConfig(f.Rate)
	if err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Dir(cfgFile))
	if err := r.srv.stop(); err != nil {
		r.violation("SIGTERM: %v", err)
	}
	r.l = newLauncher(r.cfg.Bin, r.store, r.app, "--config", cfgFile)
	if err := r.startServer(ctx); err != nil {
		return err
	}
	clients := make([]*liveClient, r.cfg.Live)
	for i, a := range r.rng.Perm(len(r.ids))[:r.cfg.Live] {
		clients[i] = &liveClient{id: r.ids[a], ack: i%2 == 0}
		if clients[i].ack {
			f.Acking++
		}
	}
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	if err := r.connectAll(ctx, clients); err != nil {
		return err
	}
	if err := r.killMidFanout(ctx, f, clients); err != nil {
		return err
	}
	if err := r.connectAll(ctx, clients); err != nil {
		return err
	}
	r.waitFanout(ctx, f)
	r.checkClients(ctx, f, clients)
	if err := r.checkInboxes(ctx, f, clients); err != nil {
		return err
	}
	id, _, err := r.pushRandom(ctx, nil, false, f.MsgRandom)
	if err != nil {
		return err
	}
	if f.SameTask = id == f.TaskID; !f.SameTask {
		r.violation("fan-out: MsgRandom %d answers TaskId %s after the restart, %s before", f.MsgRandom, id, f.TaskID)
	}
	if err := r.srv.stop(); err != nil {
		r.violation("SIGTERM: %v", err)
	}
	return nil
}

// waitPhase1 waits until phase 1's online-only pushes have finished their
// fan-outs (all their recipients counted as offline), so that none of
// them is still running during phase 2.
func (r *runner) waitPhase1(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		r.prog.set("waiting for the fan-outs of phase 1 to finish")
		now := time.Now().Unix()
		raw, err := r.call(ctx, "timpush/all_member_push_loss",
			map[string]any{"StartTime": r.start.Unix() - 60, "EndTime": now + 60})
		if err != nil {
			return err
		}
		var ans struct {
			Results []struct {
				ReadyToSendLoss []struct {
					ErrCode  string
					ErrCount int64
				}
			}
		}
		if err := json.Unmarshal(raw, &ans); err != nil {
			return fmt.Errorf("all_member_push_loss: %w", err)
		}
		var offline int64
		for _, res := range ans.Results {
			for _, l := range res.ReadyToSendLoss {
				if l.ErrCode == "-1" {
					offline += l.ErrCount
				}
			}
		}
		if offline == r.rep.phase1Total {
			return nil
		}
		if time.Now().After(deadline) {
			r.violation("phase 1: the fan-outs of its pushes did not finish within a minute (%d of %d recipients handled)", offline, r.rep.phase1Total)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// paceConfig writes a configuration file that paces the app's fan-out.
func (r *runner) paceConfig(rate int) (string, error) {
	dir, err := os.MkdirTemp("", "timd-crashtest-config-")
	if err != nil {
		return "", err
	}
	cfg := map[string]any{"apps": []any{map[string]any{"sdkappid": r.app.id, "secret_key": r.app.key,
		"admins": []string{r.app.admin}, "quotas": map[string]int{"fanout_per_second": rate}}}}
	b, _ := json.Marshal(cfg)
	path := filepath.Join(dir, "timd.json")
	return path, os.WriteFile(path, b, 0o600)
}

// connectAll (re)connects every client and waits until all are online.
func (r *runner) connectAll(ctx context.Context, clients []*liveClient) error {
	r.prog.set("connecting %d live clients", len(clients))
	var wg sync.WaitGroup
	errs := make(chan error, len(clients))
	sem := make(chan struct{}, 16)
	for _, c := range clients {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := c.connect(ctx, r.srv.base, r.app); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		online, err := r.online(ctx, clients)
		if err != nil || online == len(clients) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d live clients are online after 30 s", online, len(clients))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// online counts the clients query_online_status reports Online.
func (r *runner) online(ctx context.Context, clients []*liveClient) (int, error) {
	n := 0
	for lo := 0; lo < len(clients); lo += 100 {
		var ids []string
		for _, c := range clients[lo:min(len(clients), lo+100)] {
			ids = append(ids, c.id)
		}
		raw, err := r.call(ctx, "openim/query_online_status", map[string]any{"To_Account": ids})
		if err != nil {
			return 0, err
		}
		n += strings.Count(string(raw), `"Status":"Online"`)
	}
	return n, nil
}

// killMidFanout pushes a stored message to everyone and kills the server
// once a random share (10%–80%) of the audience is handled, then restarts
// it.
func (r *runner) killMidFanout(ctx context.Context, f *Fanout, clients []*liveClient) error {
	f.MsgRandom = r.msgRandom()
	id, _, err := r.pushRandom(ctx, nil, false, f.MsgRandom)
	if err != nil {
		return err
	}
	f.TaskID = id
	target := int64(float64(len(r.ids)) * (0.1 + 0.7*r.rng.Float64()))
	for {
		s, err := r.stats(ctx, []string{id})
		if err != nil {
			return err
		}
		c := s[id]
		r.prog.set("fan-out: %d/%d sent, kill at %d", c.SentCount, c.TotalCount, target)
		if c.TotalCount > 0 && c.SentCount >= c.TotalCount {
			return fmt.Errorf("the fan-out finished before the kill (SentCount %d, fanout_per_second %d)", c.SentCount, f.Rate)
		}
		if c.SentCount >= max(1, target) {
			f.KilledAt = c.SentCount
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	r.srv.kill()
	for _, c := range clients {
		c.close()
	}
	if err := r.startServer(ctx); err != nil {
		return err
	}
	f.Restart = r.rep.lastRestart
	return nil
}

// waitFanout waits for the resumed fan-out to finish and checks its
// statistics.
func (r *runner) waitFanout(ctx context.Context, f *Fanout) {
	t0 := time.Now()
	deadline := t0.Add(time.Minute + 2*time.Duration(f.Population/f.Rate)*time.Second)
	for {
		s, err := r.stats(ctx, []string{f.TaskID})
		if err != nil {
			r.violation("fan-out: statistics after the restart: %v", err)
			return
		}
		c := s[f.TaskID]
		f.Total, f.Sent = c.TotalCount, c.SentCount
		r.prog.set("fan-out after the restart: %d/%d sent", c.SentCount, c.TotalCount)
		if c.TotalCount > 0 && c.SentCount == c.TotalCount {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.Finished = time.Since(t0)
	if f.Total != int64(f.Population) || f.Sent != f.Total {
		r.violation("fan-out: after the restart TotalCount %d SentCount %d, want both %d", f.Total, f.Sent, f.Population)
	}
}

// checkClients waits until every client has the push (a client that does
// not acknowledge must get it again on its new connection, from
// catch-up), waits a second more for late repeats, and checks each client
// saw exactly one push TaskId.
func (r *runner) checkClients(ctx context.Context, f *Fanout, clients []*liveClient) {
	deadline := time.Now().Add(time.Minute)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		missing := 0
		for _, c := range clients {
			all, again := c.received(f.TaskID, 2)
			if all == 0 || (!c.ack && again == 0) {
				missing++
			}
		}
		r.prog.set("live clients: %d/%d have the push", len(clients)-missing, len(clients))
		if missing == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	for _, c := range clients {
		all, again := c.received(f.TaskID, 2)
		f.Frames += all
		if all > 0 {
			f.Received++
		}
		if again > 0 {
			f.Again++
		}
		if all > 1 {
			f.Repeated++
		}
		switch {
		case all == 0:
			r.violation("fan-out: live client %s never received the push %s", c.id, f.TaskID)
		case !c.ack && again == 0:
			r.violation("fan-out: live client %s did not acknowledge the push and did not get it again after reconnecting", c.id)
		}
		var other []string
		for task := range c.tasks() {
			if task != f.TaskID && !r.tasks[task] {
				other = append(other, task)
			}
		}
		if len(other) > 0 {
			slices.Sort(other)
			r.violation("fan-out: live client %s received pushes with other TaskIds %v (one push, one TaskId expected)", c.id, other)
		}
	}
}

// checkInboxes reads the inboxes of every live client and of 200 other
// accounts: each holds the push exactly once, and nothing else.
func (r *runner) checkInboxes(ctx context.Context, f *Fanout, clients []*liveClient) error {
	var ids []string
	for _, c := range clients {
		ids = append(ids, c.id)
	}
	for _, a := range r.rng.Perm(len(r.ids))[:min(200, len(r.ids))] {
		if !slices.Contains(ids, r.ids[a]) {
			ids = append(ids, r.ids[a])
		}
	}
	var mu sync.Mutex
	read := 0
	err := r.batches(ctx, len(ids), func(ctx context.Context, lo, hi int) error {
		for _, id := range ids[lo:hi] {
			got, err := inbox(ctx, r.srv.base, r.app, id)
			if err != nil {
				return err
			}
			if n := count(got, f.TaskID); n != 1 || len(got) != 1 {
				r.violation("fan-out: %s's inbox holds the push %d times (inbox: %v)", id, n, got)
			}
			mu.Lock()
			read++
			r.prog.set("reading inboxes: %d/%d", read, len(ids))
			mu.Unlock()
		}
		return nil
	})
	f.Inboxes = read
	return err
}

func count(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}
