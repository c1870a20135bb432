package x509lite

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/trust"
)

// fixedNow is the clock of the test PKIs.
var fixedNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// validAt is a time when every test certificate is valid.
var validAt = uint64(fixedNow.Add(30 * 24 * time.Hour).Unix())

// pki is a security context with the certificates the tests chain.
type pki struct {
	c          *trust.Context
	suite      uint8
	root       []byte // raw root public key
	rootCert   *x509.Certificate
	caCert     *x509.Certificate
	rootSigner crypto.Signer
	caSigner   crypto.Signer
	device     *x509.Certificate // issued by the device CA
}

// newPKI makes a context of suite s and a device certificate from its
// device CA.
func newPKI(t testing.TB, s trust.Suite) *pki {
	t.Helper()
	c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), &trust.InitOptions{Suite: s, Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{c: c, suite: SuiteP256, rootCert: c.RootCertificate(), caCert: c.DeviceCACertificate()}
	if s == trust.SuiteEd25519 {
		p.suite = SuiteEd25519
	}
	if p.root, err = hostcose.RawPublicKey(c.RootPublicKey()); err != nil {
		t.Fatal(err)
	}
	if p.rootSigner, err = c.Signer(trust.RootKey); err != nil {
		t.Fatal(err)
	}
	if p.caSigner, err = c.Signer(trust.DeviceCAKey); err != nil {
		t.Fatal(err)
	}
	idKey, _ := s.GenerateSigningKey()
	kaKey, _ := s.GenerateKeyAgreementKey()
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "device"}}, idKey)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(csrDER)
	id := make([]byte, 16)
	if p.device, err = c.IssueDeviceCertificate(csr, id, kaKey.PublicKey(), fixedNow); err != nil {
		t.Fatal(err)
	}
	return p
}

// newKey returns a fresh signing key of the PKI's suite.
func (p *pki) newKey(t testing.TB) crypto.Signer {
	t.Helper()
	if p.suite == SuiteEd25519 {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		return k
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tmpl returns a certificate template valid around fixedNow.
func tmpl(cn string, ca bool) *x509.Certificate {
	c := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"test"}},
		NotBefore:    fixedNow.Add(-time.Hour),
		NotAfter:     fixedNow.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if ca {
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage = x509.KeyUsageCertSign
	} else {
		c.DNSNames = []string{cn}
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	return c
}

// issue signs template tp for pub with signer, as parent.
func issue(t testing.TB, tp, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tp, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ders returns the DER of certificates.
func ders(cs ...*x509.Certificate) [][]byte {
	out := make([][]byte, len(cs))
	for i, c := range cs {
		out[i] = c.Raw
	}
	return out
}
