//go:build cgo

package programmer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/softhsm"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
	"github.com/sbm-project/sbm/vmcu"
)

// TestPKCS11Chain runs the chain of trust with every OEM key in a SoftHSM2
// token: provisioning (the token-held device CA certifies the device;
// openssl verifies the certificate), a package signed by the token's
// image-signing key, a device UPK issued through the token's escrow key
// (CKM_ECDH1_DERIVE) and signed by its update authority, programming over
// the UART, and the launch of the verified application; a class UPK opens
// with the token's class key; the class key cannot be sent into a device.
func TestPKCS11Chain(t *testing.T) {
	for _, suite := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		t.Run(string(suite), func(t *testing.T) {
			tok := softhsm.NewToken(t, "sbm-chain")
			dir := filepath.Join(t.TempDir(), "ctx")
			c, err := trust.Init(dir, &trust.InitOptions{Suite: suite, PKCS11: tok.URI})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			b, err := vmcu.LookupBoard("small")
			if err != nil {
				t.Fatal(err)
			}
			be := &bench{ctx: c, dev: vmcu.NewMemory(b, 1), launch: make(chan *sbm.AppInfo, 8)}
			be.run = sim.StartDevice(context.Background(), be.dev, sim.Firmware(&sbm.Options{
				Launch: func(a *sbm.AppInfo) { be.launch <- a },
			}))
			defer be.run.Stop()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			// The class key stays in the token: refused before the device
			// is touched.
			if _, err := Provision(ctx, c, be.dev.DebugPort(), &ProvisionOptions{SBMImage: sbm.Descriptor(), ClassKey: true}); !errors.Is(err, trust.ErrNotExportable) {
				t.Fatalf("provision --class-key with a token context: %v", err)
			}
			if be.prov, err = Provision(ctx, c, be.dev.DebugPort(), &ProvisionOptions{SBMImage: sbm.Descriptor()}); err != nil {
				t.Fatal(err)
			}
			opensslVerify(t, c, be.prov.Certificate.Raw)

			data := bytes.Repeat([]byte("token-signed application "), 500)
			res, err := image.Create(c, &firmware.Image{Data: data, Format: firmware.FormatBinary}, &image.CreateOptions{Version: "1.0.0", SecurityCounter: 1, ClassUPK: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.SaveRelease(&trust.Release{ManifestDigest: hex.EncodeToString(res.ManifestDigest[:]), Version: "1.0.0"}, res.Escrow); err != nil {
				t.Fatal(err)
			}
			// upk issue: the CEK from the escrow record, unwrapped in the token.
			cek, err := image.RecoverCEK(c, res.Package)
			if err != nil {
				t.Fatal(err)
			}
			if *cek != res.CEK {
				t.Fatal("escrow recovered another CEK")
			}
			_, id, err := c.LoadDevice(fmt.Sprintf("%x", be.prov.ID))
			if err != nil {
				t.Fatal(err)
			}
			u, err := upk.Issue(c, res.Package.Manifest, cek, upk.Recipient{Kind: upk.Device, Key: id.KeyAgreement, DeviceID: id.ID}, nil)
			if err != nil {
				t.Fatal(err)
			}
			// The class UPK opens with the token's class key.
			ck, err := c.ClassKey()
			if err != nil {
				t.Fatal(err)
			}
			var plain bytes.Buffer
			if _, err := image.Verify(c, res.Package, &image.VerifyOptions{Key: ck, Plaintext: &plain}); err != nil || !bytes.Equal(plain.Bytes(), data) {
				t.Fatalf("class UPK with the token's class key: %v", err)
			}

			cl := be.client()
			defer cl.Close()
			if _, err := Program(ctx, cl, res.Package, &ProgramOptions{UPK: u}); err != nil {
				t.Fatal(err)
			}
			select {
			case a := <-be.launch:
				if a.Version != "1.0.0" || a.Digest != sha256.Sum256(data) {
					t.Fatalf("launched %s %x", a.Version, a.Digest)
				}
			case <-ctx.Done():
				t.Fatal("the application was not launched")
			}
		})
	}
}

// opensslVerify checks a device certificate against the context's CA
// chain with openssl, if it is installed (it is wherever scripts/test.sh
// ran).
func opensslVerify(t *testing.T, c *trust.Context, der []byte) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is not installed")
		}
		t.Log("openssl not installed: certificate not checked with it")
		return
	}
	f := filepath.Join(t.TempDir(), "dev.crt")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "verify", "-CAfile", c.CAChainPath(), f).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(": OK")) {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
}
