package audience

import (
	"slices"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/im"
)

// TestRecipients: a user's devices never count as recipients of their own
// (issue 8: one user's 1,000 devices were 1,000 recipients of a push to
// everyone); a device matched by its own tag reaches its owner once; a
// device nobody owns is a recipient.
func TestRecipients(t *testing.T) {
	const app = 7
	x := New()
	user := func(id string, ord uint32, tags ...string) im.Change {
		return im.Change{App: app, Op: im.ChangeUpsert, ID: id, Type: im.AcctUserID, Ordinal: ord, NewTags: tags}
	}
	dev := func(id, owner string, ord uint32, tags ...string) im.Change {
		return im.Change{App: app, Op: im.ChangeUpsert, ID: id, Type: im.AcctRegistrationID, Ordinal: ord, Owner: owner, NewTags: tags}
	}
	x.Apply([]im.Change{
		user("alice", 1, "vip"), user("bob", 2),
		dev("a-phone", "alice", 3, "ios"), dev("a-pad", "alice", 4, "ios"),
		dev("b-phone", "bob", 5, "ios"),
		dev("anon", "", 6, "ios"),
		dev("ghost-dev", "ghost", 7), // owner unknown: stays a device
	})
	var schema im.AttrSchema
	for _, tc := range []struct {
		name string
		c    *im.Condition
		want []uint32
	}{
		{"everyone", nil, []uint32{1, 2, 6, 7}},
		{"device tag reaches owners once", &im.Condition{TagsOr: []string{"ios"}}, []uint32{1, 2, 6}},
		{"user and device tags together", &im.Condition{TagsOr: []string{"ios", "vip"}}, []uint32{1, 2, 6}},
		{"user tag", &im.Condition{TagsAnd: []string{"vip"}}, []uint32{1}},
	} {
		aud, err := x.Evaluate(app, &schema, tc.c, DefaultOptions())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := x.Recipients(app, aud).ToArray()
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: recipients %v, want %v", tc.name, got, tc.want)
		}
	}
	// A batch naming a user and that user's devices is one recipient.
	if got := x.Recipients(app, roaring.BitmapOf(1, 3, 4)).ToArray(); !slices.Equal(got, []uint32{1}) {
		t.Errorf("batch recipients %v, want [1]", got)
	}
	// Deleting the owner (the store deletes its devices with it) leaves
	// nothing behind; a deleted device is forgotten.
	x.Apply([]im.Change{
		{App: app, Op: im.ChangeDelete, ID: "alice", Type: im.AcctUserID, Ordinal: 1, OldTags: []string{"vip"}},
		{App: app, Op: im.ChangeDelete, ID: "a-phone", Type: im.AcctRegistrationID, Ordinal: 3, OldTags: []string{"ios"}},
		{App: app, Op: im.ChangeDelete, ID: "a-pad", Type: im.AcctRegistrationID, Ordinal: 4, OldTags: []string{"ios"}},
	})
	aud, _ := x.Evaluate(app, &schema, nil, DefaultOptions())
	if got := x.Recipients(app, aud).ToArray(); !slices.Equal(got, []uint32{2, 6, 7}) {
		t.Errorf("after deleting alice: recipients %v, want [2 6 7]", got)
	}
	// Edits of a device (Upserts without Owner) keep it owned.
	x.Apply([]im.Change{{App: app, Op: im.ChangeUpsert, ID: "b-phone", Type: im.AcctRegistrationID, Ordinal: 5,
		OldTags: []string{"ios"}, NewTags: []string{"ios", "new"}}})
	aud, _ = x.Evaluate(app, &schema, &im.Condition{TagsAnd: []string{"new"}}, DefaultOptions())
	if got := x.Recipients(app, aud).ToArray(); !slices.Equal(got, []uint32{2}) {
		t.Errorf("edited device: recipients %v, want bob [2]", got)
	}
	if got := x.Recipients(99, roaring.BitmapOf(1)).ToArray(); !slices.Equal(got, []uint32{1}) {
		t.Errorf("unknown app: %v", got)
	}
}
