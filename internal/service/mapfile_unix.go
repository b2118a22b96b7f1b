//go:build unix

package service

import (
	"os"
	"syscall"
)

// mapFile maps f read-only, so that a snapshot of hundreds of megabytes
// is parsed straight from the page cache instead of being copied onto
// the Go heap first. release unmaps it; nothing may use the bytes after.
func mapFile(f *os.File, size int64) (b []byte, release func(), err error) {
	if size == 0 || int64(int(size)) != size {
		return readFile(f, size)
	}
	b, err = syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return readFile(f, size)
	}
	return b, func() { _ = syscall.Munmap(b) }, nil
}
