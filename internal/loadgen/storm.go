package loadgen

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"timd/internal/deliver"
	"timd/internal/usersig"
)

// A reconnect storm (`timd bench --storm N`): N clients, whose accounts
// were given ProfileOf profiles, dial within a spread (one second by
// default) while the app has stored pushes, half to everyone and half to
// Conditions. Each client acks every push it receives, as a client
// should, and is caught up once it has every stored push addressed to it.
// The same clients are also pointed at a bare coder/websocket server that
// writes them the same frames: the same-run baseline.
//
// A batched storm (the default) connects with batch=1: catch-up comes as
// pushes messages, one per page of StormPage stored pushes, and each
// message's pushes are acknowledged with one batched ack. An unbatched
// storm gets and acks one push frame per push.

// StormResult is what one storm measured, from each client's dial start
// to the moment it had every push owed to it.
type StormResult struct {
	Clients   int
	Connected int // dials that succeeded
	CaughtUp  int // clients that got every owed push in time
	Closed    int // connections that ended before the run closed them
	Missing   int // owed pushes never received
	Batched   bool
	Frames    int // messages carrying pushes received (push or pushes)
	Pushes    int // pushes received
	Repeats   int // pushes a client had already received
	Spread    time.Duration
	P50, P99  time.Duration // dial start to caught up
	Max       time.Duration
	DialP50   time.Duration // dial start to upgraded
	DialP99   time.Duration
	FirstEnd  string         // how the first early-ended connection ended
	Ends      map[string]int // early ends by reason (URLs left out), for the diagnosis
}

func (r StormResult) String() string {
	mode := "unbatched"
	if r.Batched {
		mode = "batched"
	}
	s := fmt.Sprintf("storm (%s): %d clients dialled over %v; %d connected, %d caught up, %d closed early, %d owed pushes missing; "+
		"%d pushes in %d frames (%d repeats); dial to caught up p50 %v p99 %v max %v (upgraded p50 %v p99 %v)",
		mode, r.Clients, r.Spread.Round(time.Millisecond), r.Connected, r.CaughtUp, r.Closed, r.Missing, r.Pushes, r.Frames, r.Repeats,
		r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.Max.Round(time.Millisecond),
		r.DialP50.Round(time.Millisecond), r.DialP99.Round(time.Millisecond))
	if r.FirstEnd != "" {
		s += "; first early end: " + r.FirstEnd
	}
	if len(r.Ends) > 0 {
		reasons := make([]string, 0, len(r.Ends))
		for k := range r.Ends {
			reasons = append(reasons, k)
		}
		slices.SortFunc(reasons, func(a, b string) int { return cmp.Or(r.Ends[b]-r.Ends[a], strings.Compare(a, b)) })
		s += "; early ends by reason:"
		for _, k := range reasons {
			s += fmt.Sprintf(" %d× %q", r.Ends[k], k)
		}
	}
	return s
}

// quotedURL matches the quoted URL a dial error names (Get "…"): each
// client's differs, so reasons are grouped without it.
var quotedURL = regexp.MustCompile(`"[a-z]+://[^"]*"`)

// endKind is an early end's reason without the URL, at most 120 bytes.
func endKind(reason string) string {
	k := quotedURL.ReplaceAllString(reason, "URL")
	if len(k) > 120 {
		k = k[:120]
	}
	return k
}

// StoredPush is one stored push a storm expects: its TaskId, its
// Condition, and its push frame's message body.
type StoredPush struct {
	TaskID string
	Cond   Condition
}

// StormConditions is the Condition of stored push k of a storm: even k
// everyone, odd k the next non-empty shape of Rotation.
func StormConditions(k int) Condition {
	if k%2 == 0 {
		return Condition{}
	}
	j := k / 2
	return Rotation(4*(j/3) + 1 + j%3)
}

// StorePushes sends n stored pushes (StormConditions) and returns them.
func (c *Client) StorePushes(ctx context.Context, n int) ([]StoredPush, error) {
	out := make([]StoredPush, 0, n)
	for k := range n {
		p := c.push(ctx, StormConditions(k), false)
		if p.Fail != "" {
			return out, fmt.Errorf("stored push %d: %s", k, p.Fail)
		}
		out = append(out, StoredPush{TaskID: p.TaskID, Cond: p.Cond})
	}
	return out, nil
}

// PrepareLive names the attribute slots and imports the live accounts
// live000000…, giving account i the profile ProfileOf(i).
func (c *Client) PrepareLive(ctx context.Context, n int) error {
	if err := c.nameAttrs(ctx); err != nil {
		return err
	}
	return c.populate(ctx, liveID, n)
}

// Owed returns, for client i (profile ProfileOf(i)), the TaskIds of
// pushes addressed to it.
func Owed(pushes []StoredPush, i int) map[string]bool {
	out := map[string]bool{}
	p := ProfileOf(i)
	for _, s := range pushes {
		if s.Cond.Matches(p) {
			out[s.TaskID] = true
		}
	}
	return out
}

// StormPage is how many stored pushes timd's catch-up reads per page (its
// default CatchUpPage): a batched catch-up writes one pushes message per
// page, and the batched baseline chunks its pushes the same way.
const StormPage = 100

// Storm runs a storm of n live clients against timd: each dials
// /v1/connect with its own UserSig, and with batch=1 when batch is set.
func (c *Client) Storm(ctx context.Context, n int, pushes []StoredPush, spread, wait time.Duration, batch bool) (StormResult, error) {
	base := "ws" + strings.TrimPrefix(c.cfg.Base, "http") + "/v1/connect?"
	now := time.Now().Unix()
	urls := make([]string, n)
	for i := range urls {
		sig, err := usersig.Gen(c.cfg.SDKAppID, c.cfg.Key, liveID(i), 86400, now)
		if err != nil {
			return StormResult{}, err
		}
		q := url.Values{"sdkappid": {fmt.Sprint(c.cfg.SDKAppID)}, "identifier": {liveID(i)}, "usersig": {sig}}
		if batch {
			q.Set("batch", "1")
		}
		urls[i] = base + q.Encode()
	}
	return storm(ctx, urls, pushes, spread, wait, batch), nil
}

// stormClient is one client of a storm.
type stormClient struct {
	owed    map[string]bool
	start   time.Time
	dialled time.Time // when the upgrade completed
	done    time.Time // when the last owed push arrived; zero until then
	got     map[string]bool
	frames  int
	pushes  int
	repeats int
	ended   string
}

// stormFrame is what a storm client reads of a server frame: a push, or
// a pushes message of pushes.
type stormFrame struct {
	Type   string
	TaskId string //nolint:revive // the wire name
	Pushes []struct {
		TaskId string //nolint:revive // the wire name
	}
}

// storm dials urls[i] as client i, spreading the dials evenly over
// spread, and waits up to wait after the last dial for every client to be
// caught up. batched only labels the result: the URLs ask for batching,
// and pushes messages are read either way.
func storm(ctx context.Context, urls []string, pushes []StoredPush, spread, wait time.Duration, batched bool) StormResult {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := len(urls)
	cs := make([]*stormClient, n)
	for i := range cs {
		cs[i] = &stormClient{owed: Owed(pushes, i), got: map[string]bool{}}
	}
	var mu sync.Mutex // guards every stormClient
	caught := make(chan struct{}, n)
	var conns sync.WaitGroup
	var live sync.Map // i → *websocket.Conn
	first := time.Now()
	for i, u := range urls {
		at := first.Add(time.Duration(int64(spread) * int64(i) / int64(max(n, 1))))
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		c := cs[i]
		conns.Go(func() {
			mu.Lock()
			c.start = time.Now()
			mu.Unlock()
			cn, _, err := websocket.Dial(ctx, u, nil)
			if err != nil {
				mu.Lock()
				c.ended = "dial: " + err.Error()
				mu.Unlock()
				return
			}
			cn.SetReadLimit(1 << 20)
			mu.Lock()
			c.dialled = time.Now()
			mu.Unlock()
			live.Store(i, cn)
			for {
				_, data, err := cn.Read(ctx)
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						c.ended = endReason(err)
						mu.Unlock()
					}
					return
				}
				var f stormFrame
				if json.Unmarshal(data, &f) != nil {
					continue
				}
				var ids []string
				switch f.Type {
				case "push":
					ids = []string{f.TaskId}
				case "pushes":
					for _, p := range f.Pushes {
						ids = append(ids, p.TaskId)
					}
				default:
					continue
				}
				mu.Lock()
				c.frames++
				for _, id := range ids {
					c.pushes++
					if c.got[id] {
						c.repeats++
					}
					c.got[id] = true
					if c.done.IsZero() && c.owed[id] && caughtUp(c) {
						c.done = time.Now()
						caught <- struct{}{}
					}
				}
				mu.Unlock()
				if f.Type == "push" {
					_ = cn.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"Type":"ack","TaskId":%q}`, f.TaskId))
					continue
				}
				for len(ids) > 0 { // one batched ack per message, of at most 100 TaskIds
					k := min(len(ids), 100)
					ack, _ := json.Marshal(struct {
						Type    string
						TaskIds []string //nolint:revive // the wire name
					}{"ack", ids[:k]})
					_ = cn.Write(ctx, websocket.MessageText, ack)
					ids = ids[k:]
				}
			}
		})
	}
	r := StormResult{Clients: n, Spread: time.Since(first), Batched: batched}
	deadline := time.After(wait)
wait:
	for range n {
		select {
		case <-caught:
		case <-deadline:
			break wait
		}
	}
	time.Sleep(200 * time.Millisecond) // let repeats and early ends show
	mu.Lock()
	var lats, dials []time.Duration
	for _, c := range cs {
		if !c.dialled.IsZero() {
			dials = append(dials, c.dialled.Sub(c.start))
		}
		if c.ended == "" || !strings.HasPrefix(c.ended, "dial") {
			r.Connected++
		}
		if c.ended != "" {
			r.Closed++
			if r.FirstEnd == "" {
				r.FirstEnd = c.ended
			}
			if r.Ends == nil {
				r.Ends = map[string]int{}
			}
			r.Ends[endKind(c.ended)]++
		}
		r.Frames += c.frames
		r.Pushes += c.pushes
		r.Repeats += c.repeats
		for id := range c.owed {
			if !c.got[id] {
				r.Missing++
			}
		}
		if !c.done.IsZero() {
			r.CaughtUp++
			lats = append(lats, c.done.Sub(c.start))
		}
	}
	mu.Unlock()
	r.P50, r.P99, r.Max = percentiles(lats)
	r.DialP50, r.DialP99, _ = percentiles(dials)
	live.Range(func(_, v any) bool {
		_ = v.(*websocket.Conn).CloseNow()
		return true
	})
	cancel()
	conns.Wait()
	return r
}

func caughtUp(c *stormClient) bool {
	for id := range c.owed {
		if !c.got[id] {
			return false
		}
	}
	return true
}

// stormSpec is what the storm baseline server needs to write each client
// the frames timd would: the stored pushes and the message body.
type stormSpec struct {
	Pushes []StoredPush
	Admin  string
}

// WriteStormSpec writes the baseline's input for pushes.
func WriteStormSpec(w io.Writer, pushes []StoredPush, admin string) error {
	return json.NewEncoder(w).Encode(stormSpec{Pushes: pushes, Admin: admin})
}

// ServeStormBaseline is the yardstick for a storm: a bare coder/websocket
// server with no auth, store, index or acknowledgement state. It reads a
// spec (WriteStormSpec) from spec, prints its address on out, and serves
// /connect?i=I by writing client I the push frames of the pushes its
// profile is owed — frames of timd's shape and size — then reading (and
// dropping) the client's acks until it goes. With batch=1 it writes them
// as timd's batched catch-up does: the owed push frames of each
// StormPage stored pushes as one pushes message (split at
// deliver.MaxPushesBytes). `timd bench --storm` runs it
// in a child process so that it has its own file descriptors, like timd.
func ServeStormBaseline(ctx context.Context, spec io.Reader, out func(addr string)) error {
	var s stormSpec
	if err := json.NewDecoder(spec).Decode(&s); err != nil {
		return fmt.Errorf("storm baseline spec: %w", err)
	}
	now := time.Now().Unix()
	frames := make([][]byte, len(s.Pushes))
	for k, p := range s.Pushes {
		frames[k] = fmt.Appendf(nil, `{"Type":"push","TaskId":%q,"Seq":%d,"From_Account":%q,`+
			`"MsgBody":[{"MsgContent":{"Text":"bench"},"MsgType":"TIMTextElem"}],"CreatedAt":%d,"ExpiresAt":%d}`,
			p.TaskID, k+1, s.Admin, now, now+7*24*3600)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/connect", func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.URL.Query().Get("i"))
		batch := r.URL.Query().Get("batch") == "1"
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		gone := make(chan struct{})
		go func() { // read and drop acks until the client goes
			defer close(gone)
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
			}
		}()
		write := func(msg []byte) bool {
			wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return c.Write(wctx, websocket.MessageText, msg) == nil
		}
		p := ProfileOf(i)
		var page [][]byte // the owed frames of the current page, batched
		size := 0
		flush := func() bool {
			if len(page) == 0 {
				return true
			}
			ok := write(deliver.AppendPushesFrame(make([]byte, 0, pushesOverhead+size+len(page)), page...))
			page, size = page[:0], 0
			return ok
		}
		for k, sp := range s.Pushes {
			switch {
			case !sp.Cond.Matches(p):
			case !batch:
				if !write(frames[k]) {
					return
				}
			default:
				if len(page) > 0 && pushesOverhead+size+len(page)+len(frames[k]) > deliver.MaxPushesBytes && !flush() {
					return
				}
				page = append(page, frames[k])
				size += len(frames[k])
			}
			if k%StormPage == StormPage-1 && !flush() {
				return
			}
		}
		if !flush() {
			return
		}
		<-gone
	})
	srv := &http.Server{Handler: mux}
	go func() { <-ctx.Done(); srv.Close() }()
	out(ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// pushesOverhead is the bytes of an empty pushes message.
var pushesOverhead = len(deliver.AppendPushesFrame(nil))

// StormBaseline runs the same storm against a storm baseline at addr,
// batched when batch is set.
func StormBaseline(ctx context.Context, addr string, n int, pushes []StoredPush, spread, wait time.Duration, batch bool) StormResult {
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("ws://%s/connect?i=%d", addr, i)
		if batch {
			urls[i] += "&batch=1"
		}
	}
	return storm(ctx, urls, pushes, spread, wait, batch)
}

// SyncBench calls GET /v1/sync (default limit) as live clients 0..n-1 in
// turn, on Concurrency workers, for Duration. It returns the result and
// one answer, for SyncBaseline to serve.
func (c *Client) SyncBench(ctx context.Context, n int) (Result, []byte, error) {
	now := time.Now().Unix()
	urls := make([]string, min(n, 2000))
	for i := range urls {
		sig, err := usersig.Gen(c.cfg.SDKAppID, c.cfg.Key, liveID(i), 86400, now)
		if err != nil {
			return Result{}, nil, err
		}
		urls[i] = c.cfg.Base + "/v1/sync?" + url.Values{"sdkappid": {fmt.Sprint(c.cfg.SDKAppID)},
			"identifier": {liveID(i)}, "usersig": {sig}}.Encode()
	}
	sample, err := c.get(ctx, urls[0])
	if err != nil {
		return Result{}, nil, err
	}
	return c.getRun(ctx, "sync", urls), sample, nil
}

// SyncBaseline serves answer from a bare net/http handler (no auth, no
// store) and measures GETs of it like SyncBench: the same-run yardstick.
func (c *Client) SyncBaseline(ctx context.Context, answer []byte) (Result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(answer)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	return c.getRun(ctx, "sync-base", []string{"http://" + ln.Addr().String() + "/v1/sync?identifier=x"}), nil
}

// get fetches u and fails unless it answers ErrorCode 0.
func (c *Client) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var env struct{ ErrorCode int }
	if err := json.Unmarshal(raw, &env); err != nil || env.ErrorCode != 0 {
		return raw, fmt.Errorf("GET %s: %.300s", u, raw)
	}
	return raw, nil
}

// getRun GETs urls in turn on Concurrency workers for Duration.
func (c *Client) getRun(ctx context.Context, op string, urls []string) Result {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Duration)
	defer cancel()
	var mu sync.Mutex
	var lats []time.Duration
	r := Result{Op: op}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range c.cfg.Concurrency {
		wg.Go(func() {
			var mine []time.Duration
			var fails int64
			var first string
			for k := w; ctx.Err() == nil; k += c.cfg.Concurrency {
				t := time.Now()
				_, err := c.get(ctx, urls[k%len(urls)])
				if ctx.Err() != nil {
					break
				}
				mine = append(mine, time.Since(t))
				if err != nil {
					fails++
					if first == "" {
						first = err.Error()
					}
				}
			}
			mu.Lock()
			lats = append(lats, mine...)
			r.Failures += fails
			if r.FirstFail == "" {
				r.FirstFail = first
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	r.Requests = int64(len(lats))
	r.Items = r.Requests
	r.P50, r.P99, r.Max = percentiles(lats)
	return r
}
