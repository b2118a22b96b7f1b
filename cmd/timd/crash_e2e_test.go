package main_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestE2EKill9 writes from several clients, kills the server with SIGKILL
// at a random moment, restarts it and checks that every acknowledged write
// is there.
func TestE2EKill9(t *testing.T) {
	store := t.TempDir()
	p := startApp(t, store, "--limits", "off")
	p.want("timpush/set_attr_name", `{"AttrNames":{"0":"seq"}}`, 0)

	var mu sync.Mutex
	acked := map[string]string{} // account -> last acknowledged seq value
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				if r, err := p.try("im_open_login_svc/account_import", `{"UserID":"`+id+`"}`); err != nil || r.code() != 0 {
					return // the server is gone
				}
				body := fmt.Sprintf(`{"UserAttrs":[{"To_Account":"%s","Attrs":{"seq":"%d"}}]}`, id, i)
				r, err := p.try("timpush/set_attr", body)
				if err != nil {
					return
				}
				if r.code() != 0 || r["ErrorList"] != nil {
					t.Errorf("set_attr %s: %v", id, r)
					return
				}
				mu.Lock()
				acked[id] = fmt.Sprint(i)
				mu.Unlock()
			}
		}(w)
	}
	time.Sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged before the kill")
	}

	p = startApp(t, store)
	ids := make([]string, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	for len(ids) > 0 {
		n := min(100, len(ids))
		batch := ids[:n]
		ids = ids[n:]
		r := p.want("timpush/get_attr", `{"To_Account":["`+strings.Join(batch, `","`)+`"]}`, 0)
		if r["ErrorList"] != nil {
			t.Fatalf("acknowledged accounts lost: %s", js(r["ErrorList"]))
		}
		for _, u := range r["UserAttrs"].([]any) {
			m := u.(map[string]any)
			id := m["To_Account"].(string)
			got := m["Attrs"].(map[string]any)["seq"]
			if got != acked[id] {
				t.Fatalf("%s: seq %v after restart, acknowledged %s", id, got, acked[id])
			}
		}
	}
	t.Logf("%d acknowledged writes survived kill -9", len(acked))
}
