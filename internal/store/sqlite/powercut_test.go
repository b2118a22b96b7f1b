//go:build linux

package sqlite

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/im"
	"timd/internal/testfs"
)

// The power-cut test runs the store in a child process on a FUSE file
// system that keeps every write in memory until its file is fsynced
// (internal/testfs). The child makes acknowledged writes of every kind a
// caller is told succeeded (an account import, attribute and tag edits, a
// stored push) and is killed with SIGKILL; then the power is cut, which
// drops every write that was never synced, and the store is reopened from
// what a disk would hold. A write acknowledged before its fsync is lost
// here, which kill -9 alone cannot show: the page cache outlives a process.

const (
	powerCutDirEnv = "TIMD_POWERCUT_DIR"
	powerCutApp    = 1400000011
	powerCutWrites = 20
)

// TestPowerCutKeepsAckedWrites: every acknowledged write survives a power
// cut after the writer was killed, and the database passes integrity_check.
// With synchronous=OFF or NORMAL planted in openDB it fails: the cut drops
// the acknowledged commits still in the unsynced WAL.
func TestPowerCutKeepsAckedWrites(t *testing.T) {
	p := testfs.Mount(t)
	store := filepath.Join(p.Dir, "store")
	cmd := exec.Command(os.Args[0], "-test.run=^TestPowerCutChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), powerCutDirEnv+"="+store)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if line == "done" {
				done <- nil
				return
			}
			var i int
			if _, err := fmt.Sscanf(line, "ack %d", &i); err == nil && i == acked {
				acked++
			}
		}
		done <- fmt.Errorf("child ended after %d acknowledged writes", acked)
	}()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute): // a generous bound at load 30; it takes seconds
		err = fmt.Errorf("child acknowledged %d writes in 2 minutes", acked)
	}
	_ = cmd.Process.Kill() // SIGKILL
	_ = cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
	st := p.Cut()
	t.Logf("%d acknowledged writes; power cut: %d bytes written, %d synced in %d fsyncs, %d dropped",
		acked, st.Buffered, st.Synced, st.Syncs, st.Dropped)

	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(p.Backing, "store"), nil)
	if err != nil {
		t.Fatalf("reopen after the power cut: %v", err)
	}
	defer s.Close()
	var check []string
	rows, err := s.rdb.QueryContext(ctx, `PRAGMA integrity_check`)
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
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if len(check) != 1 || check[0] != "ok" {
		t.Errorf("integrity_check after the power cut: %s", strings.Join(check, "; "))
	}
	ids := make([]string, powerCutWrites)
	for i := range ids {
		ids[i] = fmt.Sprint("user", i)
	}
	ps, err := s.Profiles(ctx, powerCutApp, ids)
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for i, id := range ids {
		got, ok := ps[id]
		task, terr := s.Task(ctx, powerCutApp, fmt.Sprint("task", i))
		if !ok || got.Attrs[0] != fmt.Sprint("v", i) || len(got.Tags) != 1 || got.Tags[0] != "cut" || terr != nil || task.MsgRandom != uint32(i+1) {
			lost++
			if lost <= 3 {
				t.Errorf("acknowledged write %d lost: account %v (attrs %q, tags %q), task err %v", i, ok, got.Attrs, got.Tags, terr)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes lost at the power cut", lost, powerCutWrites)
	}
}

// TestPowerCutChild is the child of TestPowerCutKeepsAckedWrites; it does
// nothing unless run by it. One write at a time, each acknowledged on
// stdout once the store returned; then it waits to be killed.
func TestPowerCutChild(t *testing.T) {
	dir := os.Getenv(powerCutDirEnv)
	if dir == "" {
		t.Skip("run by TestPowerCutKeepsAckedWrites")
	}
	ctx := context.Background()
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "power-cut child: %s: %v\n", what, err)
		os.Exit(2)
	}
	s, err := Open(ctx, dir, nil)
	if err != nil {
		fail("open", err)
	}
	audience, err := roaring.BitmapOf(0).ToBytes()
	if err != nil {
		fail("bitmap", err)
	}
	for i := range powerCutWrites {
		id := fmt.Sprint("user", i)
		if _, err := s.ImportAccounts(ctx, powerCutApp, []im.AccountInput{{UserID: id}}); err != nil {
			fail("import", err)
		}
		errs, err := s.ApplyEdits(ctx, powerCutApp, []im.Edit{
			{Account: id, Op: im.OpSetAttrs, Attrs: im.AttrValues{0: fmt.Sprint("v", i)}},
			{Account: id, Op: im.OpAddTags, Tags: []string{"cut"}},
		}, im.EditLimits{})
		if err == nil {
			for _, e := range errs {
				err = cmpOr(err, e)
			}
		}
		if err != nil {
			fail("edit", err)
		}
		now := time.Now().Unix()
		task := im.PushTask{App: powerCutApp, ID: fmt.Sprint("task", i), Kind: im.PushCondition,
			MsgRandom: uint32(i + 1), BodyHash: fmt.Sprint("h", i), From: "admin",
			Condition: &im.Condition{TagsOr: []string{"cut"}},
			MsgBody:   json.RawMessage(`[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]`),
			ExpiresAt: now + 3600, CreatedAt: now, Audience: audience, Total: 1, State: im.TaskPending}
		if _, _, err := s.CreateTask(ctx, task, 0, im.TaskLimits{}); err != nil {
			fail("create task", err)
		}
		fmt.Printf("ack %d\n", i)
	}
	fmt.Println("done")
	select {} // wait for SIGKILL: no Close, no checkpoint at exit
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
