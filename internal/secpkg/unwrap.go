package secpkg

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"

	"github.com/sbm-project/sbm/internal/aeskw"
	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/p256"
)

// wrappedKeySize is the AES-KW ciphertext of a 32-byte CEK.
const wrappedKeySize = 40

// recipientProtected is the protected bstr content of the wrapped key,
// {1: -31} (ECDH-ES + A256KW), spec §7.2.
var recipientProtected = []byte{0xa1, 0x01, 0x38, 0x1e}

// kdfOther is SuppPubInfo.other of the KDF context (spec §7.2).
const kdfOther = "SBM UPK v1"

// KeyAgreement is a recipient's key-agreement private key. *ecdh.PrivateKey
// implements it; a device may implement it over a key it never exports.
type KeyAgreement interface {
	PublicKey() *ecdh.PublicKey
	ECDH(remote *ecdh.PublicKey) ([]byte, error)
}

// decodeWrappedKey decodes the COSE_recipient of spec §7.2 into u.
func decodeWrappedKey(d *cbor.Decoder, u *UPK) error {
	n, err := d.ArrayHeader(3)
	if err != nil {
		return err
	}
	if n != 3 {
		return errSize
	}
	p, err := d.Bytes()
	if err != nil {
		return err
	}
	if !bytes.Equal(p, recipientProtected) {
		return ErrAlgorithm
	}
	if err := decodeEphemeralMap(d, u); err != nil {
		return err
	}
	return readFixed(d, u.wrappedKey[:])
}

// decodeEphemeralMap decodes the recipient's unprotected header, which is
// exactly { -1: COSE_Key } (spec §7.2): no other label, of any sign, is
// allowed in it.
func decodeEphemeralMap(d *cbor.Decoder, u *UPK) error {
	n, err := d.MapHeader(1)
	if err != nil {
		return err
	}
	if n != 1 {
		return errSize
	}
	k, err := d.Int()
	if err != nil || k != -1 {
		return errEphemeralLabel
	}
	return decodeCOSEKey(d, u)
}

// decodeCOSEKey decodes an ephemeral COSE_Key: exactly {1: 2, -1: 1, -2: x,
// -3: y} (P-256) or {1: 1, -1: 4, -2: x} (X25519).
func decodeCOSEKey(d *cbor.Decoder, u *UPK) error {
	n, err := d.MapHeader(4)
	if err != nil {
		return err
	}
	var kty, crv int64
	var x, y []byte
	var have [4]bool // labels 1, -1, -2, -3
	for i := 0; i < n; i++ {
		label, err := d.Int()
		if err != nil {
			return errNotInteger
		}
		idx := -1
		switch label {
		case 1:
			idx = 0
			kty, err = d.Int()
		case -1:
			idx = 1
			crv, err = d.Int()
		case -2:
			idx = 2
			x, err = d.Bytes()
		case -3:
			idx = 3
			y, err = d.Bytes()
		default:
			return errPoint
		}
		if err != nil {
			return err
		}
		if have[idx] {
			return errDuplicate
		}
		have[idx] = true
	}
	switch {
	case kty == 2 && crv == 1 && n == 4 && len(x) == 32 && len(y) == 32:
		u.ephemeral[0] = 4
		copy(u.ephemeral[1:], x)
		copy(u.ephemeral[33:], y)
		u.ephLen, u.ephSuite = 65, SuiteP256
	case kty == 1 && crv == 4 && n == 3 && !have[3] && len(x) == 32:
		copy(u.ephemeral[:], x)
		u.ephLen, u.ephSuite = 32, SuiteEd25519
	default:
		return errPoint
	}
	return nil
}

// appendKDFContext appends CBOR(KDF_Context) of spec §7.2 for the
// recipient key-id kid.
func appendKDFContext(dst []byte, kid *[32]byte) []byte {
	dst = cbor.AppendArrayHeader(dst, 4)
	dst = cbor.AppendInt(dst, -5) // A256KW
	dst = cbor.AppendArrayHeader(dst, 3)
	dst = cbor.AppendNull(cbor.AppendNull(cbor.AppendNull(dst)))
	dst = cbor.AppendArrayHeader(dst, 3)
	dst = cbor.AppendBytes(dst, kid[:])
	dst = cbor.AppendNull(cbor.AppendNull(dst))
	dst = cbor.AppendArrayHeader(dst, 3)
	dst = cbor.AppendUint(dst, 256)
	dst = cbor.AppendBytes(dst, recipientProtected)
	return cbor.AppendBytes(dst, []byte(kdfOther))
}

// kdfContextSize is the size of CBOR(KDF_Context).
const kdfContextSize = 1 + 1 + 4 + 1 + 2 + 32 + 2 + 1 + 3 + 5 + 11

// deriveKEK derives the key-encryption key from the shared secret z.
func deriveKEK(z []byte, kid *[32]byte) ([]byte, error) {
	var buf [kdfContextSize]byte
	info := appendKDFContext(buf[:0], kid)
	return hkdf.Key(sha256.New, z, nil, string(info), 32)
}

// Unwrap recovers the content-encryption key (spec §7.2, §7.3 steps 3 and
// 6). It first checks that the UPK's key-id is the kid of k's public key
// (ErrNotRecipient), then performs ECDH with the ephemeral key (which must
// be a valid point on k's curve), derives the KEK and unwraps (ErrUnwrap).
func (u *UPK) Unwrap(k KeyAgreement) ([32]byte, error) {
	var cek [32]byte
	pub := k.PublicKey()
	if pub == nil {
		return cek, ErrNotRecipient
	}
	if k := KeyID(pub.Bytes()); !bytes.Equal(k[:], u.KeyID[:]) {
		return cek, wrap(ErrNotRecipient, errKeyID)
	}
	var curve ecdh.Curve
	switch u.ephSuite {
	case SuiteP256:
		curve = p256.ECDH()
	case SuiteEd25519:
		curve = ecdh.X25519()
	}
	if curve == nil {
		return cek, wrap(ErrUnwrap, errPoint)
	}
	// The recipient's key must be on the ephemeral key's curve: its
	// encoding must be a public key of that curve (X25519: 32 bytes;
	// P-256: a 65-byte point on the curve), which tells the two apart
	// without comparing ecdh.Curve interface values (internal/errs).
	if _, err := curve.NewPublicKey(pub.Bytes()); err != nil {
		return cek, wrap(ErrUnwrap, errCurve)
	}
	eph, err := curve.NewPublicKey(u.ephemeral[:u.ephLen])
	if err != nil {
		return cek, wrap(ErrUnwrap, errPoint)
	}
	z, err := k.ECDH(eph)
	if err != nil {
		return cek, wrap(ErrUnwrap, err)
	}
	var zero [32]byte
	if len(z) != 32 || subtle.ConstantTimeCompare(z, zero[:]) == 1 {
		return cek, wrap(ErrUnwrap, errPoint)
	}
	kek, err := deriveKEK(z, &u.KeyID)
	clear(z)
	if err != nil {
		return cek, wrap(ErrUnwrap, err)
	}
	key, err := aeskw.Unwrap(kek, u.wrappedKey[:])
	clear(kek)
	if err != nil {
		return cek, wrap(ErrUnwrap, err)
	}
	if len(key) != len(cek) {
		return cek, ErrUnwrap
	}
	copy(cek[:], key)
	clear(key)
	return cek, nil
}
