package trust

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestDeviceCertificate(t *testing.T) {
	for _, suite := range []Suite{SuiteP256, SuiteEd25519} {
		t.Run(string(suite), func(t *testing.T) {
			c, err := Init(filepath.Join(t.TempDir(), "ctx"), &InitOptions{Suite: suite})
			if err != nil {
				t.Fatal(err)
			}
			idKey, _ := suite.GenerateSigningKey()
			kaKey, _ := suite.GenerateKeyAgreementKey()
			csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "device"}}, idKey)
			if err != nil {
				t.Fatal(err)
			}
			csr, _ := x509.ParseCertificateRequest(csrDER)
			id := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
			cert, err := c.IssueDeviceCertificate(csr, id, kaKey.PublicKey(), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.VerifyDeviceCertificate(cert)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.ID, id) || !got.KeyAgreement.Equal(kaKey.PublicKey()) {
				t.Fatalf("identity = %x %x", got.ID, got.KeyAgreement.Bytes())
			}
			// openssl agrees the certificate chains to the context's CA chain.
			if openssl, err := exec.LookPath("openssl"); err == nil {
				p := filepath.Join(t.TempDir(), "dev.crt")
				os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
				if out, err := exec.Command(openssl, "verify", "-CAfile", c.CAChainPath(), p).CombinedOutput(); err != nil {
					t.Fatalf("openssl verify: %v\n%s", err, out)
				}
			}
			// A certificate from another context is refused.
			other, _ := Init(filepath.Join(t.TempDir(), "other"), &InitOptions{Suite: suite})
			if _, err := other.VerifyDeviceCertificate(cert); err == nil {
				t.Fatal("another context accepted the device certificate")
			}
			// A CSR whose signature does not verify is refused.
			bad := *csr
			bad.Signature = append([]byte(nil), csr.Signature...)
			bad.Signature[len(bad.Signature)-1] ^= 1
			if _, err := c.IssueDeviceCertificate(&bad, id, kaKey.PublicKey(), time.Now()); err == nil {
				t.Fatal("CSR with a broken signature accepted")
			}
		})
	}
}

func TestProductionRecords(t *testing.T) {
	c, err := Init(filepath.Join(t.TempDir(), "ctx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	idKey, _ := c.Suite().GenerateSigningKey()
	ka, _ := c.Suite().GenerateKeyAgreementKey()
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, idKey)
	csr, _ := x509.ParseCertificateRequest(csrDER)
	id := []byte{0xab, 0xcd}
	cert, err := c.IssueDeviceCertificate(csr, id, ka.PublicKey(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SaveDevice(cert, DeviceRecord{Board: "small", Locked: true, SBMMeasurement: "5b", Provisioned: time.Now()}); err != nil {
		t.Fatal(err)
	}
	rec, ident, err := c.LoadDevice("ABCD")
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID != "abcd" || !rec.Locked || rec.SBMMeasurement != "5b" || !ident.KeyAgreement.Equal(ka.PublicKey()) {
		t.Fatalf("record = %+v", rec)
	}
	if ids, _ := c.Devices(); len(ids) != 1 || ids[0] != "abcd" {
		t.Fatalf("Devices() = %v", ids)
	}
	if _, _, err := c.LoadDevice("beef"); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("unknown device: %v", err)
	}
	if _, _, err := c.LoadDevice("../x"); err == nil {
		t.Fatal("path-like device ID accepted")
	}
	// A record edited to hold another device's certificate is refused.
	os.Rename(c.devicePath("abcd"), c.devicePath("abce"))
	if _, _, err := c.LoadDevice("abce"); err == nil {
		t.Fatal("mismatched record accepted")
	}
}
