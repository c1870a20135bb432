//go:build !cgo

package trust

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestNoCgo checks that without cgo a token context says why it cannot
// be used (run with CGO_ENABLED=0 go test ./trust -run NoCgo).
func TestNoCgo(t *testing.T) {
	uri := "pkcs11:token=t?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1"
	dir := filepath.Join(t.TempDir(), "ctx")
	if _, err := Init(dir, &InitOptions{PKCS11: uri}); !errors.Is(err, ErrNoCgo) {
		t.Fatalf("Init: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatal("Init left a directory")
	}
	// A token context made elsewhere: public material opens, keys do not.
	if _, err := Init(dir, nil); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, ConfigFile)
	b, _ := os.ReadFile(cfg)
	b = bytes.Replace(b, []byte("encrypted = false"), []byte("encrypted = false\nkeystore = \"pkcs11\""), 1)
	for _, k := range []string{"root", "image-signing", "update-authority", "device-ca", "class-ka", "escrow"} {
		b = bytes.Replace(b, []byte(`"keys/`+k+`.key"`), []byte(`"pkcs11:token=t;object=sbm-`+k+`?module-path=/m.so"`), 1)
	}
	os.WriteFile(cfg, b, 0o644)
	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Signer(ImageSigningKey); !errors.Is(err, ErrNoCgo) {
		t.Fatalf("Signer: %v", err)
	}
	if _, err := c.EscrowKey(); !errors.Is(err, ErrNoCgo) {
		t.Fatalf("EscrowKey: %v", err)
	}
	if _, err := c.ExportClassKey(); !errors.Is(err, ErrNotExportable) {
		t.Fatalf("ExportClassKey: %v", err)
	}
}
