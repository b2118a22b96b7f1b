package audience

import (
	"fmt"
	"strings"
	"testing"

	"timd/internal/im"
)

func testSchema() *im.AttrSchema {
	var s im.AttrSchema
	s[0] = im.AttrSlot{Name: "gender"}
	s[1] = im.AttrSlot{Name: "city"}
	s[3] = im.AttrSlot{Name: "device", Type: im.AcctRegistrationID}
	return &s
}

func tagList(n int) []string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%d", i)
	}
	return tags
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", 51)
	max := strings.Repeat("x", 50)
	tests := []struct {
		name   string
		schema *im.AttrSchema
		c      *im.Condition
		code   int
	}{
		{"nil", nil, nil, 0},
		{"empty", nil, &im.Condition{}, 0},
		{"empty lists", nil, &im.Condition{TagsAnd: []string{}, AttrsOr: map[string]string{}}, 0},

		{"90039 tags and attrs", testSchema(), &im.Condition{TagsOr: []string{"a"}, AttrsAnd: map[string]string{"city": "sz"}}, im.CodeAttrAndTag},
		{"90039 TagsNot and attrs", testSchema(), &im.Condition{TagsNot: []string{"a"}, AttrsOr: map[string]string{"city": "sz"}}, im.CodeAttrAndTag},
		{"90039 before 90032", testSchema(), &im.Condition{TagsAnd: tagList(11), AttrsAnd: map[string]string{"nope": ""}}, im.CodeAttrAndTag},
		{"ok TagsAnd and TagsOr", nil, &im.Condition{TagsAnd: []string{"a", "b"}, TagsOr: []string{"c"}}, 0},
		{"ok AttrsAnd and AttrsOr", testSchema(), &im.Condition{AttrsAnd: map[string]string{"city": "sz"}, AttrsOr: map[string]string{"gender": "f", "device": "ios"}}, 0},

		{"ok 10 TagsAnd", nil, &im.Condition{TagsAnd: tagList(10)}, 0},
		{"ok 10 in each list", nil, &im.Condition{TagsAnd: tagList(10)[:5], TagsOr: tagList(10)[5:], TagsNot: tagList(10)}, 0},
		{"90032 TagsAnd", nil, &im.Condition{TagsAnd: tagList(11)}, im.CodeTooManyTags},
		{"90032 TagsOr", nil, &im.Condition{TagsOr: tagList(11)}, im.CodeTooManyTags},
		{"90032 TagsNot", nil, &im.Condition{TagsNot: tagList(11)}, im.CodeTooManyTags},
		{"90032 before 90040", nil, &im.Condition{TagsAnd: []string{""}, TagsNot: tagList(11)}, im.CodeTooManyTags},

		{"90040 TagsAnd", nil, &im.Condition{TagsAnd: []string{"a", ""}}, im.CodeEmptyTag},
		{"90040 TagsOr", nil, &im.Condition{TagsOr: []string{""}}, im.CodeEmptyTag},
		{"90040 TagsNot", nil, &im.Condition{TagsNot: []string{"a", ""}}, im.CodeEmptyTag},
		{"90040 before 90020", nil, &im.Condition{TagsAnd: []string{long}, TagsNot: []string{""}}, im.CodeEmptyTag},

		{"ok 50-byte tag", nil, &im.Condition{TagsOr: []string{max}}, 0},
		{"90020 TagsAnd", nil, &im.Condition{TagsAnd: []string{long}}, im.CodeTagTooLong},
		{"90020 TagsOr", nil, &im.Condition{TagsOr: []string{"a", long}}, im.CodeTagTooLong},
		{"90020 TagsNot", nil, &im.Condition{TagsNot: []string{long}}, im.CodeTagTooLong},
		{"90020 before 90022", nil, &im.Condition{TagsAnd: []string{"a", long}, TagsOr: []string{"a"}}, im.CodeTagTooLong},

		{"90022 and/or overlap", nil, &im.Condition{TagsAnd: []string{"a", "b"}, TagsOr: []string{"c", "b"}}, im.CodeTagAndOr},
		{"ok and/not overlap", nil, &im.Condition{TagsAnd: []string{"a"}, TagsNot: []string{"a"}}, 0},
		{"ok or/not overlap", nil, &im.Condition{TagsOr: []string{"a"}, TagsNot: []string{"a"}}, 0},
		{"ok repeat within list", nil, &im.Condition{TagsAnd: []string{"a", "a"}, TagsOr: []string{"b", "b"}}, 0},
		{"ok TagsNot alone", nil, &im.Condition{TagsNot: []string{"a"}}, 0},

		{"ok defined attr", testSchema(), &im.Condition{AttrsAnd: map[string]string{"gender": "f"}}, 0},
		{"ok 50-byte value", testSchema(), &im.Condition{AttrsOr: map[string]string{"city": max}}, 0},
		{"90033 undefined attr", testSchema(), &im.Condition{AttrsAnd: map[string]string{"age": "3"}}, im.CodeAttrInvalid},
		{"90033 undefined in AttrsOr", testSchema(), &im.Condition{AttrsAnd: map[string]string{"city": "sz"}, AttrsOr: map[string]string{"age": "3"}}, im.CodeAttrInvalid},
		{"90033 nil schema", nil, &im.Condition{AttrsAnd: map[string]string{"city": "sz"}}, im.CodeAttrInvalid},
		{"90033 empty name", testSchema(), &im.Condition{AttrsOr: map[string]string{"": "x"}}, im.CodeAttrInvalid},
		{"90033 long name", testSchema(), &im.Condition{AttrsOr: map[string]string{long: "x"}}, im.CodeAttrInvalid},
		{"90033 empty value", testSchema(), &im.Condition{AttrsAnd: map[string]string{"city": ""}}, im.CodeAttrInvalid},
		{"90033 long value", testSchema(), &im.Condition{AttrsAnd: map[string]string{"city": long}}, im.CodeAttrInvalid},
		{"90033 eleven names", testSchema(), &im.Condition{AttrsAnd: elevenAttrs()}, im.CodeAttrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, opt := range []Options{{TagsNotAll: true}, {}} {
				err := Validate(tt.schema, tt.c, opt)
				if got := im.CodeOf(err); got != tt.code {
					t.Fatalf("Validate(%+v) = %v (code %d), want code %d", tt.c, err, got, tt.code)
				}
				if err != nil {
					if _, ok := im.AsError(err); !ok {
						t.Fatalf("Validate error %T is not *im.Error", err)
					}
				}
			}
		})
	}
}

func elevenAttrs() map[string]string {
	m := map[string]string{}
	for i := range 11 {
		m[fmt.Sprintf("a%02d", i)] = "v"
	}
	return m
}

// TestValidateDeterministic checks that a condition with several faults
// always reports the same one, whatever the map order.
func TestValidateDeterministic(t *testing.T) {
	c := &im.Condition{AttrsAnd: map[string]string{"zzz": "1", "city": "", "aaa": "2", "gender": strings.Repeat("v", 51)}}
	want := Validate(testSchema(), c, DefaultOptions()).Error()
	for range 50 {
		if got := Validate(testSchema(), c, DefaultOptions()).Error(); got != want {
			t.Fatalf("Validate = %q, earlier %q", got, want)
		}
	}
	if !strings.Contains(want, `"aaa"`) {
		t.Fatalf("Validate = %q, want the first name in byte order", want)
	}
}

// TestEvaluateSmall checks the documented semantics on a hand-made index.
func TestEvaluateSmall(t *testing.T) {
	x := smallIndex()
	s := testSchema()
	tests := []struct {
		name   string
		c      *im.Condition
		all    []uint32 // TagsNotAll
		anyNot []uint32 // !TagsNotAll; nil means same as all
	}{
		{"nil", nil, []uint32{1, 2, 3, 4, 5, 6}, nil},
		{"empty", &im.Condition{}, []uint32{1, 2, 3, 4, 5, 6}, nil},
		{"TagsAnd", &im.Condition{TagsAnd: []string{"a", "b"}}, []uint32{1, 2}, nil},
		{"TagsAnd missing", &im.Condition{TagsAnd: []string{"a", "nope"}}, []uint32{}, nil},
		{"TagsOr", &im.Condition{TagsOr: []string{"c", "nope"}}, []uint32{3, 4}, nil},
		{"TagsOr missing", &im.Condition{TagsOr: []string{"nope"}}, []uint32{}, nil},
		{"TagsAnd TagsOr", &im.Condition{TagsAnd: []string{"a"}, TagsOr: []string{"c", "b"}}, []uint32{1, 2, 3}, nil},
		{"TagsOr TagsNot", &im.Condition{TagsOr: []string{"a"}, TagsNot: []string{"b", "c"}}, []uint32{1, 2, 3}, []uint32{}},
		{"TagsNot alone", &im.Condition{TagsNot: []string{"a", "b"}}, []uint32{3, 4, 5, 6}, []uint32{4, 5, 6}},
		{"TagsNot missing", &im.Condition{TagsNot: []string{"a", "nope"}}, []uint32{1, 2, 3, 4, 5, 6}, []uint32{4, 5, 6}},
		{"AttrsAnd", &im.Condition{AttrsAnd: map[string]string{"gender": "f", "city": "sz"}}, []uint32{1}, nil},
		{"AttrsAnd missing", &im.Condition{AttrsAnd: map[string]string{"gender": "x"}}, []uint32{}, nil},
		{"AttrsOr", &im.Condition{AttrsOr: map[string]string{"gender": "m", "device": "ios"}}, []uint32{2, 4, 5}, nil},
		{"AttrsAnd AttrsOr", &im.Condition{AttrsAnd: map[string]string{"city": "sz"}, AttrsOr: map[string]string{"gender": "m", "device": "x"}}, []uint32{2}, nil},
		{"exact values", &im.Condition{AttrsAnd: map[string]string{"city": "SZ"}}, []uint32{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, opt := range []Options{{TagsNotAll: true}, {}} {
				want := tt.all
				if !opt.TagsNotAll && tt.anyNot != nil {
					want = tt.anyNot
				}
				bm, err := x.Evaluate(7, s, tt.c, opt)
				if err != nil {
					t.Fatal(err)
				}
				if got := bm.ToArray(); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%+v: Evaluate = %v, want %v", opt, got, want)
				}
			}
		})
	}
	bm, err := x.Evaluate(8, s, nil, DefaultOptions())
	if err != nil || !bm.IsEmpty() {
		t.Errorf("Evaluate(unknown app) = %v, %v; want empty", bm, err)
	}
	if _, err := x.Evaluate(7, s, &im.Condition{TagsOr: []string{""}}, DefaultOptions()); im.CodeOf(err) != im.CodeEmptyTag {
		t.Errorf("Evaluate(invalid) error = %v, want 90040", err)
	}
}

// smallIndex is app 7 with six accounts:
//
//	1 u1 f sz  a b
//	2 u2 m sz  a b
//	3 u3 f bj  a c
//	4 u4 m bj  c
//	5 d5 (RegistrationID) device=ios
//	6 u6 (no attributes, no tags)
func smallIndex() *Index {
	x := New()
	up := func(ord uint32, id string, typ im.AcctType, attrs map[int]string, tags ...string) im.Change {
		c := im.Change{App: 7, Op: im.ChangeUpsert, ID: id, Type: typ, Ordinal: ord, NewTags: tags}
		for s, v := range attrs {
			c.NewAttrs[s] = v
		}
		return c
	}
	x.Apply([]im.Change{
		up(1, "u1", im.AcctUserID, map[int]string{0: "f", 1: "sz"}, "a", "b"),
		up(2, "u2", im.AcctUserID, map[int]string{0: "m", 1: "sz"}, "a", "b"),
		up(3, "u3", im.AcctUserID, map[int]string{0: "f", 1: "bj"}, "a", "c"),
		up(4, "u4", im.AcctUserID, map[int]string{0: "m", 1: "bj"}, "c"),
		up(5, "d5", im.AcctRegistrationID, map[int]string{3: "ios"}),
		up(6, "u6", im.AcctUserID, nil),
	})
	return x
}
