package main_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestE2EMemorySettings starts the binary with a memory limit and store
// cache sizes from flags and the environment, and checks that the Go
// runtime runs under the limit (the runtime's own figure, exported on
// /metrics), and that a size below the minimum refuses to start.
func TestE2EMemorySettings(t *testing.T) {
	dir := t.TempDir()
	p := startApp(t, filepath.Join(dir, "store"), "--memory-limit", "300MiB", "--store-cache", "4MiB",
		"--store-read-cache", "2MiB")
	p.want("im_open_login_svc/account_import", `{"UserID":"a"}`, 0)
	resp, err := http.Get(p.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "\ngo_gc_gomemlimit_bytes 3.145728e+08\n"; !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
	}
	p.stop()

	cmd := exec.Command(binPath, "serve", "--listen", "127.0.0.1:0", "--store", filepath.Join(dir, "store"))
	cmd.Env = append(os.Environ(), "TIMD_STORE_CACHE=1000")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "TIMD_STORE_CACHE: 1000B is out of range") {
		t.Errorf("TIMD_STORE_CACHE=1000: %v\n%s", err, out)
	}
}
