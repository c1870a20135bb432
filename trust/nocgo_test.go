package trust

import (
	"os"
	"os/exec"
	"testing"
)

// TestBuildWithoutCgo checks that the package (and so sbm) still builds
// with CGO_ENABLED=0, where PKCS#11 keystores answer ErrNoCgo.
func TestBuildWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package again without cgo")
	}
	// go test puts its own go first in PATH.
	cmd := exec.Command("go", "build", "-o", os.DevNull, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
}
