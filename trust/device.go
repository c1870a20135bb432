package trust

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
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

// Errors of the device-CSR checks. They are sentinels: compare with
// errors.Is.
var (
	// ErrUnboundCSR: a device CSR does not request the device-ID and
	// key-agreement URIs (an extensionRequest with a subjectAltName holding
	// exactly one of each and nothing else).
	ErrUnboundCSR = errors.New("device CSR does not bind a device ID and key-agreement key")
	// ErrKeyAgreementMismatch: the key-agreement key given to the device CA
	// is not the one the device signed in its CSR.
	ErrKeyAgreementMismatch = errors.New("key-agreement key in the provisioning response is not the one the device signed")
	// ErrDeviceIDMismatch: the device ID given to the device CA is not the
	// one the device signed in its CSR.
	ErrDeviceIDMismatch = errors.New("device ID in the provisioning response is not the one the device signed")
)

// oidSubjectAltName is the subjectAltName extension (2.5.29.17).
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// DeviceRequest is a device's verified certification request: the SBM signs,
// with its identity key, a CSR that requests the subjectAltName URIs of its
// device certificate, binding its device ID and key-agreement key to the
// identity key (docs/spec/provisioning.md §4.1).
type DeviceRequest struct {
	// CSR is the parsed request; its public key is the identity key.
	CSR *x509.CertificateRequest
	// ID is the device ID the CSR names.
	ID []byte
	// KeyAgreement is the key-agreement public key the CSR names.
	KeyAgreement *ecdh.PublicKey
}

// ParseDeviceRequest parses a device's DER CSR, checks its self-signature
// and that its key is a signing key of the context's suite, and returns the
// device ID and key-agreement key it binds. A CSR without the binding is
// refused with ErrUnboundCSR.
func (c *Context) ParseDeviceRequest(der []byte) (*DeviceRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("device CSR: %w", err)
	}
	if err := c.checkCSR(csr); err != nil {
		return nil, err
	}
	id, ka, err := c.csrBinding(csr)
	if err != nil {
		return nil, err
	}
	if id == nil {
		return nil, ErrUnboundCSR
	}
	return &DeviceRequest{CSR: csr, ID: id, KeyAgreement: ka}, nil
}

// checkCSR checks a CSR's self-signature and key type.
func (c *Context) checkCSR(csr *x509.CertificateRequest) error {
	if err := csr.CheckSignature(); err != nil {
		return fmt.Errorf("CSR signature: %w", err)
	}
	if s, err := suiteOf(csr.PublicKey); err != nil || s != c.Suite() {
		return fmt.Errorf("CSR key is not a %s signing key", c.Suite())
	}
	return nil
}

// csrBinding returns the device ID and key-agreement key a CSR requests as
// subjectAltName URIs, or nil, nil if it requests no subjectAltName. A
// subjectAltName other than exactly one device-ID URI and one key-agreement
// URI of the context's suite is refused with ErrUnboundCSR.
func (c *Context) csrBinding(csr *x509.CertificateRequest) ([]byte, *ecdh.PublicKey, error) {
	n := 0
	for _, e := range csr.Extensions {
		if e.Id.Equal(oidSubjectAltName) {
			n++
		}
	}
	if n == 0 {
		return nil, nil, nil
	}
	if n != 1 || len(csr.URIs) != 2 || len(csr.DNSNames) != 0 || len(csr.EmailAddresses) != 0 || len(csr.IPAddresses) != 0 {
		return nil, nil, fmt.Errorf("%w: subjectAltName must be exactly the two device URIs", ErrUnboundCSR)
	}
	d, err := parseDeviceURIs(csr.URIs)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrUnboundCSR, err)
	}
	if d.KeyAgreement.Curve() != c.Suite().KeyAgreementCurve() {
		return nil, nil, fmt.Errorf("%w: key-agreement key is not a %s key", ErrUnboundCSR, c.Suite())
	}
	return d.ID, d.KeyAgreement, nil
}

// IssueDeviceCertificate issues a device certificate from the device CA for
// the identity key in csr (whose self-signature must verify), naming the
// device id and its key-agreement key ka.
//
// A CSR made by the SBM binds the device ID and key-agreement key under its
// signature (see ParseDeviceRequest); then id and ka must be the ones it
// names (ErrDeviceIDMismatch, ErrKeyAgreementMismatch). A CSR that
// requests no subjectAltName is accepted only for keys the caller made
// itself: a device CA certifying devices over a link it does not trust
// must obtain the CSR with ParseDeviceRequest, which requires the binding
// (as programmer.Provision does).
func (c *Context) IssueDeviceCertificate(csr *x509.CertificateRequest, id []byte, ka *ecdh.PublicKey, now time.Time) (*x509.Certificate, error) {
	if err := c.checkCSR(csr); err != nil {
		return nil, err
	}
	if len(id) < 1 || len(id) > 32 {
		return nil, fmt.Errorf("device ID must be 1 to 32 bytes, got %d", len(id))
	}
	if ka == nil || ka.Curve() != c.Suite().KeyAgreementCurve() {
		return nil, fmt.Errorf("key-agreement key is not a %s key", c.Suite())
	}
	boundID, boundKA, err := c.csrBinding(csr)
	if err != nil {
		return nil, err
	}
	if boundID != nil {
		if !bytes.Equal(boundID, id) {
			return nil, ErrDeviceIDMismatch
		}
		if !boundKA.Equal(ka) {
			return nil, ErrKeyAgreementMismatch
		}
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
	d, err := parseDeviceURIs(cert.URIs)
	if err != nil {
		return nil, err
	}
	d.Certificate = cert
	return d, nil
}

// parseDeviceURIs extracts the device ID and key-agreement key from
// subjectAltName URIs: exactly one of each, other URIs ignored.
func parseDeviceURIs(uris []*url.URL) (*DeviceIdentity, error) {
	d := &DeviceIdentity{}
	for _, u := range uris {
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
