package devicerule

import (
	"encoding/json"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
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

const module = "github.com/sbm-project/sbm"

// devicePackages are the packages (relative to the module root) that run on
// the device. Extend this list as device-side packages appear (hal, sbm,
// wire, ...); a listed package that does not exist yet is skipped.
var devicePackages = []string{
	"internal/cbor",
	"internal/cose",
	"internal/aeskw",
	"internal/smallaes",
	"internal/crc",
	"internal/errs",
	"internal/secpkg",
	"internal/x509lite",
	"internal/p256",
	"hal",
	"sbm",
	"sbm/mailbox",
	"attest",
	"attest/report",
	"wire",
}

// denied are standard-library packages a device-side package must not
// import directly: reflection and reflection-based codecs, formatting and
// logging, the OS, networking, goroutine synchronisation, unsafe and cgo.
// (time is allowed for types such as time.Duration; the device has no
// trusted clock, so callers pass times in explicitly.) A path ending in "/" denies the whole subtree.
var denied = []string{
	"reflect", "fmt", "log", "log/", "os", "os/", "net", "net/", "syscall",
	"encoding/json", "encoding/asn1", "encoding/gob", "encoding/xml",
	"crypto/x509", "crypto/tls", "sync", "sync/",
	"unsafe", "runtime/cgo", "plugin", "text/template", "html/template",
	"math/rand", "math/rand/", "time/tzdata",
}

func isDenied(path string) bool {
	for _, d := range denied {
		if path == d || strings.HasSuffix(d, "/") && strings.HasPrefix(path, d) {
			return true
		}
	}
	return false
}

// isStd reports whether an import path belongs to the standard library: its
// first element has no dot (the rule the go command uses).
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".") && path != "C"
}

// checker walks device-side packages from source.
type checker struct {
	root    string          // module root directory
	allowed map[string]bool // import paths of device-side packages
	seen    map[string]bool
	errs    []string
}

func newChecker(root string, pkgs []string) *checker {
	c := &checker{root: root, allowed: map[string]bool{}, seen: map[string]bool{}}
	for _, p := range pkgs {
		c.allowed[module+"/"+p] = true
	}
	return c
}

func (c *checker) errorf(pkg, msg string) { c.errs = append(c.errs, pkg+": "+msg) }

// check verifies the package in directory dir (import path path) and,
// recursively, the module packages it imports. Test files are not checked:
// tests run on the host.
func (c *checker) check(path, dir string) {
	if c.seen[path] {
		return
	}
	c.seen[path] = true
	entries, err := os.ReadDir(dir)
	if err != nil {
		c.errorf(path, err.Error())
		return
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		if ok, err := build.Default.MatchFile(dir, name); err != nil || !ok {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			c.errorf(path, err.Error())
			continue
		}
		for _, imp := range f.Imports {
			ip, _ := strconv.Unquote(imp.Path.Value)
			pos := fset.Position(imp.Pos()).String()
			switch {
			case isStd(ip):
				if isDenied(ip) {
					c.errorf(path, pos+": imports denied package "+ip)
				}
			case c.allowed[ip]:
				c.check(ip, filepath.Join(c.root, strings.TrimPrefix(ip, module+"/")))
			default:
				c.errorf(path, pos+": imports non-device package "+ip)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				c.errorf(path, fset.Position(n.Pos()).String()+": go statement")
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "panic" {
					c.errorf(path, fset.Position(n.Pos()).String()+": explicit panic")
				}
			}
			return true
		})
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatal("module root not found: ", err)
	}
	return dir
}

// existing returns the device packages that exist in the tree (a directory
// with at least one Go file).
func existing(root string) []string {
	var out []string
	for _, p := range devicePackages {
		if m, _ := filepath.Glob(filepath.Join(root, p, "*.go")); len(m) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// TestSourceRules checks direct imports, go statements and panics of every
// device-side package from its source.
func TestSourceRules(t *testing.T) {
	root := moduleRoot(t)
	pkgs := existing(root)
	c := newChecker(root, pkgs)
	for _, p := range pkgs {
		c.check(module+"/"+p, filepath.Join(root, p))
	}
	for _, e := range c.errs {
		t.Error(e)
	}
}

// TestTransitiveDeps asks the go command for the full dependency graph of
// the device-side packages (without tests) and checks that it contains only
// the standard library and device-side packages of this module.
func TestTransitiveDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	root := moduleRoot(t)
	pkgs := existing(root)
	out := listDeps(t, root, "-json=ImportPath,Standard,Module")
	allowed := map[string]bool{}
	for _, p := range pkgs {
		allowed[module+"/"+p] = true
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var bad []string
	n := 0
	for {
		var p struct {
			ImportPath string
			Standard   bool
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		if !p.Standard && !allowed[p.ImportPath] {
			bad = append(bad, p.ImportPath)
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Errorf("device-side dependency outside the standard library and device packages: %s", b)
	}
	if n < len(pkgs) {
		t.Errorf("go list returned %d packages for %d device packages", n, len(pkgs))
	}
}

// listDeps runs go list -deps with flags over the device packages in root
// and returns its output.
func listDeps(t *testing.T, root string, flags ...string) []byte {
	t.Helper()
	args := append([]string{"list", "-deps"}, flags...)
	for _, p := range existing(root) {
		args = append(args, "./"+p)
	}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...)
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return out
}

// TestEd25519OnlyLinksNoECDSA lists the device packages' dependencies as
// the Ed25519-only firmware builds them (tag sbm_ed25519only): none of the
// P-256 signature packages may be among them, so the suite is compiled out
// by the tag rather than left to the linker.
func TestEd25519OnlyLinksNoECDSA(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out := listDeps(t, moduleRoot(t), "-tags", "sbm_ed25519only")
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	if !deps["crypto/ed25519"] || !deps[module+"/internal/p256"] {
		t.Fatalf("go list -deps did not list crypto/ed25519 and internal/p256:\n%s", out)
	}
	for _, p := range []string{"crypto/ecdsa", "crypto/elliptic", "encoding/asn1", "crypto/internal/fips140/ecdsa"} {
		if deps[p] {
			t.Errorf("the Ed25519-only build depends on %s", p)
		}
	}
}

// TestCheckerCatchesViolations runs the source checker on a fixture that
// breaks every rule, so the rules above are known to be able to fail.
func TestCheckerCatchesViolations(t *testing.T) {
	root := moduleRoot(t)
	c := newChecker(root, []string{"internal/devicerule/testdata/bad"})
	c.check(module+"/internal/devicerule/testdata/bad", filepath.Join("testdata", "bad"))
	want := []string{
		"imports denied package fmt",
		"imports denied package reflect",
		"imports non-device package " + module + "/cmd/sbm",
		"imports non-device package github.com/spf13/cobra",
		"go statement",
		"explicit panic",
	}
	all := strings.Join(c.errs, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("checker missed %q; reported:\n%s", w, all)
		}
	}
	if len(c.errs) != len(want) {
		t.Errorf("checker reported %d violations, want %d:\n%s", len(c.errs), len(want), all)
	}
}

func TestDenyList(t *testing.T) {
	for _, p := range []string{"fmt", "reflect", "os", "os/exec", "net/http", "encoding/json", "sync", "sync/atomic", "log/slog"} {
		if !isDenied(p) {
			t.Errorf("%s not denied", p)
		}
	}
	for _, p := range []string{"crypto/sha256", "encoding/binary", "errors", "io", "math/bits", "strconv", "osx"} {
		if isDenied(p) {
			t.Errorf("%s denied", p)
		}
	}
	if isStd("github.com/x/y") || !isStd("crypto/ecdh") {
		t.Error("isStd")
	}
}
