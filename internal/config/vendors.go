package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Vendors holds one app's push-vendor settings (the app object's
// "vendors"); a nil member leaves that vendor off. Paths name files the
// server reads at start; the files hold the secrets, so the config file
// may be shown.
type Vendors struct {
	APNs    *APNsVendor    `json:"apns,omitempty"`
	FCM     *FCMVendor     `json:"fcm,omitempty"`
	WebPush *WebPushVendor `json:"webpush,omitempty"`
}

// APNsVendor configures APNs with token (.p8) authentication.
type APNsVendor struct {
	KeyFile  string  `json:"key-file"` // the .p8 key from Apple
	KeyID    string  `json:"key-id"`
	TeamID   string  `json:"team-id"`
	Topic    string  `json:"topic"`    // bundle id when the device names none
	Endpoint string  `json:"endpoint"` // default https://api.push.apple.com
	CAFile   string  `json:"ca-file"`  // extra trusted CA (staging, tests)
	Rate     float64 `json:"rate"`     // notifications/s (0: the default)
}

// FCMVendor configures FCM HTTP v1 with a service-account key.
type FCMVendor struct {
	ServiceAccountFile string  `json:"service-account-file"`
	Endpoint           string  `json:"endpoint"`  // default https://fcm.googleapis.com
	TokenURL           string  `json:"token-url"` // default: the file's token_uri
	CAFile             string  `json:"ca-file"`
	Rate               float64 `json:"rate"`
}

// WebPushVendor configures Web Push with a VAPID key pair.
type WebPushVendor struct {
	VAPIDPublicKey string `json:"vapid-public-key"`
	// VAPIDPrivateKeyFile holds the private key (base64url, one line).
	VAPIDPrivateKeyFile string `json:"vapid-private-key-file"`
	Subscriber          string `json:"subscriber"` // mailto: or https: contact
	// AllowedHosts are the subscription endpoint hosts allowed besides
	// none: when empty, the browsers' own push services.
	AllowedHosts []string `json:"allowed-hosts"`
	CAFile       string   `json:"ca-file"`
	Rate         float64  `json:"rate"`
}

// Any reports whether any vendor is configured.
func (v Vendors) Any() bool { return v.APNs != nil || v.FCM != nil || v.WebPush != nil }

// setVendors reads an app's "vendors" object: keys apns, fcm and
// webpush, each an object of the keys above (with `-` or `_`); any other
// key, or a key given twice, is refused.
func (a *AppConfig) setVendors(raw json.RawMessage) error {
	members, err := objectMembers(raw)
	if err != nil {
		return err
	}
	for _, m := range members {
		var err error
		switch canonical(m.key) {
		case "apns":
			a.Vendors.APNs = &APNsVendor{}
			err = strictObject(m.raw, a.Vendors.APNs)
		case "fcm":
			a.Vendors.FCM = &FCMVendor{}
			err = strictObject(m.raw, a.Vendors.FCM)
		case "webpush":
			a.Vendors.WebPush = &WebPushVendor{}
			err = strictObject(m.raw, a.Vendors.WebPush)
		default:
			err = errors.New("unknown vendor (known: apns, fcm, webpush)")
		}
		if err != nil {
			return fmt.Errorf("%q: %w", m.key, err)
		}
	}
	return a.Vendors.check()
}

// strictObject decodes a JSON object into v with `_` read as `-` in keys,
// refusing unknown and repeated keys.
func strictObject(raw json.RawMessage, v any) error {
	members, err := objectMembers(raw)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(canonical(m.key))
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.raw)
	}
	b.WriteByte('}')
	dec := json.NewDecoder(&b)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%v", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// check refuses missing required keys, non-https endpoints and rates out
// of range.
func (v Vendors) check() error {
	if a := v.APNs; a != nil {
		if a.KeyFile == "" || a.KeyID == "" || a.TeamID == "" {
			return errors.New(`"apns": key-file, key-id and team-id are required`)
		}
		if err := checkVendorURL(a.Endpoint); err != nil {
			return fmt.Errorf(`"apns": endpoint: %w`, err)
		}
		if err := checkRate(a.Rate); err != nil {
			return fmt.Errorf(`"apns": %w`, err)
		}
	}
	if f := v.FCM; f != nil {
		if f.ServiceAccountFile == "" {
			return errors.New(`"fcm": service-account-file is required`)
		}
		for _, u := range []string{f.Endpoint, f.TokenURL} {
			if err := checkVendorURL(u); err != nil {
				return fmt.Errorf(`"fcm": %w`, err)
			}
		}
		if err := checkRate(f.Rate); err != nil {
			return fmt.Errorf(`"fcm": %w`, err)
		}
	}
	if w := v.WebPush; w != nil {
		if w.VAPIDPublicKey == "" || w.VAPIDPrivateKeyFile == "" || w.Subscriber == "" {
			return errors.New(`"webpush": vapid-public-key, vapid-private-key-file and subscriber are required`)
		}
		for _, h := range w.AllowedHosts {
			if h == "" || strings.ContainsAny(h, "/:@ ") {
				return fmt.Errorf(`"webpush": allowed-hosts: %q is not a host name`, h)
			}
		}
		if err := checkRate(w.Rate); err != nil {
			return fmt.Errorf(`"webpush": %w`, err)
		}
	}
	return nil
}

// checkVendorURL accepts "" (the default) or an absolute https URL.
func checkVendorURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return fmt.Errorf("%q: want an absolute https:// URL", s)
	}
	return nil
}

func checkRate(r float64) error {
	if r < 0 || r > MaxRate {
		return fmt.Errorf("rate %v is out of range (0 to %v notifications per second)", r, MaxRate)
	}
	return nil
}
