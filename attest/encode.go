package attest

import (
	"crypto"
	"crypto/sha256"
	"unicode/utf8"

	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/cose"
)

// Append signs the claims c with signer under the COSE algorithm alg
// (cose.AlgES256 with a P-256 key, cose.AlgEdDSA with an Ed25519 key) and
// appends the token to dst. The protected header is {alg, ContentType,
// kid = SHA-256 of the signer's raw public key}. The signer is called with
// a nil random source: an *ecdsa.PrivateKey then signs deterministically
// (RFC 6979), so a token is a function of its claims and key.
func Append(dst []byte, c *Claims, signer crypto.Signer, alg int64) ([]byte, error) {
	var pbuf [MaxClaimsSize]byte
	payload, err := appendClaims(pbuf[:0], c)
	if err != nil {
		return dst, err
	}
	raw, err := cose.RawPublicKey(signer.Public())
	if err != nil {
		return dst, err
	}
	kid := sha256.Sum256(raw)
	var hbuf [96]byte
	protected := cose.AppendProtected(hbuf[:0], alg, ContentType, kid[:])
	return cose.Sign(dst, nil, signer, alg, protected, nil, payload)
}

// appendClaims checks c and appends its claims set.
func appendClaims(dst []byte, c *Claims) ([]byte, error) {
	if len(c.Nonce) < MinNonceSize || len(c.Nonce) > MaxNonceSize ||
		len(c.DeviceID) == 0 || len(c.DeviceID) > MaxDeviceIDSize ||
		int(c.Lifecycle) >= len(psaLifecycle) ||
		len(c.BootSeed) != 0 && (len(c.BootSeed) < MinBootSeedSize || len(c.BootSeed) > MaxBootSeedSize) ||
		!validComponent(&c.SBM, TypeSBM) || c.HasApp && !validComponent(&c.App, TypeApp) {
		return dst, ErrClaims
	}
	n := uint64(5)
	if len(c.BootSeed) > 0 {
		n++
	}
	// Keys in ascending order of their encoding (deterministic CBOR).
	dst = cbor.AppendMapHeader(dst, n)
	dst = cbor.AppendBytes(cbor.AppendUint(dst, KeyNonce), c.Nonce)
	dst = appendUEID(cbor.AppendUint(dst, KeyUEID), c.DeviceID)
	dst = cbor.AppendText(cbor.AppendUint(dst, KeyProfile), Profile)
	if len(c.BootSeed) > 0 {
		dst = cbor.AppendBytes(cbor.AppendUint(dst, KeyBootSeed), c.BootSeed)
	}
	dst = cbor.AppendUint(cbor.AppendUint(dst, KeyLifecycle), psaLifecycle[c.Lifecycle])
	comps := uint64(1)
	if c.HasApp {
		comps++
	}
	dst = cbor.AppendArrayHeader(cbor.AppendUint(dst, KeySoftwareComponents), comps)
	dst = appendComponent(dst, &c.SBM)
	if c.HasApp {
		dst = appendComponent(dst, &c.App)
	}
	if len(dst) > MaxClaimsSize {
		return dst, ErrClaims
	}
	return dst, nil
}

// appendUEID appends the UEID byte string 0x01 ‖ id.
func appendUEID(dst, id []byte) []byte {
	var u [1 + MaxDeviceIDSize]byte
	u[0] = UEIDTypeRAND
	n := copy(u[1:], id)
	return cbor.AppendBytes(dst, u[:1+n])
}

func validComponent(c *Component, typ string) bool {
	return c.Type == typ && len(c.Version) <= MaxVersionSize && utf8.ValidString(c.Version)
}

// appendComponent appends one software-component map.
func appendComponent(dst []byte, c *Component) []byte {
	n := uint64(3)
	if c.Version != "" {
		n++
	}
	if c.HasSigner {
		n++
	}
	if c.HasCounter {
		n++
	}
	dst = cbor.AppendMapHeader(dst, n)
	dst = cbor.AppendText(cbor.AppendUint(dst, CompMeasurementType), c.Type)
	dst = cbor.AppendBytes(cbor.AppendUint(dst, CompMeasurementValue), c.Measurement[:])
	if c.Version != "" {
		dst = cbor.AppendText(cbor.AppendUint(dst, CompVersion), c.Version)
	}
	if c.HasSigner {
		dst = cbor.AppendBytes(cbor.AppendUint(dst, CompSignerID), c.SignerID[:])
	}
	dst = cbor.AppendText(cbor.AppendUint(dst, CompMeasurementDesc), MeasurementDesc)
	if c.HasCounter {
		dst = cbor.AppendUint(cbor.AppendInt(dst, CompSecurityCounter), uint64(c.SecurityCounter))
	}
	return dst
}
