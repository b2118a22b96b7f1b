package audience

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"maps"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"

	"timd/internal/bitmap"
	"timd/internal/im"
)

// Snapshots.
//
// A Snapshot is a copy of every app's index at a known change position
// (the highest im.Change.Seq it had applied), detached from the live Index
// so that it can be written to disk while writes go on. Loading one and
// then replaying the changes after each app's position (Refresh) gives the
// same index as a rebuild from a store scan, at a fraction of the cost:
// the bitmaps are read back as they are, and only the ID dictionary is
// re-hashed.
//
// File format (version 1), all integers unsigned varints unless noted:
//
//	"TIMDSNAP" · version (uint32 LE) · store id (string) · app count
//	per app: app · position · all · byType[0] · byType[1]
//	         per slot 0..9: value count · (value string · bitmap)...
//	         tag count · (tag string · bitmap)...
//	         ID count · ID bytes · (ordinal delta · ID string)...   ascending ordinals
//	         owned · owner count · (device ordinal delta · owner ordinal)...
//	CRC-32C of everything before it (uint32 LE)
//
// A string is its length and bytes; a bitmap is its length and Roaring's
// portable serialization. A reader refuses a file with another magic or
// version, a bad checksum, a truncated or trailing body, or contents that
// contradict themselves; the caller then rebuilds from the store.

const (
	snapMagic   = "TIMDSNAP"
	snapVersion = 1
	// Bounds that keep a corrupt length from allocating without limit.
	maxSnapString = 1 << 20
	maxSnapBitmap = 1 << 30
)

// ErrSnapshot is wrapped by every error ReadSnapshot returns for a file
// that is not a valid snapshot (as opposed to an I/O error).
var ErrSnapshot = errors.New("invalid audience index snapshot")

// Snapshot is a detached copy of an Index, every app at its own change
// position.
type Snapshot struct {
	// StoreID names the store the index was built from.
	StoreID string
	apps    map[uint64]*appIndex
}

// Snapshot copies the index: each app under its read lock, so each app's
// copy is exactly its state at its position. The bitmaps are cloned; the
// dictionary's arena is shared, since it is append-only.
func (x *Index) Snapshot(storeID string) *Snapshot {
	x.mu.RLock()
	apps := maps.Clone(x.apps)
	x.mu.RUnlock()
	s := &Snapshot{StoreID: storeID, apps: make(map[uint64]*appIndex, len(apps))}
	for id, a := range apps {
		a.mu.RLock()
		s.apps[id] = a.clone()
		a.mu.RUnlock()
	}
	return s
}

func (a *appIndex) clone() *appIndex {
	c := &appIndex{all: a.all.Clone(), byType: [2]*roaring.Bitmap{a.byType[0].Clone(), a.byType[1].Clone()},
		tags: cloneSets(a.tags), owned: a.owned.Clone(), owner: maps.Clone(a.owner), pos: a.pos}
	for s := range a.attrs {
		c.attrs[s] = cloneSets(a.attrs[s])
	}
	c.dict = dict{arena: a.dict.arena[:len(a.dict.arena):len(a.dict.arena)], ents: slices.Clone(a.dict.ents),
		live: a.dict.live, seed: a.dict.seed}
	return c
}

func cloneSets(m map[string]*roaring.Bitmap) map[string]*roaring.Bitmap {
	c := make(map[string]*roaring.Bitmap, len(m))
	for k, bm := range m {
		c[k] = bm.Clone()
	}
	return c
}

// Apps returns the apps of the snapshot in ascending order.
func (s *Snapshot) Apps() []uint64 {
	return slices.Sorted(maps.Keys(s.apps))
}

// Position returns the change position of app in the snapshot, and
// whether the snapshot has the app.
func (s *Snapshot) Position(app uint64) (uint64, bool) {
	a, ok := s.apps[app]
	if !ok {
		return 0, false
	}
	return a.pos, true
}

// Count returns the number of live accounts of app in the snapshot.
func (s *Snapshot) Count(app uint64) uint64 {
	if a, ok := s.apps[app]; ok {
		return a.all.GetCardinality()
	}
	return 0
}

// Drop removes app from the snapshot.
func (s *Snapshot) Drop(app uint64) { delete(s.apps, app) }

// Install replaces app's index in x with the snapshot's copy of it, which
// x then owns: install a snapshot once. Queries see the app before or
// after the swap, never a mix. It reports false when the snapshot lacks
// the app.
func (x *Index) Install(s *Snapshot, app uint64) bool {
	a, ok := s.apps[app]
	if !ok {
		return false
	}
	delete(s.apps, app)
	x.mu.Lock()
	x.apps[app] = a
	x.mu.Unlock()
	return true
}

// Adopt moves app's index from other into x, replacing x's copy; other
// no longer has it. Queries on x see the app before or after the swap,
// never a mix, so an app can be rebuilt on the side while x serves. It
// reports false when other lacks the app. Like Apply it must not run
// concurrently with Apply on x.
func (x *Index) Adopt(other *Index, app uint64) bool {
	other.mu.Lock()
	a, ok := other.apps[app]
	delete(other.apps, app)
	other.mu.Unlock()
	if !ok {
		return false
	}
	x.mu.Lock()
	x.apps[app] = a
	x.mu.Unlock()
	return true
}

// Position returns the change position of app: the highest Change.Seq
// the index has applied for it (0 for an app it does not know).
func (x *Index) Position(app uint64) uint64 {
	a := x.app(app, false)
	if a == nil {
		return 0
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.pos
}

// Refresh makes the ordinals ords of app equal to profiles, and the app's
// position at least pos: every ordinal in ords leaves every set and the
// dictionary, then each profile (whose ordinal should be in ords) is added
// as it is. An ordinal of ords without a profile is an account deleted
// since. It is idempotent, so replaying changes the index already has does
// no harm. Like Apply it must not run concurrently with Apply.
func (x *Index) Refresh(app uint64, ords []uint32, profiles []im.Profile, pos uint64) {
	drop := roaring.BitmapOf(ords...)
	for i := range profiles {
		drop.Add(profiles[i].Account.Ordinal)
	}
	a := x.app(app, true)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.all.AndNot(drop)
	for _, bm := range a.byType {
		bm.AndNot(drop)
	}
	for s := range a.attrs {
		andNotSets(a.attrs[s], drop)
	}
	andNotSets(a.tags, drop)
	a.owned.AndNot(drop)
	it := drop.Iterator()
	for it.HasNext() {
		o := it.Next()
		a.dict.del(o)
		delete(a.owner, o)
	}
	for i := range profiles {
		p := &profiles[i]
		a.upsert(&im.Change{App: app, Op: im.ChangeUpsert, ID: p.Account.ID, Type: p.Account.Type,
			Ordinal: p.Account.Ordinal, Owner: p.Account.Owner, NewAttrs: p.Attrs, NewTags: p.Tags})
	}
	a.pos = max(a.pos, pos)
}

func andNotSets(m map[string]*roaring.Bitmap, drop *roaring.Bitmap) {
	for k, bm := range m {
		bm.AndNot(drop)
		if bm.IsEmpty() {
			delete(m, k)
		}
	}
}

// SetPosition sets app's change position, for example to the store's
// position read before the scan that rebuilt the app.
func (x *Index) SetPosition(app uint64, pos uint64) {
	a := x.app(app, true)
	a.mu.Lock()
	a.pos = pos
	a.mu.Unlock()
}

// snapWriter writes the snapshot encoding and checksums it.
type snapWriter struct {
	w   *bufio.Writer
	crc hash.Hash32
	buf []byte
	err error
}

func (w *snapWriter) write(b []byte) {
	if w.err != nil {
		return
	}
	w.crc.Write(b)
	_, w.err = w.w.Write(b)
}

func (w *snapWriter) uvarint(v uint64) {
	w.buf = binary.AppendUvarint(w.buf[:0], v)
	w.write(w.buf)
}

func (w *snapWriter) bytes(b []byte) {
	w.uvarint(uint64(len(b)))
	w.write(b)
}

func (w *snapWriter) bitmap(bm *roaring.Bitmap) {
	bm.RunOptimize()
	w.uvarint(bm.GetSerializedSizeInBytes())
	if w.err != nil {
		return
	}
	_, w.err = bm.WriteTo(io.MultiWriter(w.crc, w.w))
}

func (w *snapWriter) sets(m map[string]*roaring.Bitmap) {
	keys := slices.Sorted(maps.Keys(m))
	w.uvarint(uint64(len(keys)))
	for _, k := range keys {
		w.bytes([]byte(k))
		w.bitmap(m[k])
	}
}

// WriteTo writes the snapshot in the format above.
func (s *Snapshot) WriteTo(out io.Writer) (int64, error) {
	cw := &countWriter{w: out}
	w := &snapWriter{w: bufio.NewWriterSize(cw, 1<<20), crc: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
	w.write([]byte(snapMagic))
	w.write(binary.LittleEndian.AppendUint32(nil, snapVersion))
	w.bytes([]byte(s.StoreID))
	w.uvarint(uint64(len(s.apps)))
	for _, id := range s.Apps() {
		a := s.apps[id]
		w.uvarint(id)
		w.uvarint(a.pos)
		w.bitmap(a.all)
		w.bitmap(a.byType[0])
		w.bitmap(a.byType[1])
		for slot := range a.attrs {
			w.sets(a.attrs[slot])
		}
		w.sets(a.tags)
		w.uvarint(uint64(a.dict.live))
		w.uvarint(a.dict.liveBytes())
		prev := uint64(0)
		for o, e := range a.dict.ents {
			if e == 0 {
				continue
			}
			w.uvarint(uint64(o) - prev)
			prev = uint64(o)
			w.bytes(a.dict.raw(uint32(o)))
		}
		w.bitmap(a.owned)
		devs := slices.Sorted(maps.Keys(a.owner))
		w.uvarint(uint64(len(devs)))
		prev = 0
		for _, d := range devs {
			w.uvarint(uint64(d) - prev)
			prev = uint64(d)
			w.uvarint(uint64(a.owner[d]))
		}
	}
	if w.err == nil {
		_, w.err = w.w.Write(binary.LittleEndian.AppendUint32(nil, w.crc.Sum32()))
	}
	if w.err == nil {
		w.err = w.w.Flush()
	}
	return cw.n, w.err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// snapReader reads the encoding of a file whose checksum is verified.
type snapReader struct {
	r   *bufio.Reader
	err error
	one [1]byte
}

func (r *snapReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrSnapshot}, args...)...)
	}
}

func (r *snapReader) full(b []byte) {
	if r.err != nil {
		return
	}
	if _, err := io.ReadFull(r.r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			r.fail("truncated")
		} else {
			r.err = err
		}
	}
}

// ReadByte makes snapReader an io.ByteReader for binary.ReadUvarint.
func (r *snapReader) ReadByte() (byte, error) {
	r.full(r.one[:])
	return r.one[0], r.err
}

func (r *snapReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(r)
	if err != nil {
		r.fail("bad number")
	}
	return v
}

func (r *snapReader) bytes(limit uint64) []byte {
	return r.bytesInto(nil, limit)
}

// bytesInto reads a string into buf, reusing it when it is large enough.
func (r *snapReader) bytesInto(buf []byte, limit uint64) []byte {
	n := r.uvarint()
	if n > limit {
		r.fail("length %d over %d", n, limit)
	}
	if r.err != nil {
		return nil
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	r.full(buf)
	return buf
}

func (r *snapReader) bitmap() *roaring.Bitmap {
	b := r.bytes(maxSnapBitmap)
	if r.err != nil {
		return nil
	}
	bm, err := bitmap.Decode(b)
	if err != nil {
		r.fail("%v", err)
		return nil
	}
	return bm
}

func (r *snapReader) sets(limit uint64) map[string]*roaring.Bitmap {
	n := r.uvarint()
	if n > limit {
		r.fail("%d sets, at most %d", n, limit)
	}
	m := make(map[string]*roaring.Bitmap, min(n, 1<<16))
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := string(r.bytes(maxSnapString))
		bm := r.bitmap()
		if r.err != nil {
			break
		}
		if k == "" || bm.IsEmpty() {
			r.fail("empty set key or set")
			break
		}
		if _, dup := m[k]; dup {
			r.fail("set %q twice", k)
			break
		}
		m[k] = bm
	}
	return m
}

// ReadSnapshot reads a snapshot written by WriteTo. It checks the checksum
// in a first pass, before it sizes anything by what the file says, then
// parses. Errors wrap ErrSnapshot when the contents are not a valid
// snapshot.
func ReadSnapshot(in io.ReadSeeker) (*Snapshot, error) {
	size, err := in.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	if size < int64(len(snapMagic))+4+4 {
		return nil, fmt.Errorf("%w: truncated", ErrSnapshot)
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	if _, err := io.CopyN(crc, in, size-4); err != nil {
		return nil, err
	}
	var sum [4]byte
	if _, err := io.ReadFull(in, sum[:]); err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint32(sum[:]) != crc.Sum32() {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrSnapshot)
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	r := &snapReader{r: bufio.NewReaderSize(io.LimitReader(in, size-4), 256<<10)}
	head := make([]byte, len(snapMagic)+4)
	r.full(head)
	if r.err != nil {
		return nil, r.err
	}
	if string(head[:len(snapMagic)]) != snapMagic {
		return nil, fmt.Errorf("%w: not a snapshot file", ErrSnapshot)
	}
	if v := binary.LittleEndian.Uint32(head[len(snapMagic):]); v != snapVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrSnapshot, v, snapVersion)
	}
	s := &Snapshot{StoreID: string(r.bytes(maxSnapString)), apps: map[uint64]*appIndex{}}
	n := r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		id := r.uvarint()
		a := r.app()
		if _, dup := s.apps[id]; dup {
			r.fail("app %d twice", id)
		}
		s.apps[id] = a
	}
	if r.err != nil {
		return nil, r.err
	}
	if _, err := r.r.ReadByte(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing bytes", ErrSnapshot)
	}
	return s, nil
}

// app reads one app's index and checks that it agrees with itself.
func (r *snapReader) app() *appIndex {
	a := &appIndex{pos: r.uvarint(), all: r.bitmap()}
	a.byType = [2]*roaring.Bitmap{r.bitmap(), r.bitmap()}
	for s := range a.attrs {
		a.attrs[s] = r.sets(1 << 32)
	}
	a.tags = r.sets(1 << 32)
	live, idBytes := r.uvarint(), r.uvarint()
	if r.err != nil {
		return nil
	}
	if idBytes > live*maxIDLen || idBytes > maxArena {
		r.fail("%d ID bytes for %d IDs", idBytes, live)
		return nil
	}
	if live != a.all.GetCardinality() {
		r.fail("%d IDs for %d accounts", live, a.all.GetCardinality())
		return nil
	}
	if roaring.Or(a.byType[0], a.byType[1]).GetCardinality() != live || roaring.And(a.byType[0], a.byType[1]).GetCardinality() != 0 {
		r.fail("account types do not partition the accounts")
		return nil
	}
	a.dict = newDict()
	if live > 0 {
		a.dict.reserve(a.all.Maximum(), int(live))
		a.dict.arena = make([]byte, 0, min(idBytes, 128*live))
	}
	ord := uint64(0)
	var id []byte
	for i := uint64(0); i < live && r.err == nil; i++ {
		d := r.uvarint()
		if i > 0 && d == 0 {
			r.fail("ordinal repeated")
		}
		ord += d
		id = r.bytesInto(id, maxIDLen)
		if r.err != nil {
			break
		}
		if ord > uint64(^uint32(0)-1) || !a.all.Contains(uint32(ord)) || len(id) == 0 {
			r.fail("ID of ordinal %d that is not an account", ord)
			break
		}
		a.dict.load(uint32(ord), id)
	}
	r.owners(a)
	return a
}

// owners reads the device ownership of a.
func (r *snapReader) owners(a *appIndex) {
	a.owned = r.bitmap()
	n := r.uvarint()
	if r.err != nil {
		return
	}
	if n != a.owned.GetCardinality() || roaring.AndNot(a.owned, a.byType[im.AcctRegistrationID]).GetCardinality() != 0 {
		r.fail("owned devices that are not RegistrationIDs, or owners for %d of %d", n, a.owned.GetCardinality())
		return
	}
	a.owner = make(map[uint32]uint32, n)
	d := uint64(0)
	for i := uint64(0); i < n && r.err == nil; i++ {
		d += r.uvarint()
		u := r.uvarint()
		if d > uint64(^uint32(0)) || u > uint64(^uint32(0)) || !a.owned.Contains(uint32(d)) {
			r.fail("owner of %d that is not an owned device", d)
			return
		}
		a.owner[uint32(d)] = uint32(u)
	}
	if uint64(len(a.owner)) != n {
		r.fail("device owned twice")
	}
}
