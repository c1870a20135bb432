package trust

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/url"
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

// TestDeviceRequest checks the binding of the device ID and key-agreement
// key in a device CSR: ParseDeviceRequest requires it, and
// IssueDeviceCertificate refuses an ID or key other than the signed ones.
func TestDeviceRequest(t *testing.T) {
	for _, suite := range []Suite{SuiteP256, SuiteEd25519} {
		t.Run(string(suite), func(t *testing.T) {
			c, err := Init(filepath.Join(t.TempDir(), "ctx"), &InitOptions{Suite: suite})
			if err != nil {
				t.Fatal(err)
			}
			other := SuiteEd25519
			if suite == SuiteEd25519 {
				other = SuiteP256
			}
			idKey, _ := suite.GenerateSigningKey()
			ka, _ := suite.GenerateKeyAgreementKey()
			ka2, _ := suite.GenerateKeyAgreementKey()
			otherKA, _ := other.GenerateKeyAgreementKey()
			id := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
			kaURI := func(k *ecdh.PublicKey) string {
				return uriKAPrefix + kaCurveName(k.Curve()) + ":" + base64.RawURLEncoding.EncodeToString(k.Bytes())
			}
			devURI := uriDevicePrefix + hex.EncodeToString(id)
			makeCSR := func(tmpl *x509.CertificateRequest, uris ...string) []byte {
				for _, s := range uris {
					u, err := url.Parse(s)
					if err != nil {
						t.Fatal(err)
					}
					tmpl.URIs = append(tmpl.URIs, u)
				}
				der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, idKey)
				if err != nil {
					t.Fatal(err)
				}
				return der
			}
			good := makeCSR(&x509.CertificateRequest{}, devURI, kaURI(ka.PublicKey()))

			// Parsing: only a CSR binding exactly one ID and one key of the
			// suite is accepted.
			for _, tc := range []struct {
				name string
				der  []byte
				want error
			}{
				{"bound", good, nil},
				{"no subjectAltName", makeCSR(&x509.CertificateRequest{}), ErrUnboundCSR},
				{"no key-agreement URI", makeCSR(&x509.CertificateRequest{}, devURI), ErrUnboundCSR},
				{"no device URI", makeCSR(&x509.CertificateRequest{}, kaURI(ka.PublicKey())), ErrUnboundCSR},
				{"two key-agreement URIs", makeCSR(&x509.CertificateRequest{}, kaURI(ka.PublicKey()), kaURI(ka2.PublicKey())), ErrUnboundCSR},
				{"extra URI", makeCSR(&x509.CertificateRequest{}, devURI, kaURI(ka.PublicKey()), "urn:x:y"), ErrUnboundCSR},
				{"extra DNS name", makeCSR(&x509.CertificateRequest{DNSNames: []string{"evil.example"}}, devURI, kaURI(ka.PublicKey())), ErrUnboundCSR},
				{"key of the other suite", makeCSR(&x509.CertificateRequest{}, devURI, kaURI(otherKA.PublicKey())), ErrUnboundCSR},
			} {
				r, err := c.ParseDeviceRequest(tc.der)
				if tc.want == nil {
					if err != nil || !bytes.Equal(r.ID, id) || !r.KeyAgreement.Equal(ka.PublicKey()) {
						t.Errorf("%s: %v %+v", tc.name, err, r)
					}
				} else if !errors.Is(err, tc.want) {
					t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
				}
			}
			// A broken signature is refused.
			bad := bytes.Clone(good)
			bad[len(bad)-1] ^= 1
			if _, err := c.ParseDeviceRequest(bad); err == nil {
				t.Error("CSR with a broken signature accepted")
			}

			// Issuing: the signed ID and key, and only those.
			r, err := c.ParseDeviceRequest(good)
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name string
				id   []byte
				ka   *ecdh.PublicKey
				want error
			}{
				{"signed ID and key", id, ka.PublicKey(), nil},
				{"another key-agreement key", id, ka2.PublicKey(), ErrKeyAgreementMismatch},
				{"another device ID", []byte{9, 9}, ka.PublicKey(), ErrDeviceIDMismatch},
			} {
				cert, err := c.IssueDeviceCertificate(r.CSR, tc.id, tc.ka, time.Now())
				if !errors.Is(err, tc.want) {
					t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
					continue
				}
				if err != nil {
					continue
				}
				got, err := c.VerifyDeviceCertificate(cert)
				if err != nil || !bytes.Equal(got.ID, id) || !got.KeyAgreement.Equal(ka.PublicKey()) {
					t.Errorf("%s: certificate names %v %v", tc.name, got, err)
				}
			}
		})
	}
}
