//go:build linux

package main_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	_ "timd/internal/store/sqlite" // registers modernc's "sqlite" driver for the integrity check
	"timd/internal/testfs"
)

// TestE2EPowerCut runs the real server with its store on a FUSE file
// system that holds every write in memory until its file is fsynced
// (internal/testfs). It makes acknowledged writes through the REST API,
// one at a time (account_import, set_attr, a stored push), kills the
// server with SIGKILL and cuts the power, which drops everything never
// synced. The database left on the backing disk must pass integrity_check,
// and a server started on it must answer every acknowledged write: each
// account with its attribute, each push's MsgRandom with its TaskId.
func TestE2EPowerCut(t *testing.T) {
	const n = 8
	pc := testfs.Mount(t)
	p := startApp(t, filepath.Join(pc.Dir, "store"), "--limits", "off")
	p.want("timpush/set_attr_name", `{"AttrNames":{"0":"seq"}}`, 0)
	var ids, tasks []string
	for i := range n {
		id := fmt.Sprint("pc", i)
		ids = append(ids, id)
		p.want("im_open_login_svc/account_import", `{"UserID":"`+id+`"}`, 0)
		r := p.want("timpush/set_attr", fmt.Sprintf(`{"UserAttrs":[{"To_Account":"%s","Attrs":{"seq":"%d"}}]}`, id, i), 0)
		if r["ErrorList"] != nil {
			t.Fatalf("set_attr %s: %v", id, r)
		}
		tasks = append(tasks, p.want("timpush/push", powerCutPush(i), 0)["TaskId"].(string))
	}
	p.kill() // SIGKILL: no shutdown, no checkpoint
	st := pc.Cut()
	t.Logf("power cut after %d acknowledged rounds: %d bytes written, %d synced in %d fsyncs, %d dropped",
		n, st.Buffered, st.Synced, st.Syncs, st.Dropped)

	store := filepath.Join(pc.Backing, "store")
	db, err := sql.Open("sqlite", filepath.Join(store, "timd.db"))
	if err != nil {
		t.Fatal(err)
	}
	var check []string
	rows, err := db.Query(`PRAGMA integrity_check`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		check = append(check, line)
	}
	rows.Close()
	db.Close()
	if len(check) != 1 || check[0] != "ok" {
		t.Errorf("integrity_check after the power cut: %s", strings.Join(check, "; "))
	}

	p = startApp(t, store, "--limits", "off")
	r := p.want("timpush/get_attr", `{"To_Account":["`+strings.Join(ids, `","`)+`"]}`, 0)
	if r["ErrorList"] != nil {
		t.Errorf("acknowledged accounts lost at the power cut: %s", js(r["ErrorList"]))
	}
	got := map[string]any{}
	for _, u := range r["UserAttrs"].([]any) {
		m := u.(map[string]any)
		attrs, _ := m["Attrs"].(map[string]any)
		got[m["To_Account"].(string)] = attrs["seq"]
	}
	lost := 0
	for i, id := range ids {
		again := p.want("timpush/push", powerCutPush(i), 0)["TaskId"]
		if got[id] == fmt.Sprint(i) && again == tasks[i] {
			continue
		}
		if lost++; lost <= 3 {
			t.Errorf("round %d lost: %s has seq %v (acknowledged %d); MsgRandom answers %v (acknowledged %s)", i, id, got[id], i, again, tasks[i])
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged rounds lost at the power cut", lost, n)
	}
}

// powerCutPush is the body of the i-th stored push.
func powerCutPush(i int) string {
	return fmt.Sprintf(`{"MsgRandom":%d,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"before the cut"}}]}`, 9000+i)
}
