// Package softhsm makes fresh SoftHSM2 tokens for tests of PKCS#11
// keystores: a temporary SOFTHSM2_CONF and token directory per test, a
// token initialised with softhsm2-util, and the pkcs11: URI naming it.
package softhsm

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Modules lists where Debian and other distributions install the SoftHSM2
// PKCS#11 module.
var Modules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// PIN and SOPIN are the PINs of the tokens NewToken makes.
const (
	PIN   = "4321"
	SOPIN = "87654321"
)

// Module returns the path of the SoftHSM2 module, or "" if it (or
// softhsm2-util) is not installed.
func Module() string {
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		return ""
	}
	for _, m := range Modules {
		if _, err := os.Stat(m); err == nil {
			return m
		}
	}
	return ""
}

// Require returns the module path, or skips the test if SoftHSM2 is
// absent, unless the CI environment variable is set: there it fails, so
// that CI cannot silently skip the token tests.
func Require(t testing.TB) string {
	t.Helper()
	m := Module()
	if m == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("SoftHSM2 is not installed (apt-get install softhsm2; scripts/test.sh does it) and CI is set: the PKCS#11 tests cannot be skipped")
		}
		t.Skip("SoftHSM2 is not installed (apt-get install softhsm2): skipping the PKCS#11 token tests")
	}
	return m
}

// Token is a fresh SoftHSM2 token.
type Token struct {
	// Label is the token label.
	Label string
	// Module is the PKCS#11 module path.
	Module string
	// Conf is the SOFTHSM2_CONF file (set in the test's environment).
	Conf string
	// PINFile holds PIN on its first line.
	PINFile string
	// URI names the token, with pin-source=PINFile.
	URI string
}

// Env returns SOFTHSM2_CONF=… for a child process's environment.
func (tk *Token) Env() string { return "SOFTHSM2_CONF=" + tk.Conf }

// NewToken makes a temporary SoftHSM2 configuration with one initialised
// token labelled label (user PIN PIN) and points SOFTHSM2_CONF at it for
// the rest of the test (so tests using it cannot run in parallel).
func NewToken(t testing.TB, label string) *Token {
	t.Helper()
	m := Require(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte(PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	cmd := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SOPIN)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return &Token{
		Label: label, Module: m, Conf: conf, PINFile: pinFile,
		URI: "pkcs11:token=" + label + "?module-path=" + m + "&pin-source=" + pinFile,
	}
}
