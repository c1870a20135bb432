//go:build cgo

package trust

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbm-project/sbm/internal/softhsm"
)

// checkSigns signs a message with s and verifies it with pub.
func checkSigns(t *testing.T, s crypto.Signer, pub crypto.PublicKey) {
	t.Helper()
	msg := []byte("sbm pkcs11 test")
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.VerifyASN1(k, d[:], sig) {
			t.Fatal("token ECDSA signature (DER) does not verify")
		}
	case ed25519.PublicKey:
		sig, err := s.Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		if !ed25519.Verify(k, msg, sig) {
			t.Fatal("token Ed25519 signature does not verify")
		}
	default:
		t.Fatalf("public key %T", pub)
	}
}

// checkAgrees derives a shared secret with k and checks it against a
// software peer's.
func checkAgrees(t *testing.T, k KeyAgreer) {
	t.Helper()
	peer, err := k.PublicKey().Curve().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	z1, err := k.ECDH(peer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	z2, err := peer.ECDH(k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(z1, z2) {
		t.Fatal("token ECDH secret differs from the peer's")
	}
}

func TestPKCS11Init(t *testing.T) {
	for _, suite := range []Suite{SuiteP256, SuiteEd25519} {
		t.Run(string(suite), func(t *testing.T) {
			tok := softhsm.NewToken(t, "sbm-"+string(suite))
			dir := filepath.Join(t.TempDir(), "ctx")
			c, err := Init(dir, &InitOptions{Suite: suite, PKCS11: tok.URI})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Keystore() != KeystorePKCS11 {
				t.Fatalf("keystore %q", c.Keystore())
			}
			// Nothing private in the directory.
			if _, err := os.Stat(filepath.Join(dir, "keys")); !os.IsNotExist(err) {
				t.Fatalf("keys directory: %v", err)
			}
			filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() {
					b, _ := os.ReadFile(p)
					if bytes.Contains(b, []byte("PRIVATE KEY")) {
						t.Errorf("%s holds a private key", p)
					}
				}
				return nil
			})
			cfg, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
			if !bytes.Contains(cfg, []byte(`keystore = "pkcs11"`)) || bytes.Contains(cfg, []byte("pin-value")) || !bytes.Contains(cfg, []byte("object=sbm-root")) {
				t.Fatalf("context.toml:\n%s", cfg)
			}
			// Reopen, as every command does.
			c2, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			for _, role := range []KeyRole{RootKey, ImageSigningKey, UpdateAuthorityKey, DeviceCAKey} {
				s, err := c2.Signer(role)
				if err != nil {
					t.Fatalf("%v: %v", role, err)
				}
				checkSigns(t, s, s.Public())
			}
			checkSigns(t, must(c2.Signer(RootKey)), c2.RootPublicKey())
			for _, get := range []func() (KeyAgreer, error){c2.ClassKey, c2.EscrowKey} {
				k, err := get()
				if err != nil {
					t.Fatal(err)
				}
				checkAgrees(t, k)
			}
			// No key can be exported.
			if _, err := c2.ExportClassKey(); !errors.Is(err, ErrNotExportable) || !strings.Contains(err.Error(), "provision without --class-key") {
				t.Fatalf("ExportClassKey: %v", err)
			}
			tk := c2.tok.(*token)
			for _, loc := range []string{c2.cfg.Keys.Root, c2.cfg.Keys.ClassKeyAgreement, c2.cfg.Keys.Escrow} {
				u, _ := ParsePKCS11URI(loc)
				if v, err := tk.readValue(u); !errors.Is(err, ErrNotExportable) {
					t.Fatalf("read CKA_VALUE of %s: %x, %v", u.Object, v, err)
				}
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestPKCS11Errors checks that a wrong PIN, a missing token, module or
// object give clear errors, and that a failed Init leaves nothing behind.
func TestPKCS11Errors(t *testing.T) {
	tok := softhsm.NewToken(t, "sbm-errors")
	wrongPIN := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrongPIN, []byte("0000\n"), 0o600)
	base := "pkcs11:token=sbm-errors?module-path=" + tok.Module
	tests := []struct {
		name, uri string
		want      error
		msg       string
	}{
		{"wrong PIN", base + "&pin-source=" + wrongPIN, ErrWrongPIN, "refused the PIN"},
		{"wrong PIN value", base + "&pin-value=1111", ErrWrongPIN, "refused the PIN"},
		{"no PIN", base, ErrPINRequired, "needs a PIN"},
		{"missing token", "pkcs11:token=nosuch?module-path=" + tok.Module + "&pin-source=" + tok.PINFile, ErrTokenNotFound, `"nosuch"`},
		{"missing module", "pkcs11:token=sbm-errors?module-path=/nonexistent/lib.so&pin-source=" + tok.PINFile, os.ErrNotExist, "/nonexistent/lib.so"},
		{"no module-path", "pkcs11:token=sbm-errors?pin-source=" + tok.PINFile, ErrBadURI, "module-path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ctx")
			_, err := Init(dir, &InitOptions{PKCS11: tt.uri})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Init: %v, want %v (%q)", err, tt.want, tt.msg)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("the context directory exists after a failed Init: %v", err)
			}
			ents, _ := os.ReadDir(filepath.Dir(dir))
			if len(ents) != 0 {
				t.Fatalf("left behind: %v", ents)
			}
		})
	}

	// A context in the token; a second one with the same labels is
	// refused before anything is made.
	dir := filepath.Join(t.TempDir(), "ctx")
	c, err := Init(dir, &InitOptions{PKCS11: tok.URI})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	dir2 := filepath.Join(t.TempDir(), "ctx2")
	if _, err := Init(dir2, &InitOptions{PKCS11: tok.URI}); !errors.Is(err, ErrObjectExists) {
		t.Fatalf("second Init with the same labels: %v", err)
	}
	if _, err := os.Stat(dir2); !os.IsNotExist(err) {
		t.Fatal("the refused context directory exists")
	}
	// Another prefix works in the same token.
	c3, err := Init(dir2, &InitOptions{PKCS11: strings.Replace(tok.URI, "?", ";object=other?", 1)})
	if err != nil {
		t.Fatal(err)
	}
	c3.Close()

	// A missing object: the context names a label the token lacks.
	cfg := filepath.Join(dir, ConfigFile)
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(b, []byte("object=sbm-escrow"), []byte("object=sbm-gone"), 1), 0o644)
	c4, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	if _, err := c4.Signer(RootKey); err != nil {
		t.Fatal(err)
	}
	if _, err := c4.EscrowKey(); !errors.Is(err, ErrObjectNotFound) || !strings.Contains(err.Error(), `"sbm-gone"`) {
		t.Fatalf("EscrowKey with a missing object: %v", err)
	}
}
