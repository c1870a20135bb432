package verifier

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/sbm-project/sbm/attest/report"
	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/trust"
)

// ErrReportDevice is returned (wrapped) for a report whose device ID is
// not the one of the certificate it is checked against.
var ErrReportDevice = errors.New("report of another device")

// VerifyReport checks an install report (docs/spec/report.md) against a
// device certificate — for the fleet service, the client certificate of
// the mTLS connection the report came on, already verified against the
// device CA: the signature must verify with the certificate's key (ES256
// for P-256, EdDSA for Ed25519; kid = SHA-256 of the raw key) and the
// report's device ID must be the certificate's (its urn:sbm:device: URI).
// It does not judge the sequence number or the nonce: the caller keeps
// the last sequence number of each device and refuses one that is not
// higher (a replay), and compares the nonce with the one it issued, if
// any.
func VerifyReport(rep []byte, cert *x509.Certificate) (*report.Report, error) {
	ident, err := trust.ParseDeviceIdentity(cert)
	if err != nil {
		return nil, err
	}
	raw, err := hostcose.RawPublicKey(cert.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("device certificate: %w", err)
	}
	alg := cose.AlgES256
	if _, ok := cert.PublicKey.(ed25519.PublicKey); ok {
		alg = cose.AlgEdDSA
	}
	r, err := report.Verify(rep, alg, raw)
	if err != nil {
		return nil, fmt.Errorf("report for device %x: %w", ident.ID, err)
	}
	if !bytes.Equal(r.DeviceID, ident.ID) {
		return nil, fmt.Errorf("%w: it names %x, the certificate %x", ErrReportDevice, r.DeviceID, ident.ID)
	}
	return r, nil
}

// CheckReport checks an install report against context c, the way a host
// tool without a TLS connection does: the device the report names must be
// in c's production records with a certificate of c's device CA, and the
// report must verify with that certificate (VerifyReport).
func CheckReport(c *trust.Context, rep []byte) (*report.Report, error) {
	r, err := report.Decode(rep)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	id := hex.EncodeToString(r.DeviceID)
	_, ident, err := c.LoadDevice(id)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", id, err)
	}
	if _, err := c.VerifyDeviceCertificate(ident.Certificate); err != nil {
		return nil, fmt.Errorf("device %s: %w", id, err)
	}
	return VerifyReport(rep, ident.Certificate)
}
