package im

import "context"

// AppStore persists apps.
type AppStore interface {
	// PutApp creates or replaces an app.
	PutApp(ctx context.Context, app App) error
	// App returns one app, or ErrNotFound.
	App(ctx context.Context, sdkappid uint64) (App, error)
	// Apps returns every app ordered by SDKAppID.
	Apps(ctx context.Context) ([]App, error)
	// DeleteApp removes the app record (its accounts and pushes stay and
	// come back with it if it is added again). It returns ErrNotFound for
	// an unknown app.
	DeleteApp(ctx context.Context, sdkappid uint64) error
}

// AccountStore persists accounts: imported UserIDs and device
// RegistrationIDs. Every change it commits is also passed to the store's
// ChangeSink.
type AccountStore interface {
	// ImportAccounts creates the accounts that do not exist and updates
	// Nick/FaceURL of those that do (when non-empty). It returns the
	// accounts in input order. A RegistrationID equal to an imported
	// UserID is deleted with its attributes and tags in the same
	// transaction: the import always wins, so that UserIDs and
	// RegistrationIDs never share a string.
	ImportAccounts(ctx context.Context, app uint64, in []AccountInput) ([]Account, error)
	// DeleteAccounts deletes UserIDs with their attributes and tags, and
	// the RegistrationIDs they own. It reports, per id, whether the UserID
	// existed.
	DeleteAccounts(ctx context.Context, app uint64, ids []string) ([]bool, error)
	// Accounts resolves ids (UserIDs or RegistrationIDs, RegistrationIDs
	// first) and returns those found, keyed by the id asked for.
	Accounts(ctx context.Context, app uint64, ids []string) (map[string]Account, error)
	// Kick records that UserSigs of the UserID issued at or before at are
	// invalid. It returns ErrNotFound for an unknown UserID.
	Kick(ctx context.Context, app uint64, id string, at int64) error
	// RegisterDevice creates a RegistrationID account or updates its
	// Platform and Token. It returns an error wrapping ErrExists when the
	// RegistrationID is a UserID or a device of another owner, and one
	// wrapping ErrTooMany when creating it would give d.Owner more than
	// lim.PerOwner devices.
	RegisterDevice(ctx context.Context, app uint64, d Device, lim DeviceLimits) (Account, error)
}

// AudienceStore persists attribute names, attribute values and tags.
type AudienceStore interface {
	// AttrSchema returns the app's attribute slots (all undefined if never set).
	AttrSchema(ctx context.Context, app uint64) (AttrSchema, error)
	// PutAttrSchema stores the app's attribute slots.
	PutAttrSchema(ctx context.Context, app uint64, s AttrSchema) error
	// ApplyEdits applies each edit atomically and returns one error per
	// edit: nil, or an *Error with a fixed code (70107 unknown account,
	// 90035 account type bound, 90032 too many tags for the user or app).
	// The second result is a whole-request failure; then nothing was applied.
	ApplyEdits(ctx context.Context, app uint64, edits []Edit, lim EditLimits) ([]error, error)
	// Profiles returns the audience data of the accounts found among ids,
	// keyed by the id asked for.
	Profiles(ctx context.Context, app uint64, ids []string) (map[string]Profile, error)
	// ScanProfiles calls fn for every account of the app in ordinal order.
	ScanProfiles(ctx context.Context, app uint64, fn func(Profile) error) error
	// ReadAttrs and ReadTags are the narrow reads of get_attr and get_tag:
	// they return one entry per id, in the order of ids (repeats
	// included), for the account the id names (resolved as in Accounts),
	// with Found false for an id that names none. They read only the
	// attribute values or only the tags, and see every acknowledged write.
	ReadAttrs(ctx context.Context, app uint64, ids []string) ([]FoundAttrs, error)
	ReadTags(ctx context.Context, app uint64, ids []string) ([]FoundTags, error)
}

// Store is a complete backend.
type Store interface {
	AppStore
	AccountStore
	AudienceStore
	PushStore
	SchedStore
	DeviceStore
	Outbox
	// SetChangeSink installs the receiver of committed changes; call it
	// before any write.
	SetChangeSink(ChangeSink)
	Close() error
}
