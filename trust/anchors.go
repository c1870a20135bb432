package trust

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/sbm-project/sbm/internal/hostcose"
)

// Anchors are the public facts of a context that provisioning writes into
// a device: what a provisioning station needs from the OEM, none of it
// secret. The service hands them to its stations (GET /v1/station/anchors);
// a context provides its own (Context.Anchors).
type Anchors struct {
	Suite    Suite `json:"suite"`
	VendorID UUID  `json:"vendor_id"`
	ClassID  UUID  `json:"class_id"`
	// RootKey is the current root's raw public key (the SBM's format).
	RootKey []byte `json:"root_key"`
	// RootSlots are the root-key hashes of fuse slots 0, 1, … (the first
	// root, then its successors); RootSlot is the current one.
	RootSlots [][32]byte `json:"root_slots"`
	RootSlot  uint8      `json:"root_slot"`
	// ImageKeyCert and UpdateKeyCert are the key certificates of the
	// image-signing and update-authority keys.
	ImageKeyCert  []byte `json:"image_key_cert"`
	UpdateKeyCert []byte `json:"update_key_cert"`
	// DeviceCA is the device CA's certificate (DER): the chain a device
	// certificate is installed with.
	DeviceCA []byte `json:"device_ca"`
}

// Anchors returns the context's provisioning anchors.
func (c *Context) Anchors() (*Anchors, error) {
	raw, err := hostcose.RawPublicKey(c.RootPublicKey())
	if err != nil {
		return nil, err
	}
	slots, err := c.RootSlotHashes()
	if err != nil {
		return nil, err
	}
	return &Anchors{
		Suite: c.Suite(), VendorID: c.VendorID(), ClassID: c.ClassID(),
		RootKey: raw, RootSlots: slots, RootSlot: c.RootSlot(),
		ImageKeyCert: c.ImageSigningKeyCert(), UpdateKeyCert: c.UpdateAuthorityKeyCert(),
		DeviceCA: c.DeviceCACertificate().Raw,
	}, nil
}

// Check checks the anchors' internal consistency: a known suite, the
// current root among the slots and its hash equal to the root key's, and
// a parseable device CA certificate, which it returns.
func (a *Anchors) Check() (*x509.Certificate, error) {
	if _, err := ParseSuite(string(a.Suite)); err != nil {
		return nil, fmt.Errorf("anchors: %w", err)
	}
	if len(a.RootKey) == 0 || len(a.RootSlots) == 0 || len(a.RootSlots) > RootSlots || int(a.RootSlot) >= len(a.RootSlots) {
		return nil, errors.New("anchors: root key or slots missing or out of range")
	}
	if sha256.Sum256(a.RootKey) != a.RootSlots[a.RootSlot] {
		return nil, errors.New("anchors: the root key is not the current slot's")
	}
	if len(a.ImageKeyCert) == 0 || len(a.UpdateKeyCert) == 0 {
		return nil, errors.New("anchors: key certificates missing")
	}
	ca, err := x509.ParseCertificate(a.DeviceCA)
	if err != nil {
		return nil, fmt.Errorf("anchors: device CA certificate: %w", err)
	}
	return ca, nil
}

// ParseDeviceRequest is Context.ParseDeviceRequest for a suite, without a
// context: what a station checks before it forwards a CSR.
func ParseDeviceRequest(suite Suite, der []byte) (*DeviceRequest, error) {
	c := &Context{cfg: config{Suite: suite}}
	return c.ParseDeviceRequest(der)
}
