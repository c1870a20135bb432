package devicerule

import (
	"go/ast"
	"go/build"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxArrayCompare is the longest array device code compares with == or
// !=: TinyGo compiles an array comparison element by element, about 13
// bytes of Thumb code per element at every comparison (32-byte digests
// compared this way were 10 KB of the firmware), where bytes.Equal is a
// call.
const maxArrayCompare = 8

// sizeHazards type-checks the package in dir (as TinyGo builds
// it: tag tinygo) and returns its interface comparisons (== and != of two
// non-nil operands one of which is an interface, and switches on an
// interface value), its calls of errors.Is and errors.As, and its
// comparisons of arrays longer than maxArrayCompare. In TinyGo each of
// the first three links runtime.interfaceEqual or internal/reflectlite,
// 3.5 KB of the firmware (docs/silicon.md, "Sizes"); device code uses
// internal/errs instead.
func sizeHazards(t *testing.T, fset *token.FileSet, imp types.Importer, path, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := build.Default
	ctx.BuildTags = []string{"tinygo"}
	var files []*ast.File
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		if ok, _ := ctx.MatchFile(dir, n); !ok {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Uses: map[*ast.Ident]types.Object{}}
	conf := types.Config{Importer: imp, FakeImportC: true}
	if _, err := conf.Check(path, fset, files, info); err != nil {
		t.Fatalf("type-checking %s: %v", path, err)
	}
	isIface := func(e ast.Expr) bool {
		tv, ok := info.Types[e]
		return ok && !tv.IsNil() && types.IsInterface(tv.Type)
	}
	isNil := func(e ast.Expr) bool { tv := info.Types[e]; return tv.IsNil() }
	var out []string
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if n.Op != token.EQL && n.Op != token.NEQ {
					break
				}
				if (isIface(n.X) || isIface(n.Y)) && !isNil(n.X) && !isNil(n.Y) {
					out = append(out, fset.Position(n.Pos()).String()+": interface comparison "+types.ExprString(n))
				}
				if tv := info.Types[n.X]; tv.Type != nil {
					if a, ok := tv.Type.Underlying().(*types.Array); ok && a.Len() > maxArrayCompare {
						out = append(out, fset.Position(n.Pos()).String()+": array comparison "+types.ExprString(n)+" (use bytes.Equal)")
					}
				}
			case *ast.SwitchStmt:
				if n.Tag != nil && isIface(n.Tag) {
					out = append(out, fset.Position(n.Pos()).String()+": switch on an interface value "+types.ExprString(n.Tag))
				}
			case *ast.SelectorExpr:
				if obj, ok := info.Uses[n.Sel]; ok && obj.Pkg() != nil && obj.Pkg().Path() == "errors" &&
					(obj.Name() == "Is" || obj.Name() == "As") {
					out = append(out, fset.Position(n.Pos()).String()+": errors."+obj.Name()+" (use internal/errs)")
				}
			}
			return true
		})
	}
	return out
}

// TestNoSizeHazards checks every device-side package for
// interface comparisons, errors.Is/As and long array comparisons (see
// sizeHazards).
func TestNoSizeHazards(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks from source")
	}
	root := moduleRoot(t)
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "source", nil)
	for _, p := range existing(root) {
		for _, e := range sizeHazards(t, fset, imp, module+"/"+p, filepath.Join(root, p)) {
			t.Error(e)
		}
	}
}

// TestSizeHazardsCaught runs the check on testdata/ifacecmp,
// which has one of each and two allowed comparisons.
func TestSizeHazardsCaught(t *testing.T) {
	fset := token.NewFileSet()
	got := sizeHazards(t, fset, importer.ForCompiler(fset, "source", nil),
		module+"/internal/devicerule/testdata/ifacecmp", filepath.Join("testdata", "ifacecmp"))
	for _, want := range []string{
		"interface comparison err == errA",
		"interface comparison errA != err",
		"switch on an interface value err",
		"errors.Is (use internal/errs)",
		"errors.As (use internal/errs)",
		"array comparison d == [16]byte{} (use bytes.Equal)",
	} {
		found := false
		for _, g := range got {
			found = found || strings.HasSuffix(g, want)
		}
		if !found {
			t.Errorf("not reported: %s (got %q)", want, got)
		}
	}
	if len(got) != 6 {
		t.Errorf("%d reports, want 6 (err != nil and the [8]byte comparison are allowed): %q", len(got), got)
	}
}
