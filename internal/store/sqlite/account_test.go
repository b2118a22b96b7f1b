package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"timd/internal/im"
)

// TestOpenRepairsCollisions: a store written before imports displaced
// devices may hold a RegistrationID and a UserID of one string, where the
// device stood in for the account. Open deletes such devices and releases
// their tags.
func TestOpenRepairsCollisions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportAccounts(ctx, 1, []im.AccountInput{{UserID: "victim"}, {UserID: "alice"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RegisterDevice(ctx, 1, im.Device{RegistrationID: "squat", Owner: "alice", Platform: "ios"}, im.DeviceLimits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RegisterDevice(ctx, 1, im.Device{RegistrationID: "keep", Owner: "alice", Platform: "ios"}, im.DeviceLimits{}); err != nil {
		t.Fatal(err)
	}
	errs, err := s.ApplyEdits(ctx, 1, []im.Edit{{Account: "squat", Op: im.OpAddTags, Tags: []string{"t"}}}, im.EditLimits{})
	if err != nil || errs[0] != nil {
		t.Fatalf("ApplyEdits: %v %v", errs, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Make the collision the old code allowed: the device takes the name.
	db, err := sql.Open("sqlite", filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE accounts SET id = 'victim' WHERE id = 'squat'`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err = Open(ctx, dir, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	got, err := s.Accounts(ctx, 1, []string{"victim", "keep"})
	if err != nil || got["victim"].Type != im.AcctUserID || got["keep"].Type != im.AcctRegistrationID {
		t.Errorf("after Open Accounts = %+v, %v; want victim the UserID and keep the device", got, err)
	}
	var n int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM tags WHERE app = 1`).Scan(&n); err != nil || n != 0 {
		t.Errorf("tags left in the registry = %d, %v; want the deleted device's tag released", n, err)
	}
	if err := s.rdb.QueryRow(`SELECT count(*) FROM accounts WHERE app = 1`).Scan(&n); err != nil || n != 3 {
		t.Errorf("accounts = %d, %v; want victim, alice and keep", n, err)
	}
}

// TestImportOrdinalsRunOut: an import batch reserves its new accounts'
// ordinals at once, and a batch that would pass the last ordinal (2³²−1)
// fails as a whole, leaving the sequence where it was; one that fits
// takes exactly the ordinals left.
func TestImportOrdinalsRunOut(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportAccounts(ctx, 1, []im.AccountInput{{UserID: "first"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE app_seq SET next_ordinal = ? WHERE app = 1`, int64(1<<32-2)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	three := []im.AccountInput{{UserID: "a"}, {UserID: "first"}, {UserID: "b"}, {UserID: "c"}}
	if _, err := s.ImportAccounts(ctx, 1, three); err == nil {
		t.Fatal("an import past the last ordinal succeeded")
	}
	if got, err := s.Accounts(ctx, 1, []string{"a", "b", "c"}); err != nil || len(got) != 0 {
		t.Fatalf("after the failed import: %+v, %v", got, err)
	}
	out, err := s.ImportAccounts(ctx, 1, three[1:3])
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Ordinal != 1 || out[1].Ordinal != 1<<32-2 {
		t.Fatalf("ordinals = %d, %d; want 1 (existing), %d", out[0].Ordinal, out[1].Ordinal, uint32(1<<32-2))
	}
	out, err = s.ImportAccounts(ctx, 1, three[3:])
	if err != nil || out[0].Ordinal != 1<<32-1 {
		t.Fatalf("last ordinal: %+v, %v", out, err)
	}
	if _, err := s.ImportAccounts(ctx, 1, []im.AccountInput{{UserID: "d"}}); err == nil {
		t.Fatal("an import after the last ordinal succeeded")
	}
}
