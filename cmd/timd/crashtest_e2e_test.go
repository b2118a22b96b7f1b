package main_test

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestE2ECrashTest runs the short form of `timd crashtest` on the built
// binary: two kill -9 rounds while 8 writers write to 2,000 accounts, the
// audience index checked against the store after each restart, and one
// kill -9 in the middle of a push fan-out to 10 live clients.
func TestE2ECrashTest(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash run: 3 kill -9 rounds; .ci/run runs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "crashtest", "--accounts", "2000", "--kills", "2", "--live", "10",
		"--duration-per-round", "1s", "--store", t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("crashtest took %v:\n%s", time.Since(start).Round(time.Millisecond), stdout.String())
	if err != nil {
		t.Fatalf("crashtest: %v\n%s", err, lastLines(stderr.String(), 40))
	}
	if !strings.Contains(stdout.String(), "PASS") {
		t.Fatal("no PASS line in the summary")
	}
}

// lastLines returns the last n lines of s, progress-line updates dropped.
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if i := strings.LastIndexByte(l, '\r'); i >= 0 {
			l = l[i+1:]
		}
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
