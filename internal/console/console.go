// Package console holds timd's web console: static files (plain ES
// modules, a stylesheet and a vendored chart library) embedded in the
// binary and served under /console/ with a strict Content-Security-Policy.
// The console is a client of the /v4 API like any other; it has no
// server-side state and no endpoints of its own.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed static
var static embed.FS

// Prefix is where the console is served.
const Prefix = "/console/"

// Policy is the Content-Security-Policy of every console file: scripts,
// styles and connections only from timd itself, no inline script or
// style, no plugins, no framing, no form posts, no <base>.
const Policy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// file is one served file.
type file struct {
	body  []byte
	ctype string
	etag  string
}

// Site is the console's files by path (Prefix + name; Prefix itself is
// index.html).
type Site struct {
	files map[string]file
}

// New returns the console with the embedded files and extra ones (name →
// content, served at Prefix+name; for example the JavaScript client as
// "lib/timd.js"). An extra file replaces an embedded one of the same name.
func New(extra map[string][]byte) *Site {
	s := &Site{files: map[string]file{}}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	_ = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		s.add(name, body)
		return nil
	})
	for name, body := range extra {
		s.add(name, body)
	}
	if idx, ok := s.files[Prefix+"index.html"]; ok {
		s.files[Prefix] = idx
	}
	return s
}

func (s *Site) add(name string, body []byte) {
	ctype := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".js":
		ctype = "text/javascript; charset=utf-8"
	case ".md":
		ctype = "text/markdown; charset=utf-8"
	case "":
		ctype = "application/octet-stream"
	}
	sum := sha256.Sum256(body)
	s.files[Prefix+name] = file{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// Paths returns every served path, sorted.
func (s *Site) Paths() []string {
	out := make([]string, 0, len(s.files))
	for p := range s.files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// SecurityHeaders sets the headers of every console answer: the policy,
// no MIME sniffing, no framing (also for browsers without CSP 3), no
// referrer (the URL of a /v4 call carries a UserSig), and a separate
// browsing context group.
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", Policy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// ServeHTTP serves the file at r.URL.Path exactly (no cleaning, no
// directory listing), revalidated by ETag. It reports false, writing
// nothing, when there is no such file.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) bool {
	f, ok := s.files[r.URL.Path]
	if !ok {
		return false
	}
	h := w.Header()
	SecurityHeaders(h)
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, f.etag) {
		w.WriteHeader(http.StatusNotModified)
		return true
	}
	h.Set("Content-Length", strconv.Itoa(len(f.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(f.body)
	}
	return true
}
