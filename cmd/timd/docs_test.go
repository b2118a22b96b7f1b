package main_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"timd/internal/httpapi"
)

// repoRoot is the repository, two levels above this package.
const repoRoot = "../.."

// TestAPIReferenceCoversEveryRoute: docs/api.md has a section
// "### `service/command`" for every command of the routes table, and no
// section for a command timd does not serve.
func TestAPIReferenceCoversEveryRoute(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^### `([a-z_]+/[a-z_]+)`$").FindAllStringSubmatch(string(raw), -1) {
		documented[m[1]] = true
	}
	served := map[string]bool{}
	for _, cmd := range httpapi.Commands() {
		served[cmd] = true
		if !documented[cmd] {
			t.Errorf("docs/api.md has no section for %s", cmd)
		}
	}
	for cmd := range documented {
		if !served[cmd] {
			t.Errorf("docs/api.md documents %s, which timd does not serve", cmd)
		}
	}
}

// TestDocsCiteOnlyTheRepository: no Markdown file of the repository
// cites a file outside it (the project's shared/ notes are not part of
// the repository), and every relative link names a file that exists.
func TestDocsCiteOnlyTheRepository(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".md") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		if strings.Contains(string(raw), "shared/") {
			t.Errorf("%s cites shared/, which is not part of the repository", rel)
		}
		for _, m := range link.FindAllStringSubmatch(string(raw), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			abs := filepath.Join(filepath.Dir(path), target)
			if r, err := filepath.Rel(repoRoot, abs); err != nil || strings.HasPrefix(r, "..") {
				t.Errorf("%s links %s, outside the repository", rel, target)
				continue
			}
			if _, err := os.Stat(abs); err != nil {
				t.Errorf("%s links %s, which does not exist", rel, target)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
