package main_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestE2EKill9 overwrites accounts from several clients, kills the server
// with SIGKILL while they write, restarts it and checks that every account
// holds its last acknowledged write. Each client cycles over its own few
// accounts, so every account is written many times: a lost overwrite or
// two writes applied out of order would leave an older value. The one
// write a client had in flight at the kill may or may not have landed.
func TestE2EKill9(t *testing.T) {
	const writers, perWriter = 4, 5
	store := t.TempDir()
	p := startApp(t, store, "--limits", "off")
	p.want("timpush/set_attr_name", `{"AttrNames":{"0":"seq","1":"writer"}}`, 0)

	type state struct{ acked, inflight string }
	var mu sync.Mutex
	accounts := map[string]*state{}
	var ids []string
	for w := range writers {
		for k := range perWriter {
			id := fmt.Sprintf("w%d-%d", w, k)
			ids = append(ids, id)
			accounts[id] = &state{}
			p.want("im_open_login_svc/account_import", `{"UserID":"`+id+`"}`, 0)
		}
	}
	var wg sync.WaitGroup
	var writes atomic.Int64
	stop := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := 1; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i%perWriter)
				mu.Lock()
				accounts[id].inflight = fmt.Sprint(i)
				mu.Unlock()
				body := fmt.Sprintf(`{"UserAttrs":[{"To_Account":"%s","Attrs":{"seq":"%d","writer":"%d"}}]}`, id, i, w)
				r, err := p.try("timpush/set_attr", body)
				if err != nil {
					return // the server is gone
				}
				if r.code() != 0 || r["ErrorList"] != nil {
					t.Errorf("set_attr %s: %v", id, r)
					return
				}
				mu.Lock()
				accounts[id].acked, accounts[id].inflight = fmt.Sprint(i), ""
				mu.Unlock()
				writes.Add(1)
			}
		})
	}
	// Kill at a random moment once every account has been overwritten a
	// few times.
	waitFor(t, "overwrites", func() bool { return writes.Load() >= writers*perWriter*3 })
	time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	close(stop)
	wg.Wait()

	p = startApp(t, store)
	r := p.want("timpush/get_attr", `{"To_Account":["`+strings.Join(ids, `","`)+`"]}`, 0)
	if r["ErrorList"] != nil {
		t.Fatalf("acknowledged accounts lost: %s", js(r["ErrorList"]))
	}
	seen := 0
	for _, u := range r["UserAttrs"].([]any) {
		m := u.(map[string]any)
		id := m["To_Account"].(string)
		attrs, _ := m["Attrs"].(map[string]any)
		got, _ := attrs["seq"].(string)
		st := accounts[id]
		if st == nil {
			t.Fatalf("unknown account %s in the answer", id)
		}
		seen++
		if got != st.acked && (st.inflight == "" || got != st.inflight) {
			t.Errorf("%s: seq %q after restart; last acknowledged %q, in flight %q", id, got, st.acked, st.inflight)
		}
		if w := strings.TrimPrefix(strings.Split(id, "-")[0], "w"); attrs["writer"] != w {
			t.Errorf("%s: writer %v after restart, want %s", id, attrs["writer"], w)
		}
	}
	if seen != len(ids) {
		t.Fatalf("get_attr answered %d of %d accounts", seen, len(ids))
	}
	t.Logf("%d acknowledged overwrites of %d accounts survived kill -9", writes.Load(), len(ids))
}
