package trust

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

const (
	rootValidity     = 30 * 365 * 24 * time.Hour
	deviceCAValidity = 25 * 365 * 24 * time.Hour
)

func randomSerial() *big.Int {
	b := make([]byte, 16)
	rand.Read(b)
	b[0] &= 0x7f // positive, RFC 5280 §4.1.2.2
	b[0] |= 0x01 // never zero, always 16 bytes long
	return new(big.Int).SetBytes(b)
}

// sigAlgFor returns the X.509 signature algorithm matching a signing key.
func sigAlgFor(pub crypto.PublicKey) x509.SignatureAlgorithm {
	if s, _ := suiteOf(pub); s == SuiteEd25519 {
		return x509.PureEd25519
	}
	return x509.ECDSAWithSHA256
}

// createRootCertificate self-signs the root CA certificate.
func createRootCertificate(root crypto.Signer, vendor UUID, org string, now time.Time) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "SBM Root CA", Organization: []string{org}, OrganizationalUnit: []string{"vendor " + vendor.String()}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(rootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
		SignatureAlgorithm:    sigAlgFor(root.Public()),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, root.Public(), root)
	if err != nil {
		return nil, fmt.Errorf("create root certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// createDeviceCACertificate issues the device CA certificate from the root.
func createDeviceCACertificate(root crypto.Signer, rootCert *x509.Certificate, ca crypto.PublicKey, vendor UUID, org string, now time.Time) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "SBM Device CA", Organization: []string{org}, OrganizationalUnit: []string{"vendor " + vendor.String()}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(deviceCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SignatureAlgorithm:    sigAlgFor(root.Public()),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, rootCert, ca, root)
	if err != nil {
		return nil, fmt.Errorf("create device CA certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// certPEM encodes certificates as concatenated PEM blocks.
func certPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// ParseCertificatesPEM decodes every CERTIFICATE block in data.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return certs, nil
}
