package secpkg

import (
	"bytes"
	"crypto/subtle"

	"github.com/sbm-project/sbm/internal/cbor"
)

// RecipientKind says who can unwrap a UPK (spec §7.1).
type RecipientKind uint8

// Recipient kinds.
const (
	RecipientDevice RecipientKind = 1
	RecipientClass  RecipientKind = 2
	// RecipientEscrow is the OEM's own escrow key; devices never accept it.
	RecipientEscrow RecipientKind = 3
)

// MaxDeviceIDSize is the largest device ID (spec §7.1).
const MaxDeviceIDSize = 32

// UPK is a decoded Update Protection Key (spec §7).
type UPK struct {
	ID             [16]byte
	ManifestDigest [32]byte
	VendorID       [16]byte
	ClassID        [16]byte
	Kind           RecipientKind
	KeyID          [32]byte // kid of the recipient's key-agreement key
	DeviceID       []byte   // kind 1 only: 1..32 bytes, a copy
	NotBefore      uint64
	NotAfter       uint64
	Issued         uint64
	SignerKID      [32]byte // kid of the update-authority key
	SignerEpoch    uint8    // key epoch of the update-authority key (spec §4)

	ephemeral  [65]byte // raw ephemeral public key: 04‖X‖Y or the X25519 key
	ephLen     int
	ephSuite   Suite
	wrappedKey [wrappedKeySize]byte
	deviceID   [MaxDeviceIDSize]byte
}

var upkSpec = mapSpec{
	name: "upk",
	names: []string{"", "format", "upk-id", "manifest-digest", "vendor-id", "class-id",
		"recipient", "not-before", "not-after", "wrapped-key", "issued"},
	required: 0x7fe, // keys 1..10
}

var recipientSpec = mapSpec{
	name:     "recipient",
	names:    []string{"", "kind", "key-id", "device-id"},
	required: 1<<1 | 1<<2,
}

// DecodeUPK decodes a UPK COSE_Sign1 and checks its structure, content type
// and field values, without verifying any signature. It is meant for
// inspection; devices use VerifyUPK.
func DecodeUPK(sign1 []byte) (*UPK, error) {
	s, err := decodeSigned(sign1, MaxUPKSize, ContentTypeUPK)
	if err != nil {
		return nil, err
	}
	return decodeUPK(&s)
}

// VerifyUPK verifies a UPK COSE_Sign1 against the anchors (key certificate
// with role 2 chaining to the root, signature; spec §7.3 step 1), decodes
// it, and checks that its vendor and class IDs are the anchors' and its
// ephemeral key is on the anchors' suite. The caller then checks the
// manifest binding, recipient, validity and replay (CheckManifest,
// CheckDevice, CheckValidity, its own list of IDs) and unwraps.
func VerifyUPK(a *Anchors, sign1 []byte) (*UPK, error) {
	s, err := verifySigned(a, sign1, MaxUPKSize, ContentTypeUPK, RoleUpdateAuthority)
	if err != nil {
		return nil, err
	}
	u, err := decodeUPK(&s)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(u.VendorID[:], a.VendorID[:]) {
		return nil, ErrVendor
	}
	if !bytes.Equal(u.ClassID[:], a.ClassID[:]) {
		return nil, ErrClass
	}
	if u.ephSuite != a.Suite {
		return nil, wrap(ErrAlgorithm, errCurve)
	}
	return u, nil
}

func decodeUPK(s *signed) (*UPK, error) {
	u := new(UPK)
	d := cbor.NewDecoder(s.msg.Payload)
	err := decodeMap(&d, &upkSpec, func(k int64, d *cbor.Decoder) error {
		var err error
		switch k {
		case 1:
			return readFormat(d)
		case 2:
			return readFixed(d, u.ID[:])
		case 3:
			return readFixed(d, u.ManifestDigest[:])
		case 4:
			return readFixed(d, u.VendorID[:])
		case 5:
			return readFixed(d, u.ClassID[:])
		case 6:
			return decodeRecipient(d, u)
		case 7:
			u.NotBefore, err = d.Uint()
		case 8:
			u.NotAfter, err = d.Uint()
		case 9:
			return decodeWrappedKey(d, u)
		case 10:
			u.Issued, err = d.Uint()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := d.Finish(); err != nil {
		return nil, wrap(ErrTrailingData, err)
	}
	if u.NotBefore > u.NotAfter {
		return nil, upkSpec.err(8, ErrMalformed, errRange)
	}
	u.SignerKID = s.header.KID
	u.SignerEpoch = s.epoch
	return u, nil
}

func decodeRecipient(d *cbor.Decoder, u *UPK) error {
	var hasID bool
	err := decodeMap(d, &recipientSpec, func(k int64, d *cbor.Decoder) error {
		switch k {
		case 1:
			v, err := readUint(d, 1, 3)
			u.Kind = RecipientKind(v)
			return err
		case 2:
			return readFixed(d, u.KeyID[:])
		default: // 3
			b, err := d.Bytes()
			if err != nil {
				return err
			}
			if len(b) < 1 || len(b) > MaxDeviceIDSize {
				return errSize
			}
			n := copy(u.deviceID[:], b)
			u.DeviceID = u.deviceID[:n:n]
			hasID = true
			return nil
		}
	})
	if err != nil {
		return err
	}
	if hasID != (u.Kind == RecipientDevice) {
		return recipientSpec.err(3, ErrMalformed, errMissing)
	}
	return nil
}

// CheckManifest checks that the UPK is bound to m (spec §7.3 step 2): the
// manifest digest, vendor ID and class ID must match.
func (u *UPK) CheckManifest(m *Manifest) error {
	if subtle.ConstantTimeCompare(u.ManifestDigest[:], m.Digest[:]) != 1 {
		return ErrManifestMismatch
	}
	if !bytes.Equal(u.VendorID[:], m.VendorID[:]) {
		return ErrVendor
	}
	if !bytes.Equal(u.ClassID[:], m.ClassID[:]) {
		return ErrClass
	}
	return nil
}

// CheckDevice checks the device part of spec §7.3 step 3: a kind-1 UPK
// must name deviceID. (Unwrap checks the key ID.) Kind-2 UPKs name no
// device. Kind-3 (escrow) UPKs are never for a device and are rejected.
func (u *UPK) CheckDevice(deviceID []byte) error {
	if u.Kind == RecipientEscrow {
		return wrap(ErrNotRecipient, errEscrow)
	}
	if u.Kind == RecipientDevice && !bytes.Equal(u.DeviceID, deviceID) {
		return wrap(ErrNotRecipient, errDeviceID)
	}
	return nil
}

// CheckValidity checks not-before ≤ now ≤ not-after (spec §7.3 step 4),
// with now in epoch seconds.
func (u *UPK) CheckValidity(now uint64) error {
	if now < u.NotBefore {
		return ErrNotYetValid
	}
	if now > u.NotAfter {
		return ErrExpired
	}
	return nil
}
