package service

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestServiceImportsNoAdapter: the business services depend on the domain
// (im) and the audience index only. They neither build an adapter's cache
// (deliver) nor see the wire (httpapi): bodies are decoded at the edge.
func TestServiceImportsNoAdapter(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ast, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			switch path {
			case "timd/internal/deliver", "timd/internal/httpapi", "timd/internal/fanout", "timd/internal/cli":
				t.Errorf("%s imports %s", f, path)
			}
		}
	}
}
