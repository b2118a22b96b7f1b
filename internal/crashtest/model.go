package crashtest

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
)

// The writers draw every value from small domains, so that each tag and
// attribute value has a large audience and each account's state fits in
// a few bytes.
const (
	numAttrs  = 3  // attribute slots the test names
	numValues = 4  // values per attribute
	numTags   = 12 // tags
)

var (
	attrNames  = [numAttrs]string{"city", "tier", "lang"}
	attrPrefix = [numAttrs]string{"c", "t", "l"}
)

// attrValue is the wire value of value v (1..numValues) of slot.
func attrValue(slot int, v uint8) string { return fmt.Sprintf("%s%d", attrPrefix[slot], v-1) }

// tagName is the wire name of tag i.
func tagName(i int) string { return fmt.Sprintf("tag%02d", i) }

// State is one account's attributes and tags within the test's domain.
// Attrs[i] is 0 when attribute i is unset, else its value 1..numValues;
// bit i of Tags is tag i.
type State struct {
	Attrs [numAttrs]uint8
	Tags  uint16
}

func (s State) String() string {
	var b strings.Builder
	for i, v := range s.Attrs {
		val := "-"
		if v != 0 {
			val = attrValue(i, v)
		}
		fmt.Fprintf(&b, "%s=%s ", attrNames[i], val)
	}
	var tags []string
	for i := range numTags {
		if s.Tags&(1<<i) != 0 {
			tags = append(tags, tagName(i))
		}
	}
	b.WriteString("tags=[" + strings.Join(tags, " ") + "]")
	return b.String()
}

// OpKind is one of the write commands the writers issue.
type OpKind uint8

// The write commands.
const (
	OpSetAttr    OpKind = iota // timpush/set_attr
	OpRemoveAttr               // timpush/remove_attr
	OpAddTag                   // timpush/add_tag
	OpReplaceTag               // timpush/add_tag with Replace 1
	OpRemoveTag                // timpush/remove_tag
	OpClearTags                // timpush/clear_all_tags
	numOps
)

var opNames = [numOps]string{"set_attr", "remove_attr", "add_tag", "add_tag(Replace)", "remove_tag", "clear_all_tags"}

func (k OpKind) String() string { return opNames[k] }

// Op is one account's edit in a write request.
type Op struct {
	Kind OpKind
	// Attrs holds, for OpSetAttr, the new value per slot (0: untouched);
	// for OpRemoveAttr, a non-zero entry removes that slot.
	Attrs [numAttrs]uint8
	Tags  uint16 // the tags added, replacing, or removed
}

// Apply returns s after o, as the spec defines each command.
func (o Op) Apply(s State) State {
	switch o.Kind {
	case OpSetAttr:
		for i, v := range o.Attrs {
			if v != 0 {
				s.Attrs[i] = v
			}
		}
	case OpRemoveAttr:
		for i, v := range o.Attrs {
			if v != 0 {
				s.Attrs[i] = 0
			}
		}
	case OpAddTag:
		s.Tags |= o.Tags
	case OpReplaceTag:
		s.Tags = o.Tags
	case OpRemoveTag:
		s.Tags &^= o.Tags
	case OpClearTags:
		s.Tags = 0
	}
	return s
}

// randomOp draws an edit of kind from the domains: a non-empty subset of
// attributes, or one to four tags.
func randomOp(r *rand.Rand, kind OpKind) Op {
	o := Op{Kind: kind}
	switch kind {
	case OpSetAttr, OpRemoveAttr:
		mask := 1 + r.IntN(1<<numAttrs-1)
		for i := range numAttrs {
			if mask&(1<<i) != 0 {
				o.Attrs[i] = uint8(1 + r.IntN(numValues))
			}
		}
	case OpAddTag, OpReplaceTag, OpRemoveTag:
		for n := 1 + r.IntN(4); bits.OnesCount16(o.Tags) < n; {
			o.Tags |= 1 << r.IntN(numTags)
		}
	}
	return o
}

// Account is what the test knows of one account: the states it may be in
// after everything the writers sent. The server acknowledged some writes
// (each certainly applied, in order) and left others unanswered (each
// applied or not: both are legal), so the account may be in any of
// several states. states[0] is the state if no unanswered write was
// applied: the last acknowledged state.
type Account struct {
	states []State
}

// NewAccount returns an account known to be in s.
func NewAccount(s State) Account { return Account{states: []State{s}} }

// Ack records an acknowledged write: it was applied to whichever state
// the account was in.
func (a *Account) Ack(o Op) {
	out := a.states[:0]
	for _, s := range a.states {
		if n := o.Apply(s); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	a.states = out
}

// Unanswered records a write that got no acknowledgement (the server was
// killed, or answered an error): it may or may not have been applied.
func (a *Account) Unanswered(o Op) {
	for _, s := range a.states {
		if n := o.Apply(s); !slices.Contains(a.states, n) {
			a.states = append(a.states, n)
		}
	}
}

// Holds reports whether s is one of the account's legal states.
func (a *Account) Holds(s State) bool { return slices.Contains(a.states, s) }

// Acked is the last acknowledged state: the state if no unanswered write
// was applied.
func (a *Account) Acked() State { return a.states[0] }

// Ambiguous reports whether an unanswered write left more than one legal
// state.
func (a *Account) Ambiguous() bool { return len(a.states) > 1 }

// States returns the legal states, the last acknowledged one first.
func (a *Account) States() []State { return slices.Clone(a.states) }

// Settle makes s, read back from the store, the account's one known
// state.
func (a *Account) Settle(s State) { a.states = append(a.states[:0], s) }
