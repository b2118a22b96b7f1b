package vendortest

import (
	"encoding/json"
	"os"
	"path/filepath"

	"timd/internal/config"
)

// Topic is the APNs topic (bundle id) the fakes of Start expect.
const Topic = "com.example.timd"

// Fakes are the three fake vendors started together, with the key files
// an app's configuration needs written to a directory.
type Fakes struct {
	APNs    *APNs
	FCM     *FCM
	WebPush *WebPush
	// Vendors configures an app to send to these fakes (the app object's
	// "vendors" in the config file: see JSON).
	Vendors config.Vendors
}

// Start starts the three fakes and writes their key and CA files to dir
// (a test's t.TempDir()). Close them with Close.
func Start(dir string) (*Fakes, error) {
	f := &Fakes{}
	var err error
	if f.APNs, err = NewAPNs(Topic); err != nil {
		return nil, err
	}
	if f.FCM, err = NewFCM("timd-test"); err != nil {
		f.Close()
		return nil, err
	}
	if f.WebPush, err = NewWebPush(); err != nil {
		f.Close()
		return nil, err
	}
	pub, priv, err := VAPIDKeys()
	if err != nil {
		f.Close()
		return nil, err
	}
	f.WebPush.RequireVAPIDKey(pub)
	files := map[string][]byte{
		"AuthKey.p8": f.APNs.KeyPEM(), "apns-ca.pem": f.APNs.CertPEM(),
		"fcm-sa.json": f.FCM.ServiceAccountJSON(), "fcm-ca.pem": f.FCM.CertPEM(),
		"vapid.key": []byte(priv + "\n"), "webpush-ca.pem": f.WebPush.CertPEM(),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			f.Close()
			return nil, err
		}
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	f.Vendors = config.Vendors{
		APNs: &config.APNsVendor{KeyFile: p("AuthKey.p8"), KeyID: f.APNs.KeyID, TeamID: f.APNs.TeamID,
			Topic: Topic, Endpoint: f.APNs.URL(), CAFile: p("apns-ca.pem")},
		FCM: &config.FCMVendor{ServiceAccountFile: p("fcm-sa.json"), Endpoint: f.FCM.URL(), CAFile: p("fcm-ca.pem")},
		WebPush: &config.WebPushVendor{VAPIDPublicKey: pub, VAPIDPrivateKeyFile: p("vapid.key"),
			Subscriber: "mailto:ops@example.com", AllowedHosts: []string{"127.0.0.1"}, CAFile: p("webpush-ca.pem")},
	}
	return f, nil
}

// JSON is Vendors as the config file's app "vendors" object.
func (f *Fakes) JSON() []byte {
	b, _ := json.Marshal(f.Vendors)
	return b
}

// Close stops the fakes that started.
func (f *Fakes) Close() {
	for _, c := range []interface{ Close() }{f.APNs, f.FCM, f.WebPush} {
		if c != nil && !isNil(c) {
			c.Close()
		}
	}
}

func isNil(c interface{ Close() }) bool {
	switch v := c.(type) {
	case *APNs:
		return v == nil
	case *FCM:
		return v == nil
	case *WebPush:
		return v == nil
	}
	return false
}
