package audience

import (
	"slices"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/im"
)

// Options tune how a Condition is read where the spec is ambiguous.
type Options struct {
	// TagsNotAll selects the reading of TagsNot (docs/compatibility.md, "Push conditions" [conflict]).
	// true, the literal reading of Tencent's only example and timd's
	// default: exclude accounts that carry every TagsNot tag. false:
	// exclude accounts that carry any of them. Note the zero Options is the
	// non-default reading; start from DefaultOptions.
	TagsNotAll bool
}

// DefaultOptions returns the default reading: TagsNotAll set.
func DefaultOptions() Options {
	return Options{TagsNotAll: true}
}

// Validate checks the shape of c against schema without touching any index.
// It returns nil for a nil or empty c. Otherwise it returns the first
// failure, as an *im.Error, in this order:
//
//  1. 90039 a tag list (TagsAnd, TagsOr or TagsNot) and an attribute map
//     (AttrsAnd or AttrsOr) are both non-empty;
//  2. 90032 TagsAnd, TagsOr or TagsNot (checked in that order) has more
//     than 10 entries;
//  3. 90040 an empty tag, scanning TagsAnd, TagsOr, TagsNot in order;
//  4. 90020 a tag longer than 50 bytes, same scan;
//  5. 90022 a tag in both TagsAnd and TagsOr (the first such in TagsAnd);
//  6. 90033 in AttrsAnd then AttrsOr, names in byte order: an empty name, a
//     name that is not defined in schema (a nil schema defines none), or
//     an empty value or one longer than 50 bytes.
//
// TagsNot counts as a tag condition for 90039 and has its own 10-entry
// limit, but takes no part in the 90022 check. Repeats within one list are
// allowed. The attribute maps have no count check of their own: names are
// unique map keys and must resolve to one of 10 slots, so an eleventh name
// is necessarily undefined and fails with 90033. opt is accepted so that
// future options can tighten validation; none does today.
func Validate(schema *im.AttrSchema, c *im.Condition, opt Options) error {
	_ = opt
	if c.Empty() {
		return nil
	}
	hasTags := len(c.TagsAnd) > 0 || len(c.TagsOr) > 0 || len(c.TagsNot) > 0
	if hasTags && (len(c.AttrsAnd) > 0 || len(c.AttrsOr) > 0) {
		return im.Errorf(im.CodeAttrAndTag, "tag and attribute conditions cannot be used together")
	}
	if hasTags {
		return validateTags(c)
	}
	if err := validateAttrs(schema, "AttrsAnd", c.AttrsAnd); err != nil {
		return err
	}
	return validateAttrs(schema, "AttrsOr", c.AttrsOr)
}

func validateTags(c *im.Condition) error {
	lists := [3]struct {
		name string
		tags []string
	}{{"TagsAnd", c.TagsAnd}, {"TagsOr", c.TagsOr}, {"TagsNot", c.TagsNot}}
	for _, l := range lists {
		if len(l.tags) > im.MaxConditionTags {
			return im.Errorf(im.CodeTooManyTags, "%s has %d tags, at most %d are allowed",
				l.name, len(l.tags), im.MaxConditionTags)
		}
	}
	for _, l := range lists {
		if slices.Contains(l.tags, "") {
			return im.Errorf(im.CodeEmptyTag, "%s contains an empty tag", l.name)
		}
	}
	for _, l := range lists {
		for _, t := range l.tags {
			if len(t) > im.MaxTagLen {
				return im.Errorf(im.CodeTagTooLong, "%s: tag longer than %d bytes", l.name, im.MaxTagLen)
			}
		}
	}
	for _, t := range c.TagsAnd {
		if slices.Contains(c.TagsOr, t) {
			return im.Errorf(im.CodeTagAndOr, "tag %q is in both TagsAnd and TagsOr", t)
		}
	}
	return nil
}

func validateAttrs(schema *im.AttrSchema, field string, m map[string]string) error {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v := m[name]
		switch {
		case name == "":
			return im.Errorf(im.CodeAttrInvalid, "%s: empty attribute name", field)
		case slotOf(schema, name) < 0:
			if len(name) > im.MaxAttrNameLen {
				return im.Errorf(im.CodeAttrInvalid, "%s: attribute name longer than %d bytes",
					field, im.MaxAttrNameLen)
			}
			return im.Errorf(im.CodeAttrInvalid, "%s: attribute %q is not defined", field, name)
		case v == "":
			return im.Errorf(im.CodeAttrInvalid, "%s: attribute %q has an empty value", field, name)
		case len(v) > im.MaxAttrValueLen:
			return im.Errorf(im.CodeAttrInvalid, "%s: value of attribute %q longer than %d bytes",
				field, name, im.MaxAttrValueLen)
		}
	}
	return nil
}

func slotOf(schema *im.AttrSchema, name string) int {
	if schema == nil {
		return -1
	}
	return schema.Slot(name)
}

// Evaluate returns a new bitmap, owned by the caller, of the ordinals of
// app's live accounts that c selects. It first runs Validate and returns
// its *im.Error (codes 90020, 90022, 90032, 90033, 90039, 90040) unchanged.
//
// A nil or empty c selects every live account of both types (UserIDs and
// RegistrationIDs), which is "push to all users". (A request's Condition
// never arrives empty: the edge, package httpapi, refuses a Condition with
// an unknown key or no clause, so only an absent one means everyone.) Otherwise the present
// parts are intersected: all of TagsAnd ∩ any of TagsOr, minus the TagsNot
// exclusion (see Options); or every pair of AttrsAnd ∩ any pair of
// AttrsOr. TagsNot alone selects every account minus the exclusion.
// Attribute names resolve through schema and values compare exactly. A tag
// or value nobody has is an empty set, not an error. An unknown app is an
// empty index.
func (x *Index) Evaluate(app uint64, schema *im.AttrSchema, c *im.Condition, opt Options) (*roaring.Bitmap, error) {
	if err := Validate(schema, c, opt); err != nil {
		return nil, err
	}
	a := x.app(app, false)
	if a == nil {
		return roaring.New(), nil
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	switch {
	case c.Empty():
		return a.all.Clone(), nil
	case len(c.AttrsAnd) > 0 || len(c.AttrsOr) > 0:
		return a.evalAttrs(schema, c), nil
	default:
		return a.evalTags(c, opt), nil
	}
}

func (a *appIndex) evalTags(c *im.Condition, opt Options) *roaring.Bitmap {
	and, ok := lookupAll(a.tags, c.TagsAnd)
	if !ok {
		return roaring.New()
	}
	res := combine(and, lookupAny(a.tags, c.TagsOr), len(c.TagsOr) > 0)
	if res == nil {
		res = a.all.Clone()
	}
	if len(c.TagsNot) == 0 || res.IsEmpty() {
		return res
	}
	if opt.TagsNotAll {
		// Exclude res ∩ every TagsNot set, starting from the smallest.
		if not, ok := lookupAll(a.tags, c.TagsNot); ok {
			res.AndNot(intersect(append(not, res)))
		}
		return res
	}
	for _, bm := range lookupAny(a.tags, c.TagsNot) {
		res.AndNot(bm)
	}
	return res
}

func (a *appIndex) evalAttrs(schema *im.AttrSchema, c *im.Condition) *roaring.Bitmap {
	and := make([]*roaring.Bitmap, 0, len(c.AttrsAnd))
	for name, v := range c.AttrsAnd {
		bm := a.attrs[schema.Slot(name)][v]
		if bm == nil {
			return roaring.New()
		}
		and = append(and, bm)
	}
	var or []*roaring.Bitmap
	for name, v := range c.AttrsOr {
		if bm := a.attrs[schema.Slot(name)][v]; bm != nil {
			or = append(or, bm)
		}
	}
	res := combine(and, or, len(c.AttrsOr) > 0)
	if res == nil {
		return a.all.Clone()
	}
	return res
}

// combine returns a new bitmap: the intersection of and (when non-empty)
// with the union of or (when orPresent; an empty or then selects nobody).
// It returns nil when neither part is present.
func combine(and, or []*roaring.Bitmap, orPresent bool) *roaring.Bitmap {
	if orPresent && len(or) == 0 {
		return roaring.New()
	}
	var res *roaring.Bitmap
	if len(and) > 0 {
		res = intersect(and)
	}
	if !orPresent {
		return res
	}
	if res == nil {
		return roaring.FastOr(or...)
	}
	if len(or) == 1 {
		res.And(or[0])
		return res
	}
	res.And(roaring.FastOr(or...))
	return res
}

// lookupAll returns the sets of keys, or false when one has no set (so the
// intersection is empty).
func lookupAll(m map[string]*roaring.Bitmap, keys []string) ([]*roaring.Bitmap, bool) {
	bms := make([]*roaring.Bitmap, 0, len(keys))
	for _, k := range keys {
		bm := m[k]
		if bm == nil {
			return nil, false
		}
		bms = append(bms, bm)
	}
	return bms, true
}

// lookupAny returns the sets of those keys that have one.
func lookupAny(m map[string]*roaring.Bitmap, keys []string) []*roaring.Bitmap {
	var bms []*roaring.Bitmap
	for _, k := range keys {
		if bm := m[k]; bm != nil {
			bms = append(bms, bm)
		}
	}
	return bms
}
