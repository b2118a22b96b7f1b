// Package loadgen drives a running timd over HTTP with real UserSigs and
// reports throughput and latency. `timd bench` is its command line.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"timd/internal/usersig"
)

// Config says what to drive and how hard.
type Config struct {
	Base string // http://host:port
	// LiveBases are the nodes the live clients connect to, round-robin
	// (a cluster's nodes); empty: Base.
	LiveBases []string
	// RESTBases are the nodes the REST calls go to, round-robin per
	// request (a cluster's nodes); empty: Base.
	RESTBases   []string
	SDKAppID    uint64
	Key         string
	Admin       string
	Ops         []string // operation mix, e.g. set_attr, get_attr, add_tag, remove_attr
	Concurrency int
	Duration    time.Duration
	Batch       int // accounts per request
	Accounts    int // size of the account population
	Prefix      string
	Progress    io.Writer     // progress line target; nil for none
	PushEvery   time.Duration // during Run, push this often; 0 for never
}

// Result is what a run measured.
type Result struct {
	Op        string
	Requests  int64
	Failures  int64
	Items     int64 // accounts touched
	Elapsed   time.Duration
	P50, P99  time.Duration
	Max       time.Duration
	FirstFail string
}

// ReqPerSec is the request throughput.
func (r Result) ReqPerSec() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// ItemsPerSec is the account throughput (user-attribute writes/s for set_attr).
func (r Result) ItemsPerSec() float64 { return float64(r.Items) / r.Elapsed.Seconds() }

func (r Result) String() string {
	return fmt.Sprintf("%-12s %9d req %8.0f req/s %10.0f accounts/s  p50 %-9v p99 %-9v max %-9v failures %d",
		r.Op, r.Requests, r.ReqPerSec(), r.ItemsPerSec(), r.P50.Round(time.Microsecond),
		r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond), r.Failures)
}

// Client is an HTTP client for one app's admin.
type Client struct {
	cfg  Config
	http *http.Client
	sig  string
	next atomic.Uint64 // round-robin position in cfg.RESTBases
}

// NewClient signs a UserSig for the admin and prepares a keep-alive client.
func NewClient(cfg Config) (*Client, error) {
	sig, err := usersig.Gen(cfg.SDKAppID, cfg.Key, cfg.Admin, 86400, time.Now().Unix())
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{MaxIdleConns: cfg.Concurrency * 2, MaxIdleConnsPerHost: cfg.Concurrency * 2, IdleConnTimeout: time.Minute}
	return &Client{cfg: cfg, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, sig: sig}, nil
}

// Call posts body to /v4/cmd and returns the ErrorCode (and the raw answer).
func (c *Client) Call(ctx context.Context, cmd string, body []byte) (int, []byte, error) {
	q := url.Values{"sdkappid": {fmt.Sprint(c.cfg.SDKAppID)}, "identifier": {c.cfg.Admin},
		"usersig": {c.sig}, "random": {fmt.Sprint(rand.Uint32())}, "contenttype": {"json"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.restBase()+"/v4/"+cmd+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	var env struct{ ErrorCode int }
	if err := json.Unmarshal(raw, &env); err != nil {
		return 0, raw, fmt.Errorf("answer is not JSON: %.200s", raw)
	}
	return env.ErrorCode, raw, nil
}

// restBase is the node the next REST call goes to.
func (c *Client) restBase() string {
	if len(c.cfg.RESTBases) == 0 {
		return c.cfg.Base
	}
	return c.cfg.RESTBases[(c.next.Add(1)-1)%uint64(len(c.cfg.RESTBases))]
}

// Prepare names the attribute slots, imports the account population and
// gives account i the tags and attributes of ProfileOf(i), so that push
// Conditions select realistic shares of it.
func (c *Client) Prepare(ctx context.Context) error {
	if err := c.nameAttrs(ctx); err != nil {
		return err
	}
	return c.populate(ctx, c.id, c.cfg.Accounts)
}

func (c *Client) nameAttrs(ctx context.Context) error {
	names := map[string]string{}
	for i, n := range AttrNames {
		names[fmt.Sprint(i)] = n
	}
	return c.must(ctx, "timpush/set_attr_name", map[string]any{"AttrNames": names})
}

// populate imports accounts id(0)…id(n-1) and sets their profiles (tags
// replaced), 100 accounts per request, on Concurrency workers.
func (c *Client) populate(ctx context.Context, id func(int) string, n int) error {
	return c.chunks(ctx, n, 100, func(lo, hi int) error {
		var ids []string
		var attrs, tags []map[string]any
		for i := lo; i < hi; i++ {
			p := ProfileOf(i)
			ids = append(ids, id(i))
			attrs = append(attrs, map[string]any{"To_Account": id(i), "Attrs": p.Attrs})
			tags = append(tags, map[string]any{"To_Account": id(i), "Tags": p.Tags})
		}
		if err := c.must(ctx, "im_open_login_svc/multiaccount_import", map[string]any{"Accounts": ids}); err != nil {
			return err
		}
		if err := c.must(ctx, "timpush/set_attr", map[string]any{"UserAttrs": attrs}); err != nil {
			return err
		}
		return c.must(ctx, "timpush/add_tag", map[string]any{"UserTags": tags, "Replace": 1})
	})
}

// must calls cmd with req as JSON and fails unless the whole request
// succeeded (ErrorCode 0 and no ErrorList).
func (c *Client) must(ctx context.Context, cmd string, req any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	code, raw, err := c.Call(ctx, cmd, body)
	var partial struct{ ErrorList []json.RawMessage }
	if err == nil && code == 0 && json.Unmarshal(raw, &partial) == nil && len(partial.ErrorList) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %d %.300s %v", cmd, code, raw, err)
}

// chunks calls f over [0,n) in pieces of size, on Concurrency workers,
// and returns the first error.
func (c *Client) chunks(ctx context.Context, n, size int, f func(lo, hi int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errs := make(chan error, c.cfg.Concurrency)
	var wg sync.WaitGroup
	for range c.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range next {
				if err := f(lo, min(n, lo+size)); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for lo := 0; lo < n; lo += size {
		select {
		case next <- lo:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return ctx.Err()
	}
}

func (c *Client) id(i int) string { return fmt.Sprintf("%s%08d", c.cfg.Prefix, i) }

// body builds one request of op over a random run of accounts.
func (c *Client) body(op string, r *rand.Rand) (cmd string, body []byte, items int) {
	n := c.cfg.Batch
	start := r.IntN(max(1, c.cfg.Accounts-n))
	var b strings.Builder
	switch op {
	case "set_attr":
		b.WriteString(`{"UserAttrs":[`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"To_Account":"%s","Attrs":{"city":"c%d","tier":"t%d"}}`, c.id(start+i), r.IntN(100), r.IntN(5))
		}
		b.WriteString(`]}`)
	case "remove_attr":
		b.WriteString(`{"UserAttrs":[`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"To_Account":"%s","Attrs":["tier"]}`, c.id(start+i))
		}
		b.WriteString(`]}`)
	case "add_tag":
		b.WriteString(`{"UserTags":[`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"To_Account":"%s","Tags":["tag%d"]}`, c.id(start+i), r.IntN(200))
		}
		b.WriteString(`]}`)
	default: // get_attr, get_tag
		ids := make([]string, n)
		for i := range ids {
			ids[i] = `"` + c.id(start+i) + `"`
		}
		b.WriteString(`{"To_Account":[` + strings.Join(ids, ",") + `]}`)
	}
	return "timpush/" + op, []byte(b.String()), n
}

// Run drives the op mix for the configured duration and returns one Result
// per op. With PushEvery set it also pushes, every PushEvery, with the next
// Condition of the Rotation; live, when not nil, are the clients listening
// (each Push names the ones in its audience).
func (c *Client) Run(ctx context.Context, live *Listeners) ([]Result, []Push) {
	calls := ctx // a call under way at the end is let finish, and counted
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Duration)
	defer cancel()
	var mu sync.Mutex
	lats := make([][]time.Duration, len(c.cfg.Ops))
	res := make([]Result, len(c.cfg.Ops))
	var done, pushed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c.cfg.Concurrency && len(c.cfg.Ops) > 0; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			for i := w; ctx.Err() == nil; i++ {
				k := i % len(c.cfg.Ops)
				cmd, body, items := c.body(c.cfg.Ops[k], r)
				t0 := time.Now()
				code, raw, err := c.Call(calls, cmd, body)
				lat := time.Since(t0)
				mu.Lock()
				lats[k] = append(lats[k], lat)
				res[k].Requests++
				if err != nil || code != 0 {
					res[k].Failures++
					if res[k].FirstFail == "" {
						res[k].FirstFail = fmt.Sprintf("%d %v %.200s", code, err, raw)
					}
				} else {
					res[k].Items += int64(items)
				}
				mu.Unlock()
				done.Add(1)
			}
		}(w)
	}
	var pushes []Push
	if c.cfg.PushEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pushes = c.pushEvery(ctx, calls, live, &pushed)
		}()
	}
	stopProgress := c.progress(start, &done, &pushed)
	wg.Wait()
	stopProgress()
	elapsed := time.Since(start)
	for k := range res {
		res[k].Op = c.cfg.Ops[k]
		res[k].Elapsed = elapsed
		res[k].P50, res[k].P99, res[k].Max = percentiles(lats[k])
	}
	return res, pushes
}

// progress prints a one-line status every second until stopped.
func (c *Client) progress(start time.Time, done, pushed *atomic.Int64) func() {
	if c.cfg.Progress == nil {
		return func() {}
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				fmt.Fprintln(c.cfg.Progress)
				return
			case now := <-t.C:
				n, secs := done.Load(), now.Sub(start).Seconds()
				fmt.Fprintf(c.cfg.Progress, "\r%5.0fs  %9d requests  %8.0f req/s", secs, n, float64(n)/secs)
				if c.cfg.PushEvery > 0 {
					fmt.Fprintf(c.cfg.Progress, "  %4d pushes", pushed.Load())
				}
			}
		}
	}()
	return func() { close(stop); <-finished }
}

// percentiles returns the nearest-rank 50th and 99th percentiles and the
// maximum of l (zeros when l is empty).
func percentiles(l []time.Duration) (p50, p99, mx time.Duration) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return rank(s, 50), rank(s, 99), s[len(s)-1]
}

// rank is the nearest-rank p-th percentile of sorted s: the smallest
// value with at least p% of s at or below it.
func rank(s []time.Duration, p int) time.Duration {
	i := (len(s)*p + 99) / 100 // ceil(n·p/100)
	return s[max(i, 1)-1]
}
