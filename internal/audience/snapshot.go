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
// File format (version 2), all integers unsigned varints unless noted:
//
//	"TIMDSNAP" · version (uint32 LE) · store id (string) · app count
//	per app: app · position · all · byType[0] · byType[1]
//	         per slot 0..9: value count · (value string · bitmap)...
//	         tag count · (tag string · bitmap)...
//	         ID lengths (string: one length per account, ascending ordinals) ·
//	         IDs (string: the IDs back to back, in the same order)
//	         owned · owner count · (device ordinal delta · owner ordinal)...
//	CRC-32C of everything before it (uint32 LE)
//
// A string is its length and bytes; a bitmap is its length and Roaring's
// portable serialization. A reader refuses a file with another magic or
// version, a bad checksum, a truncated or trailing body, or contents that
// contradict themselves; the caller then rebuilds from the store.

const (
	snapMagic = "TIMDSNAP"
	// Version 2 keeps the IDs in one piece (version 1 interleaved them
	// with ordinals); a version 1 file is rebuilt once.
	snapVersion = 2
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

// ids writes a's ID section: the length of each account's ID in
// ascending ordinal order (0 for an account without one), then the IDs
// back to back, each part as one string, so that a reader copies the IDs
// in one piece and needs no ordinals (they are the all set's).
func (w *snapWriter) ids(a *appIndex) {
	var lens []byte
	var size uint64
	it := a.all.Iterator()
	for it.HasNext() {
		n := len(a.dict.raw(it.Next()))
		lens = binary.AppendUvarint(lens, uint64(n))
		size += uint64(n)
	}
	w.bytes(lens)
	w.uvarint(size)
	it = a.all.Iterator()
	for it.HasNext() {
		w.write(a.dict.raw(it.Next()))
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
		w.ids(a)
		w.bitmap(a.owned)
		devs := slices.Sorted(maps.Keys(a.owner))
		w.uvarint(uint64(len(devs)))
		prev := uint64(0)
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

// ReadSnapshot reads a whole snapshot written by WriteTo into memory and
// parses it (ParseSnapshot).
func ReadSnapshot(in io.ReadSeeker) (*Snapshot, error) {
	size, err := in.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(in, b); err != nil {
		return nil, err
	}
	return ParseSnapshot(b)
}

// ParseSnapshot parses a snapshot held in memory (read or mapped whole;
// one large read is far cheaper than a buffered reader's byte-at-a-time
// varints). It checks the checksum before it sizes anything by what the
// file says, then frames every section (a cheap pass that only follows
// lengths), then decodes each app with its bitmaps and its ID dictionary
// in parallel. It keeps no reference to b. Errors wrap ErrSnapshot.
func ParseSnapshot(b []byte) (*Snapshot, error) {
	if len(b) < len(snapMagic)+4+4 {
		return nil, fmt.Errorf("%w: truncated", ErrSnapshot)
	}
	body := b[:len(b)-4]
	if binary.LittleEndian.Uint32(b[len(body):]) != crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrSnapshot)
	}
	if string(body[:len(snapMagic)]) != snapMagic {
		return nil, fmt.Errorf("%w: not a snapshot file", ErrSnapshot)
	}
	if v := binary.LittleEndian.Uint32(body[len(snapMagic):]); v != snapVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrSnapshot, v, snapVersion)
	}
	r := &snapBuf{b: body, off: len(snapMagic) + 4}
	s := &Snapshot{StoreID: string(r.bytes(maxSnapString)), apps: map[uint64]*appIndex{}}
	n := r.uvarint()
	var frames []*appFrame
	for i := uint64(0); i < n && r.err == nil; i++ {
		f := r.frame()
		for _, g := range frames {
			if g.id == f.id {
				r.fail("app %d twice", f.id)
			}
		}
		frames = append(frames, f)
	}
	if r.err == nil && r.off != len(body) {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	for _, f := range frames {
		a, err := f.decode()
		if err != nil {
			return nil, err
		}
		s.apps[f.id] = a
	}
	return s, nil
}

// snapBuf reads the encoding from memory; the first error sticks.
type snapBuf struct {
	b   []byte
	off int
	err error
}

func snapErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrSnapshot}, args...)...)
}

func (r *snapBuf) fail(format string, args ...any) {
	if r.err == nil {
		r.err = snapErr(format, args...)
	}
}

func (r *snapBuf) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail("bad number")
		return 0
	}
	r.off += n
	return v
}

// bytes returns the next string as a slice of the buffer.
func (r *snapBuf) bytes(limit uint64) []byte {
	n := r.uvarint()
	if n > limit {
		r.fail("length %d over %d", n, limit)
	}
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail("truncated")
		return nil
	}
	b := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return b
}

// setFrame is one set of the file: its key and its serialized bitmap.
type setFrame struct {
	key string
	bm  []byte
}

// appFrame is where one app's sections lie in the buffer.
type appFrame struct {
	id, pos    uint64
	all, types [3][]byte // all, byType[0], byType[1]
	attrs      [im.MaxAttrSlots][]setFrame
	tags       []setFrame
	lens, ids  []byte
	owned      []byte
	owners     []uint64 // device ordinal, owner ordinal, ...
}

func (r *snapBuf) sets() []setFrame {
	n := r.uvarint()
	// Each set takes at least 2 bytes, so n is bounded by the buffer.
	if n > uint64(len(r.b)-r.off)/2 {
		r.fail("%d sets in %d bytes", n, len(r.b)-r.off)
		return nil
	}
	out := make([]setFrame, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := r.bytes(maxSnapString)
		bm := r.bytes(maxSnapBitmap)
		out = append(out, setFrame{key: string(k), bm: bm})
	}
	return out
}

// frame follows the lengths of one app's sections.
func (r *snapBuf) frame() *appFrame {
	f := &appFrame{id: r.uvarint(), pos: r.uvarint()}
	for i := range f.all {
		f.all[i] = r.bytes(maxSnapBitmap)
	}
	for s := range f.attrs {
		f.attrs[s] = r.sets()
	}
	f.tags = r.sets()
	f.lens = r.bytes(maxArena)
	f.ids = r.bytes(maxArena)
	f.owned = r.bytes(maxSnapBitmap)
	n := r.uvarint()
	if n > uint64(len(r.b)-r.off)/2 {
		r.fail("%d owners in %d bytes", n, len(r.b)-r.off)
		return f
	}
	f.owners = make([]uint64, 0, 2*n)
	d := uint64(0)
	for i := uint64(0); i < n && r.err == nil; i++ {
		d += r.uvarint()
		f.owners = append(f.owners, d, r.uvarint())
	}
	return f
}

func decodeBitmap(b []byte) (*roaring.Bitmap, error) {
	bm, err := bitmap.Decode(b)
	if err != nil {
		return nil, snapErr("%v", err)
	}
	return bm, nil
}

func decodeSets(fs []setFrame) (map[string]*roaring.Bitmap, error) {
	m := make(map[string]*roaring.Bitmap, len(fs))
	for _, f := range fs {
		bm, err := decodeBitmap(f.bm)
		if err != nil {
			return nil, err
		}
		if f.key == "" || bm.IsEmpty() {
			return nil, snapErr("empty set key or set")
		}
		if _, dup := m[f.key]; dup {
			return nil, snapErr("set %q twice", f.key)
		}
		m[f.key] = bm
	}
	return m, nil
}

// decode builds the app's index from its frame and checks that it agrees
// with itself: the ID dictionary on one goroutine (it is most of the
// work), the sets on this one.
func (f *appFrame) decode() (*appIndex, error) {
	all, err := decodeBitmap(f.all[0])
	if err != nil {
		return nil, err
	}
	if !all.IsEmpty() && all.Maximum() == ^uint32(0) {
		return nil, snapErr("ordinal %d", all.Maximum())
	}
	a := &appIndex{pos: f.pos, all: all}
	var dictErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.dict, dictErr = loadDict(all, f.lens, f.ids)
	}()
	err = f.decodeSets(a)
	<-done
	if err != nil {
		return nil, err
	}
	if dictErr != nil {
		return nil, dictErr
	}
	return a, nil
}

func (f *appFrame) decodeSets(a *appIndex) error {
	var err error
	for i := range a.byType {
		if a.byType[i], err = decodeBitmap(f.all[1+i]); err != nil {
			return err
		}
	}
	live := a.all.GetCardinality()
	if roaring.Or(a.byType[0], a.byType[1]).GetCardinality() != live || roaring.And(a.byType[0], a.byType[1]).GetCardinality() != 0 {
		return snapErr("account types do not partition the accounts")
	}
	for s := range a.attrs {
		if a.attrs[s], err = decodeSets(f.attrs[s]); err != nil {
			return err
		}
	}
	if a.tags, err = decodeSets(f.tags); err != nil {
		return err
	}
	if a.owned, err = decodeBitmap(f.owned); err != nil {
		return err
	}
	n := uint64(len(f.owners) / 2)
	if n != a.owned.GetCardinality() || roaring.AndNot(a.owned, a.byType[im.AcctRegistrationID]).GetCardinality() != 0 {
		return snapErr("owned devices that are not RegistrationIDs, or owners for %d of %d", n, a.owned.GetCardinality())
	}
	a.owner = make(map[uint32]uint32, n)
	for i := 0; i < len(f.owners); i += 2 {
		d, u := f.owners[i], f.owners[i+1]
		if d > uint64(^uint32(0)) || u > uint64(^uint32(0)) || !a.owned.Contains(uint32(d)) {
			return snapErr("owner of %d that is not an owned device", d)
		}
		a.owner[uint32(d)] = uint32(u)
	}
	if uint64(len(a.owner)) != n {
		return snapErr("device owned twice")
	}
	return nil
}

// loadDict builds a dictionary from the ID section: one length per
// ordinal of all, ascending (0: the account has no ID), and the IDs back
// to back. The IDs are copied into the arena in one piece, the ents are
// filled in one pass, and the hash table is built at once (buildSlots).
func loadDict(all *roaring.Bitmap, lens, ids []byte) (dict, error) {
	d := newDict()
	if all.IsEmpty() {
		if len(lens) != 0 || len(ids) != 0 {
			return d, snapErr("IDs without accounts")
		}
		return d, nil
	}
	d.ents = make([]uint64, int(all.Maximum())+1)
	off, p := uint64(0), 0
	it := all.ManyIterator()
	buf := make([]uint32, 4096)
	for {
		k := it.NextMany(buf)
		if k == 0 {
			break
		}
		for _, o := range buf[:k] {
			n, w := binary.Uvarint(lens[p:])
			if w <= 0 || n > maxIDLen || n > uint64(len(ids))-off {
				return d, snapErr("bad ID length at ordinal %d", o)
			}
			p += w
			if n > 0 {
				d.ents[o] = off<<entLenBits | n
				off += n
				d.live++
			}
		}
	}
	if p != len(lens) || off != uint64(len(ids)) {
		return d, snapErr("ID section of %d lengths and %d bytes does not match %d accounts", len(lens), len(ids), all.GetCardinality())
	}
	d.arena = slices.Clone(ids)
	d.buildSlots()
	return d, nil
}
