//go:build cgo

package trust

import (
	"bytes"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sbm-project/sbm/internal/pkcs8"
	"github.com/sbm-project/sbm/internal/softhsm"
)

// encryptContext encrypts the key files of the file context in dir with
// pass, with few PBKDF2 iterations to keep the test fast.
func encryptContext(t *testing.T, dir string, pass []byte) {
	t.Helper()
	keys, _ := filepath.Glob(filepath.Join(dir, "keys", "*.key"))
	for _, f := range keys {
		b, _ := os.ReadFile(f)
		block, _ := pem.Decode(b)
		enc, err := pkcs8.Encrypt(block.Bytes, pass, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, ConfigFile)
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(b, []byte("encrypted = false"), []byte("encrypted = true"), 1), 0o644)
}

func TestPKCS11ImportKeys(t *testing.T) {
	tests := []struct {
		name  string
		suite Suite
		pass  []byte
	}{
		{"p256", SuiteP256, nil},
		{"ed25519 encrypted", SuiteEd25519, []byte("correct horse")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := softhsm.NewToken(t, "sbm-import")
			dir := filepath.Join(t.TempDir(), "ctx")
			fc, err := Init(dir, &InitOptions{Suite: tt.suite})
			if err != nil {
				t.Fatal(err)
			}
			if tt.pass != nil {
				encryptContext(t, dir, tt.pass)
			}
			rootPub := fc.RootPublicKey()
			escrowPub := fc.EscrowPublicKey()
			before, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
			if tt.pass != nil {
				// Refused without the passphrase; nothing changes.
				if err := ImportKeys(dir, tok.URI, nil); !errors.Is(err, ErrPassphraseRequired) {
					t.Fatalf("ImportKeys without the passphrase: %v", err)
				}
				if after, _ := os.ReadFile(filepath.Join(dir, ConfigFile)); !bytes.Equal(before, after) {
					t.Fatal("context.toml changed")
				}
			}
			// A wrong PIN: nothing changes.
			bad := filepath.Join(t.TempDir(), "pin")
			os.WriteFile(bad, []byte("9999\n"), 0o600)
			if err := ImportKeys(dir, "pkcs11:token=sbm-import?module-path="+tok.Module+"&pin-source="+bad, &ImportOptions{Passphrase: tt.pass}); !errors.Is(err, ErrWrongPIN) {
				t.Fatalf("ImportKeys with a wrong PIN: %v", err)
			}
			if after, _ := os.ReadFile(filepath.Join(dir, ConfigFile)); !bytes.Equal(before, after) {
				t.Fatal("context.toml changed")
			}
			if err := ImportKeys(dir, tok.URI, &ImportOptions{Passphrase: tt.pass}); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, "keys")); !os.IsNotExist(err) {
				t.Fatalf("key directory after import: %v", err)
			}
			c, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Keystore() != KeystorePKCS11 || c.Encrypted() {
				t.Fatalf("keystore %s, encrypted %v", c.Keystore(), c.Encrypted())
			}
			root, err := c.Signer(RootKey)
			if err != nil {
				t.Fatal(err)
			}
			checkSigns(t, root, rootPub)
			for _, role := range []KeyRole{ImageSigningKey, UpdateAuthorityKey, DeviceCAKey} {
				s, err := c.Signer(role)
				if err != nil {
					t.Fatal(err)
				}
				checkSigns(t, s, s.Public())
			}
			ek, err := c.EscrowKey()
			if err != nil {
				t.Fatal(err)
			}
			if !ek.PublicKey().Equal(escrowPub) {
				t.Fatal("escrow key changed")
			}
			checkAgrees(t, ek)
			ck, err := c.ClassKey()
			if err != nil {
				t.Fatal(err)
			}
			checkAgrees(t, ck)
			u, _ := ParsePKCS11URI(c.cfg.Keys.Root)
			if _, err := c.tok.(*token).readValue(u); !errors.Is(err, ErrNotExportable) {
				t.Fatalf("the imported root key is extractable: %v", err)
			}
			// A token context cannot be imported again.
			if err := ImportKeys(dir, tok.URI, nil); !errors.Is(err, ErrNotFileContext) {
				t.Fatalf("second ImportKeys: %v", err)
			}
		})
	}
}
