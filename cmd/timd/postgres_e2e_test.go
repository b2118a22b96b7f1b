package main_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"timd/internal/testenv"
)

// pgStore returns a postgres:// URL of a new, empty schema (dropped when
// the test ends) on TIMD_TEST_POSTGRES, or skips the test without
// PostgreSQL. Several timd processes given the same URL share one store,
// as nodes do.
func pgStore(t *testing.T) string {
	t.Helper()
	return testenv.PostgresStore(t, "timd_e2e_")
}

// runTimd runs a timd subcommand to its end and returns its stdout and
// stderr; it fails the test unless the exit status is as wanted.
func runTimd(t *testing.T, wantOK bool, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if (err == nil) != wantOK {
		t.Fatalf("timd %v: %v\nstdout: %s\nstderr: %s", args, err, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

// TestE2EPostgres runs the real binary on PostgreSQL: `timd migrate`
// creates the schema and then has nothing to do, `timd app add` and
// `timd import --store postgres://…` load an app and accounts into it,
// serve builds its index from them, accounts, tags and a push written
// through the API are in the store, and a second process on the same URL
// (after the first stopped) sees all of it, the push in a user's inbox.
func TestE2EPostgres(t *testing.T) {
	store := pgStore(t)
	out, _ := runTimd(t, true, "migrate", "--store", store)
	if !strings.Contains(out, "ran 0001_init.sql") {
		t.Fatalf("first migrate: %s", out)
	}
	out, _ = runTimd(t, true, "migrate", "--store", store)
	if !strings.Contains(out, "schema is current") {
		t.Fatalf("second migrate: %s", out)
	}
	app := fmt.Sprint(e2eApp)
	runTimd(t, true, "app", "add", "--store", store, "--sdkappid", app, "--key", e2eKey, "--admin", e2eAdmin)
	out, _ = runTimd(t, true, "app", "list", "--store", store)
	if !strings.Contains(out, app) {
		t.Fatalf("app list: %s", out)
	}
	file := writeLines(t, 300, `{"UserID":"x","Attrs":{"nope":"v"}}`)
	out, errs := runTimd(t, true, "import", "--store", store, "--sdkappid", app, "--attr-names", "city", "--batch", "70", file)
	if !strings.Contains(out, "300 accounts loaded, 1 bad lines") || !strings.Contains(errs, "line 301: 90033") {
		t.Fatalf("import: %s\n%s", out, errs)
	}

	p, logs := startSnap(t, store)
	if n, _, _, _ := indexLoad(t, logs); n != 301 { // and the admin
		t.Fatalf("index has %d accounts after the import, want 301\n%s", n, logs)
	}
	if got := p.audienceOf("t3", 1); got != 30 {
		t.Fatalf("audience of t3: %v, want 30", got)
	}
	p.want("im_open_login_svc/account_import", `{"UserID":"pg-user"}`, 0)
	p.tag("pg", "pg-user", "u1", "u2")
	push := `{"From_Account":"administrator","MsgRandom":77,"Condition":{"TagsOr":["pg"]},"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"on postgres"}}]}`
	id := p.want("timpush/push", push, 0)["TaskId"].(string)
	if s := p.stats(id); s["TotalCount"] != 3.0 {
		t.Fatalf("statistics: %v, want TotalCount 3", s)
	}
	waitFor(t, "the push in the inboxes of its 3 recipients", func() bool {
		for _, u := range []string{"pg-user", "u1", "u2"} {
			if got := p.inbox(u); len(got) != 1 || got[0] != id {
				return false
			}
		}
		return true
	})
	if got := p.inbox("u3"); len(got) != 0 {
		t.Fatalf("inbox of u3, not in the audience: %v", got)
	}
	// MsgRandom dedup: the same push again is the same task.
	if again := p.want("timpush/push", push, 0)["TaskId"]; again != id {
		t.Fatalf("a repeated MsgRandom made task %v, want %s", again, id)
	}
	p.stop()

	// The store has it all: a new process on the same URL.
	q, logs := startSnap(t, store)
	if n, _, _, _ := indexLoad(t, logs); n != 302 {
		t.Fatalf("index has %d accounts after restart, want 302\n%s", n, logs)
	}
	if got := q.inbox("pg-user"); len(got) != 1 || got[0] != id {
		t.Fatalf("inbox of pg-user after restart: %v, want [%s]", got, id)
	}
	r := q.want("timpush/get_tag", `{"To_Account":["pg-user","u7"]}`, 0)
	if got := js(r); !strings.Contains(got, `"pg"`) || !strings.Contains(got, `"t7"`) {
		t.Fatalf("get_tag after restart: %s", got)
	}
	if got := q.audienceOf("pg", 2); got != 3 {
		t.Fatalf("audience of pg after restart: %v, want 3", got)
	}
	q.stop()
}
