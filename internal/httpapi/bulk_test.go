package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"timd/internal/httpapi"
)

// TestBulkWritesTakeTurns: while every bulk slot is taken, account and
// audience writes wait (their bodies read), and pushes and reads are
// answered at once; a caller that gives up while waiting leaves no slot
// taken; once slots free up, the waiting writes are answered and applied.
func TestBulkWritesTakeTurns(t *testing.T) {
	e := newEnv(t, envOpts{quiet: true, bulkSlots: 1})
	setupPush(t, e, 4)
	release := httpapi.FillBulkSlots(e.h)

	done := make(chan reply, 2)
	go func() {
		done <- e.call("timpush/set_attr", `{"UserAttrs":[{"To_Account":"u1","Attrs":{"city":"paris"}}]}`)
	}()
	go func() { done <- e.call("timpush/add_tag", `{"UserTags":[{"To_Account":"u1","Tags":["late"]}]}`) }()

	// Reads and pushes do not wait for a bulk slot.
	wantCode(t, e.call("timpush/get_attr_name", `{}`), 0)
	wantCode(t, e.call("timpush/get_attr", `{"To_Account":["u1"]}`), 0)
	e.pushOK("timpush/push", `{"MsgRandom":7,`+msg+`}`)
	select {
	case r := <-done:
		t.Fatalf("a bulk write was answered while every slot was taken: %v", r)
	case <-time.After(200 * time.Millisecond):
	}

	// A caller that leaves while it waits takes no slot with it.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url("timpush/remove_tag", appA, "administrator", sig(t, appA, "administrator")),
		strings.NewReader(`{"UserTags":[{"To_Account":"u0","Tags":["even"]}]}`))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Fatal("a bulk write was answered while every slot was taken")
	}

	release()
	for range 2 {
		select {
		case r := <-done:
			wantCode(t, r, 0)
		case <-time.After(10 * time.Second):
			t.Fatal("the waiting bulk writes were not answered once the slots were free")
		}
	}
	r := e.call("timpush/get_attr", `{"To_Account":["u1"]}`)
	if !strings.Contains(jsonOf(r), "paris") {
		t.Fatalf("set_attr did not apply after waiting: %v", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for httpapi.BulkSlotsInUse(e.h) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bulk slots still taken after every request ended", httpapi.BulkSlotsInUse(e.h))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
