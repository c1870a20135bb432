package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// quickstartBlock returns the shell block of README.md's "Quick start"
// section: the first ```sh fence after the heading, before the next
// section.
func quickstartBlock(readme string) (string, error) {
	_, sec, ok := strings.Cut(readme, "\n## Quick start\n")
	if !ok {
		return "", errors.New("README.md has no \"## Quick start\" section")
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	_, block, ok := strings.Cut("\n"+sec, "\n```sh\n")
	if !ok {
		return "", errors.New("the Quick start has no ```sh block")
	}
	block, _, ok = strings.Cut(block, "\n```\n")
	if !ok {
		return "", errors.New("the Quick start's ```sh block is not closed")
	}
	return block + "\n", nil
}

// quickstartScript adapts the Quick start for the test, changing only what
// cannot run here as written: the "go install" line is dropped (the test
// puts a freshly built sbm first on PATH instead, without touching the
// user's GOPATH/bin), and the fixed TCP port 7000 becomes a free one, so
// that parallel test runs do not collide.
func quickstartScript(block string, port int) (string, error) {
	var out []string
	installs := 0
	for _, line := range strings.Split(block, "\n") {
		if strings.HasPrefix(line, "go install ./cmd/sbm") {
			installs++
			out = append(out, "# (go install: the test's sbm is on PATH)")
			continue
		}
		out = append(out, line)
	}
	if installs != 1 {
		return "", fmt.Errorf("the Quick start has %d \"go install ./cmd/sbm\" lines, want 1", installs)
	}
	s := strings.Join(out, "\n")
	if !strings.Contains(s, "127.0.0.1:7000") {
		return "", errors.New("the Quick start does not use tcp:127.0.0.1:7000")
	}
	return strings.ReplaceAll(s, "127.0.0.1:7000", "127.0.0.1:"+strconv.Itoa(port)), nil
}

func TestQuickstartScript(t *testing.T) {
	tests := []struct {
		name, readme, want string
	}{
		{"ok", "x\n## Quick start\n\ntext\n```sh\ngo install ./cmd/sbm   # c\nsbm program --port tcp:127.0.0.1:7000\n```\n\n## Next\n", "# (go install: the test's sbm is on PATH)\nsbm program --port tcp:127.0.0.1:1234\n"},
		{"no section", "## Other\n```sh\nx\n```\n", "no \"## Quick start\""},
		{"no block", "x\n## Quick start\n    go install ./cmd/sbm\n## Next\n```sh\nx\n```\n", "no ```sh block"},
		{"not closed", "x\n## Quick start\n```sh\ngo install ./cmd/sbm\n", "not closed"},
		{"no install", "x\n## Quick start\n```sh\nsbm program --port tcp:127.0.0.1:7000\n```\n", "0 \"go install"},
		{"no port", "x\n## Quick start\n```sh\ngo install ./cmd/sbm\n```\n", "does not use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			block, err := quickstartBlock(tt.readme)
			var s string
			if err == nil {
				s, err = quickstartScript(block, 1234)
			}
			if tt.name == "ok" {
				if err != nil || s != tt.want {
					t.Fatalf("got %q, %v; want %q", s, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestQuickstart runs README.md's Quick start as written (see
// quickstartScript for the two substitutions) with bash, from the
// repository root, with a freshly built sbm first on PATH and TMPDIR in the
// test's directory (the block's mktemp -d). It checks that the device ended
// up running the programmed application and was stopped cleanly.
func TestQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds sbm and the example application")
	}
	for _, tool := range []string{"bash", "go", "openssl", "cmp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block, err := quickstartBlock(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	script, err := quickstartScript(block, port)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, "sbm"), "./cmd/sbm")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sbm: %v\n%s", err, out)
	}
	scratch := filepath.Join(tmp, "tmp")
	if err := os.Mkdir(scratch, 0o755); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", "set -x\n"+script)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "TMPDIR="+scratch)
	// Its own process group, so that a failure halfway does not leave the
	// backgrounded sbm device run behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // anything left behind
	}
	t.Logf("Quick start took %v", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("Quick start failed: %v\n--- stdout\n%s\n--- stderr (trace)\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		`dev.crt: OK`,
		`(?m)^device [0-9a-f]{32}: SBM \S+, application none; programming app.pkg 1.0.0 \(\d+ bytes\)$`,
		`(?m)^installed; device reset into the new application$`,
		`(?m)^ *lifecycle:? +locked\b`,
		`(?m)^ *application:? +1\.0\.0\b`,
		`(?m)^sbm: verified application 1\.0\.0 `,
		`(?m)^vmcu: power off$`,
		`(?m)^attestation verified: device [0-9a-f]{32} \(locked\)$`,
		`(?m)^attestation verified: (.*\n)* +application:? +1\.0\.0\b`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("Quick start output does not match %q", want)
		}
	}
	if strings.Contains(out, "application stopped") {
		t.Errorf("the application did not run")
	}
	if bytes.Contains(stderr.Bytes(), []byte("\x1b")) || bytes.Contains(stderr.Bytes(), []byte("\r")) {
		t.Errorf("escape codes or carriage returns on a stderr that is not a terminal:\n%q", stderr.String())
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("--- stdout\n%s\n--- stderr (trace)\n%s", out, stderr.String())
	}
}
