// Package pushvendor delivers offline notifications through the push vendors
// of phones and browsers: Apple Push Notification service (APNs), Firebase
// Cloud Messaging (FCM HTTP v1) and Web Push (RFC 8030, 8291, 8292).
//
// Each vendor is one Sender behind the same small interface, so another
// vendor (HMS, for example) is one new file implementing Sender plus a
// case in NewSet. A Sender sends one notification to one device and
// classifies the answer into a Result: delivered, retry later (429, 5xx,
// network error; with the vendor's Retry-After), or the device is gone
// (Unregistered: the caller removes the token). Pacing (Pacer) and
// retrying (Backoff, SendWithRetry) are separate, so a durable queue can
// hold a notification between attempts instead of sleeping on it.
package pushvendor

import (
	"context"
	"time"
)

// Kind names a vendor channel.
type Kind string

// The vendor channels.
const (
	APNs    Kind = "apns"
	FCM     Kind = "fcm"
	WebPush Kind = "webpush"
)

// Kinds lists every vendor channel.
var Kinds = []Kind{APNs, FCM, WebPush}

// Valid reports whether k is a known vendor channel.
func (k Kind) Valid() bool { return k == APNs || k == FCM || k == WebPush }

// Target is one device as a vendor knows it: Token for APNs and FCM;
// Endpoint, P256dh and Auth (a browser's PushSubscription) for Web Push.
// Bundle is the app's bundle id (APNs topic) when the device names one.
type Target struct {
	Kind     Kind
	Token    string
	Bundle   string
	Endpoint string
	P256dh   string
	Auth     string
}

// Priorities of a Notification.
const (
	PriorityHigh   = "high"
	PriorityNormal = "normal"
)

// Notification is what one push says to a device: OfflinePushInfo's
// content (see ParseOfflinePushInfo and docs/offline-push.md) plus the
// push's identity and lifetime.
type Notification struct {
	App    uint64
	TaskID string // collapse id: a repeat after a restart shows once
	Title  string
	Desc   string
	Ext    string // pass-through payload (Tencent: a JSON string)
	Sound  string
	// Expires is when the vendor should stop trying (from MsgLifeTime);
	// zero leaves it to the vendor's default.
	Expires  time.Time
	Priority string // PriorityHigh (default) or PriorityNormal
	Apns     ApnsInfo
	Android  AndroidInfo
	// Data is extra key/value data for the app (FCM data, APNs custom
	// keys, Web Push payload "data").
	Data map[string]string
}

// ApnsInfo is OfflinePushInfo.ApnsInfo: the iOS-only fields.
type ApnsInfo struct {
	Sound          string `json:"Sound,omitempty"` // with suffix, such as "ding.caf"
	BadgeMode      int    `json:"BadgeMode,omitempty"`
	Title          string `json:"Title,omitempty"`
	SubTitle       string `json:"SubTitle,omitempty"`
	Image          string `json:"Image,omitempty"`
	MutableContent int    `json:"MutableContent,omitempty"`
}

// AndroidInfo is OfflinePushInfo.AndroidInfo: the Android-only fields
// FCM uses. The other vendors' keys (HuaWei, XiaoMi, OPPO, VIVO, ...) are
// kept in the stored task verbatim and ignored here.
type AndroidInfo struct {
	Sound           string `json:"Sound,omitempty"` // without suffix
	GoogleChannelID string `json:"GoogleChannelID,omitempty"`
}

// Result is the outcome of one Send.
//
// Status is the vendor's HTTP status (0 when none arrived). Err is nil
// exactly when the vendor accepted the notification. ErrCode is the
// vendor's reason in its own words ("BadDeviceToken", "UNREGISTERED",
// "HTTP 410", "network"), for loss reports. Retry says a later attempt
// may succeed (429, 5xx, network error), after at least RetryAfter when
// the vendor said so. Unregistered says the device token or subscription
// is gone for good: remove it and do not retry.
type Result struct {
	Status       int
	Err          error
	ErrCode      string
	Retry        bool
	RetryAfter   time.Duration
	Unregistered bool
}

// OK reports whether the vendor accepted the notification.
func (r Result) OK() bool { return r.Err == nil }

// Sender sends one notification to one device through one vendor, with
// one app's credentials. Send never panics on a bad target or content;
// it reports them in the Result (Retry false).
type Sender interface {
	Kind() Kind
	Send(ctx context.Context, t Target, n Notification) Result
}
