package hal_test

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// forbidden lists standard packages device-side code must not import
// directly: reflection, fmt, operating-system and network access, and
// synchronisation (device code has no goroutines).
var forbidden = map[string]bool{
	"reflect": true, "fmt": true, "os": true, "os/exec": true, "net": true,
	"net/http": true, "sync": true, "sync/atomic": true, "log": true,
	"unsafe": true, "syscall": true, "runtime": true, "encoding/json": true,
	"encoding/gob": true, "text/template": true, "html/template": true,
}

const modulePath = "github.com/sbm-project/sbm"

// TestDeviceSideImports enforces the device-side rule on hal and every
// package below it: standard library (or other device-side hal packages)
// only, none of the forbidden packages, and no go statements.
func TestDeviceSideImports(t *testing.T) {
	var dirs []string
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, dir := range dirs {
		pkg, err := build.ImportDir(dir, 0)
		if _, ok := err.(*build.NoGoError); ok {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		checked++
		for _, imp := range pkg.Imports {
			if violation := checkImport(imp); violation != "" {
				t.Errorf("%s imports %q: %s", dir, imp, violation)
			}
		}
		for _, f := range pkg.GoFiles {
			checkNoGoStatements(t, filepath.Join(dir, f))
		}
	}
	if checked == 0 {
		t.Fatal("no packages checked")
	}
}

func checkImport(imp string) string {
	if forbidden[imp] {
		return "forbidden in device-side code"
	}
	if strings.HasPrefix(imp, modulePath+"/") {
		// hal sits at the bottom of the device side: besides its own
		// packages it imports only internal/errs (its sentinel errors),
		// which imports nothing of the module.
		if !strings.HasPrefix(imp, modulePath+"/hal") && imp != modulePath+"/internal/errs" {
			return "only device-side project packages may be imported"
		}
		return ""
	}
	p, err := build.Import(imp, "", build.FindOnly)
	if err != nil || !p.Goroot {
		return "not a standard library package"
	}
	return ""
}

func checkNoGoStatements(t *testing.T, file string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if _, ok := n.(*ast.GoStmt); ok {
			t.Errorf("%s: go statement in device-side code", file)
		}
		return true
	})
}

// TestCheckImportCatchesViolations makes sure the rule can fail.
func TestCheckImportCatchesViolations(t *testing.T) {
	for _, imp := range []string{"fmt", "reflect", "os", "net", "sync", "github.com/BurntSushi/toml", modulePath + "/vmcu"} {
		if checkImport(imp) == "" {
			t.Errorf("checkImport(%q) accepted a forbidden import", imp)
		}
	}
	for _, imp := range []string{"crypto/sha256", "encoding/binary", "errors", "io", "time", modulePath + "/hal"} {
		if v := checkImport(imp); v != "" {
			t.Errorf("checkImport(%q) = %q, want allowed", imp, v)
		}
	}
}
