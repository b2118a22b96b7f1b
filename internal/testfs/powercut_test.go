package testfs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TestPowerCutKeepsOnlySyncedWrites writes three files through the mount:
// one synced, one written after its sync, one truncated after its sync.
// Until the cut, the mount shows every write; after it, the backing
// directory holds exactly what was synced.
func TestPowerCutKeepsOnlySyncedWrites(t *testing.T) {
	p := Mount(t)
	synced := bytes.Repeat([]byte("s"), 10000) // spans three pages
	later := []byte("written after the sync")

	a := create(t, p, "a")
	write(t, a, synced, 0)
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	write(t, a, later, 5000)  // inside the synced bytes: the old ones must come back
	write(t, a, later, 20000) // past the end: the size must come back too

	b := create(t, p, "b")
	write(t, b, synced, 0) // never synced

	c := create(t, p, "c")
	write(t, c, synced, 0)
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := c.Truncate(100); err != nil { // an unsynced truncation
		t.Fatal(err)
	}

	// Before the cut, the mount shows every write.
	wantA := append(bytes.Clone(synced), make([]byte, 20000+len(later)-len(synced))...)
	copy(wantA[5000:], later)
	copy(wantA[20000:], later)
	for name, want := range map[string][]byte{"a": wantA, "b": synced, "c": synced[:100]} {
		if got, err := os.ReadFile(filepath.Join(p.Dir, name)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s through the mount before the cut: %d bytes (err %v), want %d", name, len(got), err, len(want))
		}
	}
	if st, err := a.Stat(); err != nil || st.Size() != int64(len(wantA)) {
		t.Fatalf("a's size through the mount: %v (err %v), want %d", st.Size(), err, len(wantA))
	}
	for _, f := range []*os.File{a, b, c} {
		f.Close()
	}

	st := p.Cut()
	if st.Dropped == 0 || st.Syncs != 2 {
		t.Errorf("cut stats %+v: want 2 syncs and some dropped pages", st)
	}
	for name, want := range map[string][]byte{"a": synced, "b": {}, "c": synced} {
		got, err := os.ReadFile(filepath.Join(p.Backing, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s on the backing disk after the cut: %d bytes (err %v), want %d", name, len(got), err, len(want))
		}
	}
}

// mmapChildEnv names the file the child of TestPowerCutSharedMmap maps.
const mmapChildEnv = "TIMD_TESTFS_MMAP"

// TestPowerCutSharedMmap maps a file shared and writable, as SQLite maps
// its -shm wal-index: the stores must be visible through read(2). The
// mapping is made in a child process, as the file systems' users are in
// the other tests: a page fault on a FUSE mapping served by the same
// process can deadlock it (the faulting thread cannot be stopped for the
// garbage collector, which has stopped the thread serving the fault).
func TestPowerCutSharedMmap(t *testing.T) {
	if path := os.Getenv(mmapChildEnv); path != "" {
		mmapChild(path)
		return
	}
	p := Mount(t)
	path := filepath.Join(p.Dir, "shm")
	create(t, p, "shm").Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPowerCutSharedMmap$", "-test.count=1")
	cmd.Env = append(os.Environ(), mmapChildEnv+"="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child mapping the file: %v\n%s", err, out)
	}
	got := make([]byte, 9)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(got, pageSize); err != nil || string(got) != "wal-index" {
		t.Fatalf("read after a shared mmap store: %q (err %v)", got, err)
	}
}

func mmapChild(path string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "mmap child:", err)
		os.Exit(2)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		fail(err)
	}
	if err := f.Truncate(2 * pageSize); err != nil {
		fail(err)
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, 2*pageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		fail(fmt.Errorf("shared writable mmap on the mount: %w", err))
	}
	copy(m[pageSize:], "wal-index")
	if err := syscall.Munmap(m); err != nil {
		fail(err)
	}
	if err := f.Close(); err != nil {
		fail(err)
	}
	os.Exit(0)
}

func create(t *testing.T, p *PowerCut, name string) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(p.Dir, name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func write(t *testing.T, f *os.File, b []byte, off int64) {
	t.Helper()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
