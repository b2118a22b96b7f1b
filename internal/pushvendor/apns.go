package pushvendor

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
)

// APNs hosts (Apple, "Sending notification requests to APNs").
const (
	APNsProduction = "https://api.push.apple.com"
	APNsSandbox    = "https://api.sandbox.push.apple.com"
)

// APNsOptions configure an APNs sender with token (.p8) authentication.
type APNsOptions struct {
	Key    *ecdsa.PrivateKey // the .p8 key (see APNsKey)
	KeyID  string            // the key's id: the JWT's kid
	TeamID string            // the developer team: the JWT's iss
	// Topic is the app's bundle id (apns-topic) when the device gave none.
	Topic    string
	Endpoint string       // default APNsProduction
	Client   *http.Client // default: HTTP/2 with a 30 s timeout
}

// APNsKey parses a .p8 file (PKCS#8 PEM, ECDSA P-256).
func APNsKey(pem []byte) (*ecdsa.PrivateKey, error) { return token.AuthKeyFromBytes(pem) }

// apnsSender sends through APNs with github.com/sideshow/apns2: it
// builds the request (path /3/device/<token>, apns-topic, apns-push-type,
// apns-expiration, apns-collapse-id, apns-priority) and caches the ES256
// provider token, making a new one after 50 minutes (Apple refuses one
// older than an hour and one renewed more than every 20 minutes). Its
// HTTP client is replaced by ours so tests and staging can trust their
// own CA. apns2 does not expose the answer's headers, so an APNs 429 is
// retried on our backoff rather than a Retry-After (APNs documents none).
type apnsSender struct {
	client *apns2.Client
	topic  string
}

// NewAPNs returns the APNs Sender of one app.
func NewAPNs(o APNsOptions) (Sender, error) {
	if o.Key == nil {
		return nil, errors.New("apns: no key")
	}
	if o.KeyID == "" || o.TeamID == "" {
		return nil, errors.New("apns: key-id and team-id are required")
	}
	tok := &token.Token{AuthKey: o.Key, KeyID: o.KeyID, TeamID: o.TeamID}
	if _, err := tok.Generate(); err != nil {
		return nil, fmt.Errorf("apns: signing a provider token: %w", err)
	}
	c := apns2.NewTokenClient(tok)
	c.Host = strings.TrimRight(o.Endpoint, "/")
	if c.Host == "" {
		c.Host = APNsProduction
	}
	c.HTTPClient = o.Client
	if c.HTTPClient == nil {
		c.HTTPClient = NewHTTPClient(nil)
	}
	return &apnsSender{client: c, topic: o.Topic}, nil
}

func (s *apnsSender) Kind() Kind { return APNs }

// Send posts n to one device token.
func (s *apnsSender) Send(ctx context.Context, t Target, n Notification) Result {
	if !validAPNsToken(t.Token) {
		return Result{Err: errors.New("apns: device token is not hex"), ErrCode: "BadDeviceToken", Unregistered: true}
	}
	if expired(n) {
		return badInput(APNs, "expired", errors.New("notification expired"))
	}
	topic := t.Bundle
	if topic == "" {
		topic = s.topic
	}
	if topic == "" {
		return badInput(APNs, "MissingTopic", errors.New("no topic: configure the app's apns topic or register the device's bundle"))
	}
	an := &apns2.Notification{
		DeviceToken: t.Token,
		Topic:       topic,
		CollapseID:  collapseID(n.TaskID, 64),
		Expiration:  n.Expires,
		Priority:    apns2.PriorityHigh,
		PushType:    apns2.PushTypeAlert,
		Payload:     apnsPayload(n),
	}
	if n.Priority == PriorityNormal {
		an.Priority = apns2.PriorityLow
	}
	resp, err := s.client.PushWithContext(ctx, an)
	if err != nil {
		return networkResult(APNs, err)
	}
	if resp.StatusCode == http.StatusOK {
		return Result{Status: http.StatusOK}
	}
	gone := resp.StatusCode == http.StatusGone || resp.Reason == apns2.ReasonBadDeviceToken ||
		resp.Reason == apns2.ReasonUnregistered
	return statusResult(APNs, &http.Response{StatusCode: resp.StatusCode, Header: http.Header{}}, resp.Reason, gone)
}

// validAPNsToken accepts 32 to 100 bytes in hex: the token goes into the
// request path, so nothing else may pass.
func validAPNsToken(s string) bool {
	if len(s) < 64 || len(s) > 200 || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// apnsPayload maps the notification onto the APNs JSON payload
// (docs/offline-push.md lists every field).
func apnsPayload(n Notification) map[string]any {
	alert := map[string]any{"body": n.Desc}
	alert["title"] = firstNonEmpty(n.Apns.Title, n.Title)
	if n.Apns.SubTitle != "" {
		alert["subtitle"] = n.Apns.SubTitle
	}
	aps := map[string]any{"alert": alert}
	if snd := firstNonEmpty(n.Apns.Sound, n.Sound); snd != "" {
		aps["sound"] = snd
	} else {
		aps["sound"] = "default"
	}
	if n.Apns.MutableContent == 1 || n.Apns.Image != "" {
		aps["mutable-content"] = 1
	}
	if n.TaskID != "" {
		aps["thread-id"] = n.TaskID
	}
	p := map[string]any{"aps": aps}
	for k, v := range n.Data {
		if k != "aps" {
			p[k] = v
		}
	}
	if n.Ext != "" {
		p["ext"] = n.Ext
	}
	if n.Apns.Image != "" {
		p["image"] = n.Apns.Image
	}
	return p
}

func firstNonEmpty(a ...string) string {
	for _, s := range a {
		if s != "" {
			return s
		}
	}
	return ""
}

// collapseID returns the task id when it fits the vendor's limit, else
// a stable digest of it (so repeats still collapse).
func collapseID(taskID string, limit int) string {
	if len(taskID) <= limit {
		return taskID
	}
	d := digest(taskID)
	if len(d) > limit {
		d = d[:limit]
	}
	return d
}
