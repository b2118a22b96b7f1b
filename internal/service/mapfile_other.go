//go:build !unix

package service

import "os"

// mapFile reads f whole (where files cannot be mapped).
func mapFile(f *os.File, size int64) ([]byte, func(), error) {
	return readFile(f, size)
}
