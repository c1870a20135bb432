package cose

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"io"

	"github.com/sbm-project/sbm/internal/p256"
)

// Sign signs protected and payload under alg with signer and appends the
// tagged COSE_Sign1 message to dst. protected is the serialized protected
// header (see AppendProtected); unprotected is the encoding of the
// unprotected header map (empty means an empty map). For ES256 the signer's
// public key must be a P-256 *ecdsa.PublicKey and its DER signature is
// converted to r ‖ s and normalised to low-S (spec §2); for EdDSA it must be
// an ed25519.PublicKey.
func Sign(dst []byte, rand io.Reader, signer crypto.Signer, alg int64, protected, unprotected, payload []byte) ([]byte, error) {
	var buf [sigBufSize]byte
	tbs := AppendSigStructure(buf[:0], protected, payload)
	var sig []byte
	switch alg {
	case AlgES256:
		if !p256.IsPublicKey(signer.Public()) {
			return nil, ErrKey
		}
		digest := sha256.Sum256(tbs)
		der, err := signer.Sign(rand, digest[:], crypto.SHA256)
		if err != nil {
			return nil, err
		}
		raw, ok := rawFromDER(der)
		if !ok {
			return nil, ErrSignature
		}
		NormalizeLowS(raw[:]) // spec §2: whatever the signer returned
		sig = raw[:]
	case AlgEdDSA:
		if _, ok := signer.Public().(ed25519.PublicKey); !ok {
			return nil, ErrKey
		}
		var err error
		if sig, err = signer.Sign(rand, tbs, crypto.Hash(0)); err != nil {
			return nil, err
		}
		if len(sig) != SignatureSize {
			return nil, ErrSignature
		}
	default:
		return nil, ErrAlg
	}
	return AppendSign1(dst, protected, unprotected, payload, sig), nil
}

// RawPublicKey returns the raw encoding of a key the SBM signs with: the
// 65-byte uncompressed point of a P-256 key or the 32-byte Ed25519 key.
// Any other key, or a P-256 key that cannot be encoded, is ErrKey.
func RawPublicKey(pub crypto.PublicKey) ([]byte, error) {
	if k, ok := pub.(ed25519.PublicKey); ok {
		return k, nil
	}
	raw, ok, err := p256.RawPublicKey(pub)
	if !ok || err != nil {
		return nil, ErrKey
	}
	return raw, nil
}
