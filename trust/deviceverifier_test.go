package trust

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"path/filepath"
	"testing"
	"time"
)

// TestDeviceVerifier checks that the batch verifier accepts what
// VerifyDeviceCertificate accepts and refuses another context's device.
func TestDeviceVerifier(t *testing.T) {
	c1, err := Init(filepath.Join(t.TempDir(), "c1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Init(filepath.Join(t.TempDir(), "c2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(c *Context, id string) *x509.Certificate {
		k, _ := c.Suite().GenerateSigningKey()
		ka, _ := c.Suite().GenerateKeyAgreementKey()
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: id}}, k)
		if err != nil {
			t.Fatal(err)
		}
		csr, _ := x509.ParseCertificateRequest(der)
		cert, err := c.IssueDeviceCertificate(csr, []byte(id), ka.PublicKey(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	v, err := c1.NewDeviceVerifier()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		ok   bool
	}{
		{"own device", issue(c1, "dev-1"), true},
		{"another context's device", issue(c2, "dev-2"), false},
	} {
		want, werr := c1.VerifyDeviceCertificate(tc.cert)
		got, err := v.Verify(tc.cert)
		if (err == nil) != tc.ok || (werr == nil) != tc.ok {
			t.Errorf("%s: Verify: %v, VerifyDeviceCertificate: %v", tc.name, err, werr)
			continue
		}
		if tc.ok && (string(got.ID) != string(want.ID) || !got.KeyAgreement.Equal(want.KeyAgreement)) {
			t.Errorf("%s: identities differ", tc.name)
		}
		if !tc.ok && err.Error() != werr.Error() {
			t.Errorf("%s: errors differ: %q vs %q", tc.name, err, werr)
		}
	}
}
