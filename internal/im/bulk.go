package im

import "context"

// BulkAccount is one account of a bulk load: a UserID created if it does
// not exist, its Nick and FaceURL set where non-empty, its attribute
// values set where non-empty (others untouched), and Tags added to the
// ones it has, as account_import, set_attr and add_tag would. Applying
// the same BulkAccount twice changes nothing the second time.
type BulkAccount struct {
	UserID  string
	Nick    string
	FaceURL string
	Attrs   AttrValues
	Tags    []string
}

// BulkLoader is a store that loads accounts in large batches.
type BulkLoader interface {
	// BulkLoad applies accounts in one transaction and returns one error
	// per account: nil, or an *Error with 90035 (an attribute slot or tag
	// bound to RegistrationIDs) or 90032 (more than lim.TagsPerUser tags
	// for the account or lim.TagsPerApp distinct tags in the app). An
	// account that fails changes nothing; the others apply. The second
	// result is a whole-batch failure; then nothing was applied.
	BulkLoad(ctx context.Context, app uint64, accounts []BulkAccount, lim EditLimits) ([]error, error)
}
