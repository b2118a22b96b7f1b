// Package audience is timd's in-memory audience index and the evaluator of
// push Conditions (docs/compatibility.md, "Push conditions"). Per app it keeps roaring bitmaps of account
// ordinals: every live account, the accounts of each type, the holders of
// each attribute value per slot and of each tag, plus a compact
// ordinal⇄ID dictionary for delivery. It is fed only by im.Change records,
// so any store that emits them drives it; it is rebuilt from a store scan
// at start-up (Reset, then Apply).
//
// Semantics decisions (where Tencent's documentation is silent or ambiguous; see
// docs/compatibility.md, "Push conditions"):
//
//   - No Condition, or an empty one, selects every live account of both
//     types: imported/logged-in UserIDs and registered RegistrationIDs.
//   - Present parts are intersected: (all TagsAnd) ∩ (any TagsOr) ∖ TagsNot
//     exclusion; (every AttrsAnd pair) ∩ (any AttrsOr pair).
//   - TagsNot has two readings behind Options.TagsNotAll. true (the default,
//     the literal reading of the only example "(A or B) and not (C and
//     D)"): exclude accounts carrying every TagsNot tag. false: exclude
//     accounts carrying any of them.
//   - TagsNot may be used alone: every account minus the exclusion.
//   - TagsNot is a tag condition for 90039 (no tags with attributes), has
//     its own limit of 10 entries (90032) and the same empty (90040) and
//     length (90020) checks, but is not part of the TagsAnd/TagsOr
//     duplicate check (90022): a tag may be in TagsNot and in TagsAnd or
//     TagsOr, and the sets simply combine (TagsAnd ["a"] with TagsNot ["a"]
//     selects nobody).
//   - A tag repeated inside one list is allowed and counts once.
//   - Attribute conditions name attributes, resolved through the app's
//     schema; values compare exactly (case-sensitive, no trimming). An empty
//     or undefined name, an empty value, or a value over 50 bytes is 90033.
//     The attribute maps have no separate count limit: more than 10 names
//     always include an undefined one (90033).
//   - A tag or attribute value that no account has is an empty set, not an
//     error: TagsAnd/AttrsAnd then select nobody, TagsOr/AttrsOr ignore it.
//   - Attribute slots and tags bound to an account type need no special
//     handling: only accounts of that type ever hold them.
//   - Validate reports the first failure in a fixed order: 90039, 90032,
//     90040, 90020, 90022, 90033 (see Validate).
//
// Memory: about 55-60 bytes per account (ID dictionary included) for 10
// attributes over small value domains and 5 tags from a pool of 200; a
// two-tag TagsAnd over 10M accounts takes about 1 ms (index_bench_test.go).
// Attributes with very many distinct values (say one per account) cost a
// map entry and a bitmap per value, on the order of 150 bytes each; the
// budget assumes small domains. Deleted IDs stay in the dictionary's arena
// until the app is rebuilt (Reset, then Apply).
package audience
