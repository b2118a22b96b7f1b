package sqlite

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"timd/internal/im"
	"timd/internal/store/storetest"
)

// openWith returns a storetest.OpenFunc that opens the store with opt.
func openWith(opt options) storetest.OpenFunc {
	return func(t *testing.T, dir string) im.Store {
		t.Helper()
		s, err := open(context.Background(), dir, nil, opt)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return s
	}
}

// skipShort skips a conformance variant under -short: TestConformance
// runs the suite once there, and .ci/run runs every variant.
func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("a conformance variant; run without -short")
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dir string) im.Store {
		t.Helper()
		s, err := Open(context.Background(), dir, nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// TestConformanceNoGroupCommit runs the suite with one transaction per
// request, the path group commit must be equivalent to.
func TestConformanceNoGroupCommit(t *testing.T) {
	skipShort(t)
	opt := defaultOptions()
	opt.maxGroupJobs = 1
	storetest.Run(t, openWith(opt))
}

// TestConformanceEagerFold folds account_log into accounts after every
// group, in tiny chunks, so that reads meet rows in every stage of folding.
func TestConformanceEagerFold(t *testing.T) {
	skipShort(t)
	opt := defaultOptions()
	opt.foldLogBytes, opt.foldChunk = 1, 3
	storetest.Run(t, openWith(opt))
}

// TestConformanceReplay never folds, not even at Close, so that every
// reopen replays account_log.
func TestConformanceReplay(t *testing.T) {
	skipShort(t)
	opt := defaultOptions()
	opt.foldLogBytes, opt.foldMaxDirty, opt.foldIdle = 1<<62, 1<<62, time.Hour
	opt.noCloseFold = true
	storetest.Run(t, openWith(opt))
}

func TestMigrationsRecorded(t *testing.T) {
	dir := t.TempDir()
	for range 2 { // the second open applies nothing
		s, err := Open(context.Background(), dir, nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		var n int
		var mode string
		if err := s.rdb.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if err := s.rdb.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		ms, _ := migrations()
		if n != len(ms) || n == 0 || mode != "wal" {
			t.Errorf("schema_migrations has %d rows for %d migrations; journal_mode %s", n, len(ms), mode)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClosedStore(t *testing.T) {
	s, err := Open(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.ImportAccounts(context.Background(), 1, []im.AccountInput{{UserID: "a"}}); err != ErrClosed {
		t.Errorf("ImportAccounts after Close: %v, want ErrClosed", err)
	}
}

// TestFoldEmptiesLog checks that folding leaves accounts current and
// account_log empty.
func TestFoldEmptiesLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportAccounts(ctx, 1, []im.AccountInput{{UserID: "a"}}); err != nil {
		t.Fatal(err)
	}
	errs, err := s.ApplyEdits(ctx, 1, []im.Edit{
		{Account: "a", Op: im.OpSetAttrs, Attrs: im.AttrValues{"x", "", "z\"\\\x01"}},
		{Account: "a", Op: im.OpAddTags, Tags: []string{"t1", "t\"2"}},
	}, im.EditLimits{})
	if err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("ApplyEdits: %v %v", errs, err)
	}
	var logRows int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM account_log`).Scan(&logRows); err != nil || logRows != 1 {
		t.Errorf("account_log rows before fold = %d, %v; want 1", logRows, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dir+"/"+FileName)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var attrs, tags string
	if err := db.QueryRow(`SELECT count(*) FROM account_log`).Scan(&logRows); err != nil || logRows != 0 {
		t.Errorf("account_log rows after Close = %d, %v; want 0", logRows, err)
	}
	if err := db.QueryRow(`SELECT json(attrs), json(tags) FROM accounts WHERE id = 'a'`).Scan(&attrs, &tags); err != nil {
		t.Fatal(err)
	}
	if attrs != `["x","","z\"\\\u0001"]` || tags != `["t1","t\"2"]` {
		t.Errorf("accounts row after fold: attrs %s tags %s", attrs, tags)
	}
}

// TestCacheSizes checks that Config sets the page cache of the writer's
// connection and of the read connections, and that zero keeps the
// defaults.
func TestCacheSizes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		cfg            Config
		writer, reader int64 // PRAGMA cache_size: negative KiB
	}{
		{Config{}, -DefaultWriterCache >> 10, -DefaultReaderCache >> 10},
		{Config{WriterCache: 3 << 20, ReaderCache: 1 << 20}, -3072, -1024},
		{Config{ReaderCache: 100 << 20}, -DefaultWriterCache >> 10, -102400},
	} {
		s, err := OpenConfig(ctx, t.TempDir(), nil, tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		var w, r, st int64
		err = s.w.do(ctx, 1, func(t *wtx) ([]im.Change, error) {
			return nil, t.queryRow(`PRAGMA cache_size`).Scan(&w)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.rdb.QueryRow(`PRAGMA cache_size`).Scan(&r); err != nil {
			t.Fatal(err)
		}
		if err := s.sdb.QueryRow(`PRAGMA cache_size`).Scan(&st); err != nil {
			t.Fatal(err)
		}
		if w != tc.writer || r != tc.reader || st != tc.reader {
			t.Errorf("%+v: cache_size writer %d, reader %d, settle %d; want %d, %d, %d", tc.cfg, w, r, st, tc.writer, tc.reader, tc.reader)
		}
		s.Close()
	}
}

// TestProfilesOddIDs reads ids that the JSON-array statement cannot carry
// byte for byte (control characters), mixed with plain ones and repeats:
// the fallback statement must find them all, and so must the narrow read
// (which carries ids hex-encoded).
func TestProfilesOddIDs(t *testing.T) {
	ctx := context.Background()
	s := openOpt(t, defaultOptions())
	ids := []string{"plain", "ctl\x01id", "nul\x00id", `quote"back\slash`, "ünï", "with space~"}
	in := make([]im.AccountInput, len(ids))
	for i, id := range ids {
		in[i].UserID = id
	}
	if _, err := s.ImportAccounts(ctx, 1, in); err != nil {
		t.Fatal(err)
	}
	// The last two asks take the narrow read's plain form, the others its
	// hex form.
	for _, ask := range [][]string{ids, {"plain", `quote"back\slash`, "ünï", "plain", "absent"}, {"nul\x00id"},
		{"plain", "with space~", "absent", "plain"}, {"absent"}} {
		ps, err := s.Profiles(ctx, 1, ask)
		if err != nil {
			t.Fatal(err)
		}
		as, err := s.Accounts(ctx, 1, ask)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := s.ReadTags(ctx, 1, ask)
		if err != nil {
			t.Fatal(err)
		}
		ats, err := s.ReadAttrs(ctx, 1, ask)
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range ask {
			if ts[i].Found != (id != "absent") {
				t.Errorf("ReadTags(%q): %+v", id, ts[i])
			}
			if ats[i].Found != (id != "absent") {
				t.Errorf("ReadAttrs(%q): %+v", id, ats[i])
			}
			if p, ok := ps[id]; (id == "absent") == ok || ok && p.Account.ID != id {
				t.Errorf("Profiles(%q): %+v, %v", id, p, ok)
			}
			if a, ok := as[id]; (id == "absent") == ok || ok && a.ID != id {
				t.Errorf("Accounts(%q): %+v, %v", id, a, ok)
			}
		}
	}
}

// TestSchemaCache checks that the in-memory attribute schema follows
// every committed PutAttrSchema, and that a failed one changes nothing.
func TestSchemaCache(t *testing.T) {
	ctx := context.Background()
	s := openOpt(t, defaultOptions())
	for i, name := range []string{"city", "town", ""} {
		var sc im.AttrSchema
		sc[i] = im.AttrSlot{Name: name}
		if got, err := s.AttrSchema(ctx, 7); err != nil || (i > 0 && got[i-1].Name == "") {
			t.Fatalf("before put %d: %+v, %v", i, got, err)
		}
		if err := s.PutAttrSchema(ctx, 7, sc); err != nil {
			t.Fatal(err)
		}
		if got, err := s.AttrSchema(ctx, 7); err != nil || got != sc {
			t.Fatalf("after put %d: %+v, %v; want %+v", i, got, err, sc)
		}
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.PutAttrSchema(done, 7, im.AttrSchema{{Name: "never"}}); err == nil {
		t.Fatal("PutAttrSchema with an ended context succeeded")
	}
	if got, _ := s.AttrSchema(ctx, 7); got[0].Name == "never" {
		t.Fatalf("a failed put reached the cache: %+v", got)
	}
	if got, _ := s.AttrSchema(ctx, 8); got != (im.AttrSchema{}) {
		t.Fatalf("other app: %+v", got)
	}
	s.Close()
	if _, err := s.AttrSchema(ctx, 7); err != ErrClosed {
		t.Fatalf("AttrSchema after Close = %v, want ErrClosed (not the cached schema)", err)
	}
}
