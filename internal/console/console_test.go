package console_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"timd/internal/console"
	"timd/internal/usersig"
)

// TestEveryFileHasTheSecurityHeaders serves every path and checks the
// policy, nosniff, no framing, the content type, and that a path outside
// the site is not answered.
func TestEveryFileHasTheSecurityHeaders(t *testing.T) {
	s := console.New(map[string][]byte{"lib/timd.js": []byte("export const x = 1;\n")})
	paths := s.Paths()
	for _, want := range []string{"/console/", "/console/index.html", "/console/app.js", "/console/style.css",
		"/console/vendor/chart.umd.min.js", "/console/lib/timd.js"} {
		if !contains(paths, want) {
			t.Errorf("%s is not served (%v)", want, paths)
		}
	}
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
		".html": "text/html; charset=utf-8", "/": "text/html; charset=utf-8"}
	for _, p := range paths {
		w := httptest.NewRecorder()
		if !s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, p, nil)) {
			t.Fatalf("%s not answered", p)
		}
		h := w.Header()
		csp := h.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s: CSP %q lacks %s", p, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") || strings.Contains(csp, "*") {
			t.Errorf("%s: CSP %q allows inline code or other origins", p, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", p, h)
		}
		for ext, ct := range types {
			if strings.HasSuffix(p, ext) && h.Get("Content-Type") != ct {
				t.Errorf("%s: Content-Type %q, want %q", p, h.Get("Content-Type"), ct)
			}
		}
		if w.Code != 200 || w.Body.Len() == 0 {
			t.Errorf("%s: %d, %d bytes", p, w.Code, w.Body.Len())
		}
		// Revalidation answers 304 with the same headers.
		r := httptest.NewRequest(http.MethodGet, p, nil)
		r.Header.Set("If-None-Match", h.Get("ETag"))
		w2 := httptest.NewRecorder()
		s.ServeHTTP(w2, r)
		if w2.Code != http.StatusNotModified || w2.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("%s: revalidation %d", p, w2.Code)
		}
	}
	for _, p := range []string{"/console", "/console/nope.js", "/console/../go.mod", "/console//app.js", "/console/pages/", "/console/static/app.js"} {
		if s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil).WithContext(t.Context())) {
			t.Errorf("/ answered")
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.Path = p
		if s.ServeHTTP(httptest.NewRecorder(), r) {
			t.Errorf("%s answered", p)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestNoInlineCodeNoHTMLFromData reads the console's own sources: no
// inline script or style in the page, no style attributes, and no API
// that parses a string as HTML or code. (The CSP would block inline code;
// this keeps it from being written at all. The browser test checks the
// rendering with markup in the data.)
func TestNoInlineCodeNoHTMLFromData(t *testing.T) {
	root := "static"
	forbidden := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\(['"]style|createContextualFragment|DOMParser|srcdoc|\.style\.|\bon[a-z]+=`)
	inline := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|<style|\sstyle=|\son[a-z]+=|javascript:`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(path, "vendor") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		src := string(b)
		switch filepath.Ext(path) {
		case ".js":
			if m := forbidden.FindString(src); m != "" {
				t.Errorf("%s uses %q", path, m)
			}
		case ".html":
			if m := inline.FindString(src); m != "" {
				t.Errorf("%s has inline code or style: %q", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUserSigJSVerifiesInGo makes a UserSig with the console's usersig.js
// under Node (Web Crypto and CompressionStream, as in a browser) and
// verifies it with timd's verifier. It skips without node.
func TestUserSigJSVerifiesInGo(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; the browser test covers usersig.js too")
	}
	const app, key = 1400000001, "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	abs, err := filepath.Abs("static/usersig.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"administrator", "ünïcode<&>", `quote"back\slash`} {
		script := `import { importKey, genUserSig } from ` + jsString("file://"+abs) + `;
const k = await importKey(` + jsString(key) + `);
process.stdout.write(await genUserSig(k, "1400000001", ` + jsString(id) + `, 600));`
		cmd := exec.Command(node, "--input-type=module", "-e", script)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node: %v", err)
		}
		sig := string(out)
		if err := usersig.Verify(sig, app, id, key, time.Now().Unix()); err != nil {
			t.Errorf("%q: Go refuses the JS sig %s: %v", id, sig, err)
		}
		if err := usersig.Verify(sig, app, id, "wrong"+key, time.Now().Unix()); err == nil {
			t.Errorf("%q: verifies with the wrong key", id)
		}
		d, err := usersig.Decode(sig)
		if err != nil || d.Expire != 600 || d.Ver != "2.0" {
			t.Errorf("%q: decoded %+v, %v", id, d, err)
		}
	}
}

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}
