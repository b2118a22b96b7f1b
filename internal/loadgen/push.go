package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Push is one v4/timpush/push of a run.
type Push struct {
	Cond   Condition
	TaskID string
	Start  time.Time     // when the call started
	Call   time.Duration // the call's round trip
	Fail   string        // why the call failed; "" when accepted
	Expect []int         // the live clients in its audience
}

// push sends one push to cond's audience: a stored push (every recipient
// can read it from /v1/sync afterwards) unless onlineOnly.
func (c *Client) push(ctx context.Context, cond Condition, onlineOnly bool) Push {
	req := map[string]any{"From_Account": c.cfg.Admin, "MsgRandom": rand.Uint32(),
		"MsgBody": []any{map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]string{"Text": "bench"}}}}
	if !cond.Empty() {
		req["Condition"] = cond
	}
	if onlineOnly {
		req["OnlineOnlyFlag"] = 1
	}
	body, _ := json.Marshal(req)
	p := Push{Cond: cond, Start: time.Now()}
	code, raw, err := c.Call(ctx, "timpush/push", body)
	p.Call = time.Since(p.Start)
	var resp struct{ TaskId string }
	if err != nil || code != 0 || json.Unmarshal(raw, &resp) != nil || resp.TaskId == "" {
		p.Fail = fmt.Sprintf("%d %v %.200s", code, err, raw)
	}
	p.TaskID = resp.TaskId
	return p
}

// pushEvery pushes every PushEvery until ctx ends, push k to Rotation(k),
// and counts the pushes in n. The calls run under calls.
func (c *Client) pushEvery(ctx, calls context.Context, live *Listeners, n *atomic.Int64) []Push {
	var out []Push
	t := time.NewTicker(c.cfg.PushEvery)
	defer t.Stop()
	for k := 0; ; k++ {
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
		p := c.push(calls, Rotation(k), false)
		if live != nil {
			p.Expect = Audience(p.Cond, live.N())
		}
		out = append(out, p)
		n.Add(1)
	}
}

// PushResult sums up the pushes of one Condition kind (or of all, Kind
// "all"): the push calls, and the receipts at the live clients each push
// had to reach, timed from the start of its call.
type PushResult struct {
	Kind                      string
	Pushes, Failures          int
	CallP50, CallP99, CallMax time.Duration
	Expected, Received        int // receipts due, and got, at live clients
	Missed, Unexpected        int // due but not got; got but not due
	P50, P99, Max             time.Duration
	FirstFail                 string
}

// PushHeader heads the lines of PushResult.String.
const PushHeader = "condition    pushes fail  call p50  call p99  call max    due   got missed extra  receipt p50     p99     max"

func (r PushResult) String() string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
	return fmt.Sprintf("%-12s %6d %4d %9s %9s %9s %6d %5d %6d %5d %12s %7s %7s", r.Kind, r.Pushes, r.Failures,
		ms(r.CallP50), ms(r.CallP99), ms(r.CallMax), r.Expected, r.Received, r.Missed, r.Unexpected,
		ms(r.P50), ms(r.P99), ms(r.Max))
}

// Summarize sums pushes up by Condition kind, in order of first use, then
// all together. got returns the receipt times, by live client, of a task.
func Summarize(pushes []Push, got func(task string) map[int]time.Time) []PushResult {
	var kinds []string
	byKind := map[string][]Push{}
	for _, p := range pushes {
		k := p.Cond.Kind()
		if byKind[k] == nil {
			kinds = append(kinds, k)
		}
		byKind[k] = append(byKind[k], p)
	}
	out := make([]PushResult, 0, len(kinds)+1)
	for _, k := range kinds {
		out = append(out, summarize(k, byKind[k], got))
	}
	return append(out, summarize("all", pushes, got))
}

func summarize(kind string, pushes []Push, got func(string) map[int]time.Time) PushResult {
	r := PushResult{Kind: kind, Pushes: len(pushes)}
	var calls, lats []time.Duration
	for _, p := range pushes {
		calls = append(calls, p.Call)
		if p.Fail != "" {
			r.Failures++
			if r.FirstFail == "" {
				r.FirstFail = p.Fail
			}
			continue
		}
		recv := got(p.TaskID)
		due := map[int]bool{}
		for _, i := range p.Expect {
			due[i] = true
			if at, ok := recv[i]; ok {
				lats = append(lats, at.Sub(p.Start))
			} else {
				r.Missed++
			}
		}
		for i := range recv {
			if !due[i] {
				r.Unexpected++
			}
		}
		r.Expected += len(p.Expect)
	}
	r.Received = len(lats)
	r.CallP50, r.CallP99, r.CallMax = percentiles(calls)
	r.P50, r.P99, r.Max = percentiles(lats)
	return r
}
