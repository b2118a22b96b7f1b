package loadgen

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100…1, unsorted
	}
	thousand := make([]int, 1000)
	for i := range thousand {
		thousand[i] = i + 1
	}
	for _, tc := range []struct {
		name          string
		in            []time.Duration
		p50, p99, max time.Duration
	}{
		{"empty", nil, 0, 0, 0},
		{"one", ms(7), ms(7)[0], ms(7)[0], ms(7)[0]},
		{"two", ms(9, 1), ms(1)[0], ms(9)[0], ms(9)[0]},
		{"odd", ms(5, 1, 3), ms(3)[0], ms(5)[0], ms(5)[0]},
		{"hundred", ms(hundred...), 50 * time.Millisecond, 99 * time.Millisecond, 100 * time.Millisecond},
		{"thousand", ms(thousand...), 500 * time.Millisecond, 990 * time.Millisecond, 1000 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]time.Duration(nil), tc.in...)
			p50, p99, mx := percentiles(tc.in)
			if p50 != tc.p50 || p99 != tc.p99 || mx != tc.max {
				t.Errorf("got %v %v %v, want %v %v %v", p50, p99, mx, tc.p50, tc.p99, tc.max)
			}
			for i := range in {
				if in[i] != tc.in[i] {
					t.Fatal("percentiles reordered its input")
				}
			}
		})
	}
}

func TestRotation(t *testing.T) {
	for _, tc := range []struct {
		k    int
		kind string
		json string
	}{
		{0, "everyone", `{}`},
		{1, "TagsOr 1", `{"TagsOr":["tag0"]}`},
		{2, "AttrsAnd 1", `{"AttrsAnd":{"city":"c0"}}`},
		{3, "TagsAnd 2", `{"TagsAnd":["tag0","tag10"]}`},
		{4, "everyone", `{}`},
		{5, "TagsOr 1", `{"TagsOr":["tag1"]}`},
		{6, "AttrsAnd 1", `{"AttrsAnd":{"city":"c1"}}`},
		{7, "TagsAnd 2", `{"TagsAnd":["tag1","tag11"]}`},
		{4*7 + 3, "TagsAnd 2", `{"TagsAnd":["tag7","tag10"]}`},
		{4*10 + 1, "TagsOr 1", `{"TagsOr":["tag0"]}`},
	} {
		c := Rotation(tc.k)
		got, _ := json.Marshal(c)
		if c.Kind() != tc.kind || string(got) != tc.json {
			t.Errorf("Rotation(%d) = %s %s, want %s %s", tc.k, c.Kind(), got, tc.kind, tc.json)
		}
	}
}

func TestMatches(t *testing.T) {
	p := Profile{Tags: []string{"a", "b"}, Attrs: map[string]string{"city": "x", "tier": "1"}}
	for _, tc := range []struct {
		c    Condition
		want bool
	}{
		{Condition{}, true},
		{Condition{TagsAnd: []string{"a", "b"}}, true},
		{Condition{TagsAnd: []string{"a", "c"}}, false},
		{Condition{TagsOr: []string{"c", "b"}}, true},
		{Condition{TagsOr: []string{"c", "d"}}, false},
		{Condition{TagsAnd: []string{"a"}, TagsOr: []string{"c"}}, false},
		{Condition{AttrsAnd: map[string]string{"city": "x", "tier": "1"}}, true},
		{Condition{AttrsAnd: map[string]string{"city": "x", "tier": "2"}}, false},
		{Condition{AttrsAnd: map[string]string{"lang": ""}}, false}, // absent is not ""
		{Condition{AttrsOr: map[string]string{"city": "y", "tier": "1"}}, true},
		{Condition{AttrsOr: map[string]string{"city": "y", "lang": "1"}}, false},
		{Condition{AttrsAnd: map[string]string{"city": "x"}, AttrsOr: map[string]string{"tier": "2"}}, false},
	} {
		if got := tc.c.Matches(p); got != tc.want {
			t.Errorf("%+v.Matches = %v, want %v", tc.c, got, tc.want)
		}
	}
}

// TestAudience checks the shares Rotation promises, and that the audience
// is exactly the clients whose profile matches.
func TestAudience(t *testing.T) {
	const n = 7000 // a multiple of 10, 7 and 5
	want := map[string]int{"everyone": n, "TagsOr 1": n / 10, "AttrsAnd 1": n / 5, "TagsAnd 2": n / 70}
	for k := range 8 {
		c := Rotation(k)
		aud := Audience(c, n)
		if len(aud) != want[c.Kind()] {
			t.Errorf("push %d %s: audience %d, want %d", k, c.Kind(), len(aud), want[c.Kind()])
		}
		in := map[int]bool{}
		for _, i := range aud {
			in[i] = true
		}
		for i := range n {
			if in[i] != c.Matches(ProfileOf(i)) {
				t.Fatalf("push %d: client %d in audience %v, matches %v", k, i, in[i], !in[i])
			}
		}
	}
	if a := Audience(Rotation(3), 70); len(a) != 1 || a[0] != 0 {
		t.Errorf("TagsAnd tag0,tag10 over 70 clients = %v, want [0]", a)
	}
}

func TestSummarize(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	pushes := []Push{
		{Cond: Condition{}, TaskID: "a", Start: t0, Call: ms(2), Expect: []int{0, 1, 2}},
		{Cond: Rotation(1), TaskID: "b", Start: t0.Add(time.Second), Call: ms(4), Expect: []int{1}},
		{Cond: Condition{}, Start: t0.Add(2 * time.Second), Call: ms(6), Fail: "90024 too frequent"},
	}
	got := map[string]map[int]time.Time{
		"a": {0: t0.Add(ms(10)), 2: t0.Add(ms(30))},                           // 1 missed
		"b": {1: t0.Add(time.Second + ms(5)), 2: t0.Add(time.Second + ms(7))}, // 2 unexpected
	}
	rs := Summarize(pushes, func(task string) map[int]time.Time { return got[task] })
	want := []PushResult{
		{Kind: "everyone", Pushes: 2, Failures: 1, CallP50: ms(2), CallP99: ms(6), CallMax: ms(6),
			Expected: 3, Received: 2, Missed: 1, P50: ms(10), P99: ms(30), Max: ms(30), FirstFail: "90024 too frequent"},
		{Kind: "TagsOr 1", Pushes: 1, CallP50: ms(4), CallP99: ms(4), CallMax: ms(4),
			Expected: 1, Received: 1, Unexpected: 1, P50: ms(5), P99: ms(5), Max: ms(5)},
		{Kind: "all", Pushes: 3, Failures: 1, CallP50: ms(4), CallP99: ms(6), CallMax: ms(6),
			Expected: 4, Received: 3, Missed: 1, Unexpected: 1, P50: ms(10), P99: ms(30), Max: ms(30), FirstFail: "90024 too frequent"},
	}
	if len(rs) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(rs), len(want), rs)
	}
	for i := range want {
		if rs[i] != want[i] {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, rs[i], want[i])
		}
	}
	if !strings.HasPrefix(rs[0].String(), "everyone") {
		t.Errorf("String() = %q", rs[0].String())
	}
}

// TestLiveBaseline runs the WebSocket yardstick in-process: the listeners
// connect, the broadcast reaches all of them, and the result says so.
func TestLiveBaseline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := make(chan string, 1)
	go func() { _ = ServeBroadcastBaseline(ctx, func(a string) { addr <- a }) }()
	res, err := LiveBaseline(ctx, <-addr, 20, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Clients != 20 || res.Received != 20 || res.Max <= 0 {
		t.Errorf("got %+v", res)
	}
}

// TestStormEndsGroupedByReason: early ends are counted by reason with the
// client's URL left out, most frequent first, so a storm's report says
// how many dials timed out and how many connections were closed, and why.
func TestStormEndsGroupedByReason(t *testing.T) {
	r := StormResult{Clients: 3, Ends: map[string]int{}}
	for _, e := range []string{
		`dial: failed to send handshake request: Get "http://127.0.0.1:1/v1/connect?identifier=live000001": malformed HTTP status code "timeout"`,
		`dial: failed to send handshake request: Get "http://127.0.0.1:1/v1/connect?identifier=live000002": malformed HTTP status code "timeout"`,
		`closed 1008 heartbeat timeout`,
	} {
		r.Ends[endKind(e)]++
	}
	want := `early ends by reason: 2× "dial: failed to send handshake request: Get URL: malformed HTTP status code \"timeout\"" 1× "closed 1008 heartbeat timeout"`
	if s := r.String(); !strings.Contains(s, want) {
		t.Fatalf("got %s\nwant it to contain %s", s, want)
	}
	if k := endKind(strings.Repeat("x", 500)); len(k) != 120 {
		t.Fatalf("endKind kept %d bytes", len(k))
	}
}

// TestCallSpreadsOverRESTBases checks that REST calls go round-robin over
// the cluster's nodes, so a one-vs-three-node write figure really writes
// through all three.
func TestCallSpreadsOverRESTBases(t *testing.T) {
	var hits [3]atomic.Int64
	var bases []string
	for i := range hits {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			_, _ = w.Write([]byte(`{"ActionStatus":"OK","ErrorCode":0}`))
		}))
		t.Cleanup(srv.Close)
		bases = append(bases, srv.URL)
	}
	c, err := NewClient(Config{Base: bases[0], RESTBases: bases, SDKAppID: 1400000001, Key: "k", Admin: "administrator", Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	for range 9 {
		if code, raw, err := c.Call(context.Background(), "timpush/get_attr_name", []byte(`{}`)); err != nil || code != 0 {
			t.Fatalf("Call: %d %s %v", code, raw, err)
		}
	}
	for i := range hits {
		if n := hits[i].Load(); n != 3 {
			t.Errorf("node %d got %d of 9 calls, want 3", i, n)
		}
	}
	// Without RESTBases every call goes to Base.
	c, err = NewClient(Config{Base: bases[2], SDKAppID: 1400000001, Key: "k", Admin: "administrator", Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Call(context.Background(), "timpush/get_attr_name", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if n := hits[2].Load(); n != 4 {
		t.Errorf("Base got %d calls in all, want 4", n)
	}
}
