package loadgen

import (
	"fmt"
	"slices"
)

// AttrNames are the attribute slots a run names (set_attr_name) and fills.
var AttrNames = []string{"city", "tier", "lang"}

// Profile is the tags and attributes a run gives one account.
type Profile struct {
	Tags  []string
	Attrs map[string]string
}

// ProfileOf is account i's prepared profile: tag<i%10> (10% of accounts
// each), tag<10+i%7> (1/7 each), city c<i%5> (20% each), tier t<i%3> and
// lang l<i%2>. Bench accounts and live clients share it, so a Condition
// selects the same share of both, and the bench knows which live clients
// a push must reach.
func ProfileOf(i int) Profile {
	return Profile{
		Tags: []string{fmt.Sprintf("tag%d", i%10), fmt.Sprintf("tag%d", 10+i%7)},
		Attrs: map[string]string{"city": fmt.Sprintf("c%d", i%5), "tier": fmt.Sprintf("t%d", i%3),
			"lang": fmt.Sprintf("l%d", i%2)},
	}
}

// Condition is the part of a push Condition (docs/compatibility.md, "Push conditions") the bench uses;
// its JSON is the request's "Condition" object. Empty means everyone.
type Condition struct {
	TagsAnd  []string          `json:",omitempty"`
	TagsOr   []string          `json:",omitempty"`
	AttrsAnd map[string]string `json:",omitempty"`
	AttrsOr  map[string]string `json:",omitempty"`
}

// Empty reports whether c selects everyone.
func (c Condition) Empty() bool {
	return len(c.TagsAnd)+len(c.TagsOr)+len(c.AttrsAnd)+len(c.AttrsOr) == 0
}

// Kind names c's shape for reports: "everyone", "TagsOr 1", "TagsAnd 2",
// "AttrsAnd 1", …
func (c Condition) Kind() string {
	switch {
	case c.Empty():
		return "everyone"
	case len(c.TagsAnd) > 0:
		return fmt.Sprintf("TagsAnd %d", len(c.TagsAnd))
	case len(c.TagsOr) > 0:
		return fmt.Sprintf("TagsOr %d", len(c.TagsOr))
	case len(c.AttrsAnd) > 0:
		return fmt.Sprintf("AttrsAnd %d", len(c.AttrsAnd))
	default:
		return fmt.Sprintf("AttrsOr %d", len(c.AttrsOr))
	}
}

// Matches reports whether an account with profile p is in c's audience:
// every listed part must hold (TagsAnd: all tags; TagsOr: at least one;
// AttrsAnd: every pair; AttrsOr: at least one pair).
func (c Condition) Matches(p Profile) bool {
	has := func(t string) bool { return slices.Contains(p.Tags, t) }
	pair := func(k, v string) bool { got, ok := p.Attrs[k]; return ok && got == v }
	for _, t := range c.TagsAnd {
		if !has(t) {
			return false
		}
	}
	if len(c.TagsOr) > 0 && !slices.ContainsFunc(c.TagsOr, has) {
		return false
	}
	for k, v := range c.AttrsAnd {
		if !pair(k, v) {
			return false
		}
	}
	if len(c.AttrsOr) > 0 {
		for k, v := range c.AttrsOr {
			if pair(k, v) {
				return true
			}
		}
		return false
	}
	return true
}

// Rotation is the Condition of a run's push k. It cycles through four
// shapes, each over ProfileOf's values so that it selects a known share:
// everyone, TagsOr of one tag (10%), AttrsAnd of one city (20%), TagsAnd
// of two tags (1/70); the values move on every cycle.
func Rotation(k int) Condition {
	j := k / 4
	switch k % 4 {
	case 1:
		return Condition{TagsOr: []string{fmt.Sprintf("tag%d", j%10)}}
	case 2:
		return Condition{AttrsAnd: map[string]string{"city": fmt.Sprintf("c%d", j%5)}}
	case 3:
		return Condition{TagsAnd: []string{fmt.Sprintf("tag%d", j%10), fmt.Sprintf("tag%d", 10+j%7)}}
	default:
		return Condition{}
	}
}

// Audience is the live clients 0..n-1 (client i has ProfileOf(i)) that
// c selects.
func Audience(c Condition, n int) []int {
	var out []int
	for i := range n {
		if c.Matches(ProfileOf(i)) {
			out = append(out, i)
		}
	}
	return out
}
