package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"timd/internal/im"
)

// TestWriterConnectionIsDurable reads the durability settings on the live
// writer connection, the one every acknowledged write commits on: WAL
// journal and synchronous=FULL (2), so that each commit fsyncs the WAL
// before the writer answers. (kill -9 cannot see a missing fsync: the
// page cache outlives the process. TestAckedWritesAreSynced watches the
// fsyncs themselves.)
func TestWriterConnectionIsDurable(t *testing.T) {
	s, err := Open(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var sync int
	var mode string
	err = s.w.do(context.Background(), 1, func(w *wtx) ([]im.Change, error) {
		if err := w.queryRow(`PRAGMA synchronous`).Scan(&sync); err != nil {
			return nil, err
		}
		return nil, w.queryRow(`PRAGMA journal_mode`).Scan(&mode)
	})
	if err != nil {
		t.Fatal(err)
	}
	if sync < 2 {
		t.Errorf("writer connection has synchronous=%d, want FULL (2) or EXTRA (3)", sync)
	}
	if mode != "wal" {
		t.Errorf("writer connection has journal_mode=%q, want wal", mode)
	}
}

// syncHelperEnv names the directory in which the child process of
// TestAckedWritesAreSynced writes.
const syncHelperEnv = "TIMD_SYNC_HELPER_DIR"

// TestAckedWritesAreSynced simulates what a power loss would expose: it
// runs acknowledged writes in a child process under strace and checks
// that between two acknowledgements the WAL file was fsynced. A write
// acknowledged without an fsync lives only in the page cache, which a
// power loss drops (synchronous=OFF, or NORMAL in WAL mode, would both
// fail here; kill -9 tests cannot tell). The child marks each
// acknowledgement by writing to a marker file, so that the order of syncs
// and acknowledgements is read from one trace.
func TestAckedWritesAreSynced(t *testing.T) {
	if dir := os.Getenv(syncHelperEnv); dir != "" {
		ackedWrites(t, dir)
		return
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace is not installed; TestWriterConnectionIsDurable still checks the setting")
	}
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace")
	cmd := exec.Command(strace, "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync,write", "-o", trace,
		os.Args[0], "-test.run=^TestAckedWritesAreSynced$", "-test.count=1")
	cmd.Env = append(os.Environ(), syncHelperEnv+"="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child under strace: %v\n%s", err, out)
	}
	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	acks, syncs, unsynced := 0, 0, 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, "write(") && strings.Contains(line, "ack.marker>"):
			acks++
			if syncs == 0 {
				unsynced++
			}
			syncs = 0
		case (strings.Contains(line, "fsync(") || strings.Contains(line, "fdatasync(")) &&
			strings.Contains(line, FileName+"-wal>"):
			syncs++
		}
	}
	if acks != ackedWriteCount {
		t.Fatalf("trace shows %d acknowledgements, want %d (is the trace complete?)", acks, ackedWriteCount)
	}
	if unsynced > 0 {
		t.Fatalf("%d of %d acknowledged writes had no fsync of the WAL before their acknowledgement", unsynced, acks)
	}
}

const ackedWriteCount = 20

// ackedWrites is the child of TestAckedWritesAreSynced: one write at a
// time, each acknowledgement marked by a write(2) to dir/ack.marker.
func ackedWrites(t *testing.T, dir string) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(dir, "store"), nil)
	if err != nil {
		t.Fatal(err)
	}
	marker, err := os.Create(filepath.Join(dir, "ack.marker"))
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close()
	for i := range ackedWriteCount {
		if _, err := s.ImportAccounts(ctx, 1400000001, []im.AccountInput{{UserID: fmt.Sprint("user", i)}}); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Fprintf(marker, "ack %d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
