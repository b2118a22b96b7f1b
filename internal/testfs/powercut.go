// Package testfs holds file systems for tests. PowerCut is a FUSE
// loopback file system that keeps every file's writes in memory until that
// file is fsynced, so that a test can cut the power: everything written
// but not synced is dropped, exactly what a machine losing power (and its
// page cache) loses. kill -9 cannot show a missing fsync; this can.
//
// The model, stated plainly:
//   - Data is durable only once its own file is fsynced or fdatasynced
//     (FUSE_FSYNC). write(2), close(2) and the kernel's writeback of a
//     shared mmap reach PowerCut but stay in memory.
//   - Changes of size (ftruncate, O_TRUNC) are buffered the same way.
//   - Names (create, unlink, rename, mkdir) reach the backing directory at
//     once, as if every directory were fsynced after each change. That is
//     kinder than a real file system, and it is the half SQLite's WAL does
//     not depend on: its -wal and -shm files are created once and their
//     contents carry the state.
//   - At the cut every unsynced write is lost, none survive torn or in
//     part: the worst case a power loss can produce for data that was
//     never synced.
//
// The page cache stays on (no direct_io), so shared mmap works; SQLite's
// WAL needs it for the -shm wal-index. POSIX and flock locks are left to
// the kernel, which keeps them for the mount itself; processes on the same
// machine see each other's locks.
//
// Use the mount from other processes (as the tests do: a child of the test
// binary, or timd itself), or through plain system calls only. A page fault
// on a mapping of the mount, served by the same Go process, can deadlock
// it: the faulting thread cannot be stopped for the garbage collector,
// which has stopped the goroutines that would serve the fault.
package testfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// pageSize is the granularity of the buffered writes.
const pageSize = 4096

// PowerCut is a mounted power-cut file system; see the package comment.
type PowerCut struct {
	// Dir is the mount point: processes under test read and write here.
	Dir string
	// Backing is the directory PowerCut writes synced data to: after Cut,
	// it holds what a disk would hold after the power came back.
	Backing string

	server *fuse.Server

	mu       sync.Mutex
	cut      bool
	files    map[uint64]*overlay // by backing inode number; a file with unsynced changes
	synced   int64               // bytes written to Backing by fsyncs
	syncs    int64               // fsyncs that wrote something
	buffered int64               // bytes written to the mount
}

// Stats counts what reached PowerCut and what the fsyncs made durable.
type Stats struct {
	Buffered int64 // bytes written to the mount
	Synced   int64 // bytes the fsyncs wrote to the backing directory
	Syncs    int64 // fsyncs that had unsynced data to write
	Dropped  int64 // unsynced bytes (whole pages) the cut threw away
}

// Mount mounts a PowerCut over a fresh backing directory under t.TempDir
// and unmounts it at the end of the test. It needs /dev/fuse and the right
// to mount (root, or CAP_SYS_ADMIN): it calls mount(2) itself, never
// fusermount. Where it cannot mount, the test is skipped with the reason.
func Mount(t testing.TB) *PowerCut {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("power-cut file system: no /dev/fuse (%v)", err)
	}
	base := t.TempDir()
	p := &PowerCut{
		Dir:     filepath.Join(base, "mnt"),
		Backing: filepath.Join(base, "disk"),
		files:   map[uint64]*overlay{},
	}
	for _, d := range []string{p.Dir, p.Backing} {
		if err := os.Mkdir(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	root, err := fs.NewLoopbackRoot(p.Backing)
	if err != nil {
		t.Fatal(err)
	}
	lb := root.(*fs.LoopbackNode)
	rootNode := &node{LoopbackNode: lb, pc: p}
	lb.RootData.RootNode = rootNode
	zero := time.Duration(0)
	p.server, err = fs.Mount(p.Dir, rootNode, &fs.Options{
		// No kernel caching of names or attributes: sizes come from the
		// overlay, and names may change on the backing side after Cut.
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{
			DirectMountStrict: true, // mount(2) only: no fusermount needed or used
			FsName:            "powercut",
			Name:              "powercut",
			DisableXAttrs:     true,
		},
	})
	if err != nil {
		t.Skipf("power-cut file system: cannot mount FUSE here (%v); needs /dev/fuse and root or CAP_SYS_ADMIN", err)
	}
	t.Cleanup(func() { p.unmount() })
	return p
}

// Cut cuts the power: every write not yet fsynced is dropped, every later
// operation on the mount fails with EIO, and the file system is unmounted
// once nothing holds it open (or detached lazily after a few seconds).
// The processes that used the mount should be dead first; Backing then
// holds what survived.
func (p *PowerCut) Cut() Stats {
	p.mu.Lock()
	p.cut = true
	st := p.statsLocked()
	clear(p.files)
	p.mu.Unlock()
	p.unmount()
	return st
}

// Stats returns the counts so far (Dropped: what a cut would drop now).
func (p *PowerCut) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.statsLocked()
}

func (p *PowerCut) statsLocked() Stats {
	st := Stats{Buffered: p.buffered, Synced: p.synced, Syncs: p.syncs}
	for _, o := range p.files {
		st.Dropped += int64(len(o.pages)) * pageSize
	}
	return st
}

func (p *PowerCut) unmount() {
	if p.server == nil {
		return
	}
	if err := p.server.Unmount(); err != nil {
		// Something still holds the mount: detach it, so that the
		// kernel fails its next operations, and let the loops end.
		_ = syscall.Unmount(p.Dir, syscall.MNT_DETACH)
	}
	p.server = nil
}

// overlay is the unsynced state of one file: its logical size and the
// pages written since the last fsync. Bytes of the backing file at or
// past low read as zeros (a truncation since the last sync cut them off).
type overlay struct {
	size  int64
	low   int64
	pages map[int64][]byte // page index → pageSize bytes; bytes past size are zero
}

// overlayFor returns ino's overlay, starting one from the backing file's
// size when the file has none. p.mu is held.
func (p *PowerCut) overlayFor(ino uint64, f *os.File) (*overlay, error) {
	if o := p.files[ino]; o != nil {
		return o, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	o := &overlay{size: fi.Size(), low: fi.Size(), pages: map[int64][]byte{}}
	p.files[ino] = o
	return o, nil
}

// readBacking fills b with the backing bytes at off, zeros at or past low.
func readBacking(f *os.File, b []byte, off, low int64) error {
	clear(b)
	n := min(int64(len(b)), low-off)
	if n <= 0 {
		return nil
	}
	_, err := f.ReadAt(b[:n], off)
	if errors.Is(err, io.EOF) {
		err = nil // the backing file may be shorter than low; the rest is zeros
	}
	return err
}

// page returns page i for writing, loading it from the backing file.
func (o *overlay) page(f *os.File, i int64) ([]byte, error) {
	if pg := o.pages[i]; pg != nil {
		return pg, nil
	}
	pg := make([]byte, pageSize)
	if err := readBacking(f, pg, i*pageSize, min(o.low, o.size)); err != nil {
		return nil, err
	}
	o.pages[i] = pg
	return pg, nil
}

func (o *overlay) read(f *os.File, b []byte, off int64) (int, error) {
	if off >= o.size {
		return 0, nil
	}
	b = b[:min(int64(len(b)), o.size-off)]
	for done := 0; done < len(b); {
		at := off + int64(done)
		i, in := at/pageSize, at%pageSize
		n := min(len(b)-done, int(pageSize-in))
		if pg := o.pages[i]; pg != nil {
			copy(b[done:done+n], pg[in:])
		} else if err := readBacking(f, b[done:done+n], at, o.low); err != nil {
			return 0, err
		}
		done += n
	}
	return len(b), nil
}

func (o *overlay) write(f *os.File, b []byte, off int64) error {
	for done := 0; done < len(b); {
		at := off + int64(done)
		i, in := at/pageSize, at%pageSize
		pg, err := o.page(f, i)
		if err != nil {
			return err
		}
		done += copy(pg[in:], b[done:])
	}
	o.size = max(o.size, off+int64(len(b)))
	return nil
}

func (o *overlay) truncate(n int64) {
	if n < o.size {
		for i, pg := range o.pages {
			switch start := i * pageSize; {
			case start >= n:
				delete(o.pages, i)
			case start+pageSize > n:
				clear(pg[n-start:])
			}
		}
		o.low = min(o.low, n)
	}
	o.size = n
}

// sync writes the overlay to the backing file and fsyncs it.
func (o *overlay) sync(f *os.File) (int64, error) {
	if err := f.Truncate(o.low); err != nil {
		return 0, err
	}
	var wrote int64
	for i, pg := range o.pages {
		start := i * pageSize
		if start >= o.size {
			continue
		}
		n, err := f.WriteAt(pg[:min(pageSize, o.size-start)], start)
		wrote += int64(n)
		if err != nil {
			return wrote, err
		}
	}
	if err := f.Truncate(o.size); err != nil {
		return wrote, err
	}
	return wrote, f.Sync()
}

// node is a loopback node whose files buffer their writes and whose
// attributes report the buffered size.
type node struct {
	*fs.LoopbackNode
	pc *PowerCut
}

var (
	_ fs.NodeWrapChilder = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
	_ fs.NodeCreater     = (*node)(nil)
	_ fs.NodeGetattrer   = (*node)(nil)
	_ fs.NodeSetattrer   = (*node)(nil)
	_ fs.NodeUnlinker    = (*node)(nil)
	_ fs.NodeRenamer     = (*node)(nil)
	_ fs.NodeLookuper    = (*node)(nil)
)

func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), pc: n.pc}
}

func (n *node) backingPath() string {
	return filepath.Join(n.RootData.Path, n.Path(n.Root()))
}

func (n *node) down() bool {
	n.pc.mu.Lock()
	defer n.pc.mu.Unlock()
	return n.pc.cut
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.down() {
		return nil, syscall.EIO
	}
	ch, errno := n.LoopbackNode.Lookup(ctx, name, out)
	if errno == 0 && out.Attr.Mode&syscall.S_IFMT == syscall.S_IFREG {
		n.pc.mu.Lock()
		if o := n.pc.files[out.Attr.Ino]; o != nil {
			out.Attr.Size = uint64(o.size)
		}
		n.pc.mu.Unlock()
	}
	return ch, errno
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if n.down() {
		return nil, 0, syscall.EIO
	}
	f, err := os.OpenFile(n.backingPath(), os.O_RDWR, 0)
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	h, errno := n.pc.handle(f)
	if errno == 0 && flags&syscall.O_TRUNC != 0 {
		errno = h.truncate(0)
	}
	return h, 0, errno
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if n.down() {
		return nil, nil, 0, syscall.EIO
	}
	ch, lf, _, errno := n.LoopbackNode.Create(ctx, name, flags&^syscall.O_TRUNC, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	lf.(fs.FileReleaser).Release(ctx)
	f, err := os.OpenFile(filepath.Join(n.backingPath(), name), os.O_RDWR, 0)
	if err != nil {
		return nil, nil, 0, fs.ToErrno(err)
	}
	h, errno := n.pc.handle(f)
	if errno == 0 && flags&syscall.O_TRUNC != 0 {
		errno = h.truncate(0)
		out.Attr.Size = 0
	}
	return ch, h, 0, errno
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if n.down() {
		return syscall.EIO
	}
	if h, ok := f.(*handle); ok {
		return h.getattr(out)
	}
	if errno := n.LoopbackNode.Getattr(ctx, nil, out); errno != 0 {
		return errno
	}
	n.pc.mu.Lock()
	if o := n.pc.files[out.Ino]; o != nil && out.Mode&syscall.S_IFMT == syscall.S_IFREG {
		out.Size = uint64(o.size)
	}
	n.pc.mu.Unlock()
	return 0
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if n.down() {
		return syscall.EIO
	}
	h, _ := f.(*handle)
	if sz, ok := in.GetSize(); ok {
		if h == nil {
			fh, err := os.OpenFile(n.backingPath(), os.O_RDWR, 0)
			if err != nil {
				return fs.ToErrno(err)
			}
			var errno syscall.Errno
			if h, errno = n.pc.handle(fh); errno != 0 {
				return errno
			}
			defer h.Release(ctx)
		}
		if errno := h.truncate(int64(sz)); errno != 0 {
			return errno
		}
		in.Valid &^= fuse.FATTR_SIZE
	}
	// Mode, owner and times go to the backing file at once (metadata).
	if errno := n.LoopbackNode.Setattr(ctx, nil, in, out); errno != 0 {
		return errno
	}
	if h != nil {
		return h.getattr(out)
	}
	return n.Getattr(ctx, nil, out)
}

// Unlink and Rename drop the overlay of a file whose last name goes, so
// that a later file reusing its inode number starts clean.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if n.down() {
		return syscall.EIO
	}
	gone := n.lastLink(name)
	errno := n.LoopbackNode.Unlink(ctx, name)
	n.forget(errno, gone)
	return errno
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if n.down() {
		return syscall.EIO
	}
	var gone uint64
	if np, ok := newParent.(*node); ok {
		gone = np.lastLink(newName)
		newParent = np.LoopbackNode
	}
	errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
	n.forget(errno, gone)
	return errno
}

// lastLink returns the inode number of the regular file name in n when
// name is its only link, else 0.
func (n *node) lastLink(name string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(n.backingPath(), name), &st); err != nil ||
		st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Nlink != 1 {
		return 0
	}
	return st.Ino
}

func (n *node) forget(errno syscall.Errno, ino uint64) {
	if errno != 0 || ino == 0 {
		return
	}
	n.pc.mu.Lock()
	delete(n.pc.files, ino)
	n.pc.mu.Unlock()
}

// handle is an open file: its backing file descriptor (always read-write,
// so that any handle can sync) and the file's backing inode number.
type handle struct {
	pc  *PowerCut
	f   *os.File
	ino uint64
}

var (
	_ fs.FileReader   = (*handle)(nil)
	_ fs.FileWriter   = (*handle)(nil)
	_ fs.FileFsyncer  = (*handle)(nil)
	_ fs.FileFlusher  = (*handle)(nil)
	_ fs.FileReleaser = (*handle)(nil)
)

func (p *PowerCut) handle(f *os.File) (*handle, syscall.Errno) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fs.ToErrno(err)
	}
	return &handle{pc: p, f: f, ino: st.Ino}, 0
}

func (h *handle) Read(ctx context.Context, b []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.pc.mu.Lock()
	defer h.pc.mu.Unlock()
	if h.pc.cut {
		return nil, syscall.EIO
	}
	if o := h.pc.files[h.ino]; o != nil {
		n, err := o.read(h.f, b, off)
		return fuse.ReadResultData(b[:n]), fs.ToErrno(err)
	}
	n, err := h.f.ReadAt(b, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return fuse.ReadResultData(b[:n]), fs.ToErrno(err)
}

func (h *handle) Write(ctx context.Context, b []byte, off int64) (uint32, syscall.Errno) {
	h.pc.mu.Lock()
	defer h.pc.mu.Unlock()
	if h.pc.cut {
		return 0, syscall.EIO
	}
	o, err := h.pc.overlayFor(h.ino, h.f)
	if err == nil {
		err = o.write(h.f, b, off)
	}
	if err != nil {
		return 0, fs.ToErrno(err)
	}
	h.pc.buffered += int64(len(b))
	return uint32(len(b)), 0
}

func (h *handle) truncate(n int64) syscall.Errno {
	h.pc.mu.Lock()
	defer h.pc.mu.Unlock()
	if h.pc.cut {
		return syscall.EIO
	}
	o, err := h.pc.overlayFor(h.ino, h.f)
	if err != nil {
		return fs.ToErrno(err)
	}
	o.truncate(n)
	return 0
}

// Fsync makes the file's buffered writes durable: fsync and fdatasync
// both arrive here.
func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	h.pc.mu.Lock()
	defer h.pc.mu.Unlock()
	if h.pc.cut {
		return syscall.EIO
	}
	o := h.pc.files[h.ino]
	if o == nil {
		return fs.ToErrno(h.f.Sync())
	}
	wrote, err := o.sync(h.f)
	h.pc.synced += wrote
	h.pc.syncs++
	if err != nil {
		return fs.ToErrno(err)
	}
	delete(h.pc.files, h.ino)
	return 0
}

func (h *handle) getattr(out *fuse.AttrOut) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(h.f.Fd()), &st); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStat(&st)
	h.pc.mu.Lock()
	if o := h.pc.files[h.ino]; o != nil {
		out.Size = uint64(o.size)
	}
	h.pc.mu.Unlock()
	return 0
}

// Flush is close(2): it syncs nothing, as on a real file system.
func (h *handle) Flush(ctx context.Context) syscall.Errno { return 0 }

// Release closes the backing descriptor; the file's unsynced writes stay.
func (h *handle) Release(ctx context.Context) syscall.Errno {
	return fs.ToErrno(h.f.Close())
}

// String names the file system in test logs.
func (p *PowerCut) String() string { return fmt.Sprintf("powercut %s over %s", p.Dir, p.Backing) }
