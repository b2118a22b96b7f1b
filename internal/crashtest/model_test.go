package crashtest

import (
	"encoding/json"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
)

func tags(bits ...int) uint16 {
	var m uint16
	for _, b := range bits {
		m |= 1 << b
	}
	return m
}

func TestOpApply(t *testing.T) {
	start := State{Attrs: [numAttrs]uint8{1, 2, 0}, Tags: tags(0, 1)}
	for _, tc := range []struct {
		name string
		op   Op
		want State
	}{
		{"set one slot", Op{Kind: OpSetAttr, Attrs: [numAttrs]uint8{0, 0, 4}}, State{Attrs: [numAttrs]uint8{1, 2, 4}, Tags: tags(0, 1)}},
		{"set overwrites", Op{Kind: OpSetAttr, Attrs: [numAttrs]uint8{3, 0, 0}}, State{Attrs: [numAttrs]uint8{3, 2, 0}, Tags: tags(0, 1)}},
		{"remove listed slots", Op{Kind: OpRemoveAttr, Attrs: [numAttrs]uint8{1, 0, 1}}, State{Attrs: [numAttrs]uint8{0, 2, 0}, Tags: tags(0, 1)}},
		{"add is a union", Op{Kind: OpAddTag, Tags: tags(1, 5)}, State{Attrs: start.Attrs, Tags: tags(0, 1, 5)}},
		{"replace sets exactly", Op{Kind: OpReplaceTag, Tags: tags(7)}, State{Attrs: start.Attrs, Tags: tags(7)}},
		{"remove tags", Op{Kind: OpRemoveTag, Tags: tags(1, 9)}, State{Attrs: start.Attrs, Tags: tags(0)}},
		{"clear", Op{Kind: OpClearTags}, State{Attrs: start.Attrs}},
	} {
		if got := tc.op.Apply(start); got != tc.want {
			t.Errorf("%s: got {%s}, want {%s}", tc.name, got, tc.want)
		}
	}
}

// TestAccountPossibleStates walks the model through acknowledged and
// unanswered writes.
func TestAccountPossibleStates(t *testing.T) {
	setCity := func(v uint8) Op { return Op{Kind: OpSetAttr, Attrs: [numAttrs]uint8{v, 0, 0}} }
	setTier := func(v uint8) Op { return Op{Kind: OpSetAttr, Attrs: [numAttrs]uint8{0, v, 0}} }

	a := NewAccount(State{})
	a.Ack(setCity(1))
	a.Ack(setTier(2))
	want := State{Attrs: [numAttrs]uint8{1, 2, 0}}
	if a.Ambiguous() || a.Acked() != want || !a.Holds(want) || a.Holds(State{}) {
		t.Fatalf("after two acknowledged writes: %v", a.States())
	}

	// An unanswered write: before or after it, both legal.
	a.Unanswered(setCity(3))
	applied := State{Attrs: [numAttrs]uint8{3, 2, 0}}
	if !a.Ambiguous() || a.Acked() != want || !a.Holds(want) || !a.Holds(applied) {
		t.Fatalf("after an unanswered write: %v", a.States())
	}
	if a.Holds(State{Attrs: [numAttrs]uint8{1, 0, 0}}) {
		t.Fatal("a state losing an acknowledged write is legal")
	}

	// An acknowledged write of another slot keeps both branches.
	a.Ack(setTier(4))
	if got := a.States(); !slices.Equal(got, []State{{Attrs: [numAttrs]uint8{1, 4, 0}}, {Attrs: [numAttrs]uint8{3, 4, 0}}}) {
		t.Fatalf("branches after a later acknowledged write: %v", got)
	}
	// One that overwrites the uncertain slot merges them.
	a.Ack(setCity(2))
	if a.Ambiguous() || a.Acked() != (State{Attrs: [numAttrs]uint8{2, 4, 0}}) {
		t.Fatalf("an overwrite does not merge the branches: %v", a.States())
	}

	// An unanswered write that changes nothing adds no state.
	a.Unanswered(setCity(2))
	if a.Ambiguous() {
		t.Fatalf("a no-op unanswered write made the account ambiguous: %v", a.States())
	}

	// Two unanswered writes: any subset of them, in order.
	a.Unanswered(Op{Kind: OpAddTag, Tags: tags(1)})
	a.Unanswered(Op{Kind: OpRemoveAttr, Attrs: [numAttrs]uint8{1, 0, 0}})
	base := State{Attrs: [numAttrs]uint8{2, 4, 0}}
	for _, s := range []State{base, {Attrs: base.Attrs, Tags: tags(1)}, {Attrs: [numAttrs]uint8{0, 4, 0}}, {Attrs: [numAttrs]uint8{0, 4, 0}, Tags: tags(1)}} {
		if !a.Holds(s) {
			t.Errorf("{%s} is not legal after two unanswered writes: %v", s, a.States())
		}
	}
	if len(a.States()) != 4 || a.Acked() != base {
		t.Fatalf("states after two unanswered writes: %v", a.States())
	}

	// Reading the store back settles the account.
	a.Settle(State{Tags: tags(1)})
	if a.Ambiguous() || a.Acked() != (State{Tags: tags(1)}) {
		t.Fatalf("after Settle: %v", a.States())
	}
}

// TestAccountAgainstReplay checks the model against brute force: the
// legal states are exactly the results of applying every acknowledged
// write and any subset of the unanswered ones, in order.
func TestAccountAgainstReplay(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		a := NewAccount(State{})
		type write struct {
			op    Op
			acked bool
		}
		var ws []write
		for range 12 {
			w := write{op: randomOp(r, OpKind(r.IntN(int(numOps)))), acked: r.IntN(4) != 0}
			ws = append(ws, w)
			if w.acked {
				a.Ack(w.op)
			} else {
				a.Unanswered(w.op)
			}
		}
		var open []int
		for i, w := range ws {
			if !w.acked {
				open = append(open, i)
			}
		}
		want := map[State]bool{}
		for subset := 0; subset < 1<<len(open); subset++ {
			s := State{}
			for i, w := range ws {
				if k := slices.Index(open, i); w.acked || subset&(1<<k) != 0 {
					s = w.op.Apply(s)
				}
			}
			want[s] = true
		}
		got := a.States()
		if len(got) != len(want) {
			t.Fatalf("%d states, replay gives %d", len(got), len(want))
		}
		for _, s := range got {
			if !want[s] {
				t.Fatalf("{%s} is not a replay result", s)
			}
		}
		s := State{}
		for _, w := range ws {
			if w.acked {
				s = w.op.Apply(s)
			}
		}
		if a.Acked() != s {
			t.Fatalf("Acked {%s}, acknowledged writes alone give {%s}", a.Acked(), s)
		}
	}
}

func TestRandomOp(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		k := OpKind(r.IntN(int(numOps)))
		o := randomOp(r, k)
		switch k {
		case OpSetAttr, OpRemoveAttr:
			if o.Attrs == ([numAttrs]uint8{}) {
				t.Fatalf("%v with no attribute", k)
			}
			for _, v := range o.Attrs {
				if v > numValues {
					t.Fatalf("%v value %d out of the domain", k, v)
				}
			}
		case OpAddTag, OpReplaceTag, OpRemoveTag:
			if n := bits.OnesCount16(o.Tags); n < 1 || n > 4 || o.Tags>>numTags != 0 {
				t.Fatalf("%v with tags %b", k, o.Tags)
			}
		}
	}
}

func TestWriteRequest(t *testing.T) {
	ids := []string{"a", "b"}
	for _, tc := range []struct {
		kind OpKind
		ops  []Op
		cmd  string
		body string
	}{
		{OpSetAttr, []Op{{Kind: OpSetAttr, Attrs: [numAttrs]uint8{1, 0, 4}}, {Kind: OpSetAttr, Attrs: [numAttrs]uint8{0, 2, 0}}},
			"timpush/set_attr", `{"UserAttrs":[{"Attrs":{"city":"c0","lang":"l3"},"To_Account":"a"},{"Attrs":{"tier":"t1"},"To_Account":"b"}]}`},
		{OpRemoveAttr, []Op{{Kind: OpRemoveAttr, Attrs: [numAttrs]uint8{1, 1, 0}}, {Kind: OpRemoveAttr, Attrs: [numAttrs]uint8{0, 0, 3}}},
			"timpush/remove_attr", `{"UserAttrs":[{"Attrs":["city","tier"],"To_Account":"a"},{"Attrs":["lang"],"To_Account":"b"}]}`},
		{OpAddTag, []Op{{Kind: OpAddTag, Tags: tags(0, 11)}, {Kind: OpAddTag, Tags: tags(3)}},
			"timpush/add_tag", `{"UserTags":[{"Tags":["tag00","tag11"],"To_Account":"a"},{"Tags":["tag03"],"To_Account":"b"}]}`},
		{OpReplaceTag, []Op{{Kind: OpReplaceTag, Tags: tags(2)}, {Kind: OpReplaceTag, Tags: tags(4)}},
			"timpush/add_tag", `{"Replace":1,"UserTags":[{"Tags":["tag02"],"To_Account":"a"},{"Tags":["tag04"],"To_Account":"b"}]}`},
		{OpRemoveTag, []Op{{Kind: OpRemoveTag, Tags: tags(5)}, {Kind: OpRemoveTag, Tags: tags(6)}},
			"timpush/remove_tag", `{"UserTags":[{"Tags":["tag05"],"To_Account":"a"},{"Tags":["tag06"],"To_Account":"b"}]}`},
		{OpClearTags, []Op{{Kind: OpClearTags}, {Kind: OpClearTags}}, "timpush/clear_all_tags", `{"To_Account":["a","b"]}`},
	} {
		cmd, body := writeRequest(tc.kind, ids, tc.ops)
		if cmd != tc.cmd || string(body) != tc.body {
			t.Errorf("%v: %s %s, want %s %s", tc.kind, cmd, body, tc.cmd, tc.body)
		}
	}
}

// TestParseState reads back what writeRequest sends.
func TestParseState(t *testing.T) {
	s := State{Attrs: [numAttrs]uint8{2, 0, 4}, Tags: tags(1, 10)}
	attrs, err := parseAttrs(map[string]string{"city": "c1", "lang": "l3"})
	if err != nil || attrs != s.Attrs {
		t.Fatalf("parseAttrs: %v %v", attrs, err)
	}
	tg, err := parseTags([]string{"tag10", "tag01"})
	if err != nil || tg != s.Tags {
		t.Fatalf("parseTags: %b %v", tg, err)
	}
	for _, bad := range []map[string]string{{"city": "c9"}, {"zone": "c1"}, {"city": ""}} {
		if _, err := parseAttrs(bad); err == nil {
			t.Errorf("parseAttrs(%v) accepted", bad)
		}
	}
	for _, bad := range [][]string{{"tag12"}, {"tag01", "tag01"}, {""}} {
		if _, err := parseTags(bad); err == nil {
			t.Errorf("parseTags(%q) accepted", bad)
		}
	}
	var ans writeAnswer
	if err := json.Unmarshal([]byte(`{"ErrorCode":0,"ErrorList":[{"To_Account":"x","ErrorCode":70107}]}`), &ans); err != nil {
		t.Fatal(err)
	}
	if f := ans.failed(); len(f) != 1 || f["x"] != 70107 {
		t.Fatalf("failed: %v", f)
	}
}
