package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestE2EConfigFileRates starts the binary from a config file whose app
// overrides one command's rate, and checks the override and the
// documented over-limit code; --limits off lifts it.
func TestE2EConfigFileRates(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "timd.json")
	body := fmt.Sprintf(`{"apps":[{"sdkappid":%d,"secret_key":%q,"admins":[%q],
		"rates":{"im_open_login_svc/account_check":1}}]}`, e2eApp, e2eKey, e2eAdmin)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	check := `{"CheckItem":[{"UserID":"a"}]}`
	p := start(t, filepath.Join(dir, "store"), "--config", cfg)
	p.want("im_open_login_svc/account_check", check, 0)
	p.want("im_open_login_svc/account_check", check, 60007)
	p.want("im_open_login_svc/account_import", `{"UserID":"a"}`, 0)
	p.stop()

	p = start(t, filepath.Join(dir, "store"), "--config", cfg, "--limits", "off")
	for i := 0; i < 3; i++ {
		p.want("im_open_login_svc/account_check", check, 0)
	}
}
