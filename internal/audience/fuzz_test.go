package audience

import (
	"encoding/json"
	"slices"
	"testing"

	"timd/internal/im"
)

// FuzzValidateEvaluate decodes a Condition from JSON, validates it and,
// when valid, evaluates it on a small fixed index, comparing the result
// with the brute-force model. Invalid conditions must fail Validate and
// Evaluate alike with one of the documented codes. Nothing may panic.
// The JSON here is only a way to build a Condition (leniently: unknown
// keys ignored, "{}" is everyone); the wire's closed Condition is checked
// by httpapi's FuzzParsePush.
func FuzzValidateEvaluate(f *testing.F) {
	m := newModel(5, 1)
	x := New()
	for range 4 {
		x.Apply(m.batch(100))
	}
	codes := []int{im.CodeAttrAndTag, im.CodeTooManyTags, im.CodeEmptyTag,
		im.CodeTagTooLong, im.CodeTagAndOr, im.CodeAttrInvalid}
	f.Fuzz(func(t *testing.T, data []byte, tagsNotAll bool) {
		var c *im.Condition
		if err := json.Unmarshal(data, &c); err != nil {
			return
		}
		opt := Options{TagsNotAll: tagsNotAll}
		verr := Validate(m.schema, c, opt)
		bm, eerr := x.Evaluate(m.app, m.schema, c, opt)
		if verr != nil {
			if code := im.CodeOf(verr); !slices.Contains(codes, code) {
				t.Fatalf("Validate(%s) = %v: undocumented code %d", data, verr, code)
			}
			if eerr == nil || eerr.Error() != verr.Error() {
				t.Fatalf("Validate(%s) = %v but Evaluate = %v", data, verr, eerr)
			}
			return
		}
		if eerr != nil {
			t.Fatalf("Validate(%s) passed but Evaluate = %v", data, eerr)
		}
		if got, want := bm.ToArray(), m.eval(c, opt); !slices.Equal(got, want) {
			t.Fatalf("Evaluate(%s, %+v) = %v, model %v", data, opt, got, want)
		}
	})
}
