package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"
)

// startSnap starts the binary with the e2e app and returns it with its log.
func startSnap(t *testing.T, store string) (*proc, *syncBuffer) {
	t.Helper()
	lp := startLogged(t, store, []string{"TIMD_LOG_LEVEL=info"}, "--limits", "off",
		"--app", fmt.Sprintf("%d:%s:%s", e2eApp, e2eKey, e2eAdmin))
	sig, err := tencentyun.GenUserSig(e2eApp, e2eKey, e2eAdmin, 86400)
	if err != nil {
		t.Fatal(err)
	}
	lp.proc.sig = sig
	return lp.proc, lp.stderr
}

var readyRE = regexp.MustCompile(`msg="audience index ready" accounts=(\d+) from_snapshot=(\d+) replayed=(\d+) rebuilt=(\d+)`)

// indexLoad returns how the last start loaded the index.
func indexLoad(t *testing.T, logs *syncBuffer) (accounts, fromSnapshot, replayed, rebuilt int) {
	t.Helper()
	m := readyRE.FindAllStringSubmatch(logs.String(), -1)
	if m == nil {
		t.Fatalf("no index-ready line in:\n%s", logs)
	}
	last := m[len(m)-1]
	fmt.Sscan(last[1], &accounts)
	fmt.Sscan(last[2], &fromSnapshot)
	fmt.Sscan(last[3], &replayed)
	fmt.Sscan(last[4], &rebuilt)
	return
}

// audienceOf pushes to a tag and returns the task's TotalCount: the size
// of the audience the index selected.
func (p *proc) audienceOf(tag string, random int) float64 {
	p.t.Helper()
	id := p.want("timpush/push", fmt.Sprintf(`{"MsgRandom":%d,"Condition":{"TagsOr":["%s"]},"OfflinePushInfo":{"Title":"x"}}`,
		random, tag), 0)["TaskId"].(string)
	total, _ := p.stats(id)["TotalCount"].(float64)
	return total
}

func (p *proc) tag(tag string, ids ...string) {
	p.t.Helper()
	var items []string
	for _, id := range ids {
		items = append(items, fmt.Sprintf(`{"To_Account":"%s","Tags":["%s"]}`, id, tag))
	}
	p.want("timpush/add_tag", `{"UserTags":[`+strings.Join(items, ",")+`]}`, 0)
}

// TestE2ERestartFromSnapshot: a clean stop writes an index snapshot that
// the next start loads instead of rebuilding; after kill -9 the next start
// loads the older snapshot and replays the changes after it; a corrupt
// snapshot is rebuilt. The audience of a tag push is right every time.
func TestE2ERestartFromSnapshot(t *testing.T) {
	store := t.TempDir()
	p, _ := startSnap(t, store)
	p.importN(300)
	p.tag("vip", "u1", "u2", "u3", "u4", "u5")
	p.stop()
	if _, err := os.Stat(filepath.Join(store, "index.snap")); err != nil {
		t.Fatalf("no snapshot after a clean stop: %v", err)
	}

	p, logs := startSnap(t, store)
	if n, snap, _, rebuilt := indexLoad(t, logs); n < 300 || snap != 1 || rebuilt != 0 {
		t.Fatalf("after a clean stop: accounts %d, from snapshot %d, rebuilt %d\n%s", n, snap, rebuilt, logs)
	}
	if got := p.audienceOf("vip", 1); got != 5 {
		t.Fatalf("vip audience after snapshot load: %v, want 5", got)
	}
	p.tag("vip", "u6", "u7", "u8")
	p.want("im_open_login_svc/account_delete", `{"DeleteItem":[{"UserID":"u1"}]}`, 0)
	p.kill()

	p, logs = startSnap(t, store)
	if _, snap, replayed, rebuilt := indexLoad(t, logs); snap != 1 || replayed != 4 || rebuilt != 0 {
		t.Fatalf("after kill -9: from snapshot %d, replayed %d, rebuilt %d; want 1, 4, 0\n%s", snap, replayed, rebuilt, logs)
	}
	if got := p.audienceOf("vip", 2); got != 7 {
		t.Fatalf("vip audience after replay: %v, want 7", got)
	}
	p.stop()

	path := filepath.Join(store, "index.snap")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p, logs = startSnap(t, store)
	if _, snap, _, rebuilt := indexLoad(t, logs); snap != 0 || rebuilt != 1 || !strings.Contains(logs.String(), "checksum mismatch") {
		t.Fatalf("corrupt snapshot: from snapshot %d, rebuilt %d\n%s", snap, rebuilt, logs)
	}
	if got := p.audienceOf("vip", 3); got != 7 {
		t.Fatalf("vip audience after rebuild: %v, want 7", got)
	}
}
