package devicerule

import (
	"bufio"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/build"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The firmware toolchain (scripts/firmware.sh, docs/silicon.md) is TinyGo
// 0.37, which accepts Go up to 1.24: the device-side packages must use
// neither language features nor standard-library API newer than that.
const (
	firmwareGoVersion = "go1.24"
	firmwareGoMinor   = 24
)

// newerAPI names standard-library API added after Go 1.24 that device code
// once used, with what to use instead. It applies even when the Go
// installation has no api/ directory, from which the test otherwise reads
// every addition since Go 1.24.
var newerAPI = map[string]string{
	"crypto/ecdsa.ParseUncompressedPublicKey": "Go 1.25: validate with ecdh.P256().NewPublicKey, then set X and Y",
	"crypto/ecdsa.ParseRawPrivateKey":         "Go 1.25: validate with ecdh.P256().NewPrivateKey, then set D, X and Y",
	"crypto/ecdsa.PublicKey.Bytes":            "Go 1.25: use PublicKey.ECDH() and its Bytes",
	"crypto/ecdsa.PrivateKey.Bytes":           "Go 1.25: use PrivateKey.ECDH() and its Bytes",
}

// firmwareContext selects source files as TinyGo does for the Cortex-M
// target: GOOS linux, GOARCH arm, its build tags, and release tags up to
// Go 1.24, with the SBM's own build tags extra (sbm_ed25519only).
func firmwareContext(extra ...string) *build.Context {
	ctx := build.Default
	ctx.GOOS, ctx.GOARCH = "linux", "arm"
	ctx.CgoEnabled = false
	ctx.BuildTags = append([]string{"tinygo", "baremetal", "cortexm", "qemu", "mps2", "gc.conservative", "scheduler.tasks"}, extra...)
	ctx.ReleaseTags = nil
	for i := 1; i <= firmwareGoMinor; i++ {
		ctx.ReleaseTags = append(ctx.ReleaseTags, "go1."+strconv.Itoa(i))
	}
	return &ctx
}

// apiKey names a standard-library object as the api files do, in the form
// "path.Name" for package-level objects and "path.Type.Member" for methods
// and fields.
type apiKey = string

// readNewerAPI reads $GOROOT/api/go1.N.txt for every N > firmwareGoMinor
// and returns each addition with the release that made it. It returns nil
// if the installation has no api directory.
func readNewerAPI(goroot string) (map[apiKey]string, error) {
	files, _ := filepath.Glob(filepath.Join(goroot, "api", "go1.*.txt"))
	if len(files) == 0 {
		return nil, nil
	}
	api := map[apiKey]string{}
	for _, f := range files {
		minor, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "go1."), ".txt"))
		if err != nil || minor <= firmwareGoMinor {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if k, ok := parseAPILine(sc.Text()); ok {
				api[k] = fmt.Sprintf("go1.%d", minor)
			}
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return api, nil
}

// parseAPILine returns the key of one line of an api file such as
//
//	pkg crypto/ecdsa, method (*PublicKey) Bytes() ([]uint8, error) #63963
//
// Deprecation notes and embedded fields are not additions.
func parseAPILine(line string) (apiKey, bool) {
	rest, ok := strings.CutPrefix(line, "pkg ")
	if !ok || strings.Contains(line, "//deprecated") {
		return "", false
	}
	path, decl, ok := strings.Cut(rest, ", ")
	if !ok {
		return "", false
	}
	path, _, _ = strings.Cut(path, " ") // "syscall (linux-386)"
	ident := func(s string) string {
		if i := strings.IndexAny(s, " ([,"); i >= 0 {
			return s[:i]
		}
		return s
	}
	switch {
	case strings.HasPrefix(decl, "method ("):
		recv, name, ok := strings.Cut(strings.TrimPrefix(decl, "method ("), ") ")
		if !ok {
			return "", false
		}
		recv = ident(strings.TrimPrefix(recv, "*"))
		return path + "." + recv + "." + ident(name), true
	case strings.HasPrefix(decl, "type "):
		typ := strings.TrimPrefix(decl, "type ")
		name := ident(typ)
		i, j := strings.Index(typ, "{"), strings.Index(typ, ", ")
		if j < 0 || i >= 0 && i < j { // "type T interface { M, N }"
			return path + "." + name, true
		}
		member := typ[j+2:]
		if strings.HasPrefix(member, "embedded ") {
			return "", false
		}
		return path + "." + name + "." + ident(member), true
	case strings.HasPrefix(decl, "func "), strings.HasPrefix(decl, "const "), strings.HasPrefix(decl, "var "):
		_, d, _ := strings.Cut(decl, " ")
		return path + "." + ident(d), true
	}
	return "", false
}

// toolchainChecker type-checks packages from source as the firmware
// toolchain would see them: files selected by firmwareContext, language
// version firmwareGoVersion, 32-bit int (a constant that overflows it is
// an error), no standard-library API newer than firmwareGoVersion, and no
// size hazards (checkSizeHazards).
type toolchainChecker struct {
	root    string // module root
	fset    *token.FileSet
	ctx     *build.Context
	dirs    map[string]string // import path of a checked package -> directory
	newer   map[apiKey]string // standard-library additions after the firmware's Go
	std     types.Importer
	exports map[string]string // standard package -> export data file
	checked map[string]*types.Package
	errs    []string
}

func (c *toolchainChecker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// parse returns the files of the package in dir that the firmware
// toolchain compiles (tests excluded).
func (c *toolchainChecker) parse(dir string) ([]*ast.File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		if ok, err := c.ctx.MatchFile(dir, name); err != nil || !ok {
			continue
		}
		f, err := parser.ParseFile(c.fset, filepath.Join(dir, name), nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// Import imports a checked package from source and a standard package
// from its export data.
func (c *toolchainChecker) Import(path string) (*types.Package, error) {
	if dir, ok := c.dirs[path]; ok {
		if p := c.checked[path]; p != nil {
			return p, nil
		}
		return c.check(path, dir), nil
	}
	return c.std.Import(path)
}

// check type-checks the package path in dir and reports its violations.
func (c *toolchainChecker) check(path, dir string) *types.Package {
	files, err := c.parse(dir)
	if err != nil {
		c.errorf("%s: %v", path, err)
		return types.NewPackage(path, filepath.Base(dir))
	}
	info := &types.Info{
		Uses:       map[*ast.Ident]types.Object{},
		Selections: map[*ast.SelectorExpr]*types.Selection{},
		Types:      map[ast.Expr]types.TypeAndValue{},
	}
	conf := types.Config{
		GoVersion: firmwareGoVersion,
		Sizes:     types.SizesFor("gc", "arm"), // 32-bit int and uintptr, as on the Cortex-M
		Importer:  c,
		Error:     func(err error) { c.errorf("%s: %v", path, err) },
	}
	pkg, _ := conf.Check(path, c.fset, files, info)
	c.checked[path] = pkg
	c.checkAPI(info, files)
	c.checkSizeHazards(info, files)
	return pkg
}

// checkAPI reports every use of a standard-library object newer than the
// firmware's Go.
func (c *toolchainChecker) checkAPI(info *types.Info, files []*ast.File) {
	report := func(pos token.Pos, key apiKey) {
		if why, ok := newerAPI[key]; ok {
			c.errorf("%s: %s is newer than %s (%s)", c.fset.Position(pos), key, firmwareGoVersion, why)
		} else if rel, ok := c.newer[key]; ok {
			c.errorf("%s: %s is newer than %s (added in %s)", c.fset.Position(pos), key, firmwareGoVersion, rel)
		}
	}
	for id, obj := range info.Uses {
		if k, ok := objectKey(obj); ok {
			report(id.Pos(), k)
		}
	}
	for sel, s := range info.Selections {
		if k, ok := selectionKey(s); ok {
			report(sel.Sel.Pos(), k)
		}
	}
	// Keys of struct literals (ecdsa.PublicKey{X: ...}) are fields used
	// without a selector.
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			named, ok := deref(info.Types[lit].Type).(*types.Named)
			if !ok || named.Obj().Pkg() == nil || !isStd(named.Obj().Pkg().Path()) {
				return true
			}
			if _, ok := named.Underlying().(*types.Struct); !ok {
				return true
			}
			for _, e := range lit.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok {
					if id, ok := kv.Key.(*ast.Ident); ok {
						report(id.Pos(), named.Obj().Pkg().Path()+"."+named.Obj().Name()+"."+id.Name)
					}
				}
			}
			return true
		})
	}
}

func deref(t types.Type) types.Type {
	if p, ok := t.(*types.Pointer); ok {
		return p.Elem()
	}
	return t
}

// objectKey returns the api key of a package-level standard-library
// object or of a method (by its receiver's declared type).
func objectKey(obj types.Object) (apiKey, bool) {
	if obj.Pkg() == nil || !isStd(obj.Pkg().Path()) {
		return "", false
	}
	path := obj.Pkg().Path()
	if fn, ok := obj.(*types.Func); ok {
		if recv := fn.Type().(*types.Signature).Recv(); recv != nil {
			named, ok := deref(recv.Type()).(*types.Named)
			if !ok {
				return "", false
			}
			return path + "." + named.Obj().Name() + "." + fn.Name(), true
		}
	}
	if obj.Parent() != obj.Pkg().Scope() {
		return "", false
	}
	return path + "." + obj.Name(), true
}

// selectionKey returns the api key of a selected standard-library field
// (by the type that declares it, through embedded fields).
func selectionKey(s *types.Selection) (apiKey, bool) {
	if s.Kind() != types.FieldVal || s.Obj().Pkg() == nil || !isStd(s.Obj().Pkg().Path()) {
		return "", false
	}
	t := s.Recv()
	idx := s.Index()
	for _, i := range idx[:len(idx)-1] {
		st, ok := deref(t).Underlying().(*types.Struct)
		if !ok {
			return "", false
		}
		t = st.Field(i).Type()
	}
	named, ok := deref(t).(*types.Named)
	if !ok {
		return "", false
	}
	return s.Obj().Pkg().Path() + "." + named.Obj().Name() + "." + s.Obj().Name(), true
}

// newToolchainChecker prepares a checker for the packages dirs (import
// path -> directory): it finds the export data of the standard packages
// they import with one go list and reads the api files of the Go
// installation.
func newToolchainChecker(t *testing.T, root string, dirs map[string]string, tags ...string) *toolchainChecker {
	t.Helper()
	c := &toolchainChecker{
		root: root, fset: token.NewFileSet(), ctx: firmwareContext(tags...),
		dirs: dirs, checked: map[string]*types.Package{}, exports: map[string]string{},
	}
	stdImports := map[string]bool{}
	for _, dir := range dirs {
		files, err := c.parse(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			for _, imp := range f.Imports {
				if p, _ := strconv.Unquote(imp.Path.Value); isStd(p) {
					stdImports[p] = true
				}
			}
		}
	}
	args := []string{"list", "-export", "-deps", "-json=ImportPath,Export"}
	for p := range stdImports {
		args = append(args, p)
	}
	sort.Strings(args[4:])
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goCmd, args...)
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -export: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct{ ImportPath, Export string }
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		c.exports[p.ImportPath] = p.Export
	}
	c.std = importer.ForCompiler(c.fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := c.exports[path]
		if !ok || f == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	if c.newer, err = readNewerAPI(runtime.GOROOT()); err != nil {
		t.Fatal(err)
	}
	if c.newer == nil {
		t.Logf("%s has no api directory: checking only the built-in list of newer API", runtime.GOROOT())
	}
	return c
}

// TestFirmwareToolchain type-checks every device-side package as the
// firmware toolchain (TinyGo 0.37, Go 1.24) would: language version go1.24
// and no standard-library API added after Go 1.24; once with both suites
// and once as the Ed25519-only firmware (tag sbm_ed25519only).
func TestFirmwareToolchain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	for _, tags := range [][]string{nil, {"sbm_ed25519only"}} {
		t.Run(strings.Join(append([]string{"default"}, tags...), ","), func(t *testing.T) {
			checkToolchain(t, tags)
		})
	}
}

func checkToolchain(t *testing.T, tags []string) {
	root := moduleRoot(t)
	dirs := map[string]string{}
	for _, p := range existing(root) {
		dirs[module+"/"+p] = filepath.Join(root, p)
	}
	c := newToolchainChecker(t, root, dirs, tags...)
	var paths []string
	for p := range dirs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if _, err := c.Import(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range paths {
		if c.checked[p] == nil || len(c.checked[p].Scope().Names()) == 0 {
			t.Errorf("%s: not type-checked", p)
		}
	}
	sort.Strings(c.errs)
	for _, e := range c.errs {
		t.Error(e)
	}
}

// TestToolchainCatchesViolations runs the toolchain check on a fixture
// that uses Go 1.25 API, a Go 1.26 language feature and a constant that
// overflows a 32-bit int.
func TestToolchainCatchesViolations(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	root := moduleRoot(t)
	const path = module + "/internal/devicerule/testdata/newgo"
	c := newToolchainChecker(t, root, map[string]string{path: filepath.Join("testdata", "newgo")})
	if _, err := c.Import(path); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"crypto/ecdsa.ParseUncompressedPublicKey is newer than go1.24",
		"crypto/ecdsa.PublicKey.Bytes is newer than go1.24",
		"requires go1.26 or later",                         // new(expr)
		"as int value in variable declaration (overflows)", // 1 << 40 on a 32-bit int
	}
	if c.newer != nil {
		want = append(want, "sync.WaitGroup.Go is newer than go1.24 (added in go1.25)")
	}
	sort.Strings(c.errs)
	all := strings.Join(c.errs, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("toolchain check missed %q; reported:\n%s", w, all)
		}
	}
	if len(c.errs) != len(want) {
		t.Errorf("toolchain check reported %d violations, want %d:\n%s", len(c.errs), len(want), all)
	}
}

func TestParseAPILine(t *testing.T) {
	for line, want := range map[string]string{
		"pkg crypto/ecdsa, method (*PublicKey) Bytes() ([]uint8, error) #63963":                              "crypto/ecdsa.PublicKey.Bytes",
		"pkg crypto/ecdsa, func ParseRawPrivateKey(elliptic.Curve, []uint8) (*PrivateKey, error)":            "crypto/ecdsa.ParseRawPrivateKey",
		"pkg crypto/ecdh, type KeyExchanger interface, Curve() Curve #75300":                                 "crypto/ecdh.KeyExchanger.Curve",
		"pkg crypto/ecdh, type KeyExchanger interface { Curve, ECDH, PublicKey } #75300":                     "crypto/ecdh.KeyExchanger",
		"pkg syscall (linux-386), const SYS_FOO = 1":                                                         "syscall.SYS_FOO",
		"pkg go/ast, type BasicLit struct, ValueEnd token.Pos #76031":                                        "go/ast.BasicLit.ValueEnd",
		"pkg crypto/hkdf, func Key[$0 hash.Hash](func() $0, []uint8, []uint8, string, int) ([]uint8, error)": "crypto/hkdf.Key",
		"pkg crypto/ecdsa, type PublicKey struct, X //deprecated #63963":                                     "",
	} {
		got, ok := parseAPILine(line)
		if got != want || ok != (want != "") {
			t.Errorf("parseAPILine(%q) = %q, %v; want %q", line, got, ok, want)
		}
	}
}
