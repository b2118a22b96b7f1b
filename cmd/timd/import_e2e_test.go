package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// writeLines writes an import file: n good accounts u0..u(n-1) with a
// city attribute and a tag per tenth, then the bad lines.
func writeLines(t *testing.T, n int, bad ...string) string {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"UserID":"u%d","Nick":"N%d","Attrs":{"city":"c%d"},"Tags":["t%d","all"]}`+"\n", i, i, i%3, i%10)
	}
	for _, l := range bad {
		b.WriteString(l + "\n")
	}
	path := filepath.Join(t.TempDir(), "accounts.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runImport runs `timd import` and returns its stdout and stderr.
func runImport(t *testing.T, wantOK bool, args ...string) (string, string) {
	t.Helper()
	return runTimd(t, wantOK, append([]string{"import"}, args...)...)
}

// TestE2EImportStore loads a file with bad lines into a stopped store,
// refuses to load under a running server, resumes, is idempotent, and the
// started server's index equals what was loaded.
func TestE2EImportStore(t *testing.T) {
	store := t.TempDir()
	p, _ := startSnap(t, store)
	p.stop()
	app := fmt.Sprint(e2eApp)
	file := writeLines(t, 2000,
		`{"UserID":"bad-json"`,
		`{"UserID":"x","Attrs":{"nope":"v"}}`,
		`{"UserID":"y","Extra":1}`,
		``,
		`{"UserID":"toolongtoolongtoolongtoolongtoolong"}`,
		`{"UserID":"z","Tags":[""]}`)
	// Without the attribute defined, every good line is bad (90033).
	_, errs := runImport(t, true, "--store", store, "--sdkappid", app, "--max-reported", "3", file)
	if !strings.Contains(errs, "line 1: 90033") || !strings.Contains(errs, "reporting no more bad lines") {
		t.Fatalf("undefined attribute not reported:\n%s", errs)
	}
	out, errs := runImport(t, true, "--store", store, "--sdkappid", app, "--attr-names", "city", "--batch", "300", file)
	if !strings.Contains(out, "2000 accounts loaded, 5 bad lines") {
		t.Fatalf("summary: %s\n%s", out, errs)
	}
	for _, want := range []string{"line 2001: 90001", "line 2002: 90033", "line 2003: 90001 not an account object: json: unknown field \"Extra\"",
		"line 2005: 70402", "line 2006: 90040", "lines/s", "ETA"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "line 2004") {
		t.Errorf("a blank line was reported:\n%s", errs)
	}
	// Resume from a line, then the whole file again: nothing changes.
	// Without a snapshot, the import rebuilds the index from the store
	// first.
	if err := os.Remove(filepath.Join(store, "index.snap")); err != nil {
		t.Fatal(err)
	}
	out, errs = runImport(t, true, "--store", store, "--sdkappid", app, "--skip-lines", "1990", file)
	if !strings.Contains(out, "10 accounts loaded, 5 bad lines") {
		t.Fatalf("resumed: %s", out)
	}
	if !strings.Contains(errs, "audience index rebuilt from the store: 2001 accounts") {
		t.Fatalf("no rebuild without a snapshot:\n%s", errs)
	}
	_, errs = runImport(t, true, "--store", store, "--sdkappid", app, file)
	if !strings.Contains(errs, "audience index snapshot written") {
		t.Fatalf("the import wrote no index snapshot:\n%s", errs)
	}
	// The server sees it all: accounts, profiles, and an index equal to
	// the store, loaded from the snapshot the import wrote: nothing to
	// replay, nothing rebuilt.
	p, logs := startSnap(t, store)
	if n, snap, replayed, rebuilt := indexLoad(t, logs); n != 2001 || snap != 1 || replayed != 0 || rebuilt != 0 {
		t.Fatalf("index after the import: %d accounts (want 2001), %d apps from the snapshot, %d replayed, %d rebuilt\n%s",
			n, snap, replayed, rebuilt, logs)
	}
	r := p.want("timpush/get_attr", `{"To_Account":["u7","u1999"]}`, 0)
	if got := js(r["UserAttrs"]); !strings.Contains(got, `"city":"c1"`) || !strings.Contains(got, `"city":"c1"`) {
		t.Fatalf("get_attr: %s", got)
	}
	r = p.want("timpush/get_tag", `{"To_Account":["u7"]}`, 0)
	if got := js(r); !strings.Contains(got, `"t7"`) || !strings.Contains(got, `"all"`) {
		t.Fatalf("get_tag: %s", got)
	}
	if got := p.audienceOf("t3", 1); got != 200 {
		t.Fatalf("audience of t3: %v, want 200", got)
	}
	if got := p.audienceOf("all", 2); got != 2000 {
		t.Fatalf("audience of all: %v, want 2000", got)
	}
	// A second import is refused while the server holds the store.
	_, errs = runImport(t, false, "--store", store, "--sdkappid", app, file)
	if !strings.Contains(errs, "in use by another timd process") || !strings.Contains(errs, "--url") {
		t.Fatalf("import under a running server: %s", errs)
	}
	// An unknown app is refused with advice.
	p.stop()
	_, errs = runImport(t, false, "--store", store, "--sdkappid", "1400000999", file)
	if !strings.Contains(errs, "not in the store") {
		t.Fatalf("unknown app: %s", errs)
	}
}

// TestE2EImportREST loads through a running server's REST API, with more
// than 10 tags on a line (several add_tag rounds) and bad lines, and runs
// it twice.
func TestE2EImportREST(t *testing.T) {
	store := t.TempDir()
	p, _ := startSnap(t, store)
	tags := make([]string, 25)
	for i := range tags {
		tags[i] = fmt.Sprintf(`"k%d"`, i)
	}
	file := writeLines(t, 700,
		`{"UserID":"many","Tags":[`+strings.Join(tags, ",")+`]}`,
		`{"UserID":"x","Attrs":{"nope":"v"}}`,
		`not json`)
	for range 2 {
		out, errs := runImport(t, true, "--url", p.base, "--sdkappid", fmt.Sprint(e2eApp), "--key", e2eKey,
			"--attr-names", "city", "--concurrency", "4", file)
		if !strings.Contains(out, "701 accounts loaded, 2 bad lines") || !strings.Contains(errs, "line 702: 90033") || !strings.Contains(errs, "line 703: 90001") {
			t.Fatalf("REST import: %s\n%s", out, errs)
		}
	}
	r := p.want("timpush/get_tag", `{"To_Account":["many","u5"]}`, 0)
	if got := js(r); strings.Count(got, `"k`) != 25 || !strings.Contains(got, `"t5"`) {
		t.Fatalf("get_tag: %s", got)
	}
	if got := p.audienceOf("all", 1); got != 700 {
		t.Fatalf("audience of all: %v, want 700", got)
	}
	// A wrong key is a clear failure, not a silent one.
	_, errs := runImport(t, false, "--url", p.base, "--sdkappid", fmt.Sprint(e2eApp), "--key", "wrong", file)
	if !strings.Contains(errs, "7000") {
		t.Fatalf("wrong key: %s", errs)
	}
}

// progressRE is a progress line of timd import.
var progressRE = regexp.MustCompile(`timd import: line (\d+); `)

// TestE2EImportKilled kills an import (SIGKILL) after it has committed
// some batches, in the bulk mode where commits are not fsynced one by one,
// then resumes from the last line it reported done, and runs the whole
// file once more: the store opens, holds every account exactly once, and
// the server's index agrees.
func TestE2EImportKilled(t *testing.T) {
	store := t.TempDir()
	p, _ := startSnap(t, store)
	p.stop()
	const n = 100_000
	file := writeLines(t, n)
	cmd := exec.Command(binPath, "import", "--store", store, "--sdkappid", fmt.Sprint(e2eApp), "--attr-names", "city",
		"--batch", "500", "--progress", "20ms", file)
	var errb syncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	done := int64(-1)
	deadline := time.Now().Add(2 * time.Minute)
	for done <= 0 && time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("the import finished before it was killed:\n%s", errb.String())
		case <-time.After(5 * time.Millisecond):
		}
		for _, m := range progressRE.FindAllStringSubmatch(errb.String(), -1) {
			var l int64
			fmt.Sscan(m[1], &l)
			done = max(done, l)
		}
	}
	if done <= 0 {
		t.Fatalf("no progress within 2 minutes:\n%s", errb.String())
	}
	cmd.Process.Kill()
	<-exited
	if done >= n {
		t.Skipf("the import had finished (line %d) when it was killed", done)
	}
	t.Logf("killed after line %d was reported done", done)
	out, errs := runImport(t, true, "--store", store, "--sdkappid", fmt.Sprint(e2eApp), "--skip-lines", fmt.Sprint(done), file)
	if want := fmt.Sprintf("%d accounts loaded, 0 bad lines", n-done); !strings.Contains(out, want) {
		t.Fatalf("resumed: want %q: %s\n%s", want, out, errs)
	}
	runImport(t, true, "--store", store, "--sdkappid", fmt.Sprint(e2eApp), file)
	p, logs := startSnap(t, store)
	if got, _, _, _ := indexLoad(t, logs); got != n+1 { // and the app admin
		t.Fatalf("index has %d accounts, want %d\n%s", got, n+1, logs)
	}
	if got := p.audienceOf("all", 1); got != n {
		t.Fatalf("audience of all: %v, want %d", got, n)
	}
	if got := p.audienceOf("t3", 2); got != n/10 {
		t.Fatalf("audience of t3: %v, want %d", got, n/10)
	}
	r := p.want("timpush/get_attr", fmt.Sprintf(`{"To_Account":["u%d","u%d"]}`, done, n-1), 0)
	if got := js(r["UserAttrs"]); !strings.Contains(got, fmt.Sprintf(`"city":"c%d"`, done%3)) {
		t.Fatalf("get_attr: %s", got)
	}
}
