package trust

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestInitOpen(t *testing.T) {
	for _, suite := range []Suite{SuiteP256, SuiteEd25519} {
		t.Run(string(suite), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ctx")
			vendor := NewUUID()
			c, err := Init(dir, &InitOptions{Suite: suite, VendorID: &vendor})
			if err != nil {
				t.Fatal(err)
			}
			if c.VendorID() != vendor {
				t.Errorf("vendor ID not set from options")
			}
			c2, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c2.Suite() != suite || c2.ClassID() != c.ClassID() {
				t.Errorf("reopened context differs")
			}
			for _, role := range []KeyRole{RootKey, ImageSigningKey, UpdateAuthorityKey, DeviceCAKey} {
				s, err := c2.Signer(role)
				if err != nil {
					t.Fatalf("%v: %v", role, err)
				}
				if got, _ := suiteOf(s.Public()); got != suite {
					t.Errorf("%v key has suite %v", role, got)
				}
			}
			for _, f := range []func() (any, error){
				func() (any, error) { return c2.ClassKey() },
				func() (any, error) { return c2.EscrowKey() },
			} {
				if _, err := f(); err != nil {
					t.Fatal(err)
				}
			}
			// Private keys are 0600.
			fi, err := os.Stat(filepath.Join(dir, "keys", "root.key"))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("root.key mode = %v, %v", fi.Mode().Perm(), err)
			}
			// The device CA chains to the root.
			pool := x509.NewCertPool()
			pool.AddCert(c2.RootCertificate())
			if _, err := c2.DeviceCACertificate().Verify(x509.VerifyOptions{Roots: pool}); err != nil {
				t.Errorf("device CA does not verify against the root: %v", err)
			}
			info, err := c2.Info()
			if err != nil {
				t.Fatal(err)
			}
			raw := c2.RootCertificate().PublicKey
			_ = raw
			if info.CAChain != c2.CAChainPath() || len(info.RootKeyID) != 64 {
				t.Errorf("info = %+v", info)
			}
			if openssl, err := exec.LookPath("openssl"); err == nil {
				out, err := exec.Command(openssl, "verify", "-CAfile", c2.Path("root.crt"), c2.Path("device-ca.crt")).CombinedOutput()
				if err != nil {
					t.Errorf("openssl verify device CA: %v\n%s", err, out)
				}
			}
		})
	}
}

func TestInitRefusesExisting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ctx")
	if _, err := Init(dir, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "keys", "root.key"))
	if _, err := Init(dir, nil); !errors.Is(err, ErrExists) {
		t.Fatalf("second Init: err = %v, want ErrExists", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "keys", "root.key"))
	if sha256.Sum256(before) != sha256.Sum256(after) {
		t.Fatal("second Init changed the root key")
	}
	// A non-empty directory that is not a context is refused too.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644)
	if _, err := Init(other, nil); !errors.Is(err, ErrExists) {
		t.Fatalf("Init into non-empty dir: err = %v", err)
	}
}

func TestPassphrase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ctx")
	if _, err := Init(dir, &InitOptions{Passphrase: []byte("hunter2")}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "keys", "image-signing.key"))
	if _, err := ParsePrivateKey(data, nil); !errors.Is(err, ErrPassphraseRequired) {
		t.Errorf("no passphrase: err = %v", err)
	}
	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err) // public material needs no passphrase
	}
	if _, err := c.Signer(ImageSigningKey); !errors.Is(err, ErrPassphraseRequired) {
		t.Errorf("Signer without passphrase: err = %v", err)
	}
	c, _ = Open(dir, &OpenOptions{Passphrase: func() ([]byte, error) { return []byte("wrong"), nil }})
	if _, err := c.Signer(ImageSigningKey); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: err = %v", err)
	}
	c, _ = Open(dir, &OpenOptions{Passphrase: func() ([]byte, error) { return []byte("hunter2"), nil }})
	if _, err := c.Signer(ImageSigningKey); err != nil {
		t.Errorf("right passphrase: %v", err)
	}
}

func TestOpenRejectsSwappedKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ctx")
	if _, err := Init(dir, nil); err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(filepath.Join(dir, "keys", "device-ca.key"))
	os.WriteFile(filepath.Join(dir, "keys", "root.key"), ca, 0o600)
	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Signer(RootKey); err == nil {
		t.Fatal("a root key that does not match the root certificate was accepted")
	}
}

func TestOpenBadConfig(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":       "this is = = not toml",
		"unknown field": "format = 1\nsuite = \"p256\"\nsurprise = 1\n",
		"bad suite":     "format = 1\nsuite = \"rsa\"\n",
		"future format": "format = 9\nsuite = \"p256\"\n",
		"bad vendor id": "format = 1\nsuite = \"p256\"\nvendor_id = \"xyz\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, ConfigFile), []byte(content), 0o644)
			if _, err := Open(dir, nil); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := Open(t.TempDir(), nil); err == nil {
		t.Fatal("opened an empty directory")
	}
}
