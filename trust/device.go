package trust

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// DeviceCertValidity is the validity of device certificates: devices live
// long and have no reliable clock, so it is generous.
const DeviceCertValidity = 20 * 365 * 24 * time.Hour

// Device certificates carry the device ID and the device's key-agreement
// public key as subject-alternative-name URIs (signed by the device CA):
//
//	urn:sbm:device:<device ID, lowercase hex>
//	urn:sbm:ka:<p256|x25519>:<raw public key, base64url without padding>
const (
	uriDevicePrefix = "urn:sbm:device:"
	uriKAPrefix     = "urn:sbm:ka:"
)

// DeviceIdentity is what a verified device certificate says about a device.
type DeviceIdentity struct {
	// ID is the device's unique ID.
	ID []byte
	// KeyAgreement is the device's key-agreement public key, the recipient
	// key of device UPKs.
	KeyAgreement *ecdh.PublicKey
	// Certificate is the device certificate; its public key is the device
	// identity (signing) key.
	Certificate *x509.Certificate
}

// IssueDeviceCertificate issues a device certificate from the device CA for
// the identity key in csr (whose self-signature must verify), naming the
// device id and its key-agreement key ka.
func (c *Context) IssueDeviceCertificate(csr *x509.CertificateRequest, id []byte, ka *ecdh.PublicKey, now time.Time) (*x509.Certificate, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature: %w", err)
	}
	if s, err := suiteOf(csr.PublicKey); err != nil || s != c.Suite() {
		return nil, fmt.Errorf("CSR key is not a %s signing key", c.Suite())
	}
	if len(id) < 1 || len(id) > 32 {
		return nil, fmt.Errorf("device ID must be 1 to 32 bytes, got %d", len(id))
	}
	if ka == nil || ka.Curve() != c.Suite().KeyAgreementCurve() {
		return nil, fmt.Errorf("key-agreement key is not a %s key", c.Suite())
	}
	ca, err := c.Signer(DeviceCAKey)
	if err != nil {
		return nil, err
	}
	devURI, _ := url.Parse(uriDevicePrefix + hex.EncodeToString(id))
	kaURI, _ := url.Parse(uriKAPrefix + kaCurveName(ka.Curve()) + ":" + base64.RawURLEncoding.EncodeToString(ka.Bytes()))
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			CommonName:   "SBM device " + hex.EncodeToString(id),
			SerialNumber: hex.EncodeToString(id),
			Organization: []string{c.cfg.Organization},
		},
		NotBefore:          now.Add(-time.Hour),
		NotAfter:           now.Add(DeviceCertValidity),
		KeyUsage:           x509.KeyUsageDigitalSignature,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:               []*url.URL{devURI, kaURI},
		SignatureAlgorithm: sigAlgFor(ca.Public()),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.deviceCACert, csr.PublicKey, ca)
	if err != nil {
		return nil, fmt.Errorf("issue device certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

func kaCurveName(c ecdh.Curve) string {
	if c == ecdh.X25519() {
		return "x25519"
	}
	return "p256"
}

// VerifyDeviceCertificate checks that cert was issued by this context's
// device CA (chaining to its root) and returns the device identity it names.
func (c *Context) VerifyDeviceCertificate(cert *x509.Certificate) (*DeviceIdentity, error) {
	roots := x509.NewCertPool()
	roots.AddCert(c.rootCert)
	inter := x509.NewCertPool()
	inter.AddCert(c.deviceCACert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("device certificate does not chain to this context's device CA: %w", err)
	}
	return ParseDeviceIdentity(cert)
}

// ParseDeviceIdentity extracts the device ID and key-agreement key from a
// device certificate without verifying it.
func ParseDeviceIdentity(cert *x509.Certificate) (*DeviceIdentity, error) {
	d := &DeviceIdentity{Certificate: cert}
	for _, u := range cert.URIs {
		s := u.String()
		switch {
		case strings.HasPrefix(s, uriDevicePrefix):
			id, err := hex.DecodeString(strings.TrimPrefix(s, uriDevicePrefix))
			if err != nil || len(id) == 0 || len(id) > 32 || d.ID != nil {
				return nil, errors.New("device certificate: malformed or repeated device ID URI")
			}
			d.ID = id
		case strings.HasPrefix(s, uriKAPrefix):
			curveName, b64, ok := strings.Cut(strings.TrimPrefix(s, uriKAPrefix), ":")
			raw, err := base64.RawURLEncoding.DecodeString(b64)
			if !ok || err != nil || d.KeyAgreement != nil {
				return nil, errors.New("device certificate: malformed or repeated key-agreement URI")
			}
			var curve ecdh.Curve
			switch curveName {
			case "p256":
				curve = ecdh.P256()
			case "x25519":
				curve = ecdh.X25519()
			default:
				return nil, fmt.Errorf("device certificate: unknown key-agreement curve %q", curveName)
			}
			if d.KeyAgreement, err = curve.NewPublicKey(raw); err != nil {
				return nil, fmt.Errorf("device certificate: invalid key-agreement key: %w", err)
			}
		}
	}
	if d.ID == nil || d.KeyAgreement == nil {
		return nil, errors.New("not an SBM device certificate: no device ID or key-agreement key")
	}
	return d, nil
}
