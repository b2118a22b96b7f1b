package service

import (
	"encoding/json"
	"testing"

	"timd/internal/im"
)

// TestVendorUntil is the routing table's offline half: whether and until
// when a push may go out through vendors.
func TestVendorUntil(t *testing.T) {
	const now = 1_800_000_000
	for _, tc := range []struct {
		name string
		req  PushRequest
		want int64
	}{
		{"notification, no lifetime", PushRequest{Kind: im.PushCondition}, now + im.DefaultStoredLife},
		{"MsgLifeTime", PushRequest{Kind: im.PushCondition, MsgLifeTime: 60}, now + 60},
		{"batch", PushRequest{Kind: im.PushBatch, MsgLifeTime: 10}, now + 10},
		{"OnlineOnlyFlag 1", PushRequest{Kind: im.PushCondition, OnlineOnly: true, MsgLifeTime: 60}, 0},
		{"PushFlag 1", PushRequest{Kind: im.PushCondition, Offline: json.RawMessage(`{"PushFlag":1,"Title":"x"}`)}, 0},
		{"PushFlag 0", PushRequest{Kind: im.PushCondition, Offline: json.RawMessage(`{"PushFlag":0,"Title":"x"}`)}, now + im.DefaultStoredLife},
	} {
		if got := vendorUntil(&tc.req, now); got != tc.want {
			t.Errorf("%s: vendorUntil = %d, want %d", tc.name, got, tc.want)
		}
	}
}
