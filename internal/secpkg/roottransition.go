package secpkg

import (
	"bytes"

	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/cose"
)

// ContentTypeRootTransition is the content type of a root transition
// statement (spec §4.2).
const ContentTypeRootTransition = "application/vnd.sbm.root-transition+cbor"

// LabelRootTransition is the manifest's unprotected header label carrying
// a root transition statement (spec §4.2).
const LabelRootTransition = -65539

// MaxRootTransitionSize is the largest root transition COSE_Sign1.
const MaxRootTransitionSize = 320

// RootTransition is a verified root transition statement: the root key
// that signed it hands over to NewRoot, whose hash is in root-key fuse
// slot Slot.
type RootTransition struct {
	Slot    uint8
	NewRoot []byte // raw public key encoding (spec §2); a sub-slice of the input
	Issued  uint64
}

var rootTransitionSpec = mapSpec{
	name:     "root-transition",
	names:    []string{"", "format", "vendor-id", "slot", "root-key", "issued"},
	required: 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5,
}

// ManifestRootTransition returns the root transition statement a manifest
// COSE_Sign1 carries in its unprotected header, without verifying
// anything (a device must process it before it can verify the manifest,
// which the new root's keys signed). ok is false if there is none, or if
// the manifest does not even decode (VerifyManifest then says why).
func ManifestRootTransition(manifest []byte) (raw []byte, ok bool) {
	if len(manifest) > MaxManifestSize {
		return nil, false
	}
	msg, err := cose.DecodeSign1(manifest)
	if err != nil {
		return nil, false
	}
	raw, err = msg.UnprotectedBytes(LabelRootTransition)
	return raw, err == nil
}

// VerifyRootTransition verifies a root transition statement: a COSE_Sign1
// signed by the anchors' root key itself (kid = KeyID(root)), content type
// ContentTypeRootTransition, for the anchors' vendor, naming a slot from 1
// to 255 and a root key of the anchors' suite. Whether the slot is the
// device's next one and holds the new key's hash is the device's check.
func VerifyRootTransition(a *Anchors, raw []byte) (*RootTransition, error) {
	s, err := verifyRootSigned(a, raw, MaxRootTransitionSize, ContentTypeRootTransition)
	if err != nil {
		return nil, wrap(ErrRootTransition, err)
	}
	t := new(RootTransition)
	var vendor [16]byte
	d := cbor.NewDecoder(s.msg.Payload)
	err = decodeMap(&d, &rootTransitionSpec, func(k int64, d *cbor.Decoder) error {
		switch k {
		case 1:
			return readFormat(d)
		case 2:
			return readFixed(d, vendor[:])
		case 3:
			v, err := readUint(d, 1, 255)
			t.Slot = uint8(v)
			return err
		case 4:
			b, err := d.Bytes()
			if err == nil && len(b) != a.Suite.PublicKeySize() {
				return ErrMalformed
			}
			t.NewRoot = b
			return err
		default: // 5
			v, err := d.Uint()
			t.Issued = v
			return err
		}
	})
	if err != nil {
		return nil, wrap(ErrRootTransition, err)
	}
	if err := d.Finish(); err != nil {
		return nil, wrap(ErrRootTransition, wrap(ErrTrailingData, err))
	}
	if !bytes.Equal(vendor[:], a.VendorID[:]) {
		return nil, wrap(ErrRootTransition, ErrVendor)
	}
	return t, nil
}
