package crashtest

import (
	"math/rand/v2"

	"timd/internal/im"
)

// noSuchTag is a tag no writer sends: a condition naming it selects
// nobody (in TagsOr) or excludes nobody (in TagsNot).
const noSuchTag = "no-such-tag"

// conditions returns the audiences checked after a restart: everyone,
// each tag, each attribute value, and random combinations of TagsAnd,
// TagsOr, TagsNot, AttrsAnd and AttrsOr.
func conditions(r *rand.Rand) []*im.Condition {
	out := []*im.Condition{nil}
	for i := range numTags {
		out = append(out, &im.Condition{TagsOr: []string{tagName(i)}})
	}
	for slot, name := range attrNames {
		for v := uint8(1); v <= numValues; v++ {
			out = append(out, &im.Condition{AttrsAnd: map[string]string{name: attrValue(slot, v)}})
		}
	}
	t := func() []string { // distinct tags in random order
		p := r.Perm(numTags)
		names := make([]string, len(p))
		for i, b := range p {
			names[i] = tagName(b)
		}
		return names
	}
	val := func(slot int) string { return attrValue(slot, uint8(1+r.IntN(numValues))) }
	a, b, c, d, e := t(), t(), t(), t(), t()
	return append(out,
		&im.Condition{TagsAnd: a[:2]},
		&im.Condition{TagsAnd: b[:3]},
		&im.Condition{TagsAnd: c[:1], TagsOr: c[1:3]},
		&im.Condition{TagsOr: d[:2], TagsNot: d[2:4]},
		&im.Condition{TagsAnd: e[:1], TagsNot: e[1:2]},
		&im.Condition{TagsNot: a[5:6]},
		&im.Condition{TagsNot: b[5:7]},
		&im.Condition{TagsOr: append(c[4:9:9], noSuchTag)},
		&im.Condition{TagsOr: d[5:7], TagsNot: []string{noSuchTag}},
		&im.Condition{AttrsAnd: map[string]string{"city": val(0), "tier": val(1)}},
		&im.Condition{AttrsAnd: map[string]string{"city": val(0), "tier": val(1), "lang": val(2)}},
		&im.Condition{AttrsOr: map[string]string{"city": val(0), "lang": val(2)}},
		&im.Condition{AttrsAnd: map[string]string{"tier": val(1)}, AttrsOr: map[string]string{"city": val(0), "lang": val(2)}},
	)
}

// matches reports whether an account in state s is in c's audience, as
// docs/compatibility.md ("Push conditions") defines it: every TagsAnd tag, at
// least one TagsOr tag (when given), and not every TagsNot tag (timd's
// default, literal reading); every AttrsAnd pair and at least one AttrsOr
// pair (when given). No condition is everyone.
func matches(c *im.Condition, s State) bool { return compile(c).match(s) }

// matcher is a Condition over the test's domain, as bit masks.
type matcher struct {
	never             bool   // a TagsAnd tag or AttrsAnd value no account can have
	and, or, not      uint16 // tag masks
	orGiven, notGiven bool
	notUnknown        bool // TagsNot names a tag no account has: it excludes nobody
	attrAnd           [numAttrs]uint8
	attrOr            [numAttrs]uint16 // per slot, a bit per value
	attrOrGiven       bool
}

func compile(c *im.Condition) matcher {
	var m matcher
	if c == nil {
		return m
	}
	for _, t := range c.TagsAnd {
		if b := tagBit(t); b < 0 {
			m.never = true
		} else {
			m.and |= 1 << b
		}
	}
	m.orGiven, m.notGiven = len(c.TagsOr) > 0, len(c.TagsNot) > 0
	for _, t := range c.TagsOr {
		if b := tagBit(t); b >= 0 {
			m.or |= 1 << b
		}
	}
	for _, t := range c.TagsNot {
		if b := tagBit(t); b < 0 {
			m.notUnknown = true
		} else {
			m.not |= 1 << b
		}
	}
	for name, val := range c.AttrsAnd {
		slot, v := attrSlot(name), uint8(0)
		if slot >= 0 {
			v = valueOf(slot, val)
		}
		if v == 0 {
			m.never = true
			continue
		}
		m.attrAnd[slot] = v
	}
	m.attrOrGiven = len(c.AttrsOr) > 0
	for name, val := range c.AttrsOr {
		if slot := attrSlot(name); slot >= 0 {
			if v := valueOf(slot, val); v != 0 {
				m.attrOr[slot] |= 1 << v
			}
		}
	}
	return m
}

// valueOf returns the value number (1..numValues) of val in slot, or 0.
func valueOf(slot int, val string) uint8 {
	for v := uint8(1); v <= numValues; v++ {
		if attrValue(slot, v) == val {
			return v
		}
	}
	return 0
}

func (m matcher) match(s State) bool {
	switch {
	case m.never,
		s.Tags&m.and != m.and,
		m.orGiven && s.Tags&m.or == 0,
		m.notGiven && !m.notUnknown && s.Tags&m.not == m.not:
		return false
	}
	anyOr := false
	for slot, v := range s.Attrs {
		if m.attrAnd[slot] != 0 && m.attrAnd[slot] != v {
			return false
		}
		anyOr = anyOr || (v != 0 && m.attrOr[slot]&(1<<v) != 0)
	}
	return !m.attrOrGiven || anyOr
}

// audienceSize counts the states c selects.
func audienceSize(c *im.Condition, states []State) int64 {
	m := compile(c)
	var n int64
	for _, s := range states {
		if m.match(s) {
			n++
		}
	}
	return n
}
