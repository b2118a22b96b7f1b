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

// FuzzValidVendor: any device registration's vendor side is accepted or
// refused with 70402, never a panic; an accepted one is well formed.
func FuzzValidVendor(f *testing.F) {
	f.Add("webpush", "", "https://push.example/x", "BPc3", "AAAA", "")
	f.Add("apns", "0a0b", "", "", "", "com.example")
	f.Add("fcm", "tok", "", "", "", "")
	f.Fuzz(func(t *testing.T, vendor, token, endpoint, p256dh, auth, bundle string) {
		req := DeviceRequest{Vendor: im.Vendor(vendor), Token: token, Endpoint: endpoint, P256dh: p256dh, Auth: auth, Bundle: bundle}
		err := validVendor(&req)
		if err != nil {
			if im.CodeOf(err) != im.CodeAccountBadParam {
				t.Fatalf("error %v, want 70402", err)
			}
			return
		}
		if len(bundle) > im.MaxBundleLen || len(endpoint) > im.MaxEndpointLen {
			t.Fatalf("accepted an oversize field: %q %q", bundle, endpoint)
		}
		if req.Vendor == im.VendorWebPush && (token != "" || endpoint == "") {
			t.Fatalf("accepted a Web Push device without a subscription: %+v", req)
		}
	})
}
