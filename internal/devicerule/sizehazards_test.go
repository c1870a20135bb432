package devicerule

import (
	"go/ast"
	"go/token"
	"go/types"
	"path/filepath"
	"strings"
	"testing"
)

// maxArrayCompare is the longest array device code compares with == or
// !=: TinyGo compiles an array comparison element by element, about 13
// bytes of Thumb code per element at every comparison (the 16- and
// 32-byte digests and IDs compared this way were 9 KB of the firmware),
// where bytes.Equal is a call.
const maxArrayCompare = 8

// checkSizeHazards reports what costs the firmware flash out of
// proportion (docs/silicon.md, "Sizes"): interface comparisons (== and !=
// of two non-nil operands one of which is an interface, and switches on
// an interface value), calls of errors.Is and errors.As, and comparisons
// of arrays longer than maxArrayCompare. In TinyGo each of the first
// three links runtime.interfaceEqual or internal/reflectlite; device code
// uses internal/errs instead. The toolchain check runs it on every
// package it type-checks.
func (c *toolchainChecker) checkSizeHazards(info *types.Info, files []*ast.File) {
	isIface := func(e ast.Expr) bool {
		tv, ok := info.Types[e]
		return ok && !tv.IsNil() && types.IsInterface(tv.Type)
	}
	isNil := func(e ast.Expr) bool { return info.Types[e].IsNil() }
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if n.Op != token.EQL && n.Op != token.NEQ {
					break
				}
				pos := c.fset.Position(n.Pos())
				if (isIface(n.X) || isIface(n.Y)) && !isNil(n.X) && !isNil(n.Y) {
					c.errorf("%s: interface comparison %s (use internal/errs)", pos, types.ExprString(n))
				}
				if tv := info.Types[n.X]; tv.Type != nil {
					if a, ok := tv.Type.Underlying().(*types.Array); ok && a.Len() > maxArrayCompare {
						c.errorf("%s: array comparison %s (use bytes.Equal)", pos, types.ExprString(n))
					}
				}
			case *ast.SwitchStmt:
				if n.Tag != nil && isIface(n.Tag) {
					c.errorf("%s: switch on an interface value %s", c.fset.Position(n.Pos()), types.ExprString(n.Tag))
				}
			case *ast.SelectorExpr:
				if obj, ok := info.Uses[n.Sel]; ok && obj.Pkg() != nil && obj.Pkg().Path() == "errors" &&
					(obj.Name() == "Is" || obj.Name() == "As") {
					c.errorf("%s: errors.%s (use internal/errs)", c.fset.Position(n.Pos()), obj.Name())
				}
			}
			return true
		})
	}
}

// TestSizeHazardsCaught runs the toolchain check on testdata/ifacecmp,
// which has one of each size hazard and two allowed comparisons.
func TestSizeHazardsCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	const path = module + "/internal/devicerule/testdata/ifacecmp"
	c := newToolchainChecker(t, moduleRoot(t), map[string]string{path: filepath.Join("testdata", "ifacecmp")})
	if _, err := c.Import(path); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(c.errs, "\n")
	for _, want := range []string{
		"interface comparison err == errA",
		"interface comparison errA != err",
		"switch on an interface value err",
		"errors.Is (use internal/errs)",
		"errors.As (use internal/errs)",
		"array comparison d == [16]byte{} (use bytes.Equal)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("not reported: %s; reported:\n%s", want, all)
		}
	}
	if len(c.errs) != 6 {
		t.Errorf("%d reports, want 6 (err != nil and the [8]byte comparison are allowed):\n%s", len(c.errs), all)
	}
}
