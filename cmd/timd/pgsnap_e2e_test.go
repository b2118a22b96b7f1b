package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"
)

// startPG starts a node on the PostgreSQL store with the e2e app, the
// given flags and its whole log kept.
func startPG(t *testing.T, store string, extra ...string) (*proc, *syncBuffer) {
	t.Helper()
	lp := startLogged(t, store, []string{"TIMD_LOG_LEVEL=info"}, append([]string{"--limits", "off",
		"--app", fmt.Sprintf("%d:%s:%s", e2eApp, e2eKey, e2eAdmin)}, extra...)...)
	sig, err := tencentyun.GenUserSig(e2eApp, e2eKey, e2eAdmin, 86400)
	if err != nil {
		t.Fatal(err)
	}
	lp.proc.sig = sig
	return lp.proc, lp.stderr
}

// changeLog reads the e2e app's change position, its trimmed position and
// how many change_log rows it has, straight from the database.
func changeLog(t *testing.T, store string) (pos, trimmed, rows int64) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT seq, trimmed, (SELECT count(*) FROM change_log WHERE app = $1)
		FROM change_seq WHERE app = $1`, e2eApp).Scan(&pos, &trimmed, &rows); err != nil {
		t.Fatal(err)
	}
	return pos, trimmed, rows
}

var trimmedRE = regexp.MustCompile(`(?m)^timd_change_log_trimmed_total (\S+)$`)

// TestE2EPostgresSnapshot runs real binaries on one PostgreSQL store. Node
// A, with --snapshot, writes accounts and stops cleanly: it leaves a
// snapshot and the shared change log untrimmed. Node B writes more. A
// restarts from its snapshot and replays only B's changes. Then node C,
// with --change-retention 1s, trims the log past A's snapshot, which A's
// next start refuses: it rebuilds from a scan. A's audience equals the
// store's every time.
func TestE2EPostgresSnapshot(t *testing.T) {
	store := pgStore(t)
	snap := filepath.Join(t.TempDir(), "node-a", "index.snap") // the directory is made at start
	a, logs := startPG(t, store, "--snapshot", snap)
	if _, fromSnap, _, rebuilt := indexLoad(t, logs); fromSnap != 0 || rebuilt != 1 {
		t.Fatalf("first start: from snapshot %d, rebuilt %d; want a rebuild\n%s", fromSnap, rebuilt, logs)
	}
	a.importN(300)
	a.tag("vip", "u1", "u2", "u3", "u4", "u5")
	a.stop()
	if _, err := os.Stat(snap); err != nil {
		t.Fatalf("no snapshot after a clean stop: %v", err)
	}
	pos, trimmed, rows := changeLog(t, store)
	if trimmed != 0 || rows != pos {
		t.Fatalf("after A's snapshot: position %d, trimmed %d, %d rows; a snapshot on PostgreSQL must not trim the shared log", pos, trimmed, rows)
	}

	b, _ := startPG(t, store)
	var ids []string
	for i := range 20 {
		ids = append(ids, fmt.Sprintf(`"n%d"`, i))
	}
	b.want("im_open_login_svc/multiaccount_import", `{"Accounts":[`+strings.Join(ids, ",")+`]}`, 0)
	b.tag("vip", "u6", "u7", "n0")
	b.want("timpush/remove_tag", `{"UserTags":[{"To_Account":"u1","Tags":["vip"]}]}`, 0)
	b.stop()

	a, logs = startPG(t, store, "--snapshot", snap)
	if n, fromSnap, replayed, rebuilt := indexLoad(t, logs); n != 321 || fromSnap != 1 || replayed != 23 || rebuilt != 0 {
		t.Fatalf("restart after B's writes: %d accounts, from snapshot %d, replayed %d, rebuilt %d; want 321, 1, 23, 0\n%s",
			n, fromSnap, replayed, rebuilt, logs)
	}
	if got := a.audienceOf("vip", 1); got != 7 {
		t.Fatalf("vip audience after the replay: %v, want 7", got)
	}
	a.stop()
	atStop, _, _ := changeLog(t, store)

	c, _ := startPG(t, store, "--change-retention", "1s")
	c.tag("vip", "u8")
	waitFor(t, "C's scheduled trim past A's snapshot", func() bool {
		_, trimmed, _ := changeLog(t, store)
		return trimmed > atStop
	})
	m := trimmedRE.FindStringSubmatch(get(t, c.base+"/metrics"))
	if m == nil {
		t.Fatal("/metrics lacks timd_change_log_trimmed_total")
	}
	if n, _ := strconv.ParseFloat(m[1], 64); n <= float64(atStop) {
		t.Fatalf("timd_change_log_trimmed_total %v, want more than %d", n, atStop)
	}
	c.stop()

	a, logs = startPG(t, store, "--snapshot", snap)
	if n, fromSnap, _, rebuilt := indexLoad(t, logs); n != 321 || fromSnap != 0 || rebuilt != 1 ||
		!strings.Contains(logs.String(), "change log trimmed past snapshot position") {
		t.Fatalf("restart after the trim: %d accounts, from snapshot %d, rebuilt %d; want 321, 0, 1\n%s", n, fromSnap, rebuilt, logs)
	}
	if got := a.audienceOf("vip", 3); got != 8 {
		t.Fatalf("vip audience after the rebuild: %v, want 8", got)
	}
	a.stop()
}
