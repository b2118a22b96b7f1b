package pushvendor

import (
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
)

// DefaultWebPushHosts are the push services of the major browsers
// (Chrome, Firefox, Edge, Safari): a subscription endpoint elsewhere is
// refused unless the app's configuration allows its host, so a device
// cannot make timd POST to an arbitrary (internal) address.
var DefaultWebPushHosts = []string{
	"fcm.googleapis.com", "android.googleapis.com",
	".push.services.mozilla.com", ".notify.windows.com", ".push.apple.com",
}

// webPushTTL is the TTL of a notification without Expires: Tencent's
// longest MsgLifeTime, 7 days.
const webPushTTL = 7 * 24 * time.Hour

// WebPushOptions configure a Web Push sender with VAPID (RFC 8292).
type WebPushOptions struct {
	PublicKey  string // VAPID public key: base64url of the 65-byte point
	PrivateKey string // VAPID private key: base64url of the 32-byte scalar
	Subscriber string // contact: "mailto:ops@example.com" or an https URL
	// AllowedHosts are the endpoint hosts a subscription may name:
	// "push.example.com" matches that host, ".example.com" its subdomains.
	// Empty means DefaultWebPushHosts.
	AllowedHosts []string
	Client       *http.Client // default NewHTTPClient(nil)
}

// webPushSender sends with github.com/SherClockHolmes/webpush-go, which
// encrypts with aes128gcm (RFC 8291) and signs the VAPID JWT (RFC 8292).
// It pads every message to one 4 KiB record, so the JSON payload may be
// at most about 3.9 KiB.
type webPushSender struct {
	opts  WebPushOptions
	hosts []string
}

// NewWebPush returns the Web Push Sender of one app. The key pair must
// match: a private key whose public half differs is refused.
func NewWebPush(o WebPushOptions) (Sender, error) {
	priv, err := decodeB64(o.PrivateKey)
	if err != nil || len(priv) != 32 {
		return nil, errors.New("webpush: vapid-private-key must be base64url of 32 bytes")
	}
	k, err := ecdh.P256().NewPrivateKey(priv)
	if err != nil {
		return nil, errors.New("webpush: vapid-private-key is not a P-256 key")
	}
	pub, err := decodeB64(o.PublicKey)
	if err != nil || string(pub) != string(k.PublicKey().Bytes()) {
		return nil, errors.New("webpush: vapid-public-key is not the public half of vapid-private-key")
	}
	sub := strings.TrimPrefix(o.Subscriber, "mailto:") // webpush-go adds it back
	if sub == "" || strings.HasPrefix(sub, "http:") {
		return nil, errors.New("webpush: subscriber must be mailto:<address> or an https URL")
	}
	o.Subscriber = sub
	if o.Client == nil {
		o.Client = NewHTTPClient(nil)
	}
	hosts := o.AllowedHosts
	if len(hosts) == 0 {
		hosts = DefaultWebPushHosts
	}
	return &webPushSender{opts: o, hosts: hosts}, nil
}

func (s *webPushSender) Kind() Kind { return WebPush }

// Send encrypts n for one subscription and posts it to its endpoint.
func (s *webPushSender) Send(ctx context.Context, t Target, n Notification) Result {
	if err := CheckSubscription(t.Endpoint, t.P256dh, t.Auth, s.hosts); err != nil {
		return Result{Err: fmt.Errorf("webpush: %w", err), ErrCode: "BadSubscription", Unregistered: true}
	}
	if expired(n) {
		return badInput(WebPush, "expired", errors.New("notification expired"))
	}
	ttl := webPushTTL
	if !n.Expires.IsZero() {
		ttl = time.Until(n.Expires)
	}
	msg, err := json.Marshal(webPushPayload(n))
	if err != nil {
		return badInput(WebPush, "encode", err)
	}
	urgency := webpush.UrgencyHigh
	if n.Priority == PriorityNormal {
		urgency = webpush.UrgencyNormal
	}
	resp, err := webpush.SendNotificationWithContext(ctx, msg,
		&webpush.Subscription{Endpoint: t.Endpoint, Keys: webpush.Keys{P256dh: t.P256dh, Auth: t.Auth}},
		&webpush.Options{
			HTTPClient: s.opts.Client, Subscriber: s.opts.Subscriber,
			VAPIDPublicKey: s.opts.PublicKey, VAPIDPrivateKey: s.opts.PrivateKey,
			TTL: int(ttl / time.Second), Topic: webPushTopic(n.TaskID), Urgency: urgency,
		})
	if errors.Is(err, webpush.ErrMaxPadExceeded) {
		return badInput(WebPush, "PayloadTooLarge", err)
	}
	if err != nil {
		return networkResult(WebPush, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode/100 == 2 {
		return Result{Status: resp.StatusCode}
	}
	gone := resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone
	return statusResult(WebPush, resp, "", gone)
}

// CheckSubscription checks a browser PushSubscription: an https endpoint
// on one of hosts (DefaultWebPushHosts when empty), p256dh a P-256 point
// and auth 16 bytes, both base64url. Device registration should call it
// so a bad subscription is refused up front.
func CheckSubscription(endpoint, p256dh, auth string, hosts []string) error {
	if len(endpoint) > 2048 {
		return errors.New("endpoint longer than 2048 bytes")
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("endpoint must be an https URL")
	}
	if len(hosts) == 0 {
		hosts = DefaultWebPushHosts
	}
	if !hostAllowed(u.Hostname(), hosts) {
		return fmt.Errorf("endpoint host %q is not an allowed push service", u.Hostname())
	}
	pub, err := decodeB64(p256dh)
	if err != nil {
		return errors.New("keys.p256dh is not base64url")
	}
	if _, err := ecdh.P256().NewPublicKey(pub); err != nil {
		return errors.New("keys.p256dh is not an uncompressed P-256 point")
	}
	if a, err := decodeB64(auth); err != nil || len(a) != 16 {
		return errors.New("keys.auth must be base64url of 16 bytes")
	}
	return nil
}

func hostAllowed(host string, allowed []string) bool {
	host = strings.ToLower(host)
	for _, a := range allowed {
		a = strings.ToLower(a)
		if host == a || strings.HasPrefix(a, ".") && strings.HasSuffix(host, a) {
			return true
		}
	}
	return false
}

// decodeB64 reads base64url with or without padding (browsers give it
// without; some libraries with).
func decodeB64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// webPushTopic is the Topic header (RFC 8030 §5.4: at most 32 characters
// of the base64url alphabet) that collapses repeats of one task.
func webPushTopic(taskID string) string {
	if taskID == "" {
		return ""
	}
	if len(taskID) <= 32 && strings.Trim(taskID, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == "" {
		return taskID
	}
	return digest(taskID)[:32]
}

// webPushPayload is the JSON the service worker's push event receives
// (docs/offline-push.md lists every field).
func webPushPayload(n Notification) map[string]any {
	p := map[string]any{"title": n.Title, "body": n.Desc}
	if n.Ext != "" {
		p["ext"] = n.Ext
	}
	if n.TaskID != "" {
		p["tag"] = n.TaskID
	}
	if n.Sound != "" {
		p["sound"] = n.Sound
	}
	if len(n.Data) > 0 {
		p["data"] = n.Data
	}
	return p
}
