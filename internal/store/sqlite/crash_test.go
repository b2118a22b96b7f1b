//go:build unix

package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"timd/internal/im"
)

// The crash test re-executes the test binary as a child that writes to a
// store and prints every acknowledged batch, kills it with SIGKILL at a
// random moment, reopens the store and checks that every acknowledged
// write is there.

const (
	crashDirEnv   = "TIMD_CRASH_DIR"
	crashModeEnv  = "TIMD_CRASH_MODE"
	crashApp      = 1400000009
	crashWorkers  = 4
	crashAccounts = 5 // new accounts per batch
)

func crashOptions(mode string) options {
	opt := defaultOptions()
	if mode == "eager-fold" {
		// Fold often, in small chunks, so that evictions race the writes
		// too.
		opt.foldLogBytes, opt.foldChunk = 16<<10, 50
	}
	return opt
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	for _, mode := range []string{"default", "eager-fold"} {
		t.Run(mode, func(t *testing.T) { crashOnce(t, mode) })
	}
}

func crashOnce(t *testing.T, mode string) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashModeEnv+"="+mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := make([]int, crashWorkers) // highest acknowledged batch per worker, plus one
	var ackedSet []map[int]bool
	for range crashWorkers {
		ackedSet = append(ackedSet, map[int]bool{})
	}
	first := make(chan struct{})
	var once sync.Once
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var g, i int
			if _, err := fmt.Sscanf(sc.Text(), "ack %d %d", &g, &i); err != nil {
				continue
			}
			ackedSet[g][i] = true
			acked[g] = max(acked[g], i+1)
			once.Do(func() { close(first) })
		}
	}()
	select {
	case <-first:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("child acknowledged nothing in 30 s")
	}
	time.Sleep(time.Duration(100+rand.IntN(700)) * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-lines
	_ = cmd.Wait()

	total := 0
	for _, m := range ackedSet {
		total += len(m)
	}
	t.Logf("%s: child acknowledged %d batches before SIGKILL", mode, total)
	s, err := open(context.Background(), dir, nil, crashOptions(mode))
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	checkCrash(t, s, ackedSet, acked)
}

func checkCrash(t *testing.T, s *Store, ackedSet []map[int]bool, acked []int) {
	ctx := context.Background()
	for g, m := range ackedSet {
		for i := range m {
			ids := crashIDs(g, i)
			ps, err := s.Profiles(ctx, crashApp, ids)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				p, ok := ps[id]
				switch {
				case !ok:
					t.Errorf("acknowledged account %s lost", id)
				case p.Attrs[0] != fmt.Sprint("b", i) || len(p.Tags) != 1 || p.Tags[0] != fmt.Sprint("g", g):
					t.Errorf("acknowledged edits of %s lost: %q %q", id, p.Attrs, p.Tags)
				}
			}
		}
		// The hot account holds a batch number at least as new as the
		// last acknowledged one (a later, unacknowledged one may have
		// committed too).
		hot := fmt.Sprintf("hot-%d", g)
		ps, err := s.Profiles(ctx, crashApp, []string{hot})
		if err != nil {
			t.Fatal(err)
		}
		if acked[g] > 0 {
			got, _ := strconv.Atoi(ps[hot].Attrs[1])
			if got < acked[g]-1 {
				t.Errorf("%s holds batch %d, but batch %d was acknowledged", hot, got, acked[g]-1)
			}
		}
	}
	// The tag registry agrees with the accounts.
	counts := map[string]int{}
	err := s.ScanProfiles(ctx, crashApp, func(p im.Profile) error {
		for _, tag := range p.Tags {
			counts[tag]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.rdb.Query(`SELECT name, refcount FROM tags WHERE app = ?`, crashApp)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	registry := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		registry[name] = n
	}
	if fmt.Sprint(registry) != fmt.Sprint(counts) {
		t.Errorf("tag registry %v, accounts carry %v", registry, counts)
	}
}

func crashIDs(g, i int) []string {
	ids := make([]string, crashAccounts)
	for k := range ids {
		ids[k] = fmt.Sprintf("g%d-b%d-k%d", g, i, k)
	}
	return ids
}

// TestCrashChild is the child of TestCrash; it does nothing unless run by it.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrash")
	}
	ctx := context.Background()
	s, err := open(ctx, dir, nil, crashOptions(os.Getenv(crashModeEnv)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex // one line at a time on stdout
	var wg sync.WaitGroup
	for g := range crashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hot := fmt.Sprintf("hot-%d", g)
			if _, err := s.ImportAccounts(ctx, crashApp, []im.AccountInput{{UserID: hot}}); err != nil {
				panic(err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for i := 0; time.Now().Before(deadline); i++ {
				ids := crashIDs(g, i)
				in := make([]im.AccountInput, len(ids))
				edits := []im.Edit{{Account: hot, Op: im.OpSetAttrs, Attrs: im.AttrValues{1: strconv.Itoa(i)}}}
				for k, id := range ids {
					in[k] = im.AccountInput{UserID: id}
					edits = append(edits,
						im.Edit{Account: id, Op: im.OpSetAttrs, Attrs: im.AttrValues{0: fmt.Sprint("b", i)}},
						im.Edit{Account: id, Op: im.OpAddTags, Tags: []string{fmt.Sprint("g", g)}})
				}
				if _, err := s.ImportAccounts(ctx, crashApp, in); err != nil {
					panic(err)
				}
				errs, err := s.ApplyEdits(ctx, crashApp, edits, im.EditLimits{})
				if err != nil {
					panic(err)
				}
				for _, e := range errs {
					if e != nil {
						panic(e)
					}
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %d %d\n", g, i)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.Close()
	fmt.Fprintln(os.Stderr, "child: not killed within 60 s")
	os.Exit(3)
}
