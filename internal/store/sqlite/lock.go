package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFileName is the lock file in a store directory. `timd serve` holds
// an exclusive lock on it while it runs, and `timd import` while it loads,
// so that a bulk load never writes under a running server (whose overlay
// and audience index would not see it) and two loads never interleave.
const LockFileName = "timd.lock"

// ErrLocked is returned by Lock when another process holds the store.
var ErrLocked = errors.New("the store is in use by another timd process")

// Lock takes the exclusive lock of the store directory dir (creating it)
// and writes the holder's pid into the lock file. The lock ends with the
// process, also on kill -9; unlock releases it earlier.
func Lock(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: create store directory: %w", err)
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := strings.TrimSpace(string(b[:n]))
			if _, perr := strconv.Atoi(holder); perr != nil {
				holder = "unknown"
			}
			return nil, fmt.Errorf("%w (pid %s holds %s)", ErrLocked, holder, path)
		}
		return nil, fmt.Errorf("sqlite: lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
