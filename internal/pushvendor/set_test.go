package pushvendor_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"timd/internal/config"
	"timd/internal/pushvendor"
	"timd/internal/pushvendor/vendortest"
)

type fakes struct {
	APNs    *vendortest.APNs
	FCM     *vendortest.FCM
	WebPush *vendortest.WebPush
	App     config.AppConfig
}

// startFakes starts the three fakes and points app 1400000001 at them
// the way the config file would (through vendortest.Start's JSON).
func startFakes(t testing.TB) fakes {
	t.Helper()
	f, err := vendortest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "timd.json")
	body := `{"apps":[{"sdkappid":1400000001,"secret-key":"k","admins":["a"],"vendors":` + string(f.JSON()) + `}]}`
	if err := os.WriteFile(cfgFile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load([]string{"--config", cfgFile}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return fakes{f.APNs, f.FCM, f.WebPush, c.Apps[0]}
}

func TestSetFromConfig(t *testing.T) {
	fk := startFakes(t)
	set, err := pushvendor.NewSet([]config.AppConfig{fk.App, {SDKAppID: 1400000002}})
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := fk.WebPush.Subscribe()
	targets := []pushvendor.Target{
		{Kind: pushvendor.APNs, Token: iosToken},
		{Kind: pushvendor.FCM, Token: "fcm-1"},
		{Kind: pushvendor.WebPush, Endpoint: sub.Endpoint, P256dh: sub.P256dh, Auth: sub.Auth},
	}
	for _, tg := range targets {
		if err := set.CheckTarget(1400000001, tg); err != nil {
			t.Fatalf("%s: %v", tg.Kind, err)
		}
		s, ok := set.Sender(1400000001, tg.Kind)
		if !ok {
			t.Fatalf("no %s sender", tg.Kind)
		}
		if r := pushvendor.SendWithRetry(context.Background(), s, set.Pacer, pushvendor.Backoff{}, tg, pushvendor.Notification{App: 1400000001, Title: "hi"}); !r.OK() {
			t.Fatalf("%s: %+v", tg.Kind, r)
		}
		if err := set.CheckTarget(1400000002, tg); err == nil {
			t.Errorf("%s accepted for an app without vendors", tg.Kind)
		}
	}
	if len(fk.APNs.Received()) != 1 || len(fk.FCM.Received()) != 1 || len(fk.WebPush.Received()) != 1 {
		t.Fatal("a fake did not get its notification")
	}
	for _, bad := range []pushvendor.Target{
		{Kind: "hms", Token: "x"},
		{Kind: pushvendor.APNs, Token: "zz"},
		{Kind: pushvendor.FCM},
		{Kind: pushvendor.WebPush, Endpoint: "https://10.0.0.1/x", P256dh: sub.P256dh, Auth: sub.Auth},
	} {
		if err := set.CheckTarget(1400000001, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestSetBadFiles(t *testing.T) {
	fk := startFakes(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("secret-looking junk"), 0o600)
	for name, mut := range map[string]func(*config.AppConfig){
		"apns key missing": func(a *config.AppConfig) { a.Vendors.APNs.KeyFile = filepath.Join(dir, "none") },
		"apns key junk":    func(a *config.AppConfig) { a.Vendors.APNs.KeyFile = junk },
		"fcm sa junk":      func(a *config.AppConfig) { a.Vendors.FCM.ServiceAccountFile = junk },
		"ca junk":          func(a *config.AppConfig) { a.Vendors.FCM.CAFile = junk },
		"vapid mismatch":   func(a *config.AppConfig) { a.Vendors.WebPush.VAPIDPublicKey = "BAAA" },
	} {
		app := fk.App
		v := *app.Vendors.APNs
		f := *app.Vendors.FCM
		w := *app.Vendors.WebPush
		app.Vendors = config.Vendors{APNs: &v, FCM: &f, WebPush: &w}
		mut(&app)
		_, err := pushvendor.NewSet([]config.AppConfig{app})
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "secret-looking") {
			t.Errorf("%s: error quotes the file: %v", name, err)
		}
	}
}
