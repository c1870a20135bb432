package firmware

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cacheDir is where scripts/firmware.sh keeps the firmware toolchain.
func cacheDir() string {
	if d := os.Getenv("SBM_FIRMWARE_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "sbm-firmware")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "sbm-firmware")
}

// TestFirmwareBootsUnderQEMU builds the firmware with scripts/firmware.sh
// and boots every variant under QEMU (the script checks each one reports
// success). It takes minutes, so it runs only when asked for and when the
// toolchain is already cached (it never installs LLVM or builds TinyGo):
//
//	./scripts/firmware.sh   # once: installs and caches the toolchain
//	SBM_FIRMWARE_TEST=1 go test ./firmware -run TestFirmwareBootsUnderQEMU -v
//
// SBM_FIRMWARE_BOARDS="mps2-an385 mps2-an505" (passed on to the script)
// also builds and boots the Cortex-M33 board.
func TestFirmwareBootsUnderQEMU(t *testing.T) {
	if os.Getenv("SBM_FIRMWARE_TEST") != "1" {
		t.Skip("firmware build not requested: set SBM_FIRMWARE_TEST=1 (takes minutes; see docs/silicon.md)")
	}
	tinygo := filepath.Join(cacheDir(), "tinygo-0.37.0", "bin", "tinygo")
	if _, err := os.Stat(tinygo); err != nil {
		t.Skipf("firmware toolchain not cached (%s missing): run ./scripts/firmware.sh once", tinygo)
	}
	for _, tool := range []string{"qemu-system-arm", "ld.lld-16", "llvm-size-16"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: run ./scripts/firmware.sh once", tool)
		}
	}
	start := time.Now()
	cmd := exec.Command("bash", filepath.Join("..", "scripts", "firmware.sh"))
	cmd.Env = append(os.Environ(), "SBM_FIRMWARE_OUT="+t.TempDir())
	out, err := cmd.CombinedOutput()
	t.Logf("scripts/firmware.sh (%v):\n%s", time.Since(start).Round(time.Second), out)
	if err != nil {
		t.Fatalf("scripts/firmware.sh: %v", err)
	}
	log := string(out)
	for _, want := range []string{
		"sha256(\"abc\") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"variant full", "variant ed25519", "variant p256",
		"sbm: no SBM installed",
		"ok   Ed25519 sign, verify, refuse a forgery",
		"ok   P-256 sign, verify, refuse a forgery",
		"ok   cose.VerifySignature EdDSA",
		"ok   x509lite.CheckSignature ES256",
		"sbm core linked",
		"== ok",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("firmware output lacks %q", want)
		}
	}
	if strings.Contains(log, "FAIL") {
		t.Error("a firmware self-check failed")
	}
}
