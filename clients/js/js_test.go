package jsclient_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	jsclient "timd/clients/js"
)

// TestNode runs the client's own tests (test/*.test.js) with `node --test`
// against a timd binary built here. It skips, saying why, when node is
// missing or older than 20, and under -short (the tests start timd and
// wait out real reconnects; CI's full run covers them).
func TestNode(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: the JavaScript client's tests start timd (run go test ./clients/js/)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found on PATH: the JavaScript client's tests need Node >= 20 (apt-get install nodejs)")
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Skipf("node --version failed: %v", err)
	}
	m := regexp.MustCompile(`^v(\d+)\.`).FindSubmatch(bytes.TrimSpace(out))
	if m == nil {
		t.Skipf("node --version printed %q", out)
	}
	if major, _ := strconv.Atoi(string(m[1])); major < 20 {
		t.Skipf("node %s is older than 20: the JavaScript client's tests need Node >= 20", bytes.TrimSpace(out))
	}

	bin := filepath.Join(t.TempDir(), "timd")
	build := exec.Command("go", "build", "-o", bin, "timd/cmd/timd")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	files, err := filepath.Glob(filepath.Join("test", "*.test.js"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test/*.test.js files (%v)", err)
	}
	args := []string{"--test", "--test-reporter=tap"}
	// Node 20 and 21 have WebSocket only behind a flag; 22 has it always.
	if b, err := exec.Command(node, "-e", "process.stdout.write(typeof WebSocket)").Output(); err != nil || string(b) != "function" {
		args = append([]string{"--experimental-websocket"}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append(args, files...)...)
	cmd.Env = append(os.Environ(), "TIMD_BIN="+bin)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err = cmd.Run()
	if err != nil || testing.Verbose() {
		t.Logf("node %s\n%s", strings.Join(cmd.Args[1:], " "), buf.String())
	}
	if err != nil {
		t.Fatalf("node --test failed: %v", err)
	}
}

// TestEmbedded checks that the binary carries the module and its types.
func TestEmbedded(t *testing.T) {
	for name, want := range map[string][]byte{"timd.js": jsclient.Module, "timd.d.ts": jsclient.Types} {
		got, err := jsclient.Files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) || len(got) == 0 {
			t.Errorf("%s: Files and the byte slice differ or are empty", name)
		}
	}
	if !bytes.Contains(jsclient.Module, []byte("export class TimdClient")) {
		t.Error("timd.js does not export TimdClient")
	}
	if !bytes.Contains(jsclient.Types, []byte("export class TimdClient")) {
		t.Error("timd.d.ts does not declare TimdClient")
	}
}
