package main_test

import (
	"fmt"
	"io"
	"net"
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

// TestE2EMemorySettings starts the binary with a memory limit, store cache
// sizes and a profile listener from flags, and checks that the Go runtime
// runs under the limit (the runtime's own figure, exported on /metrics),
// that profiles are served on their own listener only, and that a size
// below the minimum (from the environment) refuses to start.
func TestE2EMemorySettings(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pprofAddr := ln.Addr().String()
	ln.Close()
	p := startApp(t, filepath.Join(dir, "store"), "--memory-limit", "300MiB", "--store-cache", "4MiB",
		"--store-read-cache", "2MiB", "--pprof-listen", pprofAddr)
	p.want("im_open_login_svc/account_import", `{"UserID":"a"}`, 0)
	body := get(t, p.base+"/metrics")
	if want := "\ngo_gc_gomemlimit_bytes 3.145728e+08\n"; !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
	}
	if got := get(t, "http://"+pprofAddr+"/debug/pprof/heap?debug=1"); !strings.Contains(got, "heap profile") {
		t.Errorf("pprof heap: %.200s", got)
	}
	if got := get(t, p.base+"/debug/pprof/heap?debug=1"); strings.Contains(got, "heap profile") {
		t.Error("the API listener serves profiles")
	}
	p.stop()

	cmd := exec.Command(binPath, "serve", "--listen", "127.0.0.1:0", "--store", filepath.Join(dir, "store"))
	cmd.Env = append(os.Environ(), "TIMD_STORE_CACHE=1000")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "TIMD_STORE_CACHE: 1000B is out of range") {
		t.Errorf("TIMD_STORE_CACHE=1000: %v\n%s", err, out)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}
