package trust_test

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/internal/softhsm"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
)

var rotNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func pkgOf(t *testing.T, c *trust.Context, version string, rev []byte) *image.Created {
	t.Helper()
	cr, err := image.Create(c, &firmware.Image{Data: []byte("application " + version), Format: firmware.FormatBinary},
		&image.CreateOptions{Version: version, SecurityCounter: 1, Revocation: rev, Now: func() time.Time { return rotNow }})
	if err != nil {
		t.Fatal(err)
	}
	return cr
}

// testRotation rotates c's image-signing, update-authority and device CA
// keys and revokes the old image-signing key, checking what a device's
// verifier would: epochs, the revocation statement, and that the old
// key's package is refused once the floor is raised.
func testRotation(t *testing.T, c *trust.Context) {
	old := pkgOf(t, c, "1.0.0", nil)
	anchors := func() *secpkg.Anchors {
		a, err := image.Anchors(c)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if _, err := c.Revoke(trust.ImageSigningKey, 1, rotNow); !errors.Is(err, trust.ErrEpoch) {
		t.Fatalf("revoking the current key: %v", err)
	}
	oldCA := c.DeviceCACertificate()
	for _, role := range []trust.KeyRole{trust.ImageSigningKey, trust.UpdateAuthorityKey, trust.DeviceCAKey} {
		if e, err := c.Rotate(role, rotNow); err != nil || e != 1 || c.Epoch(role) != 1 {
			t.Fatalf("rotate %s: epoch %d, %v", role, e, err)
		}
	}
	// The context reopens with the new keys.
	c2, err := trust.Open(c.Dir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.Epoch(trust.ImageSigningKey) != 1 || c2.DeviceCACertificate().Equal(oldCA) {
		t.Fatal("rotation not recorded in context.toml")
	}
	// The CA chain holds the new and the old device CA, then the root.
	chain, err := os.ReadFile(c.CAChainPath())
	if err != nil || strings.Count(string(chain), "BEGIN CERTIFICATE") != 3 {
		t.Fatalf("ca chain: %d certificates, %v", strings.Count(string(chain), "BEGIN CERTIFICATE"), err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.RootCertificate())
	for _, ca := range []*x509.Certificate{oldCA, c.DeviceCACertificate()} {
		if _, err := ca.Verify(x509.VerifyOptions{Roots: roots}); err != nil {
			t.Fatalf("device CA does not chain to the root: %v", err)
		}
	}

	rev, err := c.Revoke(trust.ImageSigningKey, 1, rotNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Revoke(trust.DeviceCAKey, 1, rotNow); err == nil {
		t.Fatal("a device CA revocation statement was made")
	}
	if _, err := c.Revoke(trust.ImageSigningKey, 2, rotNow); !errors.Is(err, trust.ErrEpoch) {
		t.Fatalf("revoking beyond the current epoch: %v", err)
	}
	// The new key's package carries the statement; UPKs come from the
	// new update-authority key.
	newPkg := pkgOf(t, c, "2.0.0", rev)
	a := anchors()
	m, err := secpkg.VerifyManifest(a, newPkg.Package.Manifest)
	if err != nil || m.SignerEpoch != 1 || m.Revocation == nil || m.Revocation.MinEpoch != 1 || m.Revocation.Role != secpkg.RoleImageSigning {
		t.Fatalf("new package: %v %+v", err, m)
	}
	u, err := upk.Issue(c, newPkg.Package.Manifest, &newPkg.CEK, upk.ClassRecipient(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pu, err := secpkg.VerifyUPK(a, u); err != nil || pu.SignerEpoch != 1 {
		t.Fatalf("UPK after rotation: %v", err)
	}
	// A device that applied the statement refuses the old key's package.
	a.MinEpoch[secpkg.RoleImageSigning] = m.Revocation.MinEpoch
	if _, err := secpkg.VerifyManifest(a, old.Package.Manifest); !errors.Is(err, secpkg.ErrRevoked) {
		t.Fatalf("old key's package after revocation: %v", err)
	}
	if _, err := secpkg.VerifyManifest(a, newPkg.Package.Manifest); err != nil {
		t.Fatal(err)
	}
	// Statements from another context are refused by image create.
	other, err := trust.Init(filepath.Join(t.TempDir(), "other"), &trust.InitOptions{Suite: c.Suite()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := image.Create(other, &firmware.Image{Data: []byte("x"), Format: firmware.FormatBinary},
		&image.CreateOptions{Version: "1.0.0", Revocation: rev}); err == nil {
		t.Fatal("a foreign revocation statement was accepted")
	}
}

func TestRotateFiles(t *testing.T) {
	for _, s := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		t.Run(string(s), func(t *testing.T) {
			c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), &trust.InitOptions{Suite: s})
			if err != nil {
				t.Fatal(err)
			}
			testRotation(t, c)
			if _, err := os.Stat(c.Path("keys/image-signing.1.key")); err != nil {
				t.Fatalf("new key file: %v", err)
			}
		})
	}
}

func TestRotatePKCS11(t *testing.T) {
	tok := softhsm.NewToken(t, "sbm-rotate")
	c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), &trust.InitOptions{Suite: trust.SuiteP256, PKCS11: tok.URI})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testRotation(t, c)
	if _, err := os.Stat(c.Path("keys")); !os.IsNotExist(err) {
		t.Fatal("rotation wrote a key file into a token context")
	}
}

// testRootRotation moves c through its three roots: each rotation makes a
// transition statement of the previous root naming the next slot's key,
// re-certifies the subordinate keys and the device CA under the new root,
// and every later package carries the statement; the last root cannot be
// revoked.
func testRootRotation(t *testing.T, c *trust.Context) {
	hashes, err := c.RootSlotHashes()
	if err != nil || len(hashes) != trust.RootSlots {
		t.Fatalf("root slots: %d, %v", len(hashes), err)
	}
	prev, err := image.Anchors(c)
	if err != nil {
		t.Fatal(err)
	}
	if secpkg.KeyID(prev.RootKey) != hashes[0] {
		t.Fatal("slot 0 is not the root")
	}
	oldPkg := pkgOf(t, c, "1.0.0", nil)
	if _, ok := secpkg.ManifestRootTransition(oldPkg.Package.Manifest); ok {
		t.Fatal("a transition statement before any rotation")
	}
	for slot := 1; slot < trust.RootSlots; slot++ {
		got, err := c.Rotate(trust.RootKey, rotNow)
		if err != nil || int(got) != slot || int(c.RootSlot()) != slot {
			t.Fatalf("rotate root to slot %d: %d, %v", slot, got, err)
		}
		tr, err := secpkg.VerifyRootTransition(prev, c.RootTransition())
		if err != nil || int(tr.Slot) != slot || secpkg.KeyID(tr.NewRoot) != hashes[slot] {
			t.Fatalf("transition statement: %v %+v", err, tr)
		}
		cur, err := image.Anchors(c)
		if err != nil {
			t.Fatal(err)
		}
		p := pkgOf(t, c, "2.0."+string(rune('0'+slot)), nil)
		raw, ok := secpkg.ManifestRootTransition(p.Package.Manifest)
		if !ok || string(raw) != string(c.RootTransition()) {
			t.Fatal("the package does not carry the statement")
		}
		if _, err := secpkg.VerifyManifest(cur, p.Package.Manifest); err != nil {
			t.Fatalf("new package under the new root: %v", err)
		}
		if _, err := secpkg.VerifyManifest(cur, oldPkg.Package.Manifest); err == nil {
			t.Fatal("a package of the first root verifies under the new one")
		}
		u, err := upk.Issue(c, p.Package.Manifest, &p.CEK, upk.ClassRecipient(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := secpkg.VerifyUPK(cur, u); err != nil {
			t.Fatalf("UPK under the new root: %v", err)
		}
		// The device CA certificate is the new root's; the chain file
		// still holds the old ones.
		roots := x509.NewCertPool()
		roots.AddCert(c.RootCertificate())
		if _, err := c.DeviceCACertificate().Verify(x509.VerifyOptions{Roots: roots}); err != nil {
			t.Fatalf("device CA under the new root: %v", err)
		}
		chain, _ := os.ReadFile(c.CAChainPath())
		if n := strings.Count(string(chain), "BEGIN CERTIFICATE"); n < 2*(slot+1) {
			t.Fatalf("ca chain holds %d certificates after %d root rotations", n, slot)
		}
		prev = cur
	}
	if _, err := c.Rotate(trust.RootKey, rotNow); !errors.Is(err, trust.ErrNoSuccessorRoot) {
		t.Fatalf("rotating the last root: %v", err)
	}
	c2, err := trust.Open(c.Dir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.RootSlot() != trust.RootSlots-1 || string(c2.RootTransition()) != string(c.RootTransition()) {
		t.Fatal("root rotation not recorded in context.toml")
	}
	if _, err := c2.Signer(trust.RootKey); err != nil {
		t.Fatalf("the reopened context's root: %v", err)
	}
}

func TestRotateRootFiles(t *testing.T) {
	for _, s := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		t.Run(string(s), func(t *testing.T) {
			c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), &trust.InitOptions{Suite: s})
			if err != nil {
				t.Fatal(err)
			}
			testRootRotation(t, c)
		})
	}
}

func TestRotateRootPKCS11(t *testing.T) {
	tok := softhsm.NewToken(t, "sbm-rotate-root")
	c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), &trust.InitOptions{Suite: trust.SuiteP256, PKCS11: tok.URI})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testRootRotation(t, c)
}

// TestImportKeysAfterRotation: a file context with rotated keys and root
// slots moves into a token whole: no private key file is left.
func TestImportKeysAfterRotation(t *testing.T) {
	tok := softhsm.NewToken(t, "sbm-import-rotated")
	dir := filepath.Join(t.TempDir(), "ctx")
	c, err := trust.Init(dir, &trust.InitOptions{Suite: trust.SuiteP256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rotate(trust.RootKey, rotNow); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rotate(trust.ImageSigningKey, rotNow); err != nil {
		t.Fatal(err)
	}
	if err := trust.ImportKeys(dir, tok.URI, nil); err != nil {
		t.Fatal(err)
	}
	c2, err := trust.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.RootSlot() != 1 {
		t.Fatal("root slot lost")
	}
	if _, err := c2.Rotate(trust.RootKey, rotNow); err != nil {
		t.Fatalf("rotating to the token-held successor root: %v", err)
	}
	pkgOf(t, c2, "3.0.0", nil)
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), "PRIVATE KEY") {
				t.Errorf("%s holds a private key after import-keys", p)
			}
		}
		return nil
	})
}

// TestRootSlots: a context makes as many roots as a device has slots.
func TestRootSlots(t *testing.T) {
	if trust.RootSlots != hal.RootKeySlots {
		t.Fatalf("trust.RootSlots %d, hal.RootKeySlots %d", trust.RootSlots, hal.RootKeySlots)
	}
}
