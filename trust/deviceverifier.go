package trust

import (
	"crypto/x509"
	"fmt"
)

// A DeviceVerifier checks many device certificates against one context,
// as VerifyDeviceCertificate does, for batch work such as issuing a UPK
// per device: the device CA's own chain to the root is verified once, by
// NewDeviceVerifier, so each device certificate then costs one signature
// verification instead of two. It is safe for concurrent use.
type DeviceVerifier struct {
	opts x509.VerifyOptions
}

// NewDeviceVerifier verifies the context's device CA certificate against
// its root and returns a DeviceVerifier anchored at that device CA.
func (c *Context) NewDeviceVerifier() (*DeviceVerifier, error) {
	roots := x509.NewCertPool()
	roots.AddCert(c.rootCert)
	anyUsage := []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	if _, err := c.deviceCACert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: anyUsage}); err != nil {
		return nil, fmt.Errorf("device CA certificate does not chain to the root: %w", err)
	}
	anchor := x509.NewCertPool()
	anchor.AddCert(c.deviceCACert)
	return &DeviceVerifier{opts: x509.VerifyOptions{Roots: anchor, KeyUsages: anyUsage}}, nil
}

// Verify checks that cert was issued by the context's device CA and is
// valid now, and returns the identity it names; its errors read like
// VerifyDeviceCertificate's.
func (v *DeviceVerifier) Verify(cert *x509.Certificate) (*DeviceIdentity, error) {
	if _, err := cert.Verify(v.opts); err != nil {
		return nil, fmt.Errorf("device certificate does not chain to this context's device CA: %w", err)
	}
	return ParseDeviceIdentity(cert)
}
