package main_test

import (
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

// TestE2EAccounts drives the account API of the real binary with UserSigs
// made by Tencent's official library.
func TestE2EAccounts(t *testing.T) {
	p := startApp(t, t.TempDir())
	p.want("im_open_login_svc/account_import", `{"UserID":"alice","Nick":"Alice"}`, 0)
	r := p.want("im_open_login_svc/multiaccount_import", `{"Accounts":["bob","carol"]}`, 0)
	if js(r["FailAccounts"]) != `[]` {
		t.Fatalf("FailAccounts %v", r)
	}
	p.want("im_open_login_svc/multiaccount_import", `{"AccountList":[{"UserID":"dave","Nick":"D"}]}`, 0)
	r = p.want("im_open_login_svc/account_check", `{"CheckItem":[{"UserID":"alice"},{"UserID":"dave"},{"UserID":"zed"}]}`, 0)
	if got := js(r["ResultItem"]); strings.Count(got, `"Imported"`) != 2 || !strings.Contains(got, `"NotImported","ResultCode":0,"ResultInfo":"","UserID":"zed"`) {
		t.Fatalf("check: %s", got)
	}
	r = p.want("im_open_login_svc/account_delete", `{"DeleteItem":[{"UserID":"carol"},{"UserID":"zed"}]}`, 0)
	if got := js(r["ResultItem"]); !strings.Contains(got, `70107`) {
		t.Fatalf("delete: %s", got)
	}
	p.want("im_open_login_svc/kick", `{"UserID":"alice"}`, 0)
	p.want("im_open_login_svc/kick", `{"UserID":"zed"}`, 70107)
	r = p.want("openim/query_online_status", `{"To_Account":["alice","carol"]}`, 0)
	if js(r["QueryResult"]) != `[{"Status":"Offline","To_Account":"alice"}]` || js(r["ErrorList"]) != `[{"ErrorCode":70107,"To_Account":"carol"}]` {
		t.Fatalf("online: %s", js(r))
	}
	p.want("im_open_login_svc/nope", `{}`, 60009)

	resp, err := http.Get(p.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`timd_rest_requests_total{code="0",command="im_open_login_svc/account_import"} 1`,
		`timd_rest_requests_total{code="60009",command="unknown"} 1`, `timd_rest_request_duration_seconds_bucket`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(metrics), e2eKey) {
		t.Error("/metrics shows the secret key")
	}
	p.stop()

	// Data survives a clean restart.
	p = startApp(t, p.store)
	r = p.want("im_open_login_svc/account_check", `{"CheckItem":[{"UserID":"alice"},{"UserID":"carol"}]}`, 0)
	if got := js(r["ResultItem"]); !strings.Contains(got, `"Imported","ResultCode":0,"ResultInfo":"","UserID":"alice"`) || !strings.Contains(got, `"NotImported","ResultCode":0,"ResultInfo":"","UserID":"carol"`) {
		t.Fatalf("after restart: %s", got)
	}
}

// TestE2EDevApp checks that a bare `timd serve` on an empty store creates a
// development app, prints it with a working curl line, and keeps it.
func TestE2EDevApp(t *testing.T) {
	store := t.TempDir()
	p := start(t, store)
	out := p.stdout.String()
	for _, want := range []string{"SDKAppID:", "SecretKey:", "Admin:     administrator", "curl -s -X POST"} {
		if !strings.Contains(out, want) {
			t.Fatalf("dev app banner lacks %q:\n%s", want, out)
		}
	}
	// Run the printed curl line against the server.
	line := out[strings.Index(out, "curl "):]
	line = line[:strings.IndexByte(line, '\n')]
	raw, err := exec.Command("bash", "-c", line).Output()
	if err != nil {
		t.Fatalf("curl: %v", err)
	}
	if !strings.Contains(string(raw), `"ActionStatus":"OK"`) {
		t.Fatalf("printed curl line failed: %s", raw)
	}
	p.stop()
	// A second start keeps the app and prints nothing.
	p = start(t, store)
	if strings.Contains(p.stdout.String(), "SecretKey") {
		t.Fatal("second start created another app")
	}
}

// TestE2EUserSigCommand checks `timd usersig` against the server.
func TestE2EUserSigCommand(t *testing.T) {
	out, err := exec.Command(binPath, "usersig", "--sdkappid", "1400000042", "--key", e2eKey, "--identifier", e2eAdmin).Output()
	if err != nil {
		t.Fatal(err)
	}
	p := startApp(t, t.TempDir())
	p.sig = strings.TrimSpace(string(out))
	p.want("timpush/get_attr_name", `{}`, 0)
	if err := exec.Command(binPath, "usersig", "--sdkappid", "1").Run(); err == nil {
		t.Fatal("usersig without --key succeeded")
	}
	if err := exec.Command(binPath, "bogus").Run(); err == nil {
		t.Fatal("unknown command succeeded")
	}
}
