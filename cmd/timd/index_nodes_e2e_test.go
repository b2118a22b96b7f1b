package main_test

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"timd/internal/testenv"
)

var syncWaitRE = regexp.MustCompile(`(?m)^timd_index_sync_wait_seconds_count (\d+)$`)

// TestE2EIndexAcrossNodes runs two real binaries on one PostgreSQL store
// (TIMD_TEST_POSTGRES), first tailing each other's writes by polling
// alone, then woken through NATS (TIMD_TEST_NATS). A tag or attribute
// written through one node is in the audience of a push made at once
// through the other (read your writes), in both directions, and accounts
// created through one node are pushed to through the other.
func TestE2EIndexAcrossNodes(t *testing.T) {
	for _, mode := range []string{"poll", "nats"} {
		t.Run(mode, func(t *testing.T) {
			store := pgStore(t)
			extra := []string{"--limits", "off"}
			if mode == "nats" {
				extra = append(extra, "--nats", testenv.NATSURL(t), "--nats-prefix", testenv.Prefix("timde2e"))
			}
			a := startApp(t, store, extra...)
			b := startApp(t, store, extra...)
			a.want("timpush/set_attr_name", `{"AttrNames":{"0":"city"}}`, 0)
			a.want("im_open_login_svc/multiaccount_import", `{"Accounts":["u1","u2","u3"]}`, 0)
			for i := range 5 {
				from, to := a, b
				if i%2 == 1 {
					from, to = b, a
				}
				tag := fmt.Sprint("vip", i)
				from.tag(tag, "u1", "u2")
				if got := to.audienceOf(tag, 100+i); got != 2 {
					t.Fatalf("round %d: push right after a tag write through the other node reached %v, want 2", i, got)
				}
				city := fmt.Sprint("c", i)
				from.want("timpush/set_attr", fmt.Sprintf(`{"UserAttrs":[{"To_Account":"u3","Attrs":{"city":"%s"}}]}`, city), 0)
				id := to.want("timpush/push", fmt.Sprintf(`{"MsgRandom":%d,"Condition":{"AttrsAnd":{"city":"%s"}},"OfflinePushInfo":{"Title":"x"}}`,
					200+i, city), 0)["TaskId"].(string)
				if got := to.stats(id)["TotalCount"]; got != 1.0 {
					t.Fatalf("round %d: push right after set_attr through the other node reached %v, want 1", i, got)
				}
			}
			// Accounts made through B are pushed to through A.
			b.want("im_open_login_svc/multiaccount_import", `{"Accounts":["n1","n2"]}`, 0)
			b.tag("new", "n1", "n2", "u1")
			if got := a.audienceOf("new", 300); got != 3 {
				t.Fatalf("push through A after accounts and tags made through B reached %v, want 3", got)
			}
			for name, p := range map[string]*proc{"A": a, "B": b} {
				m := syncWaitRE.FindStringSubmatch(get(t, p.base+"/metrics"))
				if m == nil {
					t.Fatalf("node %s: /metrics lacks timd_index_sync_wait_seconds", name)
				}
				if n, _ := strconv.Atoi(m[1]); n < 5 {
					t.Fatalf("node %s: %d pushes went through the read-your-writes wait, want at least 5", name, n)
				}
			}
		})
	}
}
