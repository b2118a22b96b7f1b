package crashtest

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"timd/internal/audience"
	"timd/internal/im"
)

func TestMatches(t *testing.T) {
	s := State{Attrs: [numAttrs]uint8{1, 3, 0}, Tags: tags(0, 1, 2)}
	for _, tc := range []struct {
		c    *im.Condition
		want bool
	}{
		{nil, true},
		{&im.Condition{}, true},
		{&im.Condition{TagsAnd: []string{"tag00", "tag02"}}, true},
		{&im.Condition{TagsAnd: []string{"tag00", "tag03"}}, false},
		{&im.Condition{TagsAnd: []string{noSuchTag}}, false},
		{&im.Condition{TagsOr: []string{"tag05", "tag01"}}, true},
		{&im.Condition{TagsOr: []string{"tag05", noSuchTag}}, false},
		{&im.Condition{TagsAnd: []string{"tag00"}, TagsOr: []string{"tag04", "tag05"}}, false},
		// TagsNot excludes an account carrying every listed tag (literal reading).
		{&im.Condition{TagsNot: []string{"tag00", "tag01"}}, false},
		{&im.Condition{TagsNot: []string{"tag00", "tag05"}}, true},
		{&im.Condition{TagsNot: []string{"tag00", noSuchTag}}, true},
		{&im.Condition{TagsOr: []string{"tag01"}, TagsNot: []string{"tag02"}}, false},
		{&im.Condition{AttrsAnd: map[string]string{"city": "c0", "tier": "t2"}}, true},
		{&im.Condition{AttrsAnd: map[string]string{"city": "c0", "lang": "l0"}}, false},
		{&im.Condition{AttrsAnd: map[string]string{"city": "c9"}}, false},
		{&im.Condition{AttrsOr: map[string]string{"city": "c1", "tier": "t2"}}, true},
		{&im.Condition{AttrsOr: map[string]string{"city": "c1", "lang": "l0"}}, false},
		{&im.Condition{AttrsAnd: map[string]string{"city": "c0"}, AttrsOr: map[string]string{"lang": "l0"}}, false},
	} {
		if got := matches(tc.c, s); got != tc.want {
			t.Errorf("%s on {%s}: %t, want %t", condText(tc.c), s, got, tc.want)
		}
	}
}

// TestConditionsAgainstIndex checks the test's reading of every condition
// it generates against timd's own audience index over random states, and
// that timd accepts each one.
func TestConditionsAgainstIndex(t *testing.T) {
	const app = 1
	r := rand.New(rand.NewPCG(5, 6))
	var schema im.AttrSchema
	for i, n := range attrNames {
		schema[i].Name = n
	}
	states := make([]State, 3000)
	x := audience.New()
	var changes []im.Change
	for i := range states {
		s := &states[i]
		for range r.IntN(8) {
			*s = randomOp(r, OpKind(r.IntN(int(numOps)))).Apply(*s)
		}
		c := im.Change{App: app, Op: im.ChangeUpsert, ID: "u" + strconv.Itoa(i), Ordinal: uint32(i), NewTags: tagNames(s.Tags)}
		for slot, v := range s.Attrs {
			if v != 0 {
				c.NewAttrs[slot] = attrValue(slot, v)
			}
		}
		changes = append(changes, c)
	}
	x.Apply(changes)
	for range 20 {
		for _, c := range conditions(r) {
			bm, err := x.Evaluate(app, &schema, c, audience.DefaultOptions())
			if err != nil {
				t.Fatalf("%s: %v", condText(c), err)
			}
			if got, want := int64(bm.GetCardinality()), audienceSize(c, states); got != want {
				t.Fatalf("%s: index selects %d, the test expects %d", condText(c), got, want)
			}
		}
	}
}
