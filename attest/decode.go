package attest

import (
	"bytes"
	"crypto/sha256"
	"unicode/utf8"

	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/cose"
)

// Verify checks token against the device identity key rawPub (the 65-byte
// uncompressed P-256 point or the 32-byte Ed25519 key) under the COSE
// algorithm alg and returns its claims. The protected header must be
// exactly {alg, ContentType, kid = SHA-256(rawPub)}. Byte slices in the
// claims alias token. Verify does not check the nonce: the caller compares
// Claims.Nonce with the one it sent.
func Verify(token []byte, alg int64, rawPub []byte) (*Claims, error) {
	s, h, err := decodeToken(token)
	if err != nil {
		return nil, err
	}
	if kid := sha256.Sum256(rawPub); h.Alg != alg || !bytes.Equal(h.KID[:], kid[:]) {
		return nil, ErrHeader
	}
	if err := s.Verify(alg, rawPub); err != nil {
		return nil, ErrSignature
	}
	return decodeClaims(s.Payload)
}

// Decode decodes token without verifying its signature, to find out which
// device it claims to come from (then use Verify with that device's key).
func Decode(token []byte) (*Claims, error) {
	s, _, err := decodeToken(token)
	if err != nil {
		return nil, err
	}
	return decodeClaims(s.Payload)
}

// KeyID returns the kid of token's protected header (SHA-256 of the
// signing key's raw public key) without verifying anything else.
func KeyID(token []byte) ([32]byte, error) {
	_, h, err := decodeToken(token)
	return h.KID, err
}

// decodeToken decodes the COSE_Sign1 and its protected header, and checks
// that its unprotected header is empty.
func decodeToken(token []byte) (cose.Sign1, cose.Header, error) {
	// The unprotected header must be the empty map (0xa0): nothing outside
	// the signature may travel with the token.
	s, h, err := cose.DecodeBare(token, MaxTokenSize, ContentType)
	if err != nil {
		return s, h, ErrMalformed
	}
	return s, h, nil
}

// decodeClaims decodes a claims set in this profile. Unknown non-negative
// keys are refused; negative (private, non-critical) keys are skipped.
func decodeClaims(b []byte) (*Claims, error) {
	if len(b) > MaxClaimsSize {
		return nil, ErrMalformed
	}
	c := &Claims{}
	d := cbor.NewDecoder(b)
	n, err := d.MapHeader(16)
	if err != nil {
		return nil, ErrMalformed
	}
	var keys cbor.KeySet
	var seen uint8
	const (
		sNonce = 1 << iota
		sUEID
		sProfile
		sBootSeed
		sLifecycle
		sComponents
	)
	for range n {
		start := d.Offset()
		k, neg, err := key(&d)
		if err != nil || keys.Add(d.Since(start)) != nil {
			return nil, ErrMalformed
		}
		if neg {
			if d.Skip() != nil {
				return nil, ErrMalformed
			}
			continue
		}
		var bit uint8
		switch k {
		case KeyNonce:
			bit = sNonce
			c.Nonce, err = d.Bytes()
			if err == nil && (len(c.Nonce) < MinNonceSize || len(c.Nonce) > MaxNonceSize) {
				err = ErrMalformed
			}
		case KeyUEID:
			bit = sUEID
			var u []byte
			u, err = d.Bytes()
			if err == nil && (len(u) < 2 || len(u) > 1+MaxDeviceIDSize || u[0] != UEIDTypeRAND) {
				err = ErrMalformed
			}
			if err == nil {
				c.DeviceID = u[1:]
			}
		case KeyProfile:
			bit = sProfile
			var p []byte
			p, err = d.Text()
			if err == nil && string(p) != Profile {
				err = ErrMalformed
			}
		case KeyBootSeed:
			bit = sBootSeed
			c.BootSeed, err = d.Bytes()
			if err == nil && (len(c.BootSeed) < MinBootSeedSize || len(c.BootSeed) > MaxBootSeedSize) {
				err = ErrMalformed
			}
		case KeyLifecycle:
			bit = sLifecycle
			c.Lifecycle, err = decodeLifecycle(&d)
		case KeySoftwareComponents:
			bit = sComponents
			err = decodeComponents(&d, c)
		default:
			err = ErrMalformed
		}
		if err != nil {
			return nil, ErrMalformed
		}
		seen |= bit
	}
	if d.Finish() != nil || seen|sBootSeed != sNonce|sUEID|sProfile|sBootSeed|sLifecycle|sComponents {
		return nil, ErrMalformed
	}
	return c, nil
}

// decodeLifecycle reads a PSA lifecycle value and maps it to Lifecycle*.
func decodeLifecycle(d *cbor.Decoder) (uint8, error) {
	v, err := d.Uint()
	if err != nil {
		return 0, err
	}
	for i, p := range psaLifecycle {
		if v == p {
			return uint8(i), nil
		}
	}
	return 0, ErrMalformed
}

// key reads an integer map key: its value if non-negative, or neg.
func key(d *cbor.Decoder) (uint64, bool, error) {
	m, err := d.PeekType()
	if err != nil {
		return 0, false, err
	}
	switch m {
	case cbor.MajorUint:
		k, err := d.Uint()
		return k, false, err
	case cbor.MajorNegInt:
		k, err := d.NegInt()
		return k, true, err
	}
	return 0, false, ErrMalformed
}

// decodeComponents decodes the software-components array: the SBM, then
// optionally the application.
func decodeComponents(d *cbor.Decoder, c *Claims) error {
	n, err := d.ArrayHeader(2)
	if err != nil || n < 1 {
		return ErrMalformed
	}
	if err := decodeComponent(d, &c.SBM, TypeSBM); err != nil {
		return err
	}
	if n == 2 {
		c.HasApp = true
		return decodeComponent(d, &c.App, TypeApp)
	}
	return nil
}

// decodeComponent decodes one software-component map of type typ.
func decodeComponent(d *cbor.Decoder, c *Component, typ string) error {
	n, err := d.MapHeader(8)
	if err != nil {
		return ErrMalformed
	}
	var keys cbor.KeySet
	var seen uint8
	for range n {
		start := d.Offset()
		k, neg, err := key(d)
		if err != nil || keys.Add(d.Since(start)) != nil {
			return ErrMalformed
		}
		if neg {
			if k != 0 { // not CompSecurityCounter (-1): a private key, skipped
				if d.Skip() != nil {
					return ErrMalformed
				}
				continue
			}
			c.SecurityCounter, err = d.Uint32()
			c.HasCounter = true
			if err != nil {
				return ErrMalformed
			}
			continue
		}
		var v []byte
		switch k {
		case CompMeasurementType:
			v, err = d.Text()
			if err == nil && string(v) != typ {
				err = ErrMalformed
			}
			c.Type = typ
		case CompMeasurementValue:
			v, err = d.Bytes()
			if err == nil && len(v) != 32 {
				err = ErrMalformed
			}
			copy(c.Measurement[:], v)
		case CompVersion:
			v, err = d.Text()
			if err == nil && (len(v) == 0 || len(v) > MaxVersionSize || !utf8.Valid(v)) {
				err = ErrMalformed
			}
			c.Version = string(v)
		case CompSignerID:
			v, err = d.Bytes()
			if err == nil && len(v) != 32 {
				err = ErrMalformed
			}
			copy(c.SignerID[:], v)
			c.HasSigner = true
		case CompMeasurementDesc:
			v, err = d.Text()
			if err == nil && string(v) != MeasurementDesc {
				err = ErrMalformed
			}
		default:
			err = ErrMalformed
		}
		if err != nil || k >= 8 {
			return ErrMalformed
		}
		seen |= 1 << k
	}
	const required = 1<<CompMeasurementType | 1<<CompMeasurementValue | 1<<CompMeasurementDesc
	if seen&required != required {
		return ErrMalformed
	}
	return nil
}
