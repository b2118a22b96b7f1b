package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"timd/internal/audience"
	"timd/internal/config"
	"timd/internal/im"
	"timd/internal/service"
	"timd/internal/store/postgres"
	"timd/internal/store/sqlite"
)

// timd import FILE loads accounts from JSON Lines (service.ImportLine:
// UserID, Nick, FaceUrl, Attrs, Tags) either straight into a store (--store:
// a SQLite directory whose server is stopped, through the bulk path of
// sqlite.Store.BulkLoad, refused while a server holds the store; or a
// PostgreSQL database through postgres.Store.BulkLoad) or
// through a running server's REST API (--url: multiaccount_import,
// set_attr and add_tag). A line is created-or-updated the way those
// commands do it, so running an import again, whole or from any line
// (--skip-lines), is harmless: that is how an interrupted import resumes.
// Bad lines are reported by line number and skipped; progress with a rate
// and an ETA goes to stderr every --progress.
//
// The attribute schema: names in the file must be defined in the app.
// --attr-names a,b,c defines those that are not yet (in free slots, bound
// to UserIDs, as set_attr_name would) before the first line is read.

// importOptions are the flags of timd import.
type importOptions struct {
	store       string
	url         string
	app         uint64
	key         string
	admin       string
	attrNames   string
	batch       int
	concurrency int
	skip        int64
	progress    time.Duration
	maxReported int
	file        string
}

func importFlags(o *importOptions) *flag.FlagSet {
	fs := newFlags("import")
	fs.StringVar(&o.store, "store", "./timd-data",
		"store to load into: a SQLite directory `DIR` whose server is stopped, or a postgres:// URL (nodes may run)")
	fs.StringVar(&o.url, "url", "", "load through the REST API of the server at `URL` instead (for example http://127.0.0.1:8080)")
	fs.Uint64Var(&o.app, "sdkappid", 0, "the app to load into (required; with --store it must exist in the store)")
	fs.StringVar(&o.key, "key", "", "the app's secret key, to sign the admin's UserSig (with --url)")
	fs.StringVar(&o.admin, "admin", "administrator", "the app admin to call the REST API as (with --url)")
	fs.StringVar(&o.attrNames, "attr-names", "", "comma-separated attribute `NAMES` the file uses; those the app lacks are defined first")
	fs.IntVar(&o.batch, "batch", 20000, "accounts per store transaction (with --store)")
	fs.IntVar(&o.concurrency, "concurrency", 16, "concurrent REST callers (with --url)")
	fs.Int64Var(&o.skip, "skip-lines", 0, "skip the first `N` lines, to resume an interrupted import")
	fs.DurationVar(&o.progress, "progress", time.Second, "how often to print progress")
	fs.IntVar(&o.maxReported, "max-reported", 1000, "report at most `N` bad lines one by one, then only count them")
	return fs
}

func runImport(ctx context.Context, env Env, args []string) error {
	var o importOptions
	fs := importFlags(&o)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		printHelp(env.Stdout, fs)
		return err
	} else if err != nil {
		return errUsage{err}
	}
	switch {
	case fs.NArg() != 1:
		return errUsage{errors.New("name one FILE (- for standard input)")}
	case o.app == 0:
		return errUsage{errors.New("--sdkappid is required")}
	case o.url != "" && o.key == "":
		return errUsage{errors.New("--url needs --key")}
	case o.batch < 1 || o.concurrency < 1 || o.skip < 0 || o.progress <= 0:
		return errUsage{errors.New("--batch, --concurrency and --progress must be positive, --skip-lines not negative")}
	}
	o.file = fs.Arg(0)
	in, size, err := openInput(env, o.file)
	if err != nil {
		return err
	}
	defer in.Close()
	var sink importSink
	if o.url != "" {
		sink, err = newRESTSink(ctx, o)
	} else {
		sink, err = newStoreSink(ctx, o, env.Stderr)
	}
	if err != nil {
		return err
	}
	defer sink.close()
	if err := sink.defineAttrs(ctx, splitNames(o.attrNames)); err != nil {
		return err
	}
	schema, err := sink.schema(ctx)
	if err != nil {
		return err
	}
	// The import's garbage is short-lived and its live heap small (a
	// batch): collect less often. Not when it keeps the audience index
	// (about 40 B per account): 400% of that would hold 2.3 GB at 10M
	// accounts instead of 1.5 GB, for no gain in speed (BENCHMARKS.md).
	gc := 400
	if ss, ok := sink.(*storeSink); ok && ss.index != nil {
		gc = 100
	}
	defer debug.SetGCPercent(debug.SetGCPercent(gc))
	imp := &importer{o: o, env: env, sink: sink, schema: schema, size: size, start: time.Now(), committed: o.skip}
	return imp.run(ctx, in)
}

func openInput(env Env, name string) (io.ReadCloser, int64, error) {
	if name == "-" {
		return io.NopCloser(os.Stdin), 0, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

func splitNames(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// importSink is where accounts go: a store directory or a server.
type importSink interface {
	// defineAttrs defines the names the app lacks, in free slots.
	defineAttrs(ctx context.Context, names []string) error
	schema(ctx context.Context) (*im.AttrSchema, error)
	// load applies a batch and returns one error per account (nil: ok).
	load(ctx context.Context, batch []im.BulkAccount) ([]error, error)
	// batchSize is how many accounts load takes at once.
	batchSize() int
	close()
}

// newSlots returns the slot assignment that defines the names s lacks in
// its free slots.
func newSlots(s *im.AttrSchema, names []string) (map[int]string, error) {
	add := map[int]string{}
	free := 0
	for _, name := range names {
		if s.Slot(name) >= 0 {
			continue
		}
		for free < len(s) && s[free].Name != "" {
			free++
		}
		if free == len(s) {
			return nil, fmt.Errorf("--attr-names: no free attribute slot for %q (an app has %d)", name, len(s))
		}
		add[free] = name
		s[free].Name = name
		free++
	}
	return add, nil
}

// bulkStore is a store with a bulk path.
type bulkStore interface {
	im.Store
	im.BulkLoader
}

// importWriterCache is the SQLite page cache of the importing connection:
// the index pages of a large load, inserted in UserID order, stay cached.
const importWriterCache = 256 << 20

// storeSink loads into a store through the bulk path.
type storeSink struct {
	unlock func()
	store  bulkStore
	app    uint64
	batch  int
	// index, on a SQLite store, is the server's audience index kept
	// current through the load and written as its snapshot at close, so
	// that the first start after an import loads it instead of rebuilding
	// (a rebuild takes about 30 s at 10M accounts).
	index   *service.IndexSource
	applier *asyncSink
	stderr  io.Writer
}

// newStoreSink opens the store of --store: a SQLite directory, which it
// locks (its server must be stopped), or a PostgreSQL database, which
// running nodes may share.
func newStoreSink(ctx context.Context, o importOptions, stderr io.Writer) (*storeSink, error) {
	s := &storeSink{unlock: func() {}, app: o.app, batch: o.batch, stderr: stderr}
	if config.IsPostgres(o.store) {
		st, err := postgres.Open(ctx, o.store, postgres.Options{})
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", config.StoreName(o.store), err)
		}
		s.store = st
	} else {
		unlock, err := sqlite.Lock(o.store)
		if err != nil {
			return nil, fmt.Errorf("%w; stop the server, or import through it with --url", err)
		}
		// Bulk mode: commits are not fsynced one by one; Close checkpoints
		// and fsyncs once (sqlite.Config.Bulk).
		st, err := sqlite.OpenConfig(ctx, o.store, nil, sqlite.Config{Bulk: true, WriterCache: importWriterCache})
		if err != nil {
			unlock()
			return nil, fmt.Errorf("open store: %w", err)
		}
		s.store, s.unlock = st, unlock
	}
	if _, err := s.store.App(ctx, o.app); err != nil {
		s.close()
		if errors.Is(err, im.ErrNotFound) {
			name := config.StoreName(o.store)
			return nil, fmt.Errorf("app %d is not in the store %s: start `timd serve --store %s --app %d:KEY:ADMIN` once first",
				o.app, name, name, o.app)
		}
		return nil, err
	}
	if st, ok := s.store.(*sqlite.Store); ok {
		if err := s.followIndex(ctx, st, o.store); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// followIndex loads the store's audience index the way serve does (its
// snapshot and the changes after it, or a rebuild) and makes it the
// store's change sink, so that every batch the import commits reaches it.
func (s *storeSink) followIndex(ctx context.Context, st *sqlite.Store, dir string) error {
	src := service.IndexSource{Store: st, Changes: st, Index: audience.New(), Snapshot: filepath.Join(dir, SnapshotFile)}
	t0 := time.Now()
	rep, err := service.LoadIndex(ctx, src)
	if err != nil {
		return fmt.Errorf("load the audience index: %w", err)
	}
	if rep.Rebuilt > 0 && rep.Accounts > 0 {
		fmt.Fprintf(s.stderr, "audience index rebuilt from the store: %d accounts in %s\n", rep.Accounts, time.Since(t0).Round(time.Millisecond))
	}
	s.index = &src
	s.applier = newAsyncSink(src.Index)
	st.SetChangeSink(s.applier)
	return nil
}

// asyncSink applies the store's changes to the index on a goroutine of
// its own, in commit order, so that the store's writer (the import's
// bottleneck) does not wait for the index. The store hands each batch's
// changes over and never touches them again.
type asyncSink struct {
	ch   chan []im.Change
	done chan struct{}
}

func newAsyncSink(to im.ChangeSink) *asyncSink {
	a := &asyncSink{ch: make(chan []im.Change, 4), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for c := range a.ch {
			to.Apply(c)
		}
	}()
	return a
}

func (a *asyncSink) Apply(c []im.Change) { a.ch <- c }

// drain waits until every batch handed over has been applied; call it
// once no write is running, after the store has a sink other than a.
func (a *asyncSink) drain() {
	close(a.ch)
	<-a.done
}

// saveIndex writes the index snapshot. A failure costs only the next
// start's rebuild, so it is reported, not returned.
func (s *storeSink) saveIndex() {
	s.store.(*sqlite.Store).SetChangeSink(s.index.Index) // only a SQLite store has an index here
	s.applier.drain()
	t0 := time.Now()
	rep, err := service.SaveSnapshot(context.Background(), *s.index, nil)
	if err != nil {
		fmt.Fprintf(s.stderr, "timd import: writing the audience index snapshot failed; the server will rebuild its index at start: %v\n", err)
		return
	}
	fmt.Fprintf(s.stderr, "audience index snapshot written: %s in %s\n", humanBytes(rep.Bytes), time.Since(t0).Round(time.Millisecond))
}

func (s *storeSink) defineAttrs(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	aud := service.NewAudience(s.store, nil)
	cur, err := aud.Schema(ctx, s.app)
	if err != nil {
		return err
	}
	add, err := newSlots(&cur, names)
	if err != nil || len(add) == 0 {
		return err
	}
	return aud.SetAttrNames(ctx, s.app, add, nil)
}

func (s *storeSink) schema(ctx context.Context) (*im.AttrSchema, error) {
	sc, err := s.store.AttrSchema(ctx, s.app)
	return &sc, err
}

func (s *storeSink) load(ctx context.Context, batch []im.BulkAccount) ([]error, error) {
	return s.store.BulkLoad(ctx, s.app, batch, im.EditLimits{})
}

func (s *storeSink) batchSize() int { return s.batch }

func (s *storeSink) close() {
	if s.index != nil {
		s.saveIndex()
	}
	s.store.Close()
	s.unlock()
}

// importer runs the pipeline: a reader splits the input into chunks of
// lines, decoders validate chunks in parallel, and run applies them in
// input order in batches, reporting progress.
type importer struct {
	o      importOptions
	env    Env
	sink   importSink
	schema *im.AttrSchema
	size   int64
	start  time.Time

	lines     int64 // lines after the skipped ones that are settled (applied or reported)
	bytes     int64 // input bytes read and decoded
	loaded    int64 // accounts applied
	bad       int64
	reported  int
	committed int64 // every line up to here is settled
	lastPrint time.Time
}

// chunkLines is how many lines a decoder takes at once.
const chunkLines = 2048

// chunk is a run of input lines and, once decoded, their accounts.
type chunk struct {
	first int64   // line number of lines[0]
	buf   []byte  // the lines' bytes, one after another
	ends  []int32 // where each line ends in buf; -1: a line over 1 MiB
	bytes int64
	accts []im.BulkAccount
	errs  []error
	done  chan struct{}
}

func (imp *importer) run(ctx context.Context, in io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ordered := make(chan *chunk, 2*runtime.GOMAXPROCS(0))
	work := make(chan *chunk, 2*runtime.GOMAXPROCS(0))
	readErr := make(chan error, 1)
	go func() { readErr <- imp.read(ctx, in, ordered, work) }()
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for c := range work {
				imp.decode(c)
			}
		})
	}
	defer wg.Wait()
	err := imp.apply(ctx, ordered)
	cancel()
	for range ordered { // let the reader finish
	}
	if rerr := <-readErr; err == nil && rerr != nil && !errors.Is(rerr, context.Canceled) {
		err = rerr
	}
	imp.finish(err)
	return err
}

// read splits in into chunks, numbering lines from 1 and skipping the
// first o.skip. A line over 1 MiB is kept as a marker that decodes to a
// bad line.
func (imp *importer) read(ctx context.Context, in io.Reader, ordered, work chan<- *chunk) error {
	defer close(ordered)
	defer close(work)
	br := bufio.NewReaderSize(in, 1<<20)
	var n int64
	c := &chunk{first: 1, done: make(chan struct{})}
	send := func() bool {
		select {
		case ordered <- c:
		case <-ctx.Done():
			return false
		}
		select {
		case work <- c:
		case <-ctx.Done():
			return false
		}
		c = &chunk{first: n + 1, done: make(chan struct{})}
		return true
	}
	for {
		line, err := br.ReadSlice('\n')
		tooLong := false
		size := int64(len(line))
		for errors.Is(err, bufio.ErrBufferFull) {
			tooLong = true
			var more []byte
			more, err = br.ReadSlice('\n')
			size += int64(len(more))
		}
		if len(line) == 0 && err != nil {
			break
		}
		n++
		if n <= imp.o.skip {
			c.bytes += size
			c.first = n + 1
			continue
		}
		if tooLong {
			c.ends = append(c.ends, -1)
		} else {
			c.buf = append(c.buf, line...)
			c.ends = append(c.ends, int32(len(c.buf)))
		}
		c.bytes += size
		if len(c.ends) == chunkLines && !send() {
			return ctx.Err()
		}
		if err != nil {
			break
		}
	}
	if len(c.ends) > 0 && !send() {
		return ctx.Err()
	}
	return nil
}

// decode validates every line of c.
func (imp *importer) decode(c *chunk) {
	defer close(c.done)
	c.accts = make([]im.BulkAccount, len(c.ends))
	c.errs = make([]error, len(c.ends))
	start := int32(0)
	for i, end := range c.ends {
		var line []byte
		if end >= 0 {
			line, start = c.buf[start:end], end
		}
		switch {
		case line == nil:
			c.errs[i] = im.Errorf(im.CodePushJSON, "line longer than 1 MiB")
		case len(bytes.TrimSpace(line)) == 0:
			c.errs[i] = errBlank
		default:
			c.accts[i], c.errs[i] = service.DecodeImportLine(line, imp.schema)
		}
	}
	c.buf, c.ends = nil, nil
}

// errBlank marks a blank line, which is skipped without a report.
var errBlank = errors.New("blank line")

// apply takes chunks in order and loads their good accounts in batches.
// committed advances to the last line of each applied batch, and to the
// end of a chunk that leaves no account waiting.
func (imp *importer) apply(ctx context.Context, ordered <-chan *chunk) error {
	size := imp.sink.batchSize()
	batch := make([]im.BulkAccount, 0, size)
	lines := make([]int64, 0, size)
	flush := func(last int64) error {
		errs, err := imp.sink.load(ctx, batch)
		if err != nil {
			return fmt.Errorf("loading lines %d to %d: %w", lines[0], lines[len(lines)-1], err)
		}
		for i, e := range errs {
			if e != nil {
				imp.report(lines[i], e)
			} else {
				imp.loaded++
			}
		}
		batch, lines = batch[:0], lines[:0]
		imp.settle(last)
		return nil
	}
	for c := range ordered {
		<-c.done
		for i, err := range c.errs {
			line := c.first + int64(i)
			if err == nil {
				batch = append(batch, c.accts[i])
				lines = append(lines, line)
			} else if err != errBlank {
				imp.report(line, err)
			}
			if len(batch) == size {
				if err := flush(line); err != nil {
					return err
				}
			}
		}
		imp.bytes += c.bytes
		if len(batch) == 0 {
			imp.settle(c.first + int64(len(c.errs)) - 1)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if len(batch) > 0 {
		return flush(lines[len(lines)-1])
	}
	return nil
}

// settle records that every line up to last is done.
func (imp *importer) settle(last int64) {
	imp.committed = last
	imp.lines = last - imp.o.skip
	imp.maybePrint(false)
}

// report prints a bad line, up to o.maxReported of them.
func (imp *importer) report(line int64, err error) {
	imp.bad++
	if imp.reported >= imp.o.maxReported {
		return
	}
	imp.reported++
	msg := err.Error()
	if e, ok := im.AsError(err); ok {
		msg = fmt.Sprintf("%d %s", e.Code, e.Info)
	}
	fmt.Fprintf(imp.env.Stderr, "line %d: %s\n", line, msg)
	if imp.reported == imp.o.maxReported {
		fmt.Fprintf(imp.env.Stderr, "(reporting no more bad lines one by one; they are counted)\n")
	}
}

func (imp *importer) maybePrint(force bool) {
	now := time.Now()
	if !force && now.Sub(imp.lastPrint) < imp.o.progress {
		return
	}
	imp.lastPrint = now
	el := now.Sub(imp.start).Seconds()
	rate := float64(imp.lines) / max(el, 1e-9)
	msg := fmt.Sprintf("timd import: line %d; %d accounts loaded, %d bad; %.0f lines/s", imp.committed, imp.loaded, imp.bad, rate)
	if imp.size > 0 && imp.bytes > 0 {
		frac := float64(imp.bytes) / float64(imp.size)
		eta := time.Duration(el / frac * (1 - frac) * float64(time.Second))
		msg += fmt.Sprintf("; %.1f%% of %s; ETA %s", 100*frac, humanBytes(imp.size), eta.Round(time.Second))
	}
	fmt.Fprintln(imp.env.Stderr, msg)
}

// finish prints the summary, and how to resume after a failure.
func (imp *importer) finish(err error) {
	imp.maybePrint(true)
	el := time.Since(imp.start)
	fmt.Fprintf(imp.env.Stdout, "imported %d lines: %d accounts loaded, %d bad lines, in %s (%.0f lines/s)\n",
		imp.lines, imp.loaded, imp.bad, el.Round(time.Millisecond), float64(imp.lines)/max(el.Seconds(), 1e-9))
	if err != nil {
		fmt.Fprintf(imp.env.Stderr, "timd import: stopped; every line up to %d is done. Resume with --skip-lines %d (or run it again: re-applying lines is harmless)\n",
			imp.committed, imp.committed)
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d B", n)
	}
}
