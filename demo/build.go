package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// modulePath is the project's Go module, whose examples the demo builds.
const modulePath = "github.com/sbm-project/sbm"

// findSource returns the root of the project's source tree: dir if given,
// else the first parent of the working directory holding its go.mod.
func findSource(dir string) (string, error) {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		for d := wd; ; d = filepath.Dir(d) {
			if isModuleRoot(d) {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
		return "", errors.New("the demo builds the example applications from source: run it inside the project's source tree, or give --source DIR")
	}
	if !isModuleRoot(dir) {
		return "", fmt.Errorf("%s is not the root of the %s source tree", dir, modulePath)
	}
	return dir, nil
}

func isModuleRoot(d string) bool {
	b, err := os.ReadFile(filepath.Join(d, "go.mod"))
	return err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module "+modulePath))
}

// buildWasm builds an example application for the virtual microcontroller
// (GOOS=wasip1 GOARCH=wasm) with version stamped in, and returns its bytes.
func buildWasm(ctx context.Context, src, example, version, out string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", out, "./examples/"+example)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building examples/%s: %v\n%s", example, err, strings.TrimSpace(string(b)))
	}
	return os.ReadFile(out)
}
