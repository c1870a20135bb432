package secpkg

import (
	"bytes"
	"crypto/sha256"

	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/cose"
)

// Role is the role of a subordinate key in its key certificate (spec §4).
type Role uint8

// Key roles.
const (
	RoleImageSigning    Role = 1
	RoleUpdateAuthority Role = 2
)

// Content types of spec §3.
const (
	ContentTypeKeyCert  = "application/vnd.sbm.keycert+cbor"
	ContentTypeManifest = "application/vnd.sbm.manifest+cbor"
	ContentTypeUPK      = "application/vnd.sbm.upk+cbor"
)

// Size limits of spec §3.
const (
	MaxKeyCertSize  = 512
	MaxManifestSize = 2048
	MaxUPKSize      = 2048
)

// LabelKeyCert is the unprotected header label carrying the signer's key
// certificate (spec §3).
const LabelKeyCert = -65537

// keyCert is a decoded key certificate payload (spec §4).
type keyCert struct {
	role     Role
	alg      int64
	key      []byte // sub-slice of the input
	vendorID [16]byte
	epoch    uint8 // key 6, 0 when absent
}

// MaxEpoch is the largest key epoch (spec §4): a device keeps the lowest
// epoch it accepts per role in a fuse counter of 256 steps.
const MaxEpoch = 255

var keyCertSpec = mapSpec{
	name:     "keycert",
	names:    []string{"", "role", "alg", "key", "vendor-id", "issued", "epoch"},
	required: 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5,
}

func decodeKeyCert(payload []byte) (keyCert, error) {
	var c keyCert
	d := cbor.NewDecoder(payload)
	err := decodeMap(&d, &keyCertSpec, func(k int64, d *cbor.Decoder) error {
		switch k {
		case 1:
			v, err := readUint(d, 1, 2)
			c.role = Role(v)
			return err
		case 2:
			v, err := d.Int()
			if err == nil && suiteOfAlg(v) == 0 {
				return ErrAlgorithm
			}
			c.alg = v
			return err
		case 3:
			var err error
			c.key, err = d.Bytes()
			return err
		case 4:
			return readFixed(d, c.vendorID[:])
		case 6:
			v, err := readUint(d, 0, MaxEpoch)
			c.epoch = uint8(v)
			return err
		default: // 5: issued, informative
			_, err := d.Uint()
			return err
		}
	})
	if err != nil {
		return c, err
	}
	if len(c.key) != suiteOfAlg(c.alg).PublicKeySize() {
		return c, keyCertSpec.err(3, ErrMalformed, errSize)
	}
	if err := d.Finish(); err != nil {
		return c, wrap(ErrTrailingData, err)
	}
	return c, nil
}

// signed is a decoded, header-checked COSE_Sign1 of the format.
type signed struct {
	msg    cose.Sign1
	header cose.Header
	epoch  uint8 // the signer's key epoch (verifySigned)
}

// decodeSigned decodes msg (at most max bytes) and checks that its protected
// header is valid and has content type ct. It does not verify anything.
func decodeSigned(msg []byte, max int, ct string) (signed, error) {
	var s signed
	if len(msg) > max {
		return s, ErrTooLarge
	}
	var err error
	if s.msg, err = cose.DecodeSign1(msg); err != nil {
		return s, wrap(ErrMalformed, err)
	}
	if s.header, err = cose.ParseProtected(s.msg.Protected); err != nil {
		return s, wrap(ErrMalformed, err)
	}
	if string(s.header.ContentType) != ct {
		return s, ErrContentType
	}
	return s, nil
}

// verifyKeyCert verifies the key certificate raw against the anchors and
// the required role (spec §4 steps 1 and 2) and returns it.
func verifyKeyCert(a *Anchors, raw []byte, role Role) (keyCert, error) {
	var c keyCert
	s, err := decodeSigned(raw, MaxKeyCertSize, ContentTypeKeyCert)
	if err != nil {
		return c, wrap(ErrKeyCert, err)
	}
	if s.header.Alg != a.Suite.Alg() {
		return c, wrap(ErrKeyCert, ErrAlgorithm)
	}
	if rk := KeyID(a.RootKey); !bytes.Equal(s.header.KID[:], rk[:]) {
		return c, wrap(ErrKeyCert, errKID)
	}
	if !a.isTrusted(raw) {
		if err := s.msg.Verify(s.header.Alg, a.RootKey); err != nil {
			return c, wrap(ErrKeyCert, wrap(ErrSignature, err))
		}
	}
	if c, err = decodeKeyCert(s.msg.Payload); err != nil {
		return c, wrap(ErrKeyCert, err)
	}
	if c.alg != a.Suite.Alg() {
		return c, wrap(ErrKeyCert, ErrAlgorithm)
	}
	if c.role != role {
		return c, ErrWrongRole
	}
	if !bytes.Equal(c.vendorID[:], a.VendorID[:]) {
		return c, wrap(ErrKeyCert, ErrVendor)
	}
	if int(c.role) < len(a.MinEpoch) && c.epoch < a.MinEpoch[c.role] {
		return c, ErrRevoked
	}
	return c, nil
}

// verifySigned verifies a manifest or UPK COSE_Sign1 (spec §3, §4): size,
// content type, key certificate chain with the given role, kid and
// signature. It returns the decoded message; its payload is authentic.
func verifySigned(a *Anchors, msg []byte, max int, ct string, role Role) (signed, error) {
	s, err := decodeSigned(msg, max, ct)
	if err != nil {
		return s, err
	}
	if s.header.Alg != a.Suite.Alg() {
		return s, ErrAlgorithm
	}
	raw, err := s.msg.UnprotectedBytes(LabelKeyCert)
	if err != nil {
		return s, wrap(ErrKeyCert, errNoKeyCert)
	}
	c, err := verifyKeyCert(a, raw, role)
	if err != nil {
		return s, err
	}
	s.epoch = c.epoch
	if ck := KeyID(c.key); !bytes.Equal(s.header.KID[:], ck[:]) {
		return s, wrap(ErrKeyCert, errKID)
	}
	if err := s.msg.Verify(s.header.Alg, c.key); err != nil {
		return s, wrap(ErrSignature, err)
	}
	return s, nil
}

// TrustKeyCert verifies a key certificate against the anchors for role
// (spec §4 steps 1 and 2) and, if it is valid, remembers its digest so that
// later verifications of structures carrying this exact key certificate skip
// the root signature check (its content is still decoded and checked).
// A device does this once at provisioning for the key certificates it is
// given; a host does it once per context.
func (a *Anchors) TrustKeyCert(raw []byte, role Role) error {
	if _, err := verifyKeyCert(a, raw, role); err != nil {
		return err
	}
	d := sha256.Sum256(raw)
	var zero [32]byte
	for i := range a.trusted {
		if bytes.Equal(a.trusted[i][:], d[:]) {
			return nil
		}
		if bytes.Equal(a.trusted[i][:], zero[:]) {
			a.trusted[i] = d
			return nil
		}
	}
	return ErrTooLarge
}

func (a *Anchors) isTrusted(raw []byte) bool {
	d := sha256.Sum256(raw)
	for i := range a.trusted {
		if bytes.Equal(a.trusted[i][:], d[:]) {
			return true
		}
	}
	return false
}
