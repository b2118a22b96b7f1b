package im

import "context"

// Vendor names the vendor channel that reaches a device while it has no
// live connection. Its values are the vendor package's Kind names.
type Vendor string

// Vendors timd delivers through.
const (
	VendorNone    Vendor = ""        // a device with no vendor channel (live and inbox only)
	VendorAPNs    Vendor = "apns"    // Apple Push Notification service
	VendorFCM     Vendor = "fcm"     // Firebase Cloud Messaging HTTP v1
	VendorWebPush Vendor = "webpush" // RFC 8030 Web Push to a browser subscription
)

// PushPlatform is the number statistics, traces and webhooks give a
// delivery channel. Tencent does not publish its enumeration; these are
// timd's (docs/compatibility.md).
func (v Vendor) PushPlatform() int {
	switch v {
	case VendorAPNs:
		return 1
	case VendorFCM:
		return 2
	case VendorWebPush:
		return 3
	}
	return 0
}

// Device field limits.
const (
	MaxBundleLen   = 255  // app bundle id / package name / FCM project
	MaxEndpointLen = 1024 // Web Push endpoint URL
	MaxKeyLen      = 128  // Web Push keys.p256dh and keys.auth (base64url)
)

// PushDevice is how a RegistrationID is reached when it is offline: its
// vendor, the vendor's address for it, and, for a device nobody owns, the
// hash of its device credential. Target is the ordinal of the account a
// push must reach for this device to be sent to: its owner's, or its own
// when nobody owns it.
type PushDevice struct {
	RegistrationID string
	Target         uint32
	Owner          string
	Platform       string
	Vendor         Vendor
	Token          string // APNs device token or FCM registration token
	Bundle         string // APNs topic (bundle id) or Android package
	Endpoint       string // Web Push subscription endpoint
	P256dh         string // Web Push subscription keys.p256dh
	Auth           string // Web Push subscription keys.auth
	CredHash       []byte // SHA-256 of the device credential; nil: none
	UpdatedAt      int64  // unix seconds
}

// Reachable reports whether a vendor can reach d.
func (d *PushDevice) Reachable() bool {
	switch d.Vendor {
	case VendorAPNs, VendorFCM:
		return d.Token != ""
	case VendorWebPush:
		return d.Endpoint != ""
	}
	return false
}

// DeviceStore persists the vendor side of devices.
type DeviceStore interface {
	// PutPushDevice creates or replaces the device d.RegistrationID: a
	// refreshed token updates the one row, never adds another. A token or
	// Web Push endpoint another device of the app holds moves to d (an app
	// reinstalled under a new RegistrationID is still one device).
	PutPushDevice(ctx context.Context, app uint64, d PushDevice) error
	// PushDevice returns one device, or ErrNotFound.
	PushDevice(ctx context.Context, app uint64, regID string) (PushDevice, error)
	// PushDevicesOf returns the devices whose Target is among targets.
	PushDevicesOf(ctx context.Context, app uint64, targets []uint32) ([]PushDevice, error)
	// DropToken clears the vendor address of the device if it is still
	// token (for Web Push, the endpoint): a vendor said it is no longer
	// registered. A token refreshed meanwhile is kept. It reports whether
	// it cleared one.
	DropToken(ctx context.Context, app uint64, regID, token string) (bool, error)
}

// OutboxItem is one vendor notification waiting to be sent: task TaskID
// to device RegistrationID.
type OutboxItem struct {
	App            uint64
	TaskID         string
	RegistrationID string
	Attempts       int
	DueAt          int64 // unix ms
}

// SendResult is the outcome of one vendor notification, as the
// statistics, the trace, the loss report and the webhooks show it.
type SendResult struct {
	App            uint64
	TaskID         string
	RegistrationID string
	Account        string // the recipient: the device's owner, or the device
	Vendor         Vendor
	Platform       string // the device's platform name
	Status         int    // the vendor's HTTP status (0: none)
	ErrCode        string // "" on success; otherwise the vendor's reason
	At             int64  // unix seconds
}

// OK reports whether the vendor accepted the notification.
func (r *SendResult) OK() bool { return r.ErrCode == "" }

// Outbox is the durable queue of vendor notifications. An item is queued
// once per task and device; finishing it deletes it and records its result
// in the same transaction, so after a crash only items claimed and not yet
// finished (the in-flight window) are sent again.
type Outbox interface {
	// EnqueueOffline queues, for task taskID, one item per vendor-reachable
	// device whose Target is among targets, due at now (unix ms). Items
	// already queued or already finished for this task are not queued again.
	// It returns how many it queued.
	EnqueueOffline(ctx context.Context, app uint64, taskID string, targets []uint32, now int64) (int, error)
	// ClaimOutbox leases to owner until leaseUntil (unix ms) at most limit
	// items that are due at now and not leased by a live lease, oldest first.
	// Items of revoked tasks, and of tasks past their VendorUntil, are
	// deleted instead of claimed.
	ClaimOutbox(ctx context.Context, owner string, now, leaseUntil int64, limit int) ([]OutboxItem, error)
	// RenewOutbox extends to leaseUntil (unix ms) the lease of those of
	// items still leased to owner (not finished, retried or claimed by
	// another owner since), and returns how many it extended. A sender
	// renews while it sends, so that a slow send never outlives its lease
	// and is claimed and sent again by another node.
	RenewOutbox(ctx context.Context, owner string, items []OutboxItem, leaseUntil int64) (int, error)
	// FinishOutbox deletes the item of r and records r, in one transaction.
	FinishOutbox(ctx context.Context, r SendResult) error
	// RetryOutbox releases an item, due again at dueAt, one attempt more.
	RetryOutbox(ctx context.Context, app uint64, taskID, regID string, dueAt int64) error
	// SendResults returns task taskID's results in RegistrationID order
	// after afterRegID, at most limit.
	SendResults(ctx context.Context, app uint64, taskID, afterRegID string, limit int) ([]SendResult, error)
	// OutboxLen counts the items still queued for a task.
	OutboxLen(ctx context.Context, app uint64, taskID string) (int, error)
	// SendCounts counts a task's sends by vendor: finished ones by ErrCode
	// ("" accepted), and those still queued (Queued, ErrCode "").
	SendCounts(ctx context.Context, app uint64, taskID string) ([]SendCount, error)
	// AccountSends returns a task's results for the recipient account, in
	// RegistrationID order.
	AccountSends(ctx context.Context, app uint64, taskID, account string) ([]SendResult, error)
	// QueuedSends returns task taskID's sends still queued (not yet sent,
	// being sent, or waiting for a retry) to the devices whose Target is
	// target, in RegistrationID order.
	QueuedSends(ctx context.Context, app uint64, taskID string, target uint32) ([]QueuedSend, error)
	// UnpostedSends returns at most limit results of every app whose
	// webhook event has not been posted yet, oldest first.
	UnpostedSends(ctx context.Context, limit int) ([]SendResult, error)
	// MarkSendsPosted records that the events of rs were posted (or that
	// their app has no callback URL).
	MarkSendsPosted(ctx context.Context, rs []SendResult) error
}

// QueuedSend is a vendor notification still in the send queue, with its
// device's vendor and platform.
type QueuedSend struct {
	RegistrationID string
	Vendor         Vendor
	Platform       string
	Attempts       int   // tries answered with a retryable error so far
	DueAt          int64 // unix ms
	LeaseUntil     int64 // unix ms; after now: being sent
}

// SendCount is one group of a task's vendor sends.
type SendCount struct {
	Vendor  Vendor
	ErrCode string
	Queued  bool
	N       int64
}
