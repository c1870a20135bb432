package secpkg

import (
	"bytes"

	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/errs"
)

// ContentTypeRevocation is the content type of a revocation statement
// (spec §4.1).
const ContentTypeRevocation = "application/vnd.sbm.revocation+cbor"

// LabelRevocation is the manifest's unprotected header label carrying a
// revocation statement (spec §4.1).
const LabelRevocation = -65538

// MaxRevocationSize is the largest revocation statement COSE_Sign1.
const MaxRevocationSize = 256

// Revocation is a verified revocation statement: key certificates of Role
// with an epoch below MinEpoch are revoked (spec §4.1).
type Revocation struct {
	Role     Role
	MinEpoch uint8
	Issued   uint64
}

var errRevokesOwnKey = errs.New("the manifest's revocation statement revokes the key that signed it")

// verifyRootSigned decodes raw (at most max bytes, content type ct) and
// verifies that the root key itself signed it: a statement of the root.
func verifyRootSigned(a *Anchors, raw []byte, max int, ct string) (signed, error) {
	s, err := decodeSigned(raw, max, ct)
	if err != nil {
		return s, err
	}
	if s.header.Alg != a.Suite.Alg() {
		return s, ErrAlgorithm
	}
	if rk := KeyID(a.RootKey); !bytes.Equal(s.header.KID[:], rk[:]) {
		return s, errKID
	}
	if err := s.msg.Verify(s.header.Alg, a.RootKey); err != nil {
		return s, wrap(ErrSignature, err)
	}
	return s, nil
}

var revocationSpec = mapSpec{
	name:     "revocation",
	names:    []string{"", "format", "vendor-id", "role", "min-epoch", "issued"},
	required: 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5,
}

// VerifyRevocation verifies a revocation statement: a COSE_Sign1 signed
// by the root key itself (kid = KeyID(root)), content type
// ContentTypeRevocation, for the anchors' vendor, naming role 1 or 2 and
// a minimum epoch from 1 to MaxEpoch.
func VerifyRevocation(a *Anchors, raw []byte) (*Revocation, error) {
	s, err := verifyRootSigned(a, raw, MaxRevocationSize, ContentTypeRevocation)
	if err != nil {
		return nil, wrap(ErrRevocation, err)
	}
	r := new(Revocation)
	var vendor [16]byte
	d := cbor.NewDecoder(s.msg.Payload)
	err = decodeMap(&d, &revocationSpec, func(k int64, d *cbor.Decoder) error {
		switch k {
		case 1:
			return readFormat(d)
		case 2:
			return readFixed(d, vendor[:])
		case 3:
			v, err := readUint(d, 1, 2)
			r.Role = Role(v)
			return err
		case 4:
			v, err := readUint(d, 1, MaxEpoch)
			r.MinEpoch = uint8(v)
			return err
		default: // 5
			v, err := d.Uint()
			r.Issued = v
			return err
		}
	})
	if err != nil {
		return nil, wrap(ErrRevocation, err)
	}
	if err := d.Finish(); err != nil {
		return nil, wrap(ErrRevocation, wrap(ErrTrailingData, err))
	}
	if !bytes.Equal(vendor[:], a.VendorID[:]) {
		return nil, wrap(ErrRevocation, ErrVendor)
	}
	return r, nil
}
