package im

// Limits of the attribute and tag model (docs/api.md, "Attributes and tags").
const (
	MaxAttrSlots       = 10
	MaxAttrNameLen     = 50
	MaxAttrValueLen    = 50
	MaxTagLen          = 50
	MaxAccountsPerCall = 100
	MaxTagsPerAdd      = 10
	MaxTagsPerReplace  = 100
	MaxTagsPerUser     = 100
	MaxTagsPerApp      = 1000
	MaxConditionTags   = 10
)

// AttrSlot is one named attribute slot of an app.
type AttrSlot struct {
	Name string
	Type AcctType
}

// AttrSchema is an app's attribute slots, indexed 0..9. A slot with an empty
// Name is undefined.
type AttrSchema [MaxAttrSlots]AttrSlot

// Slot returns the index of the slot named name, or -1.
func (s *AttrSchema) Slot(name string) int {
	if name == "" {
		return -1
	}
	for i := range s {
		if s[i].Name == name {
			return i
		}
	}
	return -1
}

// AttrValues holds one account's attribute values by slot. An empty string
// means the attribute is not set.
type AttrValues [MaxAttrSlots]string

// Profile is an account's audience data.
type Profile struct {
	Account Account
	Attrs   AttrValues
	Tags    []string // in insertion order
}

// FoundAttrs is one entry of AudienceStore.ReadAttrs.
type FoundAttrs struct {
	Found bool
	Attrs AttrValues
}

// FoundTags is one entry of AudienceStore.ReadTags.
type FoundTags struct {
	Found bool
	Tags  []string // in insertion order
}

// EditOp says what an Edit does.
type EditOp uint8

// Edit operations, one per timpush attribute/tag command.
const (
	OpSetAttrs EditOp = iota + 1
	OpRemoveAttrs
	OpAddTags
	OpReplaceTags
	OpRemoveTags
	OpClearTags
)

// Edit is one account's change in an attribute or tag request. The service
// validates shape (lengths, defined names); the store resolves the account,
// enforces type binding and the per-user and per-app tag limits against the
// current state, and applies each Edit atomically.
type Edit struct {
	Account string // To_Account: a UserID or a RegistrationID
	Op      EditOp
	// Attrs holds, for OpSetAttrs, the new value per slot ("" = untouched);
	// Slots lists, for OpRemoveAttrs, the slots to clear.
	Attrs AttrValues
	Slots []int
	Tags  []string
}

// EditLimits bound what a batch of edits may do.
type EditLimits struct {
	TagsPerUser int // 0 means MaxTagsPerUser
	TagsPerApp  int // 0 means MaxTagsPerApp
}

// ChangeOp says how an account changed.
type ChangeOp uint8

// Change operations.
const (
	ChangeUpsert ChangeOp = iota + 1 // created, or its attrs/tags changed
	ChangeDelete                     // deleted: drop it from every set
)

// Change is one committed change to one account, in commit order. It is the
// only input of the in-memory audience index, so that any backend (SQLite
// now, a PostgreSQL change feed later) can drive the index the same way.
type Change struct {
	App uint64
	// Seq is the app's change position of this change: the store numbers
	// each app's committed changes 1, 2, 3, ... without gaps, in commit
	// order, in the same transaction as the change (see ChangeLog).
	Seq     uint64
	Op      ChangeOp
	ID      string
	Type    AcctType
	Ordinal uint32
	// Owner is, for a RegistrationID created by a user, that UserID; it is
	// set on the Upsert that creates the account (and on rebuilds) and
	// empty on every other change.
	Owner    string
	OldAttrs AttrValues
	NewAttrs AttrValues
	OldTags  []string
	NewTags  []string
}

// ChangeSink receives committed changes. Stores call it after the commit and
// before the write is acknowledged, from one goroutine at a time, in commit
// order.
type ChangeSink interface {
	Apply(changes []Change)
}

// Condition selects an audience (docs/compatibility.md, "Push conditions").
type Condition struct {
	TagsAnd  []string          `json:"TagsAnd,omitempty"`
	TagsOr   []string          `json:"TagsOr,omitempty"`
	TagsNot  []string          `json:"TagsNot,omitempty"`
	AttrsAnd map[string]string `json:"AttrsAnd,omitempty"`
	AttrsOr  map[string]string `json:"AttrsOr,omitempty"`
}

// Empty reports whether c selects everyone.
func (c *Condition) Empty() bool {
	return c == nil || (len(c.TagsAnd) == 0 && len(c.TagsOr) == 0 && len(c.TagsNot) == 0 &&
		len(c.AttrsAnd) == 0 && len(c.AttrsOr) == 0)
}
