//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// memProbe is the name under which this test binary runs the CLI and then
// reports its own peak RSS (VmHWM) to the file named by $SBM_MEMPROBE_OUT.
// The child measures itself because the rusage of a child of a Go process
// counts the parent's RSS at the fork (the child shares its memory until it
// executes the program).
const memProbe = "sbm-memprobe"

func init() {
	if filepath.Base(os.Args[0]) != memProbe {
		return
	}
	code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			os.WriteFile(os.Getenv("SBM_MEMPROBE_OUT"), []byte(strings.TrimSpace(v)), 0o644)
		}
	}
	os.Exit(code)
}

// TestMemoryBounded runs the CLI (this test binary, linked as
// "sbm-memprobe") as a child process on images of 1, 16 and 64 MiB and checks that the peak
// RSS of image create, image verify (with a key: every chunk and the
// digest), image verify --extract, upk issue and image inspect does not
// grow with the image: at every size it stays within 2× the 1 MiB figure
// plus 4 MiB. Before streaming, create and extract peaked at about 3× the
// image (205 MiB for 64 MiB). -short skips the 64 MiB case. go test -v
// prints the figures.
func TestMemoryBounded(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	probe := filepath.Join(dir, memProbe)
	if err := os.Symlink(exe, probe); err != nil {
		t.Fatal(err)
	}
	ctx := filepath.Join(dir, "ctx")
	if _, err := peakRSS(t, probe, "context", "init", ctx); err != nil {
		t.Fatal(err)
	}
	sizes := []int{1, 16, 64}
	if testing.Short() {
		sizes = sizes[:2]
	}
	steps := []string{"create", "verify", "extract", "upk issue", "inspect"}
	peaks := map[string][]int64{}
	for _, mib := range sizes {
		in := filepath.Join(dir, fmt.Sprintf("in%d.bin", mib))
		writePattern(t, in, mib<<20)
		pkg := filepath.Join(dir, fmt.Sprintf("p%d.pkg", mib))
		out := filepath.Join(dir, fmt.Sprintf("out%d.bin", mib))
		runs := [][]string{
			{"image", "create", "--context", ctx, "--version", "1.0.0", "--class-upk", "--out", pkg, in},
			{"image", "verify", "--context", ctx, "--key", filepath.Join(ctx, "keys", "class-ka.key"), pkg},
			{"image", "verify", "--context", ctx, "--key", filepath.Join(ctx, "keys", "class-ka.key"), "--extract", out, pkg},
			{"upk", "issue", "--context", ctx, "--package", pkg, "--class", "--out", filepath.Join(dir, fmt.Sprintf("u%d.upk", mib))},
			{"image", "inspect", pkg},
		}
		for i, args := range runs {
			kib, err := peakRSS(t, probe, args...)
			if err != nil {
				t.Fatalf("%d MiB, %s: %v", mib, steps[i], err)
			}
			peaks[steps[i]] = append(peaks[steps[i]], kib)
		}
		if fi, err := os.Stat(out); err != nil || fi.Size() != int64(mib<<20) {
			t.Fatalf("%d MiB: extracted plaintext: %v", mib, err)
		}
		os.Remove(in)
		os.Remove(pkg)
		os.Remove(out)
	}
	for _, s := range steps {
		var cols []string
		for i, kib := range peaks[s] {
			cols = append(cols, fmt.Sprintf("%d MiB: %.1f MiB", sizes[i], float64(kib)/1024))
			if limit := 2*peaks[s][0] + 4<<10; kib > limit {
				t.Errorf("%s: peak RSS %d KiB for %d MiB, over 2× the 1 MiB peak (%d KiB) + 4 MiB", s, kib, sizes[i], peaks[s][0])
			}
		}
		t.Logf("peak RSS of %-11s %s", s+":", strings.Join(cols, ", "))
	}
}

// peakRSS runs the CLI with args and returns its peak resident set size in
// KiB, as it reports it.
func peakRSS(t *testing.T, probe string, args ...string) (int64, error) {
	t.Helper()
	report := filepath.Join(t.TempDir(), "vmhwm")
	cmd := exec.Command(probe, args...)
	cmd.Env = append(os.Environ(), "SBM_MEMPROBE_OUT="+report)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%w: %s", err, stderr.String())
	}
	b, err := os.ReadFile(report)
	if err != nil {
		return 0, fmt.Errorf("no VmHWM report: %w", err)
	}
	var kib int64
	if _, err := fmt.Sscanf(string(b), "%d kB", &kib); err != nil {
		return 0, fmt.Errorf("VmHWM %q: %w", b, err)
	}
	return kib, nil
}

// writePattern writes size bytes of a varied pattern to path, 1 MiB at a
// time.
func writePattern(t *testing.T, path string, size int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 1<<20)
	for off := 0; off < size; off += len(block) {
		for i := range block {
			block[i] = byte((off + i) * 31 >> 3)
		}
		if _, err := f.Write(block[:min(len(block), size-off)]); err != nil {
			t.Fatal(err)
		}
	}
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
